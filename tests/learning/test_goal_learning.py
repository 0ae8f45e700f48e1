"""A goal-conditioned (hypernetwork) PPO policy learns a two-goal task: the paying action is the sign of
the observation under goal 0 and its opposite under goal 1, so no policy blind to the goal beats
chance. The negative case hides the goal (the goal observation carries nothing) and stays at chance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import toy_options
from fledge import api
from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from fledge.envs.builtin.base import VectorTask, VectorTaskEnv

pytestmark = pytest.mark.learning


class TwoGoalTask(VectorTask):
    """One decision per episode: action (s > 0) XOR goal pays 1, the other 0."""

    behavior_name = "TwoGoals"

    def __init__(self, *, num_agents: int = 16, goal_visible: bool = True) -> None:
        self.num_agents, self.goal_visible = num_agents, goal_visible
        self.max_episode_steps = 1
        self.spec = BehaviorSpec(
            [
                ObservationSpec.vector(1),
                ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.GOAL_SIGNAL, "goal"),
            ],
            ActionSpec.create_discrete((2,)),
        )
        self._sign = np.zeros(num_agents, np.int64)
        self._goal = np.zeros(num_agents, np.int64)

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self._sign[idx] = rng.integers(0, 2, size=len(idx))
        self._goal[idx] = rng.integers(0, 2, size=len(idx))

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        reward = (actions.discrete[:, 0] == (self._sign ^ self._goal)).astype(np.float32)
        return reward, np.ones(self.num_agents, dtype=bool)

    def observe(self) -> list[np.ndarray]:
        signal = (2.0 * self._sign - 1.0).astype(np.float32)[:, None]
        goal = (
            np.eye(2, dtype=np.float32)[self._goal] if self.goal_visible else np.zeros((self.num_agents, 2), np.float32)
        )
        return [signal, goal]


def run(tmp_path: Path, *, goal_visible: bool) -> float:
    options = toy_options(
        tmp_path,
        "TwoGoals",
        steps=6_000,
        seed=5,
        network={"hidden_units": 32, "num_layers": 2, "goal_conditioning_type": "hyper"},
        hyperparameters={"batch_size": 64, "buffer_size": 512, "learning_rate": 3e-3, "beta": 0.01, "num_epoch": 3},
        gamma=0.9,
        extra={"time_horizon": 16},
    )
    result = api.run(options, env=VectorTaskEnv(TwoGoalTask(goal_visible=goal_visible), seed=5), display="none")
    (behavior,) = result.behaviors.values()
    return float(np.mean(behavior.episode_returns[-300:]))


def test_hyper_goal_conditioning_learns_two_goals(tmp_path: Path) -> None:
    assert run(tmp_path, goal_visible=True) >= 0.9  # chance is 0.5


def test_a_hidden_goal_leaves_the_policy_at_chance(tmp_path: Path) -> None:
    assert 0.4 <= run(tmp_path, goal_visible=False) <= 0.6
