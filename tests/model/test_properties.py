"""Property tests of the analytic model: monotonicity, compression rates, sums over layers.

Expected values always come from an independent computation (a brute-force sum, a
per-layer loop, a hand-written byte count or a differently-built layer), never from
calling the function under test a second time.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import catalog_names, load_model
from planner.model.attention import AttentionKind, CompressedAttention, make_attention
from planner.model.counting import visible_sum
from planner.model.model import Model
from planner.schema import AttentionSpec, CompressedSpec, DSASpec, GQASpec, MLASpec

SETTINGS = settings(max_examples=60, deadline=None)
CATALOG = catalog_names()

# Every storage format a KV vector may use (the weight-only block formats are left out).
KV_FORMATS = ["bf16", "fp16", "fp32", "fp8", "fp8_b128", "fp8_b64_ue8m0", "mxfp4", "nvfp4", "int8"]

contexts = st.integers(min_value=0, max_value=4_000_000)
steps = st.integers(min_value=0, max_value=200_000)
context_lists = st.lists(contexts, min_size=1, max_size=8)
kv_formats = st.sampled_from(KV_FORMATS)


@cache
def catalog_model(name: str) -> Model:
    return load_model(name)


@cache
def distinct_kinds(name: str) -> list[AttentionKind]:
    model = catalog_model(name)
    by_spec = {model.spec.layers[i].attention: model.attention(i) for i in range(model.num_layers)}
    return list(by_spec.values())


@cache
def indexer_projection_flops(spec: AttentionSpec, hidden_size: int) -> int:
    """Per-token FLOPs of a layer's indexer matrices: 2 x rows x cols per matrix."""
    mats = make_attention(spec).projections(hidden_size)
    return sum(2 * m.rows * m.cols * m.count for m in mats if m.group == "indexer")


# --------------------------------------------------------------------------- spec strategies
@st.composite
def gqa_specs(draw: st.DrawFn, windowed: bool) -> GQASpec:
    kv_heads = draw(st.integers(1, 16))
    return GQASpec(
        num_heads=kv_heads * draw(st.integers(1, 8)),
        num_kv_heads=kv_heads,
        head_dim=draw(st.integers(1, 256)),
        sliding_window_tokens=draw(st.integers(1, 8192)) if windowed else None,
        kv_format=draw(kv_formats),
    )


def _mla_fields(draw: st.DrawFn) -> dict[str, object]:
    return {
        "num_heads": draw(st.integers(1, 128)),
        "q_lora_rank": draw(st.none() | st.integers(1, 2048)),
        "kv_lora_rank": draw(st.integers(1, 1024)),
        "qk_nope_head_dim": draw(st.integers(1, 256)),
        "qk_rope_head_dim": draw(st.integers(1, 128)),
        "v_head_dim": draw(st.integers(1, 256)),
        "latent_format": draw(kv_formats),
        "rope_format": draw(kv_formats),
    }


@st.composite
def mla_specs(draw: st.DrawFn) -> MLASpec:
    return MLASpec(**_mla_fields(draw))


@st.composite
def dsa_specs(draw: st.DrawFn) -> DSASpec:
    return DSASpec(
        **_mla_fields(draw),
        index_n_heads=draw(st.integers(1, 64)),
        index_head_dim=draw(st.integers(1, 256)),
        index_topk=draw(st.integers(1, 4096)),
        index_key_format=draw(kv_formats),
    )


