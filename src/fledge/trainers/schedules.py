"""Hyperparameter schedules shared by the trainers (ML-Agents 2.4): constant, or linear to a floor."""

from __future__ import annotations

from typing import Any

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


def ppo_schedules(hp: Any, step: int, max_steps: int) -> tuple[float, float, float]:
    """Learning rate, beta and epsilon of PPO-style settings (PPO, POCA) at `step`, each by its own schedule."""
    lr = decayed(hp.learning_rate, LEARNING_RATE_FLOOR, step, max_steps, hp.learning_rate_schedule)
    beta = decayed(hp.beta, BETA_FLOOR, step, max_steps, hp.beta_schedule)
    eps = decayed(hp.epsilon, EPSILON_FLOOR, step, max_steps, hp.epsilon_schedule)
    return lr, beta, eps
