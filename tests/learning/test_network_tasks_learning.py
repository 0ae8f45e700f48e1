"""Learning on the tasks that need the visual, goal-signal and memory networks (GridWorld, Hallway,
Visual3DBall, a Gymnasium image environment), small and seeded, with negative cases.

Until the networks of issue 13 are merged the trainers refuse camera observations and `memory` with a
ConfigError; the tests that need them are then skipped (`run_or_skip`, which names the refusal) and run
as soon as the trainers accept them. Negative cases that need no new network (Hallway without memory)
run today. The Hallway memory runs were calibrated on the memory branch; the thresholds of the other skipped tests
are first estimates from the tasks' reference returns: calibrate them on the first run after the merge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fledge import api
from fledge.config import build_run_options
from fledge.envs.builtin.gridworld import scale_for_encoder
from fledge.errors import ConfigError

pytestmark = pytest.mark.learning

# What the trainers say while they refuse non-vector observations and memory.
NOT_BUILT_YET = ("trains on vector observations only", "recurrent networks are not supported yet")


def run_or_skip(options: Any) -> api.RunResult:
    """api.run, or a skip naming the refusal while the trainers lack the networks these tasks need."""
    try:
        return api.run(options)
    except ConfigError as exc:
        if any(text in str(exc) for text in NOT_BUILT_YET):
            pytest.skip(f"needs the issue-13 networks (enable after the merge): {exc}")
        raise


def options(
    tmp_path: Path,
    env: str,
    *,
    steps: int,
    trainer: str = "ppo",
    hyperparameters: dict[str, Any] | None = None,
    network: dict[str, Any] | None = None,
    gamma: float = 0.99,
    time_horizon: int = 64,
    env_args: list[str] | None = None,
    num_areas: int = 1,
    seed: int = 1,
) -> Any:
    if trainer == "ppo":
        hp: dict[str, Any] = {"batch_size": 64, "buffer_size": 1024, "learning_rate": 1e-3, "beta": 0.005}
        hp.update({"num_epoch": 3, "lambd": 0.95, "learning_rate_schedule": "constant"})
    else:
        hp = {"batch_size": 64, "buffer_size": 20_000, "learning_rate": 1e-3, "buffer_init_steps": 500}
        hp.update({"steps_per_update": 5, "init_entcoef": 0.1, "learning_rate_schedule": "constant"})
    hp.update(hyperparameters or {})
    settings = {
        "trainer_type": trainer,
        "hyperparameters": hp,
        "network_settings": {"hidden_units": 64, "num_layers": 1, **(network or {})},
        "reward_signals": {"extrinsic": {"gamma": gamma, "strength": 1.0}},
        "max_steps": steps,
        "time_horizon": time_horizon,
        "summary_freq": 10**9,
    }
    raw = {
        "default_settings": settings,
        "env_settings": {"env_path": env, "seed": seed, "num_areas": num_areas, "env_args": env_args or []},
        "checkpoint_settings": {"run_id": "run", "results_dir": str(tmp_path / "results")},
    }
    return build_run_options(raw)


def tail_mean(result: api.RunResult, n: int) -> float:
    (behavior,) = result.behaviors.values()
    returns = behavior.episode_returns
    assert len(returns) >= n, f"only {len(returns)} episodes finished"
    return float(np.mean(returns[-n:]))


# -- GridWorld: optimal 0.98 on a 4 x 4 board, random about -0.2, about 0 without the goal signal ----------


def gridworld_options(tmp_path: Path, *, encoder: str = "simple", show_goal: bool = True, **kwargs: Any) -> Any:
    scale = scale_for_encoder(encoder, 4)
    return options(
        tmp_path,
        "GridWorld",
        gamma=0.9,
        time_horizon=5,
        env_args=["grid_size=4", f"scale={scale}", f"show_goal={str(show_goal).lower()}"],
        num_areas=4,
        network={"vis_encode_type": encoder, **kwargs.pop("network", {})},
        **kwargs,
    )


@pytest.mark.parametrize("goal_conditioning_type", ["hyper", "none"])
def test_gridworld_learns_with_the_simple_encoder(tmp_path: Path, goal_conditioning_type: str) -> None:
    result = run_or_skip(
        gridworld_options(tmp_path, steps=40_000, network={"goal_conditioning_type": goal_conditioning_type})
    )
    mean = tail_mean(result, 300)
    assert mean >= 0.6, f"GridWorld 4 x 4, simple encoder: mean return of the last 300 episodes {mean:.3f}"


def test_gridworld_without_the_goal_signal_stays_near_zero(tmp_path: Path) -> None:
    """Negative case: when the signal is hidden, reaching either goal is a coin flip (+1 or -1)."""
    result = run_or_skip(gridworld_options(tmp_path, steps=40_000, show_goal=False))
    mean = tail_mean(result, 300)
    assert mean < 0.3, f"GridWorld without the goal signal: {mean:.3f}"


def test_gridworld_learns_with_sac(tmp_path: Path) -> None:
    result = run_or_skip(gridworld_options(tmp_path, steps=30_000, trainer="sac"))
    mean = tail_mean(result, 300)
    assert mean >= 0.5, f"GridWorld 4 x 4, SAC: {mean:.3f}"


# -- Hallway: 0.95 with memory, at best 0.40 without, random about -0.19 ----------------------------------

MEMORY = {"memory": {"memory_size": 32, "sequence_length": 8}}
# Measured on the memory branch (issue13-mem) before the merge, one agent area of 16 agents: PPO 0.83 after
# 100,000 steps (40 s), SAC 0.94 after 15,000 steps (33 s); both sit at the coin flip (0.40) before.
MEMORY_RUNS = {
    "ppo": {"steps": 100_000, "hyperparameters": {"batch_size": 256, "buffer_size": 2048, "beta": 0.02}},
    "sac": {"steps": 15_000, "hyperparameters": {"learning_rate": 3e-3}},
}


@pytest.mark.parametrize("trainer", ["ppo", "sac"])
def test_hallway_is_solved_with_memory(tmp_path: Path, trainer: str) -> None:
    run = MEMORY_RUNS[trainer]
    opts = options(tmp_path, "Hallway", trainer=trainer, network=MEMORY, **run)  # type: ignore[arg-type]
    mean = tail_mean(run_or_skip(opts), 300)
    assert mean >= 0.7, f"Hallway with memory ({trainer}): mean return of the last 300 episodes {mean:.3f}"


def test_hallway_without_memory_cannot_beat_a_coin_flip(tmp_path: Path) -> None:
    """Negative case (runs today): without memory the best policy guesses the goal (0.40)."""
    result = run_or_skip(options(tmp_path, "Hallway", steps=30_000, num_areas=2))
    mean = tail_mean(result, 300)
    assert mean <= 0.5, f"Hallway without memory: {mean:.3f}"


# -- Visual3DBall: 100 at best over 1000 decisions, random about 1.9 ----------------------------------------


def test_visual3dball_learns_to_keep_the_ball_longer(tmp_path: Path) -> None:
    opts = options(
        tmp_path,
        "Visual3DBall",
        steps=60_000,
        hyperparameters={"batch_size": 256, "buffer_size": 2560, "learning_rate": 3e-4},
        network={"vis_encode_type": "simple", "hidden_units": 64, "num_layers": 2},
        num_areas=2,
    )
    result = run_or_skip(opts)
    mean = tail_mean(result, 48)
    assert mean >= 6.0, f"Visual3DBall: mean return of the last 48 episodes {mean:.2f} (random 1.9)"


def test_visual3dball_does_not_learn_without_a_learning_rate(tmp_path: Path) -> None:
    opts = options(
        tmp_path,
        "Visual3DBall",
        steps=20_000,
        hyperparameters={"learning_rate": 1e-8},
        network={"vis_encode_type": "simple"},
    )
    assert tail_mean(run_or_skip(opts), 48) < 3.0


def test_hallway_with_the_symbol_always_in_sight_is_learned_without_memory(tmp_path: Path) -> None:
    """Positive control (runs today): the same task and settings are learned once nothing must be remembered."""
    opts = options(tmp_path, "Hallway", steps=30_000, num_areas=2, env_args=["cue_steps=100"])
    mean = tail_mean(run_or_skip(opts), 300)
    assert mean >= 0.7, f"Hallway with the symbol in sight: {mean:.3f}"


# -- A Gymnasium image environment: +1 for the action the image points to, 0.5 by chance -----------------


def register_signal_image_env() -> str:
    """A gymnasium id for a one-decision task: a white pixel in the left or right half of a 20 x 20 RGB
    image (uint8, HWC) says which of two actions earns +1."""
    gymnasium = pytest.importorskip("gymnasium")
    env_id = "FledgeSignalImage-v0"
    if env_id in gymnasium.envs.registry:
        return env_id

    class SignalImage(gymnasium.Env):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.observation_space = gymnasium.spaces.Box(0, 255, (20, 20, 3), np.uint8)
            self.action_space = gymnasium.spaces.Discrete(2)
            self.side = 0

        def _obs(self) -> np.ndarray:
            img = np.zeros((20, 20, 3), np.uint8)
            img[self.np_random.integers(0, 20), self.np_random.integers(0, 10) + 10 * self.side] = 255
            return img

        def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
            super().reset(seed=seed)
            self.side = int(self.np_random.integers(0, 2))
            return self._obs(), {}

        def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
            return self._obs(), float(int(action) == self.side), True, False, {}

    gymnasium.register(id=env_id, entry_point=SignalImage)
    return env_id


@pytest.mark.parametrize(("learning_rate", "learns"), [(1e-3, True), (1e-8, False)])
def test_gym_image_observations_train_with_a_visual_encoder(tmp_path: Path, learning_rate: float, learns: bool) -> None:
    env_id = register_signal_image_env()
    opts = options(
        tmp_path,
        f"gym:{env_id}",
        steps=8_000,
        time_horizon=1,
        hyperparameters={"learning_rate": learning_rate, "batch_size": 64, "buffer_size": 512},
        network={"vis_encode_type": "simple"},
    )
    mean = tail_mean(run_or_skip(opts), 500)
    if learns:
        assert mean >= 0.9, f"image task: {mean:.3f}"
    else:
        assert mean < 0.65, f"image task without a learning rate: {mean:.3f}"


# -- Sorter with 2 tiles: 1.95 at best, random about -0.05 ---------------------------------------------------


@pytest.mark.parametrize(("learning_rate", "learns"), [(1e-3, True), (1e-8, False)])
def test_sorter_learns_two_tiles_with_the_entity_encoder(tmp_path: Path, learning_rate: float, learns: bool) -> None:
    opts = options(
        tmp_path,
        "Sorter",
        steps=60_000,
        hyperparameters={"learning_rate": learning_rate, "batch_size": 256, "buffer_size": 4096},
        network={"hidden_units": 64, "num_layers": 2},
        num_areas=2,
    )
    mean = tail_mean(run_or_skip(opts), 300)
    if learns:
        assert mean >= 1.5, f"Sorter, 2 tiles: mean return of the last 300 episodes {mean:.3f}"
    else:
        assert mean < 0.5, f"Sorter without a learning rate: {mean:.3f}"
