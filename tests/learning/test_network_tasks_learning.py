"""Learning on the tasks that need the visual, goal-signal and memory networks (GridWorld, Hallway,
Visual3DBall, a Gymnasium image environment), small and seeded, with negative cases.

Each test says what it measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fledge import api
from fledge.config import build_run_options
from fledge.envs.builtin.gridworld import scale_for_encoder

pytestmark = pytest.mark.learning


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


def gridworld_options(
    tmp_path: Path, *, encoder: str = "simple", show_goal: bool = True, scale: int | None = None, **kwargs: Any
) -> Any:
    scale = scale or scale_for_encoder(encoder, 4)
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


def test_gridworld_learns_with_the_simple_encoder(tmp_path: Path) -> None:
    """Hypernetwork goal conditioning, mean of the last 300 episodes after 40,000 steps (30 s): seeds 2 to 5
    measured 0.78, 0.85, 0.80 and 0.80. Seed 1 measured 0.83 on one machine and 0.26 on another (0.55 after
    60,000 steps): the convolutions' rounding differs between CPUs, and that seed learns slowly where it
    rounds the other way, so the test runs seed 2. (With goal_conditioning_type none the same run stays at
    -0.21, no better than random.)"""
    result = api.run(gridworld_options(tmp_path, steps=40_000, seed=2, network={"goal_conditioning_type": "hyper"}))
    mean = tail_mean(result, 300)
    assert mean >= 0.6, f"GridWorld 4 x 4, simple encoder: mean return of the last 300 episodes {mean:.3f}"


# measured (mean of the last 300 episodes, 4 x 4 board, hypernetwork): fully_connected 0.71 after 20,000
# steps (13 s), match3 0.77 and 0.46 after 30,000 and 40,000 (43-57 s), nature_cnn 0.53 after 40,000 on a
# 48-pixel camera (65 s; its 36-pixel minimum leaves a 1 x 1 map and learns slower). resnet has its own test
# below.
ENCODER_RUNS = {"fully_connected": (20_000, None), "match3": (30_000, None), "nature_cnn": (40_000, 12)}


@pytest.mark.parametrize(
    "encoder", [pytest.param(e, marks=[pytest.mark.slow] if e != "fully_connected" else []) for e in ENCODER_RUNS]
)
def test_gridworld_learns_with_the_other_visual_encoders(tmp_path: Path, encoder: str) -> None:
    steps, scale = ENCODER_RUNS[encoder]
    opts = gridworld_options(
        tmp_path, encoder=encoder, steps=steps, scale=scale, network={"goal_conditioning_type": "hyper"}
    )
    mean = tail_mean(api.run(opts), 300)
    assert mean >= 0.3, f"GridWorld 4 x 4, {encoder} encoder: mean return of the last 300 episodes {mean:.3f}"


@pytest.mark.slow
def test_gridworld_learns_with_the_resnet_encoder(tmp_path: Path) -> None:
    """16-pixel camera, learning rate 1e-3 with the linear schedule (PPO's default; beta and epsilon follow
    it), 40,000 steps (65 s; 180 s beside another run): 0.875 over the last 300 episodes, and above 0.7 in every
    tenth of its episodes after the first. With the constant schedule the same run reaches 0.83 midway, then
    collapses to -0.64 (most episodes run out of time): the encoder learns, constant-rate PPO does not hold
    it. Random play gets about -0.2."""
    opts = gridworld_options(
        tmp_path,
        encoder="resnet",
        steps=40_000,
        seed=2,
        hyperparameters={"learning_rate_schedule": "linear"},
        network={"goal_conditioning_type": "hyper"},
    )
    mean = tail_mean(api.run(opts), 300)
    assert mean >= 0.6, f"GridWorld 4 x 4, resnet encoder: mean return of the last 300 episodes {mean:.3f}"


@pytest.mark.slow
def test_gridworld_without_the_goal_signal_stays_near_zero(tmp_path: Path) -> None:
    """Negative case: when the signal is hidden, reaching either goal is a coin flip (+1 or -1). Slow (30 s); the
    suite's fast negative case of goal conditioning is tests/learning/test_goal_learning.py."""
    result = api.run(gridworld_options(tmp_path, steps=40_000, show_goal=False))
    mean = tail_mean(result, 300)
    assert mean < 0.3, f"GridWorld without the goal signal: {mean:.3f}"


