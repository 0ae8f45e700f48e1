"""N steps in one go versus N/2, stop, resume, N/2: counters, schedule and normaliser statistics match,
and the reward curve stays within noise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fledge import api
from fledge.checkpoints.state_io import load_state
from fledge.config import build_run_options
from fledge.envs import registry

pytestmark = pytest.mark.learning
BEHAVIOR = "MoveToGoal1D-Continuous"
N = 24_000


def options(tmp_path: Path, run_id: str, max_steps: int, **checkpoint: Any) -> Any:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {
                "batch_size": 128,
                "buffer_size": 2048,
                "learning_rate": 3.0e-3,
                "learning_rate_schedule": "linear",
            },
            "network_settings": {"hidden_units": 32, "normalize": True},
            "max_steps": max_steps,
            "time_horizon": 64,
            "summary_freq": 4000,
            "checkpoint_interval": 4000,
        },
        "env_settings": {"env_path": BEHAVIOR, "seed": 11},
        "checkpoint_settings": {"run_id": run_id, "results_dir": str(tmp_path), **checkpoint},
    }
    return build_run_options(raw)


class KilledAfter:
    """The built-in environment, stopping the process abruptly (no final checkpoint) after some steps."""

    def __init__(self, env_steps: int) -> None:
        self.env = registry.make(BEHAVIOR, seed=11)
        self.left = env_steps

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt  # what a hard stop looks like from inside: the loop is cut mid-step
        self.env.step()


def test_resumed_run_matches_an_uninterrupted_one(tmp_path: Path) -> None:
    whole = api.run(options(tmp_path, "whole", N))
    # the same run, stopped hard half way (16 agents per step), then resumed from its newest checkpoint
    first = api.run(options(tmp_path, "split", N), env=KilledAfter((N // 2) // 16))  # type: ignore[arg-type]
    assert first.interrupted
    status = json.loads((tmp_path / "split" / "run_logs" / "training_status.json").read_text())
    assert "final_checkpoint" not in status[BEHAVIOR]
    mid, _ = load_state(tmp_path / "split" / BEHAVIOR / "checkpoint.pt")
    split = api.run(options(tmp_path, "split", N, resume=True))

    a, _ = load_state(tmp_path / "whole" / BEHAVIOR / "checkpoint.pt")
    b, _ = load_state(tmp_path / "split" / BEHAVIOR / "checkpoint.pt")
    # step counters: both ran to N (within one environment step of 16 agents)
    assert abs(a.meta["step"] - b.meta["step"]) <= 16
    # the resumed run continued counting from the checkpoint instead of starting at 0
    assert b.meta["update_count"] >= mid.meta["update_count"] + (N // 2) // 2048 - 1
    assert abs(a.meta["update_count"] - b.meta["update_count"]) <= 1
    # learning-rate schedule: the optimiser's rate continued the linear decay (no reset to the initial rate)
    lr_a = a.meta["optimizer"]["param_groups"][0]["lr"]
    lr_b = b.meta["optimizer"]["param_groups"][0]["lr"]
    one_buffer = 3.0e-3 * (2048 + 16) / N  # updates may fall one buffer apart in steps
    assert abs(lr_a - lr_b) <= one_buffer
    assert lr_b < 0.2 * 3.0e-3
    # normaliser statistics: same amount of data (within the partial trajectories lost at the stop)
    count_a = float(a.tensors["policy.normalizer.count"])
    count_b = float(b.tensors["policy.normalizer.count"])
    assert abs(count_a - count_b) <= 0.05 * count_a
    np.testing.assert_allclose(a.tensors["policy.normalizer.mean"], b.tensors["policy.normalizer.mean"], atol=0.05)
    # reward curve within noise: both near the optimum at the end
    end_a = np.mean(whole.behaviors[BEHAVIOR].episode_returns[-300:])
    end_b = np.mean(split.behaviors[BEHAVIOR].episode_returns[-300:])
    assert end_a > 0.85 and end_b > 0.85
    assert abs(end_a - end_b) < 0.05
