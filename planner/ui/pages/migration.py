"""Migration: plan a move between two fleets (e.g. DeepSeek-V3.2 to V4) phase by phase.

The same scenario and functions as `kvplan migrate`: pick an example or upload a scenario
(or a result JSON written by `kvplan migrate --json`), edit the phase table, run, and read
the timeline (GPUs, $/hour, prefix hit ratio, TTFT p99 per class, with the phases shaded),
the summary cards and the cut-over table; download CSV and JSON. The view (example, mode,
rate, phases) travels in the URL as ``mig_*`` query parameters.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import streamlit as st

from planner.errors import KvplanError
from planner.io import parse_document
from planner.migrate.calibration import calibration_record, with_calibrations
from planner.migrate.checks import check_work, estimate_work
from planner.migrate.load import parse_migration
from planner.migrate.run import run_migration, window_spans
from planner.migrate.schema import MAX_MIGRATION_RATE_PER_S
from planner.report.migration import (
    cost_figure,
    csv_from_json,
    cutover_screen_rows,
    day_screen_rows,
    gpus_figure,
    hit_ratio_figure,
    to_json,
    ttft_figure,
)
from planner.schema import GpuCalibration
from planner.ui.calibration import CALIBRATION_KEY
from planner.ui.state import number_in, one_of, page_param, write_page_params

SCENARIO_DIR = Path(__file__).resolve().parents[3] / "scenarios"
UPLOAD_LIMIT_BYTES = 16 * 2**20
PHASE_COLUMNS = (
    "kind",
    "at_h",
    "class",
    "ramp_h",
    "to_percent",
    "warmup_top_n",
    "duration_h",
    "share_percent",
    "replicas",
)
SOURCES = ("Example", "Upload scenario YAML", "Upload result JSON")
DEFAULT_EXAMPLE = "migration-quick.yaml"
MAX_PHASES = 1000  # MigrationScenario.phases' own bound
RATE_BOUNDS = (0.01, MAX_MIGRATION_RATE_PER_S)  # open-loop requests per second
UPLOADED = "the calibrated profile uploaded in the sidebar"
NOT_UPLOADED = "the engine's fitted curves (no calibrated profile uploaded for this GPU)"


def _examples() -> list[str]:
    return sorted(p.name for p in SCENARIO_DIR.glob("migration-*.yaml"))


def _phase_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [{c: p.get(c) for c in PHASE_COLUMNS} for p in doc["phases"]]


def _phases_from_rows(rows: Any) -> list[dict[str, Any]]:
    """The edited table back to phase documents (empty cells dropped)."""
    records = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    phases = []
    for row in records:
        phase = {}
        for key, value in row.items():
            if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
                continue
            phase[key] = value
        if phase:
            phases.append(phase)
    return phases


def _phases_param(text: str) -> list[dict[str, Any]]:
    """The ``mig_phases`` link parameter: a JSON list of phase mappings (the scenario's own
    validation checks each phase when it runs)."""
    expected = f"a JSON list of at most {MAX_PHASES} phase objects"
    try:
        value = parse_document(text, "mig_phases", json_only=True)  # depth and size bounded
    except KvplanError:
        raise ValueError(expected) from None
    if (
        not isinstance(value, list)
        or len(value) > MAX_PHASES
        or not all(isinstance(p, dict) for p in value)
    ):
        raise ValueError(expected)
    return value


def _load_source() -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(scenario document, saved result) from the chosen source."""
    wanted_source = page_param("mig_source", one_of(list(SOURCES), "scenario source"), "Example")
    source = st.radio(
        "Scenario",
        SOURCES,
        index=SOURCES.index(wanted_source),
        horizontal=True,
        key="mig_source",
    )
    write_page_params({"mig_source": source})
    if source == "Example":
        examples = _examples()
        wanted = page_param("mig_example", one_of(examples, "example"), DEFAULT_EXAMPLE)
        name = st.selectbox(
            "Example",
            examples,
            index=examples.index(wanted) if wanted in examples else 0,
            key="mig_example",
        )
        write_page_params({"mig_example": name})
        return parse_document((SCENARIO_DIR / name).read_text(encoding="utf-8"), name), None
    kind = "yaml" if source.endswith("YAML") else "json"
    upload = st.file_uploader(source, type=["yaml", "yml"] if kind == "yaml" else ["json"])
    if upload is None:
        return None, None
    if upload.size > UPLOAD_LIMIT_BYTES:
        raise KvplanError(
            f"{upload.size:,} bytes is over the {UPLOAD_LIMIT_BYTES:,}-byte limit",
            where=upload.name,
        )
    raw = parse_document(
        upload.getvalue().decode("utf-8", "replace"), upload.name, json_only=kind == "json"
    )
    if kind == "json":
        if not isinstance(raw, dict) or "scenario_doc" not in raw or "summary" not in raw:
            raise KvplanError("not a result written by kvplan migrate --json", where=upload.name)
        return None, raw
    if not isinstance(raw, dict):
        raise KvplanError("a migration scenario must be a mapping", where=upload.name)
    return raw, None


