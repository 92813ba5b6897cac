"""Expected demand on a fleet, from the migration's own traffic draws (no simulation).

For an hour, the fleet's open-loop requests are the ones its view routes or mirrors there
(:meth:`planner.migrate.traffic.FleetView.placement`), with their prompt and output tokens
in the fleet's tokens. Follow-up turns of multi-turn sessions are not drawn here (they
depend on when earlier turns finish), so session classes are under-counted: this demand
sizes fleets (the 'sized' policy, the autoscaler's first guess) and the hybrid's steady
hours start from it and add the follow-ups measured in simulated windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.migrate.schema import SECONDS_PER_HOUR, MigrationScenario
from planner.migrate.traffic import FleetView, draw_block


@dataclass(frozen=True)
class HourDemand:
    """Open-loop requests of one fleet in one hour, per class (production + mirrored)."""

    requests: list[int]
    input_tokens: list[int]
    output_tokens: list[int]

    @property
    def total_requests(self) -> int:
        return sum(self.requests)

    def means(self) -> tuple[float, float]:
        n = self.total_requests
        if n == 0:
            return 0.0, 0.0
        return sum(self.input_tokens) / n, sum(self.output_tokens) / n


def hour_demand(s: MigrationScenario, view: FleetView, hour: int) -> HourDemand:
    requests, inputs, outputs = [], [], []
    for c in range(view.n_classes):
        block = draw_block(s, c, hour)
        here, mirrored = view.placement(block)
        chosen = here | mirrored
        prompt, output, _ = view.tokens(block)
        requests.append(int(np.count_nonzero(chosen)))
        inputs.append(int(prompt[chosen].sum()))
        outputs.append(int(output[chosen].sum()))
    return HourDemand(requests, inputs, outputs)


def rate_per_s(demand: HourDemand) -> float:
    return demand.total_requests / SECONDS_PER_HOUR
