"""Hallway: remember a colour seen at the start of a corridor to pick the right goal at its end.

A task in the spirit of ML-Agents' Hallway, reduced to what makes it a memory task. Each agent walks a
corridor of ``corridor_length`` cells (6 by default), starting at cell 0. At the far end there are two
goals: a green one (left) and an orange one (right). At the start of each episode a symbol of one of
the two colours is drawn at random; the agent sees it only during its first ``cue_steps`` decisions
(1 by default). The goal of the symbol's colour is the right one.

Observations: one vector (``corridor_length + 3``,) float32: a one-hot of the agent's cell, a flag
that is 1 at the far end, and a one-hot of the symbol's colour (green, orange) that is all zero once
the symbol is out of sight. After the first decision nothing the agent observes tells the colour: a
policy without memory cannot do better than a coin flip between the goals.

Actions: one discrete branch of 4: 0 = forward, 1 = back, 2 = enter the left (green) goal, 3 = enter
the right (orange) goal. Entering works at the far end only; elsewhere (and walking into the walls)
the agent stays where it is.

Rewards as ML-Agents' Hallway: each decision costs 1 / ``max_episode_steps`` (-0.01 with the default
100; ML-Agents' 3000 steps give its -0.0003); entering a goal ends the episode and that decision's
reward is set to +1 (the symbol's colour) or -0.1 (the other one).

Returns: the optimal policy walks ``corridor_length - 1`` cells and enters the right goal:
1 - 0.01 (corridor_length - 1) = 0.95 by default. The best policy without memory enters a goal at
random: 0.5 (1 - 0.1) - 0.05 = 0.40. A uniformly random policy gets about -0.3. ML-Agents' benchmark
mean reward for Hallway is 0.7 (with memory).
"""

from __future__ import annotations

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.base import VectorTask

GOAL_REWARD = 1.0
WRONG_GOAL_REWARD = -0.1
MAX_EPISODE_STEPS = 100
DEFAULT_LENGTH = 6
DEFAULT_AGENTS = 16
FORWARD, BACK, LEFT_GOAL, RIGHT_GOAL = 0, 1, 2, 3
GREEN, ORANGE = 0, 1  # symbol colours; green = left goal, orange = right goal


class HallwayTask(VectorTask):
    """A memory task: a colour seen only at the start names the goal to enter at the corridor's end."""

    behavior_name = "Hallway"

    def __init__(
        self,
        *,
        num_agents: int = DEFAULT_AGENTS,
        corridor_length: int = DEFAULT_LENGTH,
        cue_steps: int = 1,
        max_episode_steps: int = MAX_EPISODE_STEPS,
    ) -> None:
        self.num_agents = check_count("Hallway", "num_agents", num_agents)
        self.corridor_length = check_count("Hallway", "corridor_length", corridor_length, minimum=2)
        self.cue_steps = check_count("Hallway", "cue_steps", cue_steps)
        self.max_episode_steps = check_count("Hallway", "max_episode_steps", max_episode_steps)
        self.step_reward = -1.0 / self.max_episode_steps
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(self.corridor_length + 3, "VectorSensor")],
            action_spec=ActionSpec.create_discrete((4,)),
        )
        n = self.num_agents
        self._rows = np.arange(n)
        self._cell = np.zeros(n, dtype=np.int64)
        self._colour = np.zeros(n, dtype=np.int64)
        self._age = np.zeros(n, dtype=np.int64)  # decisions taken in this episode

    # -- VectorTask --------------------------------------------------------------------------------
    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self._cell[idx] = 0
        self._age[idx] = 0
        self._colour[idx] = rng.integers(0, 2, size=len(idx))

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        act = actions.discrete[:, 0]
        at_end = self._cell == self.corridor_length - 1
        self._cell += (act == FORWARD).astype(np.int64) - (act == BACK).astype(np.int64)
        np.clip(self._cell, 0, self.corridor_length - 1, out=self._cell)
        self._age += 1
        entered = at_end & (act >= LEFT_GOAL)
        right = entered & (act - LEFT_GOAL == self._colour)
        reward = np.full(self.num_agents, self.step_reward, dtype=np.float32)
        reward[entered] = WRONG_GOAL_REWARD
        reward[right] = GOAL_REWARD
        return reward, entered

    def observe(self) -> list[np.ndarray]:
        length = self.corridor_length
        out = np.zeros((self.num_agents, length + 3), dtype=np.float32)
        out[self._rows, self._cell] = 1.0
        out[:, length] = self._cell == length - 1
        seen = self._age < self.cue_steps
        out[self._rows[seen], length + 1 + self._colour[seen]] = 1.0
        return [out]

    def optimal_return(self) -> float:
        return GOAL_REWARD + self.step_reward * (self.corridor_length - 1)

    def memoryless_return(self) -> float:
        """The best mean return without memory: walk to the end, enter either goal."""
        return 0.5 * (GOAL_REWARD + WRONG_GOAL_REWARD) + self.step_reward * (self.corridor_length - 1)

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8: a corridor per agent with the symbol (bright while it is seen), both
        goals and the agent; the chosen action of `actions` is drawn as an arrow or a marked goal."""
        from fledge.envs.builtin.hallway_render import draw_hallway

        chosen = None if actions is None or actions.discrete.size == 0 else actions.discrete[:, 0]
        return draw_hallway(
            self._cell.copy(),
            self._colour.copy(),
            self._age < self.cue_steps,
            length=self.corridor_length,
            actions=chosen,
        )


def heuristic(obs: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """The optimal policy given the remembered colour (n,) in {GREEN, ORANGE}: walk forward, then enter
    the goal of that colour. obs: (n, corridor_length + 3); returns (n, 1) int32."""
    at_end = obs[:, -3] > 0.5
    act = np.where(at_end, LEFT_GOAL + np.asarray(colour), FORWARD)
    return act[:, None].astype(np.int32)
