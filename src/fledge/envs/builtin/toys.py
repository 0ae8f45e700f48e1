"""Small tasks for the test suite: short episodes, many agents, known optimal mean returns.

MoveToGoal (1D continuous, 1D discrete, 2D hybrid)
    An agent moves on a line (or plane) towards a goal. Each decision costs -0.01; the episode ends
    with +1 once the agent is within 0.1 of the goal (|dx| < 0.1, and |dy| < 0.1 in 2D) after its
    move; in 2D the agent must also "grab" (discrete action 1) on that decision, and grabbing away
    from the goal costs -0.05. Episodes are interrupted after 50 decisions. A move is at most 0.2
    per axis.

    Optimal return. With the goal offset d (1D: |x0 - goal|; 2D: max(|dx|, |dy|), since the moves
    are bounded per axis), the fewest decisions that end the episode are k(d) = 1 for d < 0.3 and
    k(d) = floor((d - 0.1) / 0.2) + 1 in general (the smallest k >= 1 with d - 0.2 k < 0.1; the
    discrete version reaches the same k because it can stay when d < 0.1 and d - 0.2 k then falls
    in (-0.1, 0.1)). The return is 1 - 0.01 k(d). Offsets are uniform in [-1, 1] per axis, so
    1D: P(k = 1..5) = 0.3, 0.2, 0.2, 0.2, 0.1, E[k] = 2.6, optimal return 0.974;
    2D: P(d < t) = t^2, P(k = 1..5) = 0.09, 0.16, 0.24, 0.32, 0.19, E[k] = 3.36, optimal return 0.9664.

MaskedChoice
    One decision per episode, one discrete branch of 4. The observation is a one-hot of the rewarded
    action (+1); one other action, chosen at random, is masked (unavailable) and gives -1 when picked
    anyway, which exposes trainers that ignore action masks; the other two give 0. Optimal return 1.
"""

from __future__ import annotations

from typing import cast

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin._common import check_count, one_hot
from fledge.envs.builtin.base import VectorTask

STEP_REWARD = -0.01
GOAL_REWARD = 1.0
GRAB_PENALTY = -0.05
MOVE = 0.2
GOAL_RADIUS = 0.1
MOVE_TO_GOAL_MAX_STEPS = 50
DEFAULT_AGENTS = 16


def _expected_steps(dims: int) -> float:
    """E[k(d)] for d = max |offset| over `dims` axes, offsets uniform in [-1, 1] (see module doc)."""
    # k = 1 on [0, 0.3), then k = j on [0.1 + 0.2 (j - 1), 0.1 + 0.2 j), the last interval cut at 1.
    edges = [0.0, 0.3, 0.5, 0.7, 0.9, 1.0]
    return sum(k * (edges[k] ** dims - edges[k - 1] ** dims) for k in range(1, len(edges)))


