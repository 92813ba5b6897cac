"""The sidebar: every input of the dashboard, mirrored in the URL so a view can be shared.

On the first run of a session the widgets start from the URL's query parameters (invalid
values are reported and ignored); after every run the query parameters are rewritten from
the widgets.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
import yaml

from planner.engines import engine_names
from planner.errors import KvplanError
from planner.hardware import gpu_names
from planner.model.catalog import catalog_names
from planner.report.views import REASONING_MODES, ViewConfig, scenario_document
from planner.ui.uploads import DEFAULT_LABEL, LABEL_MAX_CHARS, add_config_upload
from planner.units import format_tokens, parse_token_count

CONTEXT_OPTIONS = [2**k for k in range(12, 21)]  # 4K .. 1M tokens
GPU_COUNT_OPTIONS = [1, 2, 4, 8, 16, 32, 64]
KV_OPTIONS = ["model default", "bf16", "fp8"]
DEFAULTS = ViewConfig()
CONFIG_KEY = "view_config"


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(text)
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _seed_defaults() -> None:
    """Widgets take their values from session state only (no default= arguments), so the
    URL can set them without Streamlit's 'default and session state' conflict."""
    state = st.session_state
    state["w_models"] = list(DEFAULTS.models)
    state["w_gpus"] = list(DEFAULTS.gpus)
    state["w_n"] = DEFAULTS.gpus_per_replica
    state["w_tp"] = "auto"
    state["w_ep"] = "auto"
    state["w_kv"] = KV_OPTIONS[0]
    state["w_engine"] = DEFAULTS.engine
    state["w_ctx"] = DEFAULTS.context_tokens
    state["w_rps"] = DEFAULTS.requests_per_s
    state["w_in"] = DEFAULTS.input_tokens
    state["w_ans"] = DEFAULTS.answer_tokens
    state["w_slo"] = DEFAULTS.tpot_slo_ms
    for mode, share in zip(REASONING_MODES, DEFAULTS.reasoning_mix, strict=True):
        state[f"w_mix_{mode}"] = round(100 * share)


def _from_url() -> list[str]:
    """Seed widget state from the query parameters; return problems found."""
    qp = st.query_params
    problems: list[str] = []
    state = st.session_state

    def pick_list(key: str, options: list[str]) -> None:
        if key in qp:
            values = [v for v in qp[key].split(",") if v]
            bad = [v for v in values if v not in options]
            if bad:
                problems.append(f"{key}: unknown {', '.join(bad)} (ignored)")
            good = [v for v in values if v in options]
            if good:
                state[f"w_{key}"] = good

    def pick_number(key: str, cast: Any, options: list[Any] | None = None) -> None:
        if key not in qp:
            return
        try:
            value = cast(qp[key])
        except (ValueError, KvplanError):
            problems.append(f"{key}: {qp[key]!r} is not valid (ignored)")
            return
        if options is not None and value not in options:
            problems.append(f"{key}: {qp[key]!r} is not one of the choices (ignored)")
            return
        state[f"w_{key}"] = value

    pick_list("models", catalog_names())
    pick_list("gpus", gpu_names())
    pick_number("n", int, GPU_COUNT_OPTIONS)
    pick_number("ctx", parse_token_count, CONTEXT_OPTIONS)
    pick_number("kv", str, KV_OPTIONS)
    pick_number("engine", str, engine_names())
    pick_number("rps", _positive_float)
    pick_number("in", _positive_int)
    pick_number("ans", _positive_int)
    pick_number("slo", _positive_float)
    if "mix" in qp:
        try:
            shares = [int(x) for x in qp["mix"].split(",")]
            if len(shares) != len(REASONING_MODES) or min(shares) < 0:
                raise ValueError
            for mode, share in zip(REASONING_MODES, shares, strict=True):
                state[f"w_mix_{mode}"] = share
        except ValueError:
            problems.append(f"mix: {qp['mix']!r} should be three percentages (ignored)")
    return problems


def _custom_model_uploader() -> tuple[tuple[str, str], ...]:
    """A Hugging Face config.json upload, validated, stored under a generated name (the
    name typed here is only a label) and kept for the session."""
    customs: dict[str, str] = st.session_state.setdefault("custom_models", {})
    added: dict[str, str] = st.session_state.setdefault("custom_uploads_seen", {})
    with st.sidebar.expander("Add a model from config.json"):
        name = st.text_input(
            "Name for it",
            value=DEFAULT_LABEL,
            max_chars=LABEL_MAX_CHARS,
            key="w_custom_name",
            help="a label only; a second model under the same name gets ' (2)'",
        )
        upload = st.file_uploader("Hugging Face config.json", type=["json"], key="w_upload_cfg")
        if upload is not None:
            if upload.file_id in added:
                st.success(f"{added[upload.file_id]} added: pick it under Models")
            else:
                try:
                    label = add_config_upload(
                        upload.getvalue(), name, upload.name, customs, set(catalog_names())
                    )
                    added[upload.file_id] = label
                    st.success(f"{label} added: pick it under Models")
                except KvplanError as err:
                    st.error(str(err))
    return tuple(sorted(customs.items()))


