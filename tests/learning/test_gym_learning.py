"""PPO on Gymnasium's CartPole-v1 and on a PettingZoo game whose agents leave and join mid-episode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config

pytestmark = pytest.mark.learning
gymnasium = pytest.importorskip("gymnasium")
pettingzoo = pytest.importorskip("pettingzoo")


def test_ppo_cartpole_reaches_475_within_100k_steps(tmp_path: Path) -> None:
    raw = load_config_file(shipped_config("gym:CartPole-v1"))  # type: ignore[arg-type]
    raw["env_settings"]["seed"] = 1
    raw["checkpoint_settings"] = {"run_id": "cart", "results_dir": str(tmp_path)}
    raw["behaviors"]["CartPole-v1"]["max_steps"] = 100_000
    result = api.run(build_run_options(raw))
    returns = np.array(result.behaviors["CartPole-v1"].episode_returns)
    windows = np.convolve(returns, np.ones(20) / 20, mode="valid")
    assert windows.max() >= 475, f"best 20-episode mean {windows.max():.1f}"


class Runners(pettingzoo.ParallelEnv):  # type: ignore[misc,name-defined]
    """Runners on a line race to a goal: each one that arrives gets +1 and leaves the episode at once;
    a late runner joins at step 3; the episode is truncated after 30 steps. -0.01 per step."""

    metadata = {"name": "runners_v0"}

    def __init__(self) -> None:
        self.possible_agents = [f"runner_{i}" for i in range(5)]
        box = gymnasium.spaces.Box(-2.0, 2.0, shape=(2,), dtype=np.float32)
        self._obs_space = box
        self._act_space = gymnasium.spaces.Discrete(3)
        self.rng = np.random.default_rng(0)

    def observation_space(self, agent: str) -> Any:
        return self._obs_space

    def action_space(self, agent: str) -> Any:
        return self._act_space

    def _obs(self, agent: str) -> np.ndarray:
        return np.array([self.pos[agent], self.goal - self.pos[agent]], dtype=np.float32)

    def reset(self, seed: int | None = None, options: Any = None) -> tuple[dict, dict]:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.t = 0
        self.goal = float(self.rng.uniform(-1, 1))
        self.agents = self.possible_agents[:4]
        self.pos = {a: float(self.rng.uniform(-1, 1)) for a in self.possible_agents}
        return {a: self._obs(a) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        self.t += 1
        rewards, terminated, truncated = {}, {}, {}
        for a in self.agents:
            self.pos[a] = float(np.clip(self.pos[a] + 0.2 * (int(actions[a]) - 1), -2, 2))
            arrived = abs(self.pos[a] - self.goal) < 0.1
            rewards[a] = -0.01 + (1.0 if arrived else 0.0)
            terminated[a] = arrived
            truncated[a] = self.t >= 30 and not arrived
        obs = {a: self._obs(a) for a in self.agents}
        infos = {a: {} for a in self.agents}
        self.agents = [a for a in self.agents if not (terminated[a] or truncated[a])]
        if self.t == 3 and self.t < 30:
            self.agents.append("runner_4")
            obs["runner_4"], infos["runner_4"] = self._obs("runner_4"), {}
        return obs, rewards, terminated, truncated, infos


def test_ppo_on_a_pettingzoo_game_with_agents_leaving_and_joining(tmp_path: Path) -> None:
    from fledge.envs.pettingzoo import PettingZooEnv

    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 128, "buffer_size": 1024, "learning_rate": 3.0e-3},
            "network_settings": {"hidden_units": 32},
            "max_steps": 25_000,
            "time_horizon": 32,
            "summary_freq": 5000,
        },
        "env_settings": {"seed": 4},
        "checkpoint_settings": {"run_id": "runners", "results_dir": str(tmp_path)},
    }
    result = api.run(build_run_options(raw), env=PettingZooEnv(Runners(), seed=4))
    returns = result.behaviors["runner"].episode_returns
    assert len(returns) > 500
    early, late = np.mean(returns[:200]), np.mean(returns[-200:])
    assert late > early + 0.3 and late > 0.8, (early, late)


def test_sac_pendulum_reaches_minus_200_within_12k_steps(tmp_path: Path) -> None:
    raw = load_config_file(shipped_config("gym:Pendulum-v1", "sac"))  # type: ignore[arg-type]
    raw["behaviors"]["Pendulum-v1"]["max_steps"] = 12_000
    raw["env_settings"]["seed"] = 1
    raw["checkpoint_settings"] = {"run_id": "pendulum", "results_dir": str(tmp_path)}
    result = api.run(build_run_options(raw))
    returns = np.array(result.behaviors["Pendulum-v1"].episode_returns)  # 200 steps per episode
    windows = np.convolve(returns, np.ones(10) / 10, mode="valid")
    assert windows.max() >= -200, f"best 10-episode mean {windows.max():.1f}"
