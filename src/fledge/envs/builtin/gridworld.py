"""GridWorld: reach the goal the goal signal names, seen through a top-down camera (ML-Agents' GridWorld).

Each agent lives on its own ``grid_size`` x ``grid_size`` board (5 by default) walled on every side. An
episode places the agent and two goals, a green plus and a red x, on three different cells chosen
uniformly at random, and draws which of the two goals is the one to reach.

Observations (in this order):

* ``CameraSensor`` (3, S, S) float32 in [0, 1], S = ``grid_size * scale``: the board from above,
  channels first, one ``scale`` x ``scale`` block of pixels per cell. Channel 0 (red) shows the red x,
  channel 1 (green) the green plus, channel 2 (blue) the agent. With ``scale`` >= 3 the goals are drawn
  as their shapes (a plus, an x) and the agent as a full block; below 3 every object fills its block.
  Dimension properties (NONE, TRANSLATIONAL_EQUIVARIANCE, TRANSLATIONAL_EQUIVARIANCE): a visual
  observation. ``scale`` upsamples the board so that each visual encoder's minimum resolution can be
  met (`scale_for_encoder`); by default it is the smallest factor giving at least 20 pixels, the
  minimum of the default encoder ``simple``.
* ``GoalSignal`` (2,) float32, ObservationType.GOAL_SIGNAL: one-hot of the goal to reach,
  index 0 = green plus, index 1 = red x. With ``show_goal`` false it is all zero: nothing tells which
  goal is the right one (for tests: no policy then beats a mean return of about 0).

Actions: one discrete branch of 5: 0 = stay, 1 = up (row - 1), 2 = down, 3 = left (column - 1),
4 = right. With ``mask_actions`` (the default) moves into a wall are masked; a masked move that is
taken anyway (or any wall move with masking off) leaves the agent where it is.

Rewards as ML-Agents' GridWorld: -0.01 per decision; stepping on a goal ends the episode and that
decision's reward is set to +1 (the goal of the signal) or -1 (the other goal), replacing the -0.01.
Episodes are interrupted after 100 decisions.

Environment parameters (for curricula), drawn per agent at its episode start:

* ``grid_size`` (default the env argument ``grid_size``): the side of the board the episode is played on,
  rounded and clipped to 3 .. the env argument (which fixes the camera and so the observation's shape). A
  smaller board lies in the top-left corner of the camera's; the cells beyond it are wall, grey in every
  channel (0.5), and moves into them are masked as moves off the board are.
* ``num_goals`` (1): how many goals of each kind (plus and x) the board holds, rounded and clipped to
  1 .. as many as fit beside the agent. Any goal of the signalled kind gives +1, any of the other -1.

Optimal return: the shortest path to the goal of the signal that avoids the other goal has
d = Manhattan distance decisions, or d + 2 when the other goal lies on the straight line between them;
the return is 1 - 0.01 (d - 1). `optimal_return` averages it exactly over all starting layouts
(0.9764 on a 5 x 5 board; a random policy that respects the masks gets about -0.25). ML-Agents' benchmark mean reward is 0.8.
"""

from __future__ import annotations

import functools
from types import MappingProxyType

import numpy as np

from fledge.envs.api import (
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)
from fledge.envs.builtin._common import check_count, one_hot
from fledge.envs.builtin.base import VectorTask
from fledge.errors import ConfigError

STEP_REWARD = -0.01
GOAL_REWARD = 1.0
WRONG_GOAL_REWARD = -1.0
MAX_EPISODE_STEPS = 100
DEFAULT_GRID_SIZE = 5
DEFAULT_AGENTS = 9
PLUS, CROSS = 0, 1  # goal indices of the goal signal: green plus, red x
STAY, UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3, 4
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], dtype=np.int64)  # (row, column) per action

# Smallest side (pixels) each visual encoder accepts (spec 8.1).
ENCODER_MIN_RESOLUTION = {"simple": 20, "nature_cnn": 36, "resnet": 15, "match3": 5, "fully_connected": 1}

VISUAL_PROPERTIES = (
    DimensionProperty.NONE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
)

