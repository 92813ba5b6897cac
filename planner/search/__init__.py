"""Deployment search: enumerate layouts, size each with the planner, pick the cheapest that
meets the SLOs, draw the Pareto front, and check the best with the simulator."""
