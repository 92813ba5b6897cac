"""Migration planner: two fleets, phases, the cold prefix cache at cut-over, the bill."""
