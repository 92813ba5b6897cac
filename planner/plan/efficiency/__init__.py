"""Operator efficiency as a function of shape, per GPU and engine (see ``curves``)."""

from planner.plan.efficiency.curves import (
    Efficiency,
    OpTime,
    deployment_efficiency,
    efficiency_for,
)

__all__ = ["Efficiency", "OpTime", "deployment_efficiency", "efficiency_for"]
