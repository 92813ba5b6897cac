"""Operator efficiency as a function of shape, per GPU and engine (see ``curves``)."""

from planner.plan.efficiency.curves import Efficiency, OpTime, efficiency_for

__all__ = ["Efficiency", "OpTime", "efficiency_for"]
