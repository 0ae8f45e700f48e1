"""Basic: ML-Agents' simplest example, a walk on a line between a small and a large goal.

Each agent stands on positions 0..19, starting at 10. One discrete branch of 3 actions: 0 = left,
1 = stay, 2 = right. Every decision costs -0.01; reaching position 7 (the small goal) adds +0.1 and
reaching position 17 (the large goal) adds +1.0, and either ends the episode. The observation is a
one-hot of the position (size 20, as ML-Agents' Basic sensor). Episodes are interrupted after 100
decisions.

Optimal return: walk right 7 times; the 7 decisions cost 7 * 0.01 and the last one adds 1.0, so
1.0 - 0.07 = 0.93 (ML-Agents' benchmark for Basic is 0.93).
"""

from __future__ import annotations

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin._common import check_count, one_hot
from fledge.envs.builtin.base import VectorTask

NUM_POSITIONS = 20
START_POSITION = 10
SMALL_GOAL = 7
LARGE_GOAL = 17
SMALL_REWARD = 0.1
LARGE_REWARD = 1.0
STEP_REWARD = -0.01
MAX_EPISODE_STEPS = 100

LEFT, STAY, RIGHT = 0, 1, 2


class BasicTask(VectorTask):
    """ML-Agents' Basic, vectorised over `num_agents` independent agents (1 by default)."""

    behavior_name = "Basic"

    def __init__(self, *, num_agents: int = 1, max_episode_steps: int = MAX_EPISODE_STEPS) -> None:
        self.num_agents = check_count("Basic", "num_agents", num_agents)
        self.max_episode_steps = check_count("Basic", "max_episode_steps", max_episode_steps, minimum=0)
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(NUM_POSITIONS, "VectorSensor")],
            action_spec=ActionSpec.create_discrete((3,)),
        )
        self._position = np.full(self.num_agents, START_POSITION, dtype=np.int64)

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self._position[idx] = START_POSITION

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        pos = self._position
        pos += actions.discrete[:, 0]
        pos -= 1  # action 0/1/2 moves by -1/0/+1
        np.clip(pos, 0, NUM_POSITIONS - 1, out=pos)
        small = pos == SMALL_GOAL
        large = pos == LARGE_GOAL
        reward = np.full(self.num_agents, STEP_REWARD, dtype=np.float32)
        reward[small] += SMALL_REWARD
        reward[large] += LARGE_REWARD
        return reward, small | large

    def observe(self) -> list[np.ndarray]:
        return [one_hot(self._position, NUM_POSITIONS)]

    def optimal_return(self) -> float:
        return LARGE_REWARD + STEP_REWARD * (LARGE_GOAL - START_POSITION)

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8: a row of 20 cells per agent with both goals and the agent; the
        chosen move of `actions` (one row per agent) is drawn as an arrow."""
        from fledge.envs.builtin.basic_render import draw_basic

        chosen = None if actions is None or actions.discrete.size == 0 else actions.discrete[:, 0]
        return draw_basic(
            self._position.copy(),
            size=NUM_POSITIONS,
            start=START_POSITION,
            small_goal=SMALL_GOAL,
            large_goal=LARGE_GOAL,
            actions=chosen,
        )


def heuristic(obs: np.ndarray) -> np.ndarray:
    """The optimal policy: always walk right. Returns (n, 1) int32 discrete actions."""
    return np.full((len(obs), 1), RIGHT, dtype=np.int32)