@pytest.mark.slow
def test_gridworld_learns_with_sac(tmp_path: Path) -> None:
    """Measured: 0.41 over the last 300 episodes after 10,000 steps (110 s on 2 busy cores), above 0.5
    after 30,000; a random policy gets -0.25."""
    result = api.run(gridworld_options(tmp_path, steps=10_000, trainer="sac"))
    mean = tail_mean(result, 300)
    assert mean >= 0.2, f"GridWorld 4 x 4, SAC: {mean:.3f}"


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
    mean = tail_mean(api.run(opts), 300)
    assert mean >= 0.7, f"Hallway with memory ({trainer}): mean return of the last 300 episodes {mean:.3f}"


def test_hallway_without_memory_cannot_beat_a_coin_flip(tmp_path: Path) -> None:
    """Negative case (runs today): without memory the best policy guesses the goal (0.40)."""
    result = api.run(options(tmp_path, "Hallway", steps=30_000, num_areas=2))
    mean = tail_mean(result, 300)
    assert mean <= 0.5, f"Hallway without memory: {mean:.3f}"


# -- Visual3DBall: 100 at best over 1000 decisions, random about 1.9 ----------------------------------------


@pytest.mark.slow
def test_visual3dball_learns_to_keep_the_ball_longer(tmp_path: Path) -> None:
    """Measured: 18.8 over the last 48 episodes after 150,000 steps (90 s on 2 busy cores; 2.9 after 60,000)."""
    opts = options(
        tmp_path,
        "Visual3DBall",
        steps=150_000,
        hyperparameters={"batch_size": 256, "buffer_size": 2560, "learning_rate": 1e-3},
        network={"vis_encode_type": "simple", "hidden_units": 64, "num_layers": 2},
        num_areas=2,
    )
    result = api.run(opts)
    mean = tail_mean(result, 48)
    assert mean >= 8.0, f"Visual3DBall: mean return of the last 48 episodes {mean:.2f} (random 1.9)"


def test_visual3dball_does_not_learn_without_a_learning_rate(tmp_path: Path) -> None:
    opts = options(
        tmp_path,
        "Visual3DBall",
        steps=20_000,
        hyperparameters={"learning_rate": 1e-8},
        network={"vis_encode_type": "simple"},
    )
    assert tail_mean(api.run(opts), 48) < 3.0


def test_hallway_with_the_symbol_always_in_sight_is_learned_without_memory(tmp_path: Path) -> None:
    """Positive control (runs today): the same task and settings are learned once nothing must be remembered."""
    opts = options(tmp_path, "Hallway", steps=30_000, num_areas=2, env_args=["cue_steps=100"])
    mean = tail_mean(api.run(opts), 300)
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
    mean = tail_mean(api.run(opts), 500)
    if learns:
        assert mean >= 0.9, f"image task: {mean:.3f}"
    else:
        assert mean < 0.65, f"image task without a learning rate: {mean:.3f}"


# -- Sorter with 2 tiles: 1.95 at best, random about -0.05 ---------------------------------------------------


@pytest.mark.parametrize(
    ("learning_rate", "steps", "learns"),
    [pytest.param(1e-3, 60_000, True, marks=pytest.mark.slow), (1e-8, 15_000, False)],
)
def test_sorter_learns_two_tiles_with_the_entity_encoder(
    tmp_path: Path, learning_rate: float, steps: int, learns: bool
) -> None:
    """Measured: 0.58 over the last 300 episodes after 60,000 steps (125 s on 2 busy cores; the best
    return is 1.95, random moves get -0.05): the first tile in order is learned, the second only begins."""
    opts = options(
        tmp_path,
        "Sorter",
        steps=steps,
        hyperparameters={"learning_rate": learning_rate, "batch_size": 256, "buffer_size": 4096},
        network={"hidden_units": 64, "num_layers": 2},
        num_areas=2,
    )
    result = api.run(opts)
    if learns:
        mean = tail_mean(result, 300)
        assert mean >= 0.35, f"Sorter, 2 tiles: mean return of the last 300 episodes {mean:.3f}"
    else:
        mean = tail_mean(result, 100)
        assert mean < 0.2, f"Sorter without a learning rate: {mean:.3f}"
