"""Simulate: run a scenario (example or uploaded, optionally with a trace) and show
latency distributions, KV utilisation and queue over time, and goodput per class."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from planner.errors import KvplanError
from planner.report.figures import goodput_figure, histogram_figure, timeseries_figure
from planner.report.views import rows_to_csv
from planner.sim.run import load_scenario, run_scenario
from planner.ui.common import table, timed
from planner.ui.uploads import store_upload, uploaded_scenario

SCENARIO_DIR = Path(__file__).resolve().parents[3] / "scenarios"
UPLOAD_LIMIT_BYTES = 50 * 2**20


def _save_upload(upload: UploadedFile, kind: str) -> Path | None:
    """The upload under a generated name in the private upload folder (never its own)."""
    if upload.size > UPLOAD_LIMIT_BYTES:
        st.error(
            f"{upload.name}: {upload.size:,} bytes is over the {UPLOAD_LIMIT_BYTES:,}-byte limit"
        )
        return None
    return store_upload(upload.getvalue(), kind)


st.title("Simulate")
st.caption(
    "Discrete-event simulation of replicas with continuous batching, chunked prefill, "
    "paged KV, prefix cache and preemption. Step times come from the same roofline "
    "as the other pages."
)
source = st.radio("Scenario", ["Example", "Upload YAML"], horizontal=True, key="sim_source")
trace_upload = st.file_uploader(
    "Trace to replay (optional: Mooncake JSONL or CSV timestamp_s,input_tokens,output_tokens)",
    type=["jsonl", "csv"],
    key="sim_trace",
)
col1, col2, col3 = st.columns(3)
mode = col1.selectbox("Mode", ["fast", "exact"], key="sim_mode")
seed = col2.number_input("Seed", min_value=0, value=0, step=1, key="sim_seed")
duration = col3.number_input(
    "Arrivals for (s), 0 = as in the scenario",
    min_value=0.0,
    value=0.0,
    step=10.0,
    key="sim_duration",
)

scenario = None
try:
    if source == "Example":
        examples = sorted(p.name for p in SCENARIO_DIR.glob("*.yaml"))
        name = st.selectbox("Example scenario", examples, key="sim_example")
        scenario = load_scenario(SCENARIO_DIR / name)
    else:
        upload = st.file_uploader("Scenario YAML", type=["yaml", "yml"], key="sim_upload")
        if upload is not None:
            if upload.size > UPLOAD_LIMIT_BYTES:
                raise KvplanError(
                    f"{upload.size:,} bytes is over the {UPLOAD_LIMIT_BYTES:,}-byte limit",
                    where=upload.name,
                )
            scenario = uploaded_scenario(
                upload.getvalue().decode("utf-8", "replace"),
                upload.name,
                st.session_state.get("custom_models", {}),
                trace_uploaded=trace_upload is not None,
            )
    if scenario is not None:
        if duration > 0:
            scenario = scenario.model_copy(update={"duration_s": float(duration)})
        st.caption(
            f"{scenario.name}: {scenario.description or ''} — {scenario.replicas} x "
            f"{scenario.deployment.gpus_per_replica} {scenario.gpu}, "
            f"{scenario.duration_s:g} s of arrivals + {scenario.drain_s:g} s drain"
        )
except KvplanError as err:
    st.error(str(err))
    scenario = None

run_clicked = st.button("Run simulation", type="primary", disabled=scenario is None, key="sim_run")
if run_clicked and scenario is not None:
    trace_path = None
    if trace_upload is not None:
        saved = _save_upload(
            trace_upload, "trace-csv" if trace_upload.name.endswith(".csv") else "trace-jsonl"
        )
        trace_path = str(saved) if saved else None
    bar = st.progress(0.0, text="simulating...")

    def show_progress(fraction: float) -> None:
        bar.progress(min(fraction, 1.0), text=f"simulating... {fraction:.0%}")

    try:
        result = run_scenario(
            scenario,
            mode="exact" if mode == "exact" else "fast",
            seed=int(seed),
            trace_path=trace_path,
            progress=show_progress,
        )
        arrays = result.arrays
        st.session_state["sim_result"] = {
            "json": result.to_json(),
            "ttft_s": arrays.ttft_s,
            "tpot_s": arrays.tpot_s,
            "e2e_s": arrays.e2e_s,
            "requests": [
                {
                    "rid": r.rid,
                    "class": result.workload.class_names[r.class_index],
                    "arrival_s": r.arrival_s,
                    "state": r.state,
                    "reject_reason": r.reject_reason,
                    "input_tokens": r.input_tokens,
                    "output_tokens": r.output_tokens,
                    "cached_tokens": r.cached_tokens,
                    "ttft_s": r.first_token_s - r.arrival_s,
                    "finish_s": r.finish_s,
                    "preemptions": r.preemptions,
                    "replica": r.replica,
                }
                for r in result.cluster.requests
            ],
        }
    except KvplanError as err:
        st.error(str(err))
    finally:
        bar.empty()

stored = st.session_state.get("sim_result")
if stored is not None:
    with timed("simulate"):
        data = stored["json"]
        req = data["requests"]
        cols = st.columns(5)
        cols[0].metric(
            "finished / arrived",
            f"{req['finished']:,} / {req['arrived']:,}",
            f"{req['rejected']:,} rejected",
            delta_color="inverse",
        )
        goodput = data["goodput"]
        cols[1].metric("goodput", "n/a" if goodput is None else f"{goodput:.1%}")
        cols[2].metric(
            "TTFT p50 / p99",
            "n/a"
            if data["ttft_s"]["p50"] is None
            else f"{data['ttft_s']['p50']:.3f} / {data['ttft_s']['p99']:.3f} s",
        )
        cols[3].metric(
            "TPOT p50 / p99",
            "n/a"
            if data["tpot_s"]["p50"] is None
            else f"{1e3 * data['tpot_s']['p50']:.1f} / {1e3 * data['tpot_s']['p99']:.1f} ms",
        )
        cols[4].metric(
            "prefix hit ratio",
            f"{data['prefix_hit_ratio']:.1%}",
            f"{data['preemptions']:,} preemptions",
            delta_color="off",
        )
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            histogram_figure(np.asarray(stored["ttft_s"]), "TTFT distribution", "seconds"),
            width="stretch",
        )
        c2.plotly_chart(
            histogram_figure(np.asarray(stored["tpot_s"]), "TPOT distribution", "seconds"),
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
            rows_to_csv(stored["requests"]),
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