_EMPTY, _AGENT, _PLUS, _CROSS, _WALL = 0, 1, 2, 3, 4  # cell contents, index into the stamps
MIN_GRID_SIZE = 3


def wall_moves(cells: np.ndarray, size: int | np.ndarray) -> np.ndarray:
    """(n, 5) bool action mask, True = masked: the moves of agents at `cells` (n, 2) (row, column) that would
    leave a `size` x `size` board (`size`: one for all, or one per agent)."""
    row, col, last = cells[:, 0], cells[:, 1], size - 1
    mask = np.zeros((len(cells), 5), dtype=bool)
    mask[:, UP] = row == 0
    mask[:, DOWN] = row == last
    mask[:, LEFT] = col == 0
    mask[:, RIGHT] = col == last
    return mask


def scale_for_encoder(vis_encode_type: str, grid_size: int = DEFAULT_GRID_SIZE) -> int:
    """The smallest integer upsampling of a `grid_size` board that `vis_encode_type` accepts."""
    minimum = ENCODER_MIN_RESOLUTION.get(str(vis_encode_type))
    if minimum is None:
        known = ", ".join(ENCODER_MIN_RESOLUTION)
        raise ConfigError(f"Environment 'GridWorld': unknown vis_encode_type {vis_encode_type!r} (known: {known}).")
    return max(1, -(-minimum // int(grid_size)))


def _stamps(scale: int) -> np.ndarray:
    """(5, 3, scale, scale) float32: the pixels of an empty cell, the agent, the plus, the x and a wall."""
    out = np.zeros((5, 3, scale, scale), dtype=np.float32)
    out[_AGENT, 2] = 1.0
    out[_WALL] = 0.5
    if scale < 3:
        out[_PLUS, 1] = 1.0
        out[_CROSS, 0] = 1.0
        return out
    mid, width = scale // 2, max(1, scale // 4)
    lo, hi = mid - width // 2, mid - width // 2 + width
    if scale % 2 == 0:  # an even block has no middle pixel: a band two wider, centred
        lo, hi = mid - 1 - (width - 1) // 2, mid + 1 + (width - 1) // 2
    out[_PLUS, 1, lo:hi, :] = 1.0
    out[_PLUS, 1, :, lo:hi] = 1.0
    idx = np.arange(scale)
    for d in range(-(width // 2), width - width // 2):
        keep = (idx + d >= 0) & (idx + d < scale)
        out[_CROSS, 0, idx[keep], (idx + d)[keep]] = 1.0
        out[_CROSS, 0, idx[keep], (scale - 1 - idx - d)[keep]] = 1.0
    return out


@functools.lru_cache(maxsize=16)
def expected_optimal_return(grid_size: int) -> float:
    """The mean return of the optimal policy over all layouts (agent, plus, x on distinct cells, either goal)."""
    n = grid_size
    cells = np.stack(np.divmod(np.arange(n * n), n), axis=1)  # (n*n, 2) row, column
    a, t, o = np.meshgrid(np.arange(n * n), np.arange(n * n), np.arange(n * n), indexing="ij")
    keep = (a != t) & (a != o) & (t != o)
    pa, pt, po = cells[a[keep]], cells[t[keep]], cells[o[keep]]
    d = np.abs(pa - pt).sum(axis=1)
    same_row = (pa[:, 0] == pt[:, 0]) & (po[:, 0] == pa[:, 0])
    same_col = (pa[:, 1] == pt[:, 1]) & (po[:, 1] == pa[:, 1])
    between_row = same_row & ((po[:, 1] - pa[:, 1]) * (po[:, 1] - pt[:, 1]) < 0)
    between_col = same_col & ((po[:, 0] - pa[:, 0]) * (po[:, 0] - pt[:, 0]) < 0)
    d = d + 2 * (between_row | between_col)
    return float(np.mean(GOAL_REWARD + STEP_REWARD * (d - 1)))


class GridWorldTask(VectorTask):
    """ML-Agents' GridWorld, vectorised: 9 agents by default, a camera and a goal signal, 5 moves."""

    behavior_name = "GridWorld"

    def __init__(
        self,
        *,
        num_agents: int = DEFAULT_AGENTS,
        grid_size: int = DEFAULT_GRID_SIZE,
        scale: int | None = None,
        mask_actions: bool = True,
        show_goal: bool = True,
        max_episode_steps: int = MAX_EPISODE_STEPS,
    ) -> None:
        self.num_agents = check_count("GridWorld", "num_agents", num_agents)
        self.grid_size = check_count("GridWorld", "grid_size", grid_size, minimum=MIN_GRID_SIZE)
        self.parameter_defaults = MappingProxyType({"grid_size": float(self.grid_size), "num_goals": 1.0})
        if scale is None:
            scale = scale_for_encoder("simple", self.grid_size)
        self.scale = check_count("GridWorld", "scale", scale)
        if not isinstance(mask_actions, bool):
            raise ConfigError(f"Environment 'GridWorld': mask_actions must be true or false, got {mask_actions!r}.")
        self.mask_actions = mask_actions
        if not isinstance(show_goal, bool):
            raise ConfigError(f"Environment 'GridWorld': show_goal must be true or false, got {show_goal!r}.")
        self.show_goal = show_goal
        self.max_episode_steps = check_count("GridWorld", "max_episode_steps", max_episode_steps, minimum=0)
        side = self.grid_size * self.scale
        self.spec = BehaviorSpec(
            observation_specs=[
                ObservationSpec((3, side, side), VISUAL_PROPERTIES, ObservationType.DEFAULT, "CameraSensor"),
                ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.GOAL_SIGNAL, "GoalSignal"),
            ],
            action_spec=ActionSpec.create_discrete((5,)),
        )
        n = self.num_agents
        self._rows = np.arange(n)
        self._agent = np.zeros((n, 2), dtype=np.int64)
        self._goals = np.zeros((n, 2, 2), dtype=np.int64)  # (agent, PLUS / CROSS, row / column)
        self._target = np.zeros(n, dtype=np.int64)
        self._board = np.zeros((n, self.grid_size, self.grid_size), dtype=np.int64)  # goals and walls
        self._size = np.full(n, self.grid_size, dtype=np.int64)  # the side each agent plays on
        self._count = np.ones(n, dtype=np.int64)  # goals of each kind on each agent's board
        self._stamps = _stamps(self.scale)

    # -- VectorTask --------------------------------------------------------------------------------
    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        k = len(idx)
        if k == 0:
            return
        g = self.grid_size
        if self.parameters.samplers:
            values = self.parameters.values
            self._size[idx] = np.clip(np.rint(values["grid_size"][idx]), MIN_GRID_SIZE, g).astype(np.int64)
            fits = (self._size[idx] ** 2 - 1) // 2
            self._count[idx] = np.clip(np.rint(values["num_goals"][idx]), 1, fits).astype(np.int64)
        sizes, counts = self._size[idx], self._count[idx]
        board = np.zeros((k, g, g), dtype=np.int64)
        if (sizes < g).any():
            line = np.arange(g)
            board[(line[None, :, None] >= sizes[:, None, None]) | (line[None, None, :] >= sizes[:, None, None])] = _WALL
        for n, m in sorted({(int(a), int(b)) for a, b in zip(sizes, counts)}):  # the default: one draw, as before
            sel = np.flatnonzero((sizes == n) & (counts == m))
            cells = np.argsort(rng.random((len(sel), n * n)), axis=1)[:, : 1 + 2 * m]  # distinct cells per agent
            pos = np.stack(np.divmod(cells, n), axis=2)  # (agents, 1 + 2m, 2): agent, m plus, m x
            self._agent[idx[sel]] = pos[:, 0]
            self._goals[idx[sel]] = pos[:, [1, 1 + m]]
            board[sel[:, None], pos[:, 1 : 1 + m, 0], pos[:, 1 : 1 + m, 1]] = _PLUS
            board[sel[:, None], pos[:, 1 + m :, 0], pos[:, 1 + m :, 1]] = _CROSS
        self._target[idx] = rng.integers(0, 2, size=k)
        self._board[idx] = board

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        moved = self._agent + MOVES[actions.discrete[:, 0]]
        np.clip(moved, 0, (self._size - 1)[:, None], out=self._agent)
        cell = self._board[self._rows, self._agent[:, 0], self._agent[:, 1]]
        named = np.where(self._target == PLUS, _PLUS, _CROSS)
        right = cell == named
        wrong = ((cell == _PLUS) | (cell == _CROSS)) & ~right
        reward = np.full(self.num_agents, STEP_REWARD, dtype=np.float32)
        reward[right] = GOAL_REWARD
        reward[wrong] = WRONG_GOAL_REWARD
        return reward, right | wrong

    def observe(self) -> list[np.ndarray]:
        goal = one_hot(self._target, 2)
        if not self.show_goal:
            goal[:] = 0.0
        return [self.image(), goal]

    def action_mask(self) -> list[np.ndarray] | None:
        if not self.mask_actions:
            return None
        return [wall_moves(self._agent, self._size)]

    def optimal_return(self) -> float:
        return expected_optimal_return(self.grid_size)

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8: every agent's camera image, enlarged, with its goal signal and
        its chosen move (`actions`, one row per agent) as an arrow."""
        from fledge.envs.builtin.gridworld_render import draw_gridworld

        chosen = None if actions is None or actions.discrete.size == 0 else actions.discrete[:, 0]
        return draw_gridworld(self.image(), self._target.copy(), self._agent.copy(), self.scale, chosen)

    # -- helpers -----------------------------------------------------------------------------------
    def image(self) -> np.ndarray:
        """The camera observation (n, 3, S, S) float32, a new array."""
        n, g, s = self.num_agents, self.grid_size, self.scale
        board = self._board.copy()
        board[self._rows, self._agent[:, 0], self._agent[:, 1]] = _AGENT
        if s == 1:
            return np.ascontiguousarray(self._stamps[board, :, 0, 0].transpose(0, 3, 1, 2))
        blocks = self._stamps[board]  # (n, g, g, 3, s, s)
        return np.ascontiguousarray(blocks.transpose(0, 3, 1, 4, 2, 5)).reshape(n, 3, g * s, g * s)


def heuristic(image: np.ndarray, goal: np.ndarray, scale: int) -> np.ndarray:
    """A shortest-path policy from the observations: step towards the signalled goal, around the other one.

    image: (n, 3, S, S) camera observations; goal: (n, 2) goal signals; returns (n, 1) int32 actions.
    """
    n, _, side, _ = image.shape
    g = side // scale
    blocks = image.reshape(n, 3, g, scale, g, scale)
    cells = blocks.max(axis=(3, 5)) > 0.5  # (n, 3, g, g)
    wall = np.abs(blocks[:, 2].mean(axis=(2, 4)) - 0.5) < 0.25  # (n, g, g): grey cells beyond a smaller board
    flat = cells.reshape(n, 3, g * g)
    agent = np.stack(np.divmod(flat[:, 2].argmax(axis=1), g), axis=1)
    target_channel = np.where(goal[:, PLUS] > 0.5, 1, 0)
    rows = np.arange(n)
    target = np.stack(np.divmod(flat[rows, target_channel].argmax(axis=1), g), axis=1)
    other = np.stack(np.divmod(flat[rows, 1 - target_channel].argmax(axis=1), g), axis=1)
    act = np.zeros(n, dtype=np.int32)
    for i in range(n):
        best, best_d = STAY, None
        for a in (UP, DOWN, LEFT, RIGHT):
            nxt = agent[i] + MOVES[a]
            if (nxt < 0).any() or (nxt >= g).any() or (nxt == other[i]).all() or wall[i, nxt[0], nxt[1]]:
                continue
            d = int(np.abs(nxt - target[i]).sum())
            # a straight line blocked by the other goal costs two more
            if (nxt[0] == target[i][0] == other[i][0]) and (other[i][1] - nxt[1]) * (other[i][1] - target[i][1]) < 0:
                d += 2
            if (nxt[1] == target[i][1] == other[i][1]) and (other[i][0] - nxt[0]) * (other[i][0] - target[i][0]) < 0:
                d += 2
            if best_d is None or d < best_d:
                best, best_d = a, d
        act[i] = best
    return act[:, None]
