"""The sidebar's calibrated-GPU-profile upload and the line each page shows about it.

A profile written by ``kvplan calibrate --gpu NAME --out FILE`` is uploaded in the sidebar,
validated as ``--gpu-profile`` validates a file (size, UTF-8, the profile format, sources:
``planner.calibrate.profile.profile_from_bytes``) and kept in the session as the curves a
deployment carries (``GpuCalibration``); nothing is written to disk. The view's
deployments then use its curves on its GPU, the engine's fitted curves elsewhere, as
``kvplan plan --gpu-profile`` does. Session-state keys: ``gpu_calibration`` (the curves or
None), ``calibration_upload_seen`` (the upload id last read).
"""

from __future__ import annotations

import streamlit as st

from planner.calibrate.profile import profile_from_bytes
from planner.errors import KvplanError
from planner.report.views import ViewConfig, screen_text
from planner.schema import GpuCalibration

CALIBRATION_KEY = "gpu_calibration"
SEEN_KEY = "calibration_upload_seen"
# Pages whose numbers come from the view's deployments (the others take their own inputs).
PAGES_USING_IT = (
    "Capacity, Frontier, Cost, Compare, Search and Simulate (this view) and Migration (its "
    "fleets on that GPU)"
)


def calibration_uploader() -> GpuCalibration | None:
    """The sidebar expander: upload, validate, keep or clear a calibrated GPU profile."""
    state = st.session_state
    with st.sidebar.expander("Calibrated GPU profile (kvplan calibrate)"):
        upload = st.file_uploader(
            "Profile from kvplan calibrate --gpu NAME --out FILE",
            type=["json", "yaml", "yml"],
            key="w_upload_gpu_profile",
            help="its measured kernel curves replace the engine's fitted ones on its GPU",
        )
        if upload is None:
            state.pop(CALIBRATION_KEY, None)
            state.pop(SEEN_KEY, None)
        elif state.get(SEEN_KEY) != upload.file_id:
            state[SEEN_KEY] = upload.file_id
            try:
                profile = profile_from_bytes(upload.getvalue(), upload.name)
                state[CALIBRATION_KEY] = profile.calibration()
            except KvplanError as err:
                state.pop(CALIBRATION_KEY, None)
                st.error(screen_text(err))
        calibration: GpuCalibration | None = state.get(CALIBRATION_KEY)
        if calibration is not None:
            st.success(f"Using {calibration.label} on {calibration.gpu}")
    return calibration


def calibration_caption(config: ViewConfig) -> str:
    """The line the pages show: which kernel curves the view's numbers use."""
    calibration = config.gpu_calibration
    if calibration is None:
        return (
            f"Kernel curves: the {config.engine} curves fitted for each GPU (no calibrated "
            "GPU profile uploaded)."
        )
    others = [g for g in config.gpus if g != calibration.gpu]
    text = f"Kernel curves on {calibration.gpu}: {calibration.label} (uploaded)"
    if calibration.gpu not in config.gpus:
        text += f", not in this view (its GPUs: {', '.join(config.gpus)})"
    if others:
        text += f"; on {', '.join(others)}: the {config.engine} fitted curves"
    return text + f". Used by {PAGES_USING_IT}; links and exported scenarios do not carry it."
