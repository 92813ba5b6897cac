"""Least squares in log space with a held-out split, and the quality record kvplan stores.

The code lives in ``planner.calibrate.fit`` (shared with ``kvplan calibrate``); this module
keeps the scripts here importing it as ``fitting``."""

from __future__ import annotations

from planner.calibrate.fit import HOLD_OUT_SHARE, SEED, Fit, fit, held_out_mask

__all__ = ["HOLD_OUT_SHARE", "SEED", "Fit", "fit", "held_out_mask"]