def _edit(doc: dict[str, Any]) -> dict[str, Any]:
    """Mode, rate and the phase table, editable (and carried in the URL)."""
    doc = json.loads(json.dumps(doc, default=str))  # a plain copy (dates as text)
    col1, col2 = st.columns(2)
    modes = ["hybrid", "full"]
    scenario_mode = doc.get("simulation", {}).get("mode", "full")
    current = page_param("mig_mode", one_of(modes, "mode"), scenario_mode)
    mode = col1.selectbox(
        "Mode",
        modes,
        index=modes.index(current) if current in modes else 0,
        key="mig_mode",
        help="full simulates every request; hybrid simulates the cut-overs and extrapolates "
        "the steady hours",
    )
    scenario_rate = doc.get("traffic", {}).get("rate_per_s")
    if not isinstance(scenario_rate, int | float) or not (
        RATE_BOUNDS[0] <= scenario_rate <= RATE_BOUNDS[1]
    ):
        scenario_rate = 1.0  # the scenario's own check names a bad rate_per_s when it runs
    rate_default = page_param(
        "mig_rate", number_in(RATE_BOUNDS, "requests per second"), float(scenario_rate)
    )
    rate = col2.number_input(
        "Open-loop requests per second",
        min_value=RATE_BOUNDS[0],
        max_value=RATE_BOUNDS[1],
        value=rate_default,
        key="mig_rate",
    )
    write_page_params({"mig_mode": mode, "mig_rate": f"{rate:g}"})
    doc.setdefault("simulation", {})["mode"] = mode
    doc.setdefault("traffic", {})["rate_per_s"] = float(rate)
    doc["phases"] = page_param("mig_phases", _phases_param, doc.get("phases", []))
    st.subheader("Phases")
    edited = st.data_editor(
        _phase_rows(doc), num_rows="dynamic", width="stretch", key="mig_phase_table"
    )
    doc["phases"] = _phases_from_rows(edited)
    write_page_params({"mig_phases": json.dumps(doc["phases"], separators=(",", ":"))})
    return doc


def _calibrated(doc: Any, calibration_json: str | None) -> tuple[Any, dict[str, str | None]]:
    """The scenario with the sidebar's calibrated profile in the fleets on its GPU (as
    ``kvplan migrate --gpu-profile``), and each fleet's calibration label."""
    scenario = parse_migration(doc, "scenario")
    uploaded = (
        [] if calibration_json is None else [GpuCalibration.model_validate_json(calibration_json)]
    )
    return with_calibrations(scenario, [(c, UPLOADED) for c in uploaded], "calibrated GPU profile")


@st.cache_data(show_spinner=False, max_entries=8)
def _run(doc_json: str, calibration_json: str | None) -> dict[str, Any]:
    scenario, labels = _calibrated(json.loads(doc_json), calibration_json)
    data = to_json(run_migration(scenario, scheduler="serial"))
    data["calibration"] = calibration_record(labels, NOT_UPLOADED)  # as kvplan migrate --json
    return data


