"""Hyperparameter schedules shared by the trainers (ML-Agents 2.4): constant, or linear to a floor."""

from __future__ import annotations

LEARNING_RATE_FLOOR = 1.0e-10
EPSILON_FLOOR = 0.1
BETA_FLOOR = 1.0e-5


def decayed(initial: float, floor: float, step: int, max_steps: int, schedule: str) -> float:
    """The scheduled value at `step`: constant, or linear decay to `floor` at max_steps, then flat."""
    if schedule == "constant":
        return float(initial)
    if schedule != "linear":
        raise ValueError(f"unknown schedule '{schedule}'")
    frac = min(max(step, 0) / max(max_steps, 1), 1.0)
    return float((initial - floor) * (1.0 - frac) + floor)
