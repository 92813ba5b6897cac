"""Simulate: run the sidebar's view (every model x GPU with its planned replicas), an
example, or an uploaded scenario (YAML, or the zip "Download this view" writes), optionally
replaying an uploaded trace; latency distributions, KV utilisation and queue over time,
goodput per class, rejection reasons.

Every run happens in a child process with a time and memory limit (planner.ui.bounded).
Results stay labelled with the inputs they came from: when the inputs change, the page
says the results are from earlier inputs; a failed run clears them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from planner.errors import KvplanError
from planner.report.figures import goodput_figure, histogram_figure, timeseries_figure
from planner.report.view_export import ViewScenario, view_scenarios
from planner.report.views import rows_to_csv, screen_text
from planner.schema import Scenario
from planner.sim.run import load_scenario
from planner.ui.bounded import run_bounded
from planner.ui.common import cost_rows, plural, table, timed
from planner.ui.sim_jobs import MAX_DURATION_S, check_size, simulate
from planner.ui.state import (
    SIM_VIEW_REQUEST_KEY,
    current_config,
    number_in,
    one_of,
    page_param,
    write_page_params,
)
from planner.ui.uploads import scenarios_from_zip, store_upload, uploaded_scenario

SCENARIO_DIR = Path(__file__).resolve().parents[3] / "scenarios"
TRACE_LIMIT_BYTES = 50 * 2**20  # .streamlit/config.toml maxUploadSize
SIM_TIME_LIMIT_S = 120.0
RESULT_KEY = "sim_result"
SOURCES = ["This view", "Example", "Upload"]


def example_files() -> tuple[list[str], list[str]]:
    """(runnable examples, lines about examples whose files are missing here)."""
    runnable, missing = [], []
    for path in sorted(SCENARIO_DIR.glob("*.yaml")):
        if path.name.startswith("migration-"):
            continue  # two-fleet migration scenarios: the Migration page
        try:
            scenario = load_scenario(path)
        except KvplanError as err:
            missing.append(f"{path.name}: {screen_text(err)}")
            continue
        trace = scenario.workload.trace
        if trace is not None and not Path(trace.path).is_file():
            missing.append(
                f"{path.name} needs the Mooncake FAST'25 synthetic trace (kvcache-ai/Mooncake, "
                "FAST25-release/traces/synthetic_trace.jsonl; not shipped) saved as "
                "../shared/traces/mooncake_synthetic_trace.jsonl beside the repository"
            )
            continue
        runnable.append(path.name)
    return runnable, missing


def _trace_path(upload: Any) -> str | None:
    """The uploaded trace under a generated name, stored once per upload."""
    if upload is None:
        return None
    if upload.size > TRACE_LIMIT_BYTES:
        raise KvplanError(
            f"{upload.size:,} bytes is over the {TRACE_LIMIT_BYTES:,}-byte limit",
            where=upload.name,
        )
    stored: dict[str, str] = st.session_state.setdefault("sim_traces", {})
    if upload.file_id not in stored:
        kind = "trace-csv" if upload.name.lower().endswith(".csv") else "trace-jsonl"
        stored[upload.file_id] = str(store_upload(upload.getvalue(), kind))
    return stored[upload.file_id]


def _describe(scenario: Scenario) -> str:
    d = scenario.deployment
    model = "an uploaded model" if scenario.model.endswith(".json") else scenario.model
    return (
        f"{scenario.name}: {model} on {plural(scenario.replicas, 'replica')} of "
        f"{d.gpus_per_replica} x "
        f"{scenario.gpu} (TP {d.tp}, EP {d.ep}, {d.engine}), "
        f"{scenario.duration_s:g} s of arrivals + {scenario.drain_s:g} s drain"
    )


def _run(
    scenarios: list[tuple[str, Scenario]], mode: str, seed: int, trace: str | None
) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for _, scenario in scenarios:
        check_size(scenario)  # refuse an oversized run before starting any
    bar = st.progress(0.0, text="simulating...")
    try:
        for i, (label, scenario) in enumerate(scenarios):
            where = f"{label} ({i + 1} of {len(scenarios)})" if len(scenarios) > 1 else label

            def show(fraction: float, i: int = i, where: str = where) -> None:
                done = (i + min(fraction, 1.0)) / len(scenarios)
                bar.progress(done, text=f"simulating {where}... {fraction:.0%}")

            results.append(
                run_bounded(
                    simulate,
                    scenario,
                    mode,
                    seed,
                    trace,
                    current_config().ttft_percentile,
                    time_limit_s=SIM_TIME_LIMIT_S,
                    what=f"the simulation of {label}",
                    progress=show,
                )
            )
    finally:
        bar.empty()
    return results


def _metrics(data: dict[str, Any], result: dict[str, Any]) -> None:
    req = data["requests"]
    cols = st.columns(2)
    rejected = req["rejected"]
    cols[0].metric(
        "finished / arrived",
        f"{req['finished']:,} / {req['arrived']:,}",
        f"{rejected:,} rejected",
        delta_color="red" if rejected else "gray",
        delta_arrow="off",
        border=True,
    )
    goodput = data["goodput"]
    cols[1].metric(
        "goodput",
        "n/a" if goodput is None else f"{goodput:.1%}",
        "requests within both SLOs",
        delta_color="gray",
        delta_arrow="off",
        border=True,
    )
    cols = st.columns(2)
    cols[0].metric(
        "replicas",
        f"{result['replicas']:,}",
        f"{result['replicas'] * result['gpus_per_replica']:,} GPUs",
        delta_color="gray",
        delta_arrow="off",
        border=True,
    )
    cols[1].metric(
        "prefix hit ratio",
        f"{data['prefix_hit_ratio']:.1%}",
        f"{plural(data['preemptions'], 'preemption')}",
        delta_color="gray",
        delta_arrow="off",
        border=True,
    )
    cols = st.columns(2)
    ttft, tpot = data["ttft_s"], data["tpot_s"]
    cols[0].metric(
        "TTFT p50 / p99 (s)",
        "n/a" if ttft["p50"] is None else f"{ttft['p50']:.3f} / {ttft['p99']:.3f}",
        border=True,
    )
    cols[1].metric(
        "TPOT p50 / p99 (ms)",
        "n/a" if tpot["p50"] is None else f"{1e3 * tpot['p50']:.1f} / {1e3 * tpot['p99']:.1f}",
        border=True,
    )


def _details(label: str, result: dict[str, Any]) -> None:
    data = result["json"]
    _metrics(data, result)
    if result["rejections"]:
        st.subheader("Rejected requests")
        table(result["rejections"], f"sim_rejections_{label}", "Download rejections as CSV")
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        histogram_figure(np.asarray(result["ttft_s"]), "TTFT distribution", "seconds"),
        width="stretch",
    )
    c2.plotly_chart(
        histogram_figure(np.asarray(result["tpot_s"]), "TPOT distribution", "seconds"),
        width="stretch",
    )
    st.plotly_chart(timeseries_figure(data["time_series"]), width="stretch")
    st.plotly_chart(goodput_figure(data["per_class"]), width="stretch")
    summary_rows = [
        {"metric": key, **{p: data[key][p] for p in ("p50", "p90", "p99")}}
        for key in ("ttft_s", "tpot_s", "e2e_s")
    ]
    table(summary_rows, "sim_latency", "Download latency percentiles as CSV")
    st.download_button(
        "Download every request as CSV",
        rows_to_csv(result["requests"]),
        file_name="sim_requests.csv",
        mime="text/csv",
        key="csv_requests",
    )
    st.download_button(
        "Download the summary as JSON",
        json.dumps(data, indent=2, allow_nan=False),
        file_name="sim_summary.json",
        mime="application/json",
        key="json_summary",
    )
    st.caption(
        f"simulated {data['sim_time_s']:,.0f} s in {data['sim_wall_time_s']:.2f} s "
        f"({data['mode']} mode)"
    )


def _plan_vs_simulation(
    planned: list[ViewScenario], results: list[dict[str, Any]], percentile: float
) -> list[dict[str, Any]]:
    rows = []
    for vs, result in zip(planned, results, strict=True):
        p, data = vs.planned, result["json"]
        rows.append(
            {
                "model": vs.model,
                "gpu": vs.gpu,
                "planned_replicas": p["replicas"],
                "simulated_replicas": result["replicas"],
                f"planned_ttft_p{percentile:g}_s": p["planned_ttft_at_percentile_s"],
                f"simulated_ttft_p{percentile:g}_s": result["ttft_at_quantile_s"],
                "planned_tpot_ms": p["planned_tpot_ms"],
                "simulated_tpot_mean_ms": None
                if result["tpot_mean_s"] is None
                else 1e3 * result["tpot_mean_s"],
                "simulated_goodput": data["goodput"],
                "rejected": data["requests"]["rejected"],
            }
        )
    return rows


st.title("Simulate")
st.caption(
    "Discrete-event simulation of replicas with continuous batching, chunked prefill, "
    "paged KV, prefix cache and preemption. Step times come from the same roofline "
    f"as the other pages. Each run stops at {SIM_TIME_LIMIT_S:g} s of computing."
)
LINK_SOURCES = {"view": "This view", "example": "Example", "upload": "Upload"}
if not st.session_state.get("_sim_link_loaded"):  # the link's settings, once per session
    st.session_state["_sim_link_loaded"] = True
    source_key = page_param("sim_src", one_of(list(LINK_SOURCES), "simulation source"), None)
    if source_key is not None:
        st.session_state["sim_source"] = LINK_SOURCES[source_key]
    example = page_param("sim_ex", one_of(example_files()[0], "an example scenario"), None)
    if example is not None:
        st.session_state["sim_example"] = example
    st.session_state["sim_mode"] = page_param("sim_mode", one_of(["fast", "exact"], "mode"), "fast")
    st.session_state["sim_seed"] = int(
        page_param("sim_seed", number_in((0, 2**32 - 1), "seed"), 0.0)
    )
    st.session_state["sim_duration"] = page_param(
        "sim_for", number_in((0, MAX_DURATION_S), "seconds of arrivals"), 0.0
    )
if st.session_state.pop(SIM_VIEW_REQUEST_KEY, None) is not None:
    st.session_state["sim_source"] = "This view"
    st.session_state["sim_autorun"] = True
source = st.radio("Scenario", SOURCES, horizontal=True, key="sim_source")
config = current_config()
view_plan: list[ViewScenario] = []
chosen: list[tuple[str, Scenario]] = []
upload_note = ""
try:
    if source == "This view":
        view_plan = view_scenarios(config, cost_rows(config))
        for row in cost_rows(config):
            if row.get("replicas") is None:
                st.warning(f"{row['model']} on {row['gpu']}: no plan to simulate: {row['note']}")
        chosen = [(f"{vs.model} on {vs.gpu}", vs.scenario(config)) for vs in view_plan]
        st.caption(
            "Every model x GPU of the sidebar's view with the replica count the plan chose "
            "(the scenarios 'Download this view' writes)."
        )
    elif source == "Example":
        runnable, missing = example_files()
        name = st.selectbox("Example scenario", runnable, key="sim_example")
        for line in missing:
            st.caption(f"Not offered: {line}")
        if name:
            chosen = [(name, load_scenario(SCENARIO_DIR / name))]
    else:
        upload = st.file_uploader(
            "Scenario YAML, or the zip that 'Download this view' writes",
            type=["yaml", "yml", "zip"],
            key="sim_upload",
        )
        trace_for_upload = st.session_state.get("sim_trace")
        if upload is not None:
            customs = st.session_state.get("custom_models", {})
            if upload.name.lower().endswith(".zip"):
                found = scenarios_from_zip(upload.getvalue(), upload.name, customs)
                names = [n for n, _ in found]
                pick = st.selectbox("Scenario in the zip", names, key="sim_zip_member")
                chosen = [(pick, dict(found)[pick])] if pick else []
            else:
                chosen = [
                    (
                        upload.name,
                        uploaded_scenario(
                            upload.getvalue().decode("utf-8", "replace"),
                            upload.name,
                            customs,
                            trace_uploaded=trace_for_upload is not None,
                        ),
                    )
                ]
except KvplanError as err:
    st.error(screen_text(err))
    chosen = []

trace_upload = st.file_uploader(
    "Trace to replay (optional: Mooncake JSONL or CSV timestamp_s,input_tokens,output_tokens)",
    type=["jsonl", "csv"],
    key="sim_trace",
)
col1, col2, col3 = st.columns(3)
mode = col1.selectbox("Mode", ["fast", "exact"], key="sim_mode")
seed = col2.number_input("Seed", min_value=0, max_value=2**32 - 1, step=1, key="sim_seed")
duration = col3.number_input(
    "Arrivals for (s), 0 = as in the scenario",
    min_value=0.0,
    max_value=MAX_DURATION_S,
    step=10.0,
    key="sim_duration",
)
write_page_params(
    {
        "sim_src": {v: k for k, v in LINK_SOURCES.items()}[source],
        "sim_mode": str(mode),
        "sim_seed": str(int(seed)),
        "sim_for": f"{duration:g}",
        **({"sim_ex": str(st.session_state["sim_example"])} if source == "Example" else {}),
    }
)
if source == "Upload":
    st.caption("A link carries these settings but not the uploaded files.")
if duration > 0:
    chosen = [(n, s.model_copy(update={"duration_s": float(duration)})) for n, s in chosen]
for _, scenario in chosen:
    st.caption(_describe(scenario))

inputs = json.dumps(
    {
        "source": source,
        "scenarios": [[n, s.model_dump(mode="json")] for n, s in chosen],
        "trace": None if trace_upload is None else trace_upload.file_id,
        "mode": mode,
        "seed": int(seed),
    },
    sort_keys=True,
)
# Kept until a run ends: a rerun that interrupts the run (Streamlit stops a script when the
# user acts) must not lose the request.
autorun = st.session_state.get("sim_autorun", False)
clicked = st.button("Run simulation", type="primary", disabled=not chosen, key="sim_run")
if (clicked or autorun) and chosen:
    try:
        trace_path = _trace_path(trace_upload)
        results = _run(chosen, "exact" if mode == "exact" else "fast", int(seed), trace_path)
        st.session_state[RESULT_KEY] = {
            "inputs": inputs,
            "labels": [n for n, _ in chosen],
            "descriptions": [_describe(s) for _, s in chosen],
            "results": results,
            "plan": view_plan if source == "This view" else [],
            "percentile": config.ttft_percentile * 100,
        }
    except KvplanError as err:
        st.session_state.pop(RESULT_KEY, None)  # never leave old results under a failed run
        st.error(screen_text(err))
    st.session_state.pop("sim_autorun", None)

stored = st.session_state.get(RESULT_KEY)
if stored is not None:
    with timed("simulate"):
        if stored["inputs"] != inputs:
            st.warning(
                "These results are from earlier inputs ("
                + "; ".join(stored["descriptions"])
                + "); the inputs above have changed: run the simulation again to update them."
            )
        labels, results = stored["labels"], stored["results"]
        if stored["plan"]:
            st.subheader("Plan vs simulation")
            q = f"p{stored['percentile']:g}"
            table(
                _plan_vs_simulation(stored["plan"], results, stored["percentile"]),
                "plan_vs_simulation",
                columns={
                    "planned_replicas": st.column_config.NumberColumn("replicas (plan)"),
                    "simulated_replicas": st.column_config.NumberColumn("replicas (simulated)"),
                    f"planned_ttft_{q}_s": st.column_config.NumberColumn(
                        f"TTFT {q} (plan, s)", format="%.3f"
                    ),
                    f"simulated_ttft_{q}_s": st.column_config.NumberColumn(
                        f"TTFT {q} (simulated, s)", format="%.3f"
                    ),
                    "planned_tpot_ms": st.column_config.NumberColumn(
                        "TPOT (plan, ms)", format="%.1f"
                    ),
                    "simulated_tpot_mean_ms": st.column_config.NumberColumn(
                        "TPOT mean (simulated, ms)", format="%.1f"
                    ),
                    "simulated_goodput": st.column_config.NumberColumn(
                        "goodput (simulated)", format="percent"
                    ),
                },
            )
        index = 0
        if len(labels) > 1:
            pick = st.selectbox("Details for", labels, key="sim_detail")
            index = labels.index(pick) if pick in labels else 0
        _details(labels[index], results[index])
