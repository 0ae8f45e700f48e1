"""Asymmetric self-play: two brains (one team each), each with its own ghost trainer, share the run's
team controller, so the learning team alternates between them; each brain learns only while its team
learns, and each gets its ELO in training_status.json."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from fledge import api
from fledge.config import build_run_options
from fledge.envs.builtin.teams import TeamTaskEnv
from fledge.envs.builtin.tennis import TennisTask


class LeftRight(TennisTask):
    """Tennis with a brain per side: 'Left?team=0' and 'Right?team=1'."""

    behavior_ids = ("Left?team=0", "Right?team=1")


def brain(swap_steps: int) -> dict[str, object]:
    return {
        "trainer_type": "ppo",
        "hyperparameters": {"batch_size": 128, "buffer_size": 1024, "learning_rate": 3.0e-3},
        "network_settings": {"hidden_units": 16, "num_layers": 1},
        "max_steps": 6000,
        "time_horizon": 64,
        "summary_freq": 1000,
        "self_play": {"save_steps": 500, "team_change": 1500, "swap_steps": swap_steps, "elo_k_factor": 16.0},
    }


def test_two_brains_alternate_the_learning_team(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    options = build_run_options(
        {
            "behaviors": {"Left": brain(400), "Right": brain(800)},
            "env_settings": {"seed": 2},
            "checkpoint_settings": {"run_id": "asym", "results_dir": str(tmp_path)},
        }
    )
    env = TeamTaskEnv(LeftRight(num_agents=16), seed=2)
    with caplog.at_level(logging.INFO, logger="fledge"):
        result = api.run(options, env=env, display="none")
    changes = [r.getMessage() for r in caplog.records if "learns now" in r.getMessage()]
    assert len(changes) >= 4
    assert changes[0].startswith("Self-play: team 1") and changes[1].startswith("Self-play: team 0")
    assert all(("team 1" in a) != ("team 1" in b) for a, b in zip(changes, changes[1:]))  # strict alternation
    assert result.behaviors["Left"].steps >= 6000 and result.behaviors["Right"].steps >= 6000
    status = json.loads((tmp_path / "asym" / "run_logs" / "training_status.json").read_text())
    assert status["Left"]["elo"] != 1200.0 and status["Right"]["elo"] != 1200.0
