"""The view as scenarios: every model and GPU, the planned replica counts, the typed token
counts, the SLOs and the layout; the zip runs with `kvplan simulate` and on the Simulate
page; simulating a view reproduces its plan."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
import yaml

from planner import load_model
from planner.hardware import load_gpu
from planner.plan.deployed import Deployed
from planner.plan.throughput import size_replicas
from planner.report import views
from planner.report.view_export import export_bundle, view_scenarios
from planner.report.views import ViewConfig
from planner.schema import Deployment
from planner.sim.run import load_scenario, run_scenario
from planner.ui import uploads
from planner.ui.uploads import scenarios_from_zip

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf_configs"

VIEW = ViewConfig(
    models=("deepseek-v3.2", "deepseek-v4-flash"),
    gpus=("h200", "b200"),
    gpus_per_replica=8,
    tensor_parallel=2,
    expert_parallel=8,
    engine="sglang",
    kv_dtype="fp8",
    requests_per_s=4.0,
    input_tokens=32_768,
    answer_tokens=1024,
    reasoning_mix=(0.6, 0.4, 0.0),
    prefix_hit_ratio=0.5,
    tpot_slo_ms=60.0,
    ttft_slo_s=4.0,
)


def members(bundle: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        return {name: z.read(name) for name in z.namelist()}


def test_every_model_and_gpu_with_its_planned_replicas():
    cost = views.cost_rows(VIEW)
    files = members(export_bundle(VIEW, cost).data)
    yamls = {n: yaml.safe_load(b) for n, b in files.items() if n.endswith(".yaml")}
    assert set(yamls) == {
        f"kvplan-view/{m}-on-{g}.yaml"
        for m in ("deepseek-v3.2", "deepseek-v4-flash")
        for g in ("h200", "b200")
    }
    assert "kvplan-view/README.txt" in files
    mean_in = 32_768  # no think-max share: no extra system prompt
    mean_out = round(1024 + 0.4 * 1500)  # think-high's mean reasoning tokens (kvplan default)
    for doc in yamls.values():
        # The replica count is the planner's, sized here directly from the same traffic.
        deployed = Deployed.build(
            load_model(doc["model"]),
            load_gpu(doc["gpu"]),
            Deployment(
                engine="sglang",
                gpus_per_replica=8,
                tensor_parallel=2,
                expert_parallel=8,
                kv_dtype="fp8",
            ),
        )
        sizing = size_replicas(
            deployed, 4.0, mean_in, mean_out, 0.060, prefix_hit_ratio=0.5, ttft_slo_s=4.0
        )
        assert doc["replicas"] == sizing.replicas
        assert doc["deployment"] == {
            "engine": "sglang",
            "gpus_per_replica": 8,
            "tensor_parallel": 2,
            "expert_parallel": 8,
            "kv_dtype": "fp8",
        }
        classes = doc["workload"]["classes"]
        assert [c["name"] for c in classes] == ["non-think", "think-high"]
        assert [c["share"] for c in classes] == [0.6, 0.4]
        # Half of the 32K prompt is a shared system prompt (whole 64-token blocks).
        assert doc["block_tokens"] == 64
        for c in classes:
            assert c["system_prompt_tokens"] == 16_384
            assert c["input_tokens"] == {"kind": "constant", "value": 32_768 - 16_384}
            assert c["output_tokens"] == {"kind": "constant", "value": 1024}
            assert c["slo"] == {"ttft_s": 4.0, "tpot_s": 0.06}
        assert doc["workload"]["arrival"] == {"kind": "poisson", "rate_per_s": 4.0}
        assert doc["workload"]["reasoning_modes"]["think-high"]["reasoning_tokens"]["mean"] == 1500


def test_the_zip_runs_with_kvplan_simulate_and_on_the_simulate_page(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "_private_dir", tmp_path / "private")
    (tmp_path / "private").mkdir()
    customs: dict[str, str] = {}
    label = uploads.add_config_upload(
        (FIXTURES / "llama-3.1-70b.json").read_bytes(), "my llama", "c.json", customs, set()
    )
    view = ViewConfig(
        models=("deepseek-v4-flash", label),
        gpus=("h200",),
        custom_models=tuple(customs.items()),
    )
    bundle = export_bundle(view, views.cost_rows(view)).data
    files = members(bundle)
    assert "kvplan-view/models/my-llama.json" in files
    assert not any(str(tmp_path) in b.decode(errors="replace") for b in files.values())
    # Unpacked beside each other, every scenario loads as `kvplan simulate` loads it.
    with zipfile.ZipFile(io.BytesIO(bundle)) as z:
        z.extractall(tmp_path / "out")
    for name in files:
        if name.endswith(".yaml"):
            scenario = load_scenario(tmp_path / "out" / name)
            assert Path(scenario.model).is_file() or scenario.model == "deepseek-v4-flash"
    # The Simulate page takes the zip as it is (the config.json stored under a new name).
    found = dict(scenarios_from_zip(bundle, "kvplan-view.zip", {}))
    llama = found["kvplan-view/my-llama-on-h200.yaml"]
    assert Path(llama.model).parent == tmp_path / "private"


def test_zip_bombs_and_traversal_names_are_harmless(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "_private_dir", tmp_path / "private")
    (tmp_path / "private").mkdir()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("../../evil.yaml", "name: x\n")
        z.writestr("big.json", b" " * (uploads.BUNDLE_MAX_BYTES + 1))
    with pytest.raises(uploads.KvplanError, match="unpacks to more than"):
        scenarios_from_zip(buffer.getvalue(), "z.zip", {})
    with pytest.raises(uploads.KvplanError, match="not a zip"):
        scenarios_from_zip(b"PK\x03\x04 nonsense", "z.zip", {})
    assert not (tmp_path.parent / "evil.yaml").exists()


def test_simulating_the_view_reproduces_its_plan():
    # V4-Flash on 4 x H200, 6 requests/s of 4K + 256 tokens, non-think only: the plan's
    # replica count holds both SLOs for (nearly) every request in simulation.
    view = ViewConfig(
        models=("deepseek-v4-flash",),
        gpus=("h200",),
        gpus_per_replica=4,
        requests_per_s=6.0,
        input_tokens=4096,
        answer_tokens=256,
        reasoning_mix=(1.0, 0.0, 0.0),
        tpot_slo_ms=50.0,
        ttft_slo_s=1.0,
    )
    cost = views.cost_rows(view)
    (vs,) = view_scenarios(view, cost)
    scenario = vs.scenario(view).model_copy(update={"duration_s": 60.0})
    summary = run_scenario(scenario, seed=0).summary
    assert scenario.replicas == cost[0]["replicas"]
    assert summary["requests"]["rejected"] == 0
    # The plan sizes for the TPOT SLO on the mean and the TTFT SLO at p90: the simulated
    # p50 TPOT is within it, and at least 90% of requests meet both SLOs.
    assert summary["tpot_s"]["p50"] <= 0.050
    assert summary["goodput"] >= 0.9
