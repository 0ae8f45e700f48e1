"""Custom stats sent by an environment reach TensorBoard and CSV with their aggregation methods."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from fledge import api
from fledge.config import build_run_options
from fledge.envs import registry
from fledge.envs.api import StatsAggregationMethod as M

BEHAVIOR = "MoveToGoal1D-Continuous"


class WithStats:
    """A built-in environment that reports custom stats every step (16 agents, 1000 steps per summary)."""

    def __init__(self) -> None:
        self.env = registry.make(BEHAVIOR, seed=0)
        self.steps = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self) -> None:
        self.env.step()
        self.steps += 1

    def get_stats(self) -> dict[str, list[tuple[float, M]]]:
        return {
            "Custom/Average": [(1.0, M.AVERAGE), (3.0, M.AVERAGE)],
            "Custom/Sum": [(1.0, M.SUM)],
            "Custom/Recent": [(float(self.steps), M.MOST_RECENT)],
            "Custom/Histogram": [(float(self.steps % 2), M.HISTOGRAM)],
        }


def test_custom_stats_reach_tensorboard_and_csv(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "max_steps": 2000,
            "summary_freq": 1000,
            "hyperparameters": {"batch_size": 64, "buffer_size": 512},
        },
        "checkpoint_settings": {"run_id": "s", "results_dir": str(tmp_path)},
        "env_settings": {"seed": 1},
    }
    env = WithStats()
    api.run(build_run_options(raw), env=env)  # type: ignore[arg-type]
    acc = EventAccumulator(str(tmp_path / "s" / BEHAVIOR), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("Custom/Average", "Custom/Sum", "Custom/Recent", "Custom/Histogram"):
        assert tag in tags["scalars"], tag
    assert "Custom/Histogram_hist" in tags["histograms"]
    average = acc.Scalars("Custom/Average")
    assert all(e.value == pytest.approx(2.0) for e in average)
    sums = [e.value for e in acc.Scalars("Custom/Sum")]
    recent = [e.value for e in acc.Scalars("Custom/Recent")]  # the environment step count at each summary
    assert sums[0] == recent[0]  # SUM adds one per environment step
    assert sum(sums) == recent[-1]
    assert recent[0] > 50  # the latest value, not a mean
    rows = list(csv.DictReader((tmp_path / "s" / "run_logs" / f"{BEHAVIOR}.csv").open()))
    assert float(rows[0]["Custom/Average"]) == pytest.approx(2.0)
    assert float(rows[0]["Custom/Sum"]) == pytest.approx(sums[0])