@st.composite
def compressed_specs(draw: st.DrawFn, kind: str, v4_formats: bool = False) -> CompressedSpec:
    head_dim = draw(st.integers(2, 1024))
    num_heads = draw(st.integers(1, 128))
    # The grouped output projection splits num_heads x head_dim into o_groups equal parts.
    groups = [g for g in range(1, 17) if (num_heads * head_dim) % g == 0]
    fields: dict[str, object] = {
        "kind": kind,
        "num_heads": num_heads,
        "head_dim": head_dim,
        "qk_rope_head_dim": draw(st.integers(1, head_dim - 1)),
        "q_lora_rank": draw(st.integers(1, 2048)),
        "o_lora_rank": draw(st.integers(1, 1024)),
        "o_groups": draw(st.sampled_from(groups)),
        "sliding_window_tokens": draw(st.integers(1, 1024)),
        "entry_nope_format": "fp8_b64_ue8m0" if v4_formats else draw(kv_formats),
        "entry_rope_format": "bf16" if v4_formats else draw(kv_formats),
        "entry_pad_bytes": draw(st.integers(0, 8)),
        "compressor_overlap": draw(st.integers(1, 3)),
        "compressor_state_format": draw(kv_formats),
    }
    if kind == "swa":
        fields["compress_ratio"] = 0
    elif kind == "hca":
        fields["compress_ratio"] = draw(st.integers(1, 256))
    else:
        fields.update(
            compress_ratio=draw(st.integers(1, 16)),
            index_n_heads=draw(st.integers(1, 64)),
            index_head_dim=draw(st.integers(1, 256)),
            index_topk=draw(st.integers(1, 4096)),
            index_key_format="mxfp4" if v4_formats else draw(kv_formats),
        )
    return CompressedSpec(**fields)


ALL_KIND_SPECS = {
    "gqa": gqa_specs(windowed=False),
    "gqa_window": gqa_specs(windowed=True),
    "mla": mla_specs(),
    "dsa": dsa_specs(),
    "csa": compressed_specs("csa"),
    "hca": compressed_specs("hca"),
    "swa": compressed_specs("swa"),
}


# --------------------------------------------------------------------------- monotonicity
def _assert_non_decreasing(kind: AttentionKind, low: int, high: int) -> None:
    assert kind.kv_bytes(high) >= kind.kv_bytes(low)
    assert kind.read_bytes(high) >= kind.read_bytes(low)
    assert kind.attn_flops(1, high) >= kind.attn_flops(1, low)
    assert kind.indexer_flops(1, high) >= kind.indexer_flops(1, low)


@pytest.mark.parametrize("kind_name", list(ALL_KIND_SPECS))
@SETTINGS
@given(data=st.data(), context=contexts, step=steps)
def test_every_kind_is_non_decreasing_in_context(
    kind_name: str, data: st.DataObject, context: int, step: int
) -> None:
    kind = make_attention(data.draw(ALL_KIND_SPECS[kind_name], label="spec"))
    _assert_non_decreasing(kind, context, context + step)
    # The same over a sorted array of contexts (the vectorised path).
    grid = np.sort(np.asarray(data.draw(context_lists, label="grid"), dtype=np.int64))
    for values in (kind.kv_bytes(grid), kind.read_bytes(grid), kind.attn_flops(1, grid)):
        assert np.all(np.diff(values) >= 0)


@pytest.mark.parametrize("name", CATALOG)
@SETTINGS
@given(context=contexts, step=steps)
def test_catalog_models_are_non_decreasing_in_context(name: str, context: int, step: int) -> None:
    model = catalog_model(name)
    low, high = context, context + step
    assert model.kv_bytes(high) >= model.kv_bytes(low)
    assert model.cache_bytes(high) >= model.cache_bytes(low)
    assert model.read_bytes(high) >= model.read_bytes(low)
    assert model.decode_flops_per_token(high) >= model.decode_flops_per_token(low)
    for kind in distinct_kinds(name):
        _assert_non_decreasing(kind, low, high)


# --------------------------------------------------------------------------- compression
def _uncompressed_twin(spec: CompressedSpec) -> MLASpec:
    """An MLA/DSA layer caching, per token, the same entry a compressed layer caches per group.

    MLA stores latent (kv_lora_rank) + RoPE key; the V4 entry is (head_dim - rope) nope dims
    + RoPE dims, so a latent of head_dim - rope dims in the nope format is the same vector.
    """
    mla = {
        "num_heads": spec.num_heads,
        "kv_lora_rank": spec.head_dim - spec.qk_rope_head_dim,
        "qk_nope_head_dim": 128,
        "qk_rope_head_dim": spec.qk_rope_head_dim,
        "v_head_dim": 128,
        "latent_format": spec.entry_nope_format,
        "rope_format": spec.entry_rope_format,
    }
    if spec.index_topk is None:
        return MLASpec(**mla)
    return DSASpec(
        **mla,
        index_n_heads=spec.index_n_heads,
        index_head_dim=spec.index_head_dim,
        index_topk=spec.index_topk,
        index_key_format=spec.index_key_format,
    )


