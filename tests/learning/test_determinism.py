"""Same seed, same numbers; another seed, other numbers."""

from __future__ import annotations

from typing import Any

from fledge import api


def returns(make_options: Any, seed: int, run_id: str) -> list[float]:
    result = api.run(make_options("MoveToGoal1D-Continuous", steps=6_000, seed=seed, run_id=run_id))
    return result.behaviors["MoveToGoal1D-Continuous"].episode_returns


def test_same_seed_gives_identical_rewards(make_options: Any) -> None:
    first = returns(make_options, 5, "a")
    second = returns(make_options, 5, "b")
    assert len(first) > 100
    assert first == second


def test_other_seed_gives_other_rewards(make_options: Any) -> None:
    assert returns(make_options, 5, "a") != returns(make_options, 6, "b")
