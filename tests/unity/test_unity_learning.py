"""PPO learns the fake player's 3DBall-like task through the wire protocol, with two players in worker
processes, as `fledge learn CONFIG --env <player> --num-envs 2` runs it; a learning rate far too small
must not learn in the same budget.

Measured in-process on the player's own task code with the same config (12 agents, 60k steps, seeds
1-3): the mean return of the last 50 episodes is about 11-13 at random and 39-44 after 60k steps.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from unity_helpers import PLAYER, free_base_port

from fledge import api
from fledge.config.flags import parse_learn_args, resolve_run_options

BRAIN = "Ball3DFake"
STEPS = 60_000
THRESHOLD = 30.0  # random play: about 12


def train(tmp_path: Path, learning_rate: float) -> float:
    config = {
        "behaviors": {
            BRAIN: {
                "trainer_type": "ppo",
                "hyperparameters": {
                    "batch_size": 64,
                    "buffer_size": 12000,
                    "learning_rate": learning_rate,
                    "beta": 0.001,
                    "epsilon": 0.2,
                    "lambd": 0.99,
                    "num_epoch": 3,
                },
                "network_settings": {"normalize": True, "hidden_units": 128, "num_layers": 2},
                "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
                "max_steps": STEPS,
                "time_horizon": 1000,
                "summary_freq": 12000,
            }
        }
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = [str(path), "--env", str(PLAYER), "--num-envs", "2", "--base-port", str(free_base_port(2))]
    argv += ["--run-id", "u", "--results-dir", str(tmp_path / "results"), "--seed", "1", "--no-graphics"]
    argv += ["--env-args", "--agents", "12"]
    result = api.run(resolve_run_options(parse_learn_args(argv)), display="none")
    mean = result.behaviors[BRAIN].mean_return(last=50)
    assert mean is not None
    return mean


@pytest.mark.learning
def test_ppo_learns_the_fake_player_through_the_protocol(tmp_path: Path) -> None:
    mean = train(tmp_path, 3.0e-4)
    assert mean >= THRESHOLD, f"mean return of the last 50 episodes {mean:.1f} < {THRESHOLD}"


@pytest.mark.learning
def test_a_learning_rate_far_too_small_does_not_learn(tmp_path: Path) -> None:
    mean = train(tmp_path, 1.0e-8)
    assert mean < THRESHOLD, f"mean return {mean:.1f} reached {THRESHOLD} with a learning rate of 1e-8"