@pytest.mark.parametrize("kind_name", ["csa", "hca"])
@SETTINGS
@given(data=st.data(), context=contexts, groups=st.integers(0, 50_000))
def test_compressed_kinds_grow_at_one_mth_of_the_uncompressed_rate(
    kind_name: str, data: st.DataObject, context: int, groups: int
) -> None:
    spec = data.draw(compressed_specs(kind_name), label="spec")
    kind = make_attention(spec)
    assert isinstance(kind, CompressedAttention)
    m = spec.compress_ratio
    twin = make_attention(_uncompressed_twin(spec))

    # The twin stores the same entry (+ indexer key) once per token, padding aside.
    per_token = twin.kv_bytes_per_token + spec.entry_pad_bytes
    assert kind.compressed_entry_bytes == per_token
    assert kind.entry_bytes == twin.entry_bytes + spec.entry_pad_bytes

    # m * n more tokens add exactly n compressed entries, wherever L sits.
    grown = kind.kv_bytes(context + m * groups) - kind.kv_bytes(context)
    assert grown == groups * per_token
    # ... i.e. the uncompressed layer's growth over n tokens (plus padding) ...
    assert grown == twin.kv_bytes(groups) + groups * spec.entry_pad_bytes
    # ... and an average slope of 1/m of the uncompressed per-token rate.
    assert kind.kv_bytes_per_token == pytest.approx(per_token / m, rel=1e-12)
    if groups:
        assert grown / (m * groups) == pytest.approx(per_token / m, rel=1e-12)
    # The window and the compressor tail are fixed state: they do not grow with L.
    assert kind.state_bytes() >= spec.sliding_window_tokens * kind.entry_bytes


@pytest.mark.parametrize("kind_name", ["csa", "hca"])
@SETTINGS
@given(data=st.data(), context=contexts)
def test_v4_entry_bytes_by_hand(kind_name: str, data: st.DataObject, context: int) -> None:
    """The V4 serving layout counted by hand: FP8 nope dims with one UE8M0 byte per 64,
    BF16 RoPE dims, padding; MXFP4 indexer keys (half a byte each, one E8M0 byte per 32)."""
    spec = data.draw(compressed_specs(kind_name, v4_formats=True), label="spec")
    kind = make_attention(spec)
    nope = spec.head_dim - spec.qk_rope_head_dim
    entry = nope + math.ceil(nope / 64) + 2 * spec.qk_rope_head_dim + spec.entry_pad_bytes
    index_key = 0.0
    if spec.index_head_dim is not None:
        index_key = spec.index_head_dim / 2 + math.ceil(spec.index_head_dim / 32)
    complete_groups = context // spec.compress_ratio
    assert kind.kv_bytes(context) == complete_groups * (entry + index_key)


@SETTINGS
@given(data=st.data(), context=contexts, step=steps)
def test_swa_cache_does_not_grow(data: st.DataObject, context: int, step: int) -> None:
    kind = make_attention(data.draw(compressed_specs("swa"), label="spec"))
    assert kind.kv_bytes(context) == kind.kv_bytes(context + step) == 0
    assert kind.kv_bytes_per_token == 0