class _MoveToGoalTask(VectorTask):
    """Shared physics of the MoveToGoal tasks: positions, goals, arrival and rewards."""

    dims: int
    _low: float  # positions are kept in [_low, _high] on every axis
    _high: float

    def __init__(
        self, *, name: str, dims: int, num_agents: int, max_episode_steps: int, action_spec: ActionSpec
    ) -> None:
        self.behavior_name = name
        self.dims = dims
        self.num_agents = check_count(name, "num_agents", num_agents)
        self.max_episode_steps = check_count(name, "max_episode_steps", max_episode_steps, minimum=0)
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(2 * dims, "VectorSensor")],
            action_spec=action_spec,
        )
        self._pos = np.zeros((self.num_agents, dims))
        self._goal = np.zeros((self.num_agents, dims))
        self._move = np.zeros((self.num_agents, dims))

    def observe(self) -> list[np.ndarray]:
        out = np.empty((self.num_agents, 2 * self.dims), dtype=np.float32)
        out[:, : self.dims] = self._pos
        np.subtract(self._goal, self._pos, out=out[:, self.dims :], casting="same_kind")
        return [out]

    def _advance(self) -> np.ndarray:
        """Move by self._move (clipped per axis); True where the agent is now at its goal."""
        np.clip(self._move, -MOVE, MOVE, out=self._move)
        self._pos += self._move
        np.clip(self._pos, self._low, self._high, out=self._pos)
        # numpy's stubs type all(axis=...) as "scalar or array"; on a 2-D array it is a 1-D array
        return cast(np.ndarray, (np.abs(self._goal - self._pos) < GOAL_RADIUS).all(axis=1))

    def optimal_return(self) -> float:
        return GOAL_REWARD + STEP_REWARD * _expected_steps(self.dims)

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8: 1D, one line per agent; 2D, one panel per agent; goal zone,
        agent, and the move (and grab) of `actions` (one row per agent) when given."""
        from fledge.envs.builtin.toys_render import draw_move_to_goal_1d, draw_move_to_goal_2d

        move = grab = None
        if actions is not None:
            if self.spec.action_spec.continuous_size:
                move = np.clip(np.asarray(actions.continuous, np.float64) * MOVE, -MOVE, MOVE)
            elif actions.discrete.size:
                move = (np.asarray(actions.discrete[:, :1], np.float64) - 1.0) * MOVE
            if self.spec.action_spec.discrete_size and self.spec.action_spec.continuous_size:
                grab = actions.discrete[:, 0] == 1
        if self.dims == 1:
            return draw_move_to_goal_1d(
                self._pos[:, 0].copy(),
                self._goal[:, 0].copy(),
                low=self._low,
                high=self._high,
                goal_radius=GOAL_RADIUS,
                move=None if move is None else move[:, 0],
            )
        return draw_move_to_goal_2d(
            self._pos.copy(),
            self._goal.copy(),
            low=self._low,
            high=self._high,
            goal_radius=GOAL_RADIUS,
            move=move,
            grab=grab,
        )


class MoveToGoal1DContinuousTask(_MoveToGoalTask):
    """1D, goal at 0, start uniform in [-1, 1]; obs [position, goal - position]; 1 continuous action."""

    _low, _high = -1.0, 1.0

    def __init__(self, *, num_agents: int = DEFAULT_AGENTS, max_episode_steps: int = MOVE_TO_GOAL_MAX_STEPS) -> None:
        super().__init__(
            name="MoveToGoal1D-Continuous",
            dims=1,
            num_agents=num_agents,
            max_episode_steps=max_episode_steps,
            action_spec=ActionSpec.create_continuous(1),
        )

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self._pos[idx] = rng.uniform(-1.0, 1.0, size=(len(idx), 1))

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        np.multiply(actions.continuous, MOVE, out=self._move)
        done = self._advance()
        return np.where(done, np.float32(STEP_REWARD + GOAL_REWARD), np.float32(STEP_REWARD)), done


class MoveToGoal1DDiscreteTask(_MoveToGoalTask):
    """As MoveToGoal1D-Continuous with one discrete branch of 3: 0 = left, 1 = stay, 2 = right (0.2)."""

    _low, _high = -1.0, 1.0

    def __init__(self, *, num_agents: int = DEFAULT_AGENTS, max_episode_steps: int = MOVE_TO_GOAL_MAX_STEPS) -> None:
        super().__init__(
            name="MoveToGoal1D-Discrete",
            dims=1,
            num_agents=num_agents,
            max_episode_steps=max_episode_steps,
            action_spec=ActionSpec.create_discrete((3,)),
        )

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self._pos[idx] = rng.uniform(-1.0, 1.0, size=(len(idx), 1))

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        np.subtract(actions.discrete, 1, out=self._move, casting="unsafe")
        self._move *= MOVE
        done = self._advance()
        return np.where(done, np.float32(STEP_REWARD + GOAL_REWARD), np.float32(STEP_REWARD)), done


class MoveToGoal2DHybridTask(_MoveToGoalTask):
    """2D; goal uniform in [-1, 1]^2 and start = goal + uniform [-1, 1]^2; obs [position, goal - position].

    Actions: 2 continuous (move x, y by 0.2 a) and one discrete branch of 2 (1 = grab). Grabbing at the
    goal (after the move) ends the episode with +1; grabbing elsewhere costs -0.05.
    """

    _low, _high = -2.0, 2.0

    def __init__(self, *, num_agents: int = DEFAULT_AGENTS, max_episode_steps: int = MOVE_TO_GOAL_MAX_STEPS) -> None:
        super().__init__(
            name="MoveToGoal2D-Hybrid",
            dims=2,
            num_agents=num_agents,
            max_episode_steps=max_episode_steps,
            action_spec=ActionSpec.create_hybrid(2, (2,)),
        )

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        goal = rng.uniform(-1.0, 1.0, size=(len(idx), 2))
        self._goal[idx] = goal
        self._pos[idx] = goal + rng.uniform(-1.0, 1.0, size=(len(idx), 2))

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        np.multiply(actions.continuous, MOVE, out=self._move)
        at_goal = self._advance()
        grab = actions.discrete[:, 0] == 1
        done = grab & at_goal
        reward = np.full(self.num_agents, STEP_REWARD, dtype=np.float32)
        reward[done] += GOAL_REWARD
        reward[grab & ~at_goal] += GRAB_PENALTY
        return reward, done


class MaskedChoiceTask(VectorTask):
    """One decision per episode: pick the observed rewarded action out of 4; one other one is masked."""

    behavior_name = "MaskedChoice"

    def __init__(self, *, num_agents: int = DEFAULT_AGENTS, num_actions: int = 4) -> None:
        self.num_agents = check_count("MaskedChoice", "num_agents", num_agents)
        self.num_actions = check_count("MaskedChoice", "num_actions", num_actions, minimum=3)
        self.max_episode_steps = 1
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(self.num_actions, "VectorSensor")],
            action_spec=ActionSpec.create_discrete((self.num_actions,)),
        )
        self._rows = np.arange(self.num_agents)
        self._rewarded = np.zeros(self.num_agents, dtype=np.int64)
        self._masked = np.ones(self.num_agents, dtype=np.int64)

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        k = len(idx)
        rewarded = rng.integers(0, self.num_actions, size=k)
        self._rewarded[idx] = rewarded
        self._masked[idx] = (rewarded + rng.integers(1, self.num_actions, size=k)) % self.num_actions

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        choice = actions.discrete[:, 0]
        reward = (choice == self._rewarded).astype(np.float32)
        reward[choice == self._masked] = -1.0
        return reward, np.ones(self.num_agents, dtype=bool)

    def observe(self) -> list[np.ndarray]:
        return [one_hot(self._rewarded, self.num_actions)]

    def action_mask(self) -> list[np.ndarray]:
        mask = np.zeros((self.num_agents, self.num_actions), dtype=bool)
        mask[self._rows, self._masked] = True
        return [mask]

    def optimal_return(self) -> float:
        return 1.0

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8: a row of boxes per agent, rewarded / masked / chosen marked."""
        from fledge.envs.builtin.toys_render import draw_masked_choice

        chosen = None if actions is None or actions.discrete.size == 0 else actions.discrete[:, 0]
        return draw_masked_choice(
            self._rewarded.copy(), self._masked.copy(), num_actions=self.num_actions, chosen=chosen
        )