def sidebar() -> ViewConfig:
    """Draw the sidebar and return the configuration it describes."""
    if not st.session_state.get("_url_loaded"):
        _seed_defaults()
        st.session_state["_url_problems"] = _from_url()
        st.session_state["_url_loaded"] = True
    for problem in st.session_state.get("_url_problems", []):
        st.sidebar.warning(f"link: {problem}")
    sb = st.sidebar
    sb.header("Configuration")
    customs = _custom_model_uploader()
    model_options = catalog_names() + [n for n, _ in customs]
    models = sb.multiselect("Models", model_options, key="w_models")
    gpus = sb.multiselect("GPU profiles", gpu_names(), key="w_gpus")
    n = sb.selectbox("GPUs per replica", GPU_COUNT_OPTIONS, key="w_n")
    for key in ("w_tp", "w_ep"):  # a size that no longer divides the GPU count resets
        if st.session_state.get(key) not in ["auto", *_divisors(n)]:
            st.session_state[key] = "auto"
    col1, col2 = sb.columns(2)
    tp = col1.selectbox(
        "Attention TP",
        ["auto", *_divisors(n)],
        key="w_tp",
        help="tensor-parallel size of attention; GPUs / TP = data-parallel "
        "attention groups (auto: TP = GPUs per replica)",
    )
    ep = col2.selectbox("Expert parallel", ["auto", *_divisors(n)], key="w_ep")
    engine = sb.selectbox(
        "Serving engine",
        engine_names(),
        key="w_engine",
        help="cache layout, memory admission and defaults of this engine (engines/*.yaml)",
    )
    kv = sb.selectbox(
        "KV cache dtype",
        KV_OPTIONS,
        key="w_kv",
        help="model default = the engine's default cache (Compare keeps the model's "
        "reference serving stack)",
    )
    ctx = sb.select_slider(
        "Context length (tokens)", CONTEXT_OPTIONS, format_func=format_tokens, key="w_ctx"
    )
    with sb.expander("Traffic", expanded=True):
        rps = st.number_input("Requests per second", min_value=0.01, step=1.0, key="w_rps")
        input_tokens = st.number_input("Mean prompt tokens", min_value=1, step=512, key="w_in")
        answer = st.number_input(
            "Mean answer tokens (without reasoning)", min_value=1, step=64, key="w_ans"
        )
        st.caption("Reasoning-mode mix (%)")
        shares = [st.slider(mode, 0, 100, key=f"w_mix_{mode}") for mode in REASONING_MODES]
        slo = st.number_input("TPOT SLO (ms)", min_value=1.0, step=5.0, key="w_slo")
    if not models:
        sb.error("Pick at least one model")
        models = list(DEFAULTS.models)
    if not gpus:
        sb.error("Pick at least one GPU profile")
        gpus = list(DEFAULTS.gpus)
    if sum(shares) == 0:
        sb.error("The reasoning mix needs at least one non-zero share")
        shares = [int(100 * s) for s in DEFAULTS.reasoning_mix]
    config = ViewConfig(
        models=tuple(models),
        gpus=tuple(gpus),
        gpus_per_replica=int(str(n)),
        tensor_parallel=None if tp == "auto" else int(str(tp)),
        expert_parallel=None if ep == "auto" else int(str(ep)),
        kv_dtype=None if kv == "model default" else kv,
        engine=str(engine),
        context_tokens=int(ctx),
        requests_per_s=float(rps),
        input_tokens=int(input_tokens),
        answer_tokens=int(answer),
        reasoning_mix=tuple(s / sum(shares) for s in shares),  # type: ignore[arg-type]
        tpot_slo_ms=float(slo),
        custom_models=customs,
    )
    st.query_params.from_dict(
        {
            "models": ",".join(models),
            "gpus": ",".join(gpus),
            "n": str(n),
            "ctx": format_tokens(int(ctx)),
            "kv": kv,
            "engine": str(engine),
            "rps": f"{rps:g}",
            "in": str(input_tokens),
            "ans": str(answer),
            "mix": ",".join(str(s) for s in shares),
            "slo": f"{slo:g}",
        }
    )
    sb.download_button(
        "Download this view as a scenario YAML",
        yaml.safe_dump(scenario_document(config), sort_keys=False),
        file_name="kvplan-scenario.yaml",
        mime="text/yaml",
        help="Run it with: kvplan simulate kvplan-scenario.yaml",
    )
    st.session_state[CONFIG_KEY] = config
    return config


def current_config() -> ViewConfig:
    config = st.session_state.get(CONFIG_KEY, DEFAULTS)
    assert isinstance(config, ViewConfig)
    return config