# --------------------------------------------------------------------------- sums
@pytest.mark.parametrize("name", CATALOG)
@SETTINGS
@given(contexts_drawn=context_lists, query_tokens=st.integers(1, 64))
def test_model_totals_equal_sum_over_layers(
    name: str, contexts_drawn: list[int], query_tokens: int
) -> None:
    model = catalog_model(name)
    ctx = np.asarray(contexts_drawn, dtype=np.int64)

    kv_sum = np.zeros(len(ctx))
    for layer_bytes in model.per_layer_kv_bytes(ctx):
        kv_sum = kv_sum + layer_bytes
    np.testing.assert_allclose(model.kv_bytes(ctx), kv_sum, rtol=1e-12, atol=0)

    read_sum = np.zeros(len(ctx))
    state_sum = 0.0
    # The "attention:*" and "indexer" components: per-layer scores and selector scoring,
    # plus the indexer's own projection matrices (reported under "indexer" too).
    attn_sum = np.zeros(len(ctx))
    for i in range(model.num_layers):
        kind = model.attention(i)
        read_sum = read_sum + kind.read_bytes(ctx)
        state_sum += kind.state_bytes()
        attn_sum = attn_sum + kind.attn_flops(query_tokens, ctx) / query_tokens
        if kind.has_indexer:
            attn_sum = attn_sum + kind.indexer_flops(query_tokens, ctx) / query_tokens
        attn_sum = attn_sum + indexer_projection_flops(
            model.spec.layers[i].attention, model.spec.hidden_size
        )
    np.testing.assert_allclose(model.read_bytes(ctx), read_sum, rtol=1e-12, atol=0)
    assert model.state_bytes() == pytest.approx(state_sum, rel=1e-12, abs=0)
    np.testing.assert_allclose(model.cache_bytes(ctx), kv_sum + state_sum, rtol=1e-12, atol=0)

    breakdown = model.flops_breakdown(ctx, query_tokens)
    total = np.zeros(len(ctx))
    context_dependent = np.zeros(len(ctx))
    for component, value in breakdown.items():
        total = total + value
        if component.startswith("attention:") or component == "indexer":
            context_dependent = context_dependent + value
    np.testing.assert_allclose(model.flops_per_token(ctx, query_tokens), total, rtol=1e-12)
    np.testing.assert_allclose(context_dependent, attn_sum, rtol=1e-12)


@pytest.mark.parametrize("name", CATALOG)
def test_kv_bytes_per_token_is_sum_of_layer_rates(name: str) -> None:
    model = catalog_model(name)
    rates = sum(model.attention(i).kv_bytes_per_token for i in range(model.num_layers))
    assert model.kv_bytes_per_token == pytest.approx(rates, rel=1e-12)


# --------------------------------------------------------------------------- visible_sum
def _brute_visible_sum(q: int, context: int, ratio: int, cap: int | None) -> int:
    total = 0
    for i in range(1, q + 1):
        visible = context - q + i
        term = visible // ratio
        total += term if cap is None else min(term, cap)
    return total


@SETTINGS
@given(
    data=st.data(),
    context=st.integers(0, 400),
    ratio=st.integers(1, 12),
    cap=st.none() | st.integers(0, 60),
)
def test_visible_sum_matches_brute_force(
    data: st.DataObject, context: int, ratio: int, cap: int | None
) -> None:
    q = data.draw(st.integers(0, context), label="q")
    assert int(visible_sum(q, context, ratio, cap)) == _brute_visible_sum(q, context, ratio, cap)


@SETTINGS
@given(
    data=st.data(),
    ratio=st.integers(1, 12),
    cap=st.none() | st.integers(0, 60),
)
def test_visible_sum_vectorised_matches_brute_force(
    data: st.DataObject, ratio: int, cap: int | None
) -> None:
    q = data.draw(st.integers(0, 50), label="q")
    grid = data.draw(st.lists(st.integers(q, 300), min_size=1, max_size=6), label="grid")
    got = visible_sum(q, np.asarray(grid), ratio, cap)
    assert got.tolist() == [_brute_visible_sum(q, ctx, ratio, cap) for ctx in grid]


# --------------------------------------------------------------------------- vectorised
@pytest.mark.parametrize("name", CATALOG)
@SETTINGS
@given(contexts_drawn=context_lists)
def test_vectorised_equals_scalar(name: str, contexts_drawn: list[int]) -> None:
    model = catalog_model(name)
    ctx = np.asarray(contexts_drawn, dtype=np.int64)
    kv = model.kv_bytes(ctx)
    read = model.read_bytes(ctx)
    flops = model.decode_flops_per_token(ctx)
    assert isinstance(kv, np.ndarray) and kv.shape == ctx.shape
    for i, length in enumerate(contexts_drawn):
        scalar_kv = model.kv_bytes(length)
        assert isinstance(scalar_kv, float)
        assert kv[i] == scalar_kv
        assert read[i] == model.read_bytes(length)
        assert flops[i] == pytest.approx(model.decode_flops_per_token(length), rel=1e-12)
