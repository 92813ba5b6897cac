"""Expected demand on a fleet, from the migration's own traffic draws (no simulation).

For an hour, the fleet's open-loop requests are the ones its view routes or mirrors there
(:meth:`planner.migrate.traffic.FleetView.placement`), with their prompt and output tokens
in the fleet's tokens. Follow-up turns of multi-turn sessions are not drawn here (they
depend on when earlier turns finish): a session counts as its number of turns, each with
its first turn's prompt and answer lengths, in the hour it starts. This demand sizes fleets
(the 'sized' policy, the autoscaler's first guess); the hybrid's computed hours take their
requests per session from simulated windows.
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
        # A session's turns each count as a request with its first turn's lengths (later
        # turns' longer histories are mostly cached); a mirrored copy is one request.
        turns = np.where(mirrored, 1, np.maximum(block.turns, 1))[chosen]
        requests.append(int(turns.sum()))
        inputs.append(int((prompt[chosen] * turns).sum()))
        outputs.append(int((output[chosen] * turns).sum()))
    return HourDemand(requests, inputs, outputs)


def rate_per_s(demand: HourDemand) -> float:
    return demand.total_requests / SECONDS_PER_HOUR