# -- optimal policies, from observations (for tests and as reference controllers) ------------------


def move_to_goal_continuous_heuristic(obs: np.ndarray) -> np.ndarray:
    """Optimal for MoveToGoal1D-Continuous: move straight to the goal. (n, 1) float32 actions."""
    return np.clip(obs[:, 1:2] / MOVE, -1.0, 1.0).astype(np.float32)


def move_to_goal_discrete_heuristic(obs: np.ndarray) -> np.ndarray:
    """Optimal for MoveToGoal1D-Discrete: step towards the goal unless within 0.1. (n, 1) int32."""
    delta = obs[:, 1].astype(np.float64)
    act = np.where(np.abs(delta) < GOAL_RADIUS, 1, np.where(delta > 0, 2, 0))
    return act[:, None].astype(np.int32)


def move_to_goal_hybrid_heuristic(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optimal for MoveToGoal2D-Hybrid: move straight to the goal, grab on arrival.

    Returns (continuous (n, 2) float32, discrete (n, 1) int32).
    """
    delta = obs[:, 2:4].astype(np.float64)
    cont = np.clip(delta / MOVE, -1.0, 1.0)
    arrives = cast(np.ndarray, (np.abs(delta - cont * MOVE) < GOAL_RADIUS).all(axis=1))
    return cont.astype(np.float32), arrives[:, None].astype(np.int32)


def masked_choice_heuristic(obs: np.ndarray) -> np.ndarray:
    """Optimal for MaskedChoice: pick the observed rewarded action. (n, 1) int32."""
    return np.argmax(obs, axis=1)[:, None].astype(np.int32)
