"""SAC learns every action type to near the known optimum within small budgets, solves 3DBall with its
shipped config, and continues training after a trainer-level save/restore. Seeds are fixed; the
thresholds leave room for noise (5 to 7 seeds checked per task while choosing the budgets)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import drive_trainer as drive
from fledge import api
from fledge.config import RunOptions, build_run_options, load_config_file
from fledge.configs import shipped_config
from fledge.envs import registry
from fledge.stats import StatsReporter
from fledge.trainers.base import TrainerState
from fledge.trainers.sac.trainer import SACTrainer

pytestmark = pytest.mark.learning

# Toy settings: small networks, a high learning rate and a low initial entropy coefficient for the
# short budgets (the rewards are -0.01 per step and +1 at the goal).
TOY_HYPERPARAMETERS = {
    "batch_size": 64,
    "buffer_size": 20000,
    "learning_rate": 3.0e-3,
    "steps_per_update": 2,
    "init_entcoef": 0.05,
}


def sac_options(
    tmp_path: Path, env: str, *, steps: int, seed: int = 1, hyperparameters: dict[str, Any] | None = None
) -> RunOptions:
    settings = {
        "trainer_type": "sac",
        "hyperparameters": {**TOY_HYPERPARAMETERS, **(hyperparameters or {})},
        "network_settings": {"hidden_units": 64, "num_layers": 2},
        "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
        "max_steps": steps,
        "time_horizon": 64,
        "summary_freq": 10**9,
    }
    return build_run_options(
        {
            "default_settings": settings,
            "env_settings": {"env_path": env, "seed": seed},
            "checkpoint_settings": {"run_id": "sac", "results_dir": str(tmp_path / "results")},
        }
    )


def tail_mean(result: api.RunResult, n: int = 200) -> float:
    (behavior,) = result.behaviors.values()
    returns = behavior.episode_returns
    assert len(returns) >= n, f"only {len(returns)} episodes finished"
    return float(np.mean(returns[-n:]))


@pytest.mark.parametrize(
    ("env", "steps", "extra", "threshold", "optimum"),
    [
        ("MoveToGoal1D-Continuous", 3_000, {}, 0.94, 0.974),
        ("MoveToGoal1D-Discrete", 3_000, {}, 0.94, 0.974),
        # the grab must be found by chance: 2000 steps of the initial (broad) policy seed the buffer
        ("MoveToGoal2D-Hybrid", 10_000, {"buffer_init_steps": 2000}, 0.90, 0.9664),
    ],
)
def test_sac_reaches_near_optimal_return(
    tmp_path: Path, env: str, steps: int, extra: dict[str, Any], threshold: float, optimum: float
) -> None:
    result = api.run(sac_options(tmp_path, env, steps=steps, hyperparameters=extra))
    mean = tail_mean(result)
    assert threshold <= mean <= optimum + 0.01, f"{env}: mean return of the last 200 episodes {mean:.3f}"


def test_sac_does_not_learn_without_a_learning_rate(tmp_path: Path) -> None:
    """Negative case: with a vanishing learning rate the random policy stays (mean return far below 0.9)."""
    result = api.run(
        sac_options(tmp_path, "MoveToGoal1D-Continuous", steps=3_000, hyperparameters={"learning_rate": 1e-9})
    )
    assert tail_mean(result, 100) < 0.6


def test_3dball_sac_config_reaches_90_within_100k_steps(tmp_path: Path) -> None:
    raw = load_config_file(shipped_config("3DBall", "sac"))  # type: ignore[arg-type]
    assert raw["behaviors"]["3DBall"]["trainer_type"] == "sac"
    raw["behaviors"]["3DBall"]["max_steps"] = 100_000
    raw["env_settings"] = {"env_path": "3DBall", "seed": 1}
    raw["checkpoint_settings"] = {"run_id": "ball", "results_dir": str(tmp_path)}
    result = api.run(build_run_options(raw))
    returns = result.behaviors["3DBall"].episode_returns
    # the mean over a window of 24 consecutive episodes (two summaries of 12 agents) reaches 90
    windows = np.convolve(returns, np.ones(24) / 24, mode="valid")
    assert windows.max() >= 90.0, f"best 24-episode mean {windows.max():.1f}"


# -- resume at the trainer level -------------------------------------------------------------------


def hybrid_trainer(tmp_path: Path, seed: int) -> SACTrainer:
    env_name = "MoveToGoal2D-Hybrid"
    options = sac_options(
        tmp_path, env_name, steps=10_000, hyperparameters={"buffer_init_steps": 2000, "save_replay_buffer": True}
    )
    spec = registry.make(env_name, seed=0).behavior_specs[env_name]
    return SACTrainer(
        behavior_name=env_name,
        spec=spec,
        settings=options.behavior_settings(env_name),
        stats=StatsReporter([]),
        seed=seed,
    )


def test_trainer_resumes_from_its_state_and_replay_buffer(tmp_path: Path) -> None:
    first = hybrid_trainer(tmp_path, seed=3)
    before = drive(first, "MoveToGoal2D-Hybrid", 7_000, seed=3)
    assert np.mean(before[-200:]) >= 0.85, "the first part must have learned for this test to mean anything"
    state = first.get_state()
    saved = TrainerState(
        tensors={k: v.clone() for k, v in state.tensors.items()}, meta=json.loads(json.dumps(state.meta))
    )
    folder = tmp_path / "checkpoint"
    assert first.save_auxiliary(folder) == [folder / "last_replay_buffer.hdf5"]
    coefficients = first.entropy_coefficients()

    resumed = hybrid_trainer(tmp_path, seed=11)  # other seed: everything must come from the checkpoint
    resumed.set_state(saved)
    resumed.load_auxiliary(folder)
    assert resumed.step == first.step and resumed.update_count == first.update_count
    assert len(resumed.buffer) == len(first.buffer)
    for key, value in coefficients.items():
        np.testing.assert_array_equal(resumed.entropy_coefficients()[key], value)  # not init_entcoef again
        assert np.all(value < 0.05)
    after = drive(resumed, "MoveToGoal2D-Hybrid", 3_000, seed=4)
    assert resumed.step >= 10_000 and resumed.update_count > first.update_count + 1000
    # the reward does not collapse: the very first episodes after the restore are already good
    assert np.mean(after[:200]) >= 0.85, f"first 200 episodes after resume {np.mean(after[:200]):.3f}"
    assert np.mean(after[-200:]) >= 0.90, f"last 200 episodes after resume {np.mean(after[-200:]):.3f}"


def test_basic_learns_the_large_goal_with_its_shipped_sac_config(tmp_path: Path) -> None:
    raw = load_config_file(shipped_config("Basic", "sac"))  # type: ignore[arg-type]
    raw["behaviors"]["Basic"]["max_steps"] = 10_000
    raw["env_settings"] = {"env_path": "Basic", "seed": 1}
    raw["checkpoint_settings"] = {"run_id": "basic", "results_dir": str(tmp_path)}
    assert tail_mean(api.run(build_run_options(raw)), 100) >= 0.85  # optimum 0.93
