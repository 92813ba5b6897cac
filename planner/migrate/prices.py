"""Prices of a migration: $ per GPU-hour of each fleet, and the API list price of its
model (input, cached input and output tokens) for the API-equivalent bill."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from planner.hardware import load_gpu
from planner.migrate.schema import FleetSpec, MigrationScenario
from planner.migrate.timeline import SOURCE
from planner.plan.cost import api_prices_for
from planner.units import MILLION


def fleet_spec(s: MigrationScenario, fleet: str) -> FleetSpec:
    return s.fleets.source if fleet == SOURCE else s.fleets.target


def usd_per_gpu_hour(s: MigrationScenario, fleet: str) -> float:
    spec = fleet_spec(s, fleet)
    if spec.usd_per_gpu_hour is not None:
        return spec.usd_per_gpu_hour
    return load_gpu(spec.gpu).price_usd_per_hour


@dataclass(frozen=True)
class TokenPrice:
    input: float
    cached: float
    output: float
    source: str


def api_price(s: MigrationScenario, fleet: str) -> TokenPrice | None:
    """The API list price of the fleet's model (the scenario's, else the first complete
    entry in planner/data/api_prices.yaml); None when none is known."""
    spec = fleet_spec(s, fleet)
    if spec.api_price is not None:
        p = spec.api_price
        return TokenPrice(
            p.usd_per_million_input_tokens,
            p.usd_per_million_cached_input_tokens,
            p.usd_per_million_output_tokens,
            p.source,
        )
    for entry in api_prices_for(spec.model):
        values = (
            entry.usd_per_million_input_tokens,
            entry.usd_per_million_cached_input_tokens,
            entry.usd_per_million_output_tokens,
        )
        if all(v is not None for v in values):
            i, c, o = (float(v) for v in values if v is not None)
            return TokenPrice(i, c, o, f"{entry.label}: {entry.source}")
    return None


def api_usd(row: dict[str, Any], price: TokenPrice | None) -> float | None:
    """The API bill of an hourly row: uncached prompt, cached prompt and output tokens."""
    if price is None:
        return None
    uncached: int = row["admitted_input_tokens"] - row["cached_tokens"]
    cached: int = row["cached_tokens"]
    output: int = row["output_tokens"]
    return (uncached * price.input + cached * price.cached + output * price.output) / MILLION