def _cards(data: dict[str, Any]) -> None:
    summary = data["summary"]
    m = summary["migration"]
    cols = st.columns(5)
    cols[0].metric("steady before ($/day)", f"${summary['steady_before']['usd_per_day']:,.0f}")
    cols[1].metric("steady after ($/day)", f"${summary['steady_after']['usd_per_day']:,.0f}")
    cols[2].metric("migration extra ($)", f"${m['extra_usd']:,.0f}")
    saving = m["monthly_saving_usd"]
    cols[3].metric(
        "saving after ($/month)" if saving >= 0 else "extra cost after ($/month)",
        f"${abs(saving):,.0f}",
    )
    be = m["break_even_h"]
    cols[4].metric(
        "break-even",
        "never" if be is None else (m["break_even_date"] or f"hour {be:,.1f}"),
    )


def _show(data: dict[str, Any]) -> None:
    _cards(data)
    st.plotly_chart(gpus_figure(data), key="mig_fig_gpus")
    st.plotly_chart(cost_figure(data), key="mig_fig_cost")
    st.plotly_chart(hit_ratio_figure(data), key="mig_fig_hit")
    st.plotly_chart(ttft_figure(data), key="mig_fig_ttft")
    st.subheader("Cut-overs")
    st.dataframe(cutover_screen_rows(data), hide_index=True, width="stretch")
    st.subheader("Cost per day")
    st.dataframe(day_screen_rows(data), hide_index=True, width="stretch")
    name = data["scenario"]
    col1, col2 = st.columns(2)
    col1.download_button(
        "Download hourly CSV",
        csv_from_json(data),
        file_name=f"{name}.csv",
        mime="text/csv",
        key="mig_csv",
    )
    col2.download_button(
        "Download JSON",
        json.dumps(data, indent=2, allow_nan=False),
        file_name=f"{name}.json",
        mime="application/json",
        key="mig_json",
    )
    if data["mode"] == "hybrid":
        st.caption(
            "Hybrid: hours around each cut-over are simulated; the others are extrapolated "
            "from simulated steady hours of the same class mix (their replica counts from "
            "the planner)."
        )


st.title("Migration")
st.caption(
    "Two fleets in one plan: which requests go where phase by phase, what each fleet "
    "costs hour by hour, how cold the new model's prefix cache is after each cut-over, "
    "and when the move pays for itself. Same computation as `kvplan migrate`."
)
try:
    doc, saved = _load_source()
    if saved is not None:
        _show(saved)
    elif doc is not None:
        doc = _edit(doc)
        uploaded: GpuCalibration | None = st.session_state.get(CALIBRATION_KEY)
        calibration_json = None if uploaded is None else uploaded.model_dump_json()
        scenario, labels = _calibrated(doc, calibration_json)
        if uploaded is not None:
            st.caption(
                "Kernel curves: "
                + "; ".join(
                    f"{role} fleet: {label or NOT_UPLOADED}" for role, label in labels.items()
                )
                + " (the JSON download names them)"
            )
        spans = window_spans(scenario)
        estimate = estimate_work(scenario, [(a - lead, b) for _, a, b, lead in spans], 1)
        check_work(estimate, "scenario")
        st.caption(
            f"about {estimate.requests:,.0f} requests to simulate over "
            f"{estimate.simulated_hours:,.1f} h (roughly {estimate.cpu_s / 60:,.1f} min "
            "in this process; `kvplan migrate` spreads the fleets over Dask workers)"
        )
        text = json.dumps(doc, sort_keys=True, default=str) + (calibration_json or "")
        key = hashlib.sha256(text.encode()).hexdigest()
        if st.button("Run", key="mig_run", type="primary"):
            with st.spinner("simulating the migration..."):
                result = _run(json.dumps(doc, default=str), calibration_json)
                st.session_state["mig_result"] = (key, result)
        stored = st.session_state.get("mig_result")
        if stored is not None:
            if stored[0] != key:
                st.info("The scenario changed since the last run: press Run to update.")
            _show(stored[1])
except KvplanError as err:
    st.error(str(err))
