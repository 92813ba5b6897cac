"""The microbenchmark side of `kvplan calibrate`: PyTorch stays inside planner/calibrate's
measuring modules, importing kvplan stays light, and (where PyTorch is installed) the
measuring code runs end to end on the CPU with tiny grids."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TORCH_MODULES = {"measure.py", "timing.py", "environment.py", "collectives.py", "quant.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_the_measuring_modules_import_torch() -> None:
    importers = {
        str(p.relative_to(REPO)) for p in (REPO / "planner").rglob("*.py") if "torch" in _imports(p)
    }
    assert importers == {f"planner/calibrate/{name}" for name in TORCH_MODULES}


def test_importing_planner_and_calibrate_loads_neither_pydantic_nor_torch() -> None:
    code = (
        "import sys, planner, planner.calibrate; "
        "print('pydantic' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.split() == ["False", "False"]


def test_measure_runs_on_cpu_with_tiny_grids(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from planner.calibrate import measure as m
    from planner.calibrate import timing

    monkeypatch.setattr(timing, "MAX_INPUT_SETS", 2)
    monkeypatch.setattr(m, "QUICK_GEMM_SHAPES", ((64, 128),))
    monkeypatch.setattr(m, "QUICK_GEMM_TOKENS", (1, 16))
    monkeypatch.setattr(m, "MOE_SHAPES", ((4, 64, 32), (2, 32, 16)))
    monkeypatch.setattr(m, "QUICK_MOE_TOKENS_PER_EXPERT", (1, 3))
    monkeypatch.setattr(m, "MOE_PARTIAL", ((1, 2),))
    monkeypatch.setattr(m, "GQA_HEADS", ((4, 1, 32), (4, 2, 32)))
    monkeypatch.setattr(m, "QUICK_DECODE_BATCH", (1, 2))
    monkeypatch.setattr(m, "QUICK_DECODE_CONTEXT", (64,))
    monkeypatch.setattr(m, "QUICK_PREFILL_TOKENS", (32,))
    monkeypatch.setattr(m, "MLA_HEADS", (2,))
    monkeypatch.setattr(m, "QUICK_ELEMENTWISE_TOKENS", (1, 8))
    monkeypatch.setattr(m, "ELEMENTWISE_HIDDEN", 64)
    settings = m.settings_from(quick=True, time_budget_s=600)
    settings.repeats = 2
    partial: list[dict[str, object]] = []
    raw = m.measure(settings, progress=False, checkpoint=partial.append)
    assert raw["format"] == m.RAW_FORMAT
    ops = {(r["op"], r.get("dtype") or r.get("kind") or r.get("name")) for r in raw["measurements"]}
    # 1 shape x 2 token counts of BF16 GEMM; every elementwise op; both GQA phases; MoE.
    assert {("gemm", "bf16"), ("grouped_gemm", "bf16"), ("attention", "gqa_decode")} <= ops
    assert {("elementwise", name) for name in m.ELEMENTWISE_OPS} <= ops
    gemms = [r for r in raw["measurements"] if r["op"] == "gemm" and r["dtype"] == "bf16"]
    assert sorted(r["m"] for r in gemms) == [1, 16]
    for r in raw["measurements"]:
        assert 0 < r["p10_s"] <= r["median_s"] <= r["p90_s"]
        assert r["input_sets"] >= 2  # never the same bytes twice in a row
    assert raw["collectives"]["measured"] is False
    assert partial and all(doc["partial"] for doc in partial)
    # Whatever was not measured says why.
    assert all(s["reason"] for s in raw["skipped"])


def test_collectives_over_gloo_on_two_cpu_processes() -> None:
    pytest.importorskip("torch")
    from planner.calibrate.collectives import group_sizes, run_world

    assert group_sizes(1) == []
    assert group_sizes(8) == [2, 4, 8]
    assert group_sizes(6) == [2, 4, 6]
    records = run_world(2, "gloo", [4096], 2)
    assert {(r["name"], r["gpus"], r["message_bytes"]) for r in records} == {
        ("all_reduce", 2, 4096),
        ("all_to_all", 2, 4096),
    }
    assert all(r["median_s"] > 0 for r in records)
