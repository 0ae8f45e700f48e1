"""Sorter: visit a variable number of numbered tiles in increasing order (after ML-Agents' Sorter).

Each agent walks a ``board_size`` x ``board_size`` board (by default 7, or the side that gives at least
5 cells per tile and agent: 11 for 20 tiles, so that unvisited tiles seldom wall the way in). An episode places between
``min_tiles`` and ``num_tiles`` tiles (both 2 by default, at most 20) on distinct cells other than the
agent's; the tiles carry distinct numbers drawn from 1..20. The agent must step on them in increasing
order of their numbers.

Observations (in this order):

* ``VectorSensor`` (4,): the agent's cell (row, column) scaled to [-1, 1], the fraction of this
  episode's tiles already visited, and the number of tiles of this episode / 20.
* ``BufferSensor`` (20, 23), dimension properties (VARIABLE_SIZE, NONE): one row per tile: a one-hot of
  its number (20), its position relative to the agent (rows, columns) divided by ``board_size - 1``, and
  a visited flag. Tiles take the first rows in no particular order (their order is random, not by
  number); the rows of absent tiles are all zero, the padding the entity encoder masks.

Actions: one discrete branch of 5: 0 = stay, 1 = up, 2 = down, 3 = left, 4 = right; moves into the
walls are masked (and leave the agent where it is if taken anyway).

Rewards as ML-Agents' Sorter: each decision costs 1 / ``max_episode_steps`` (-0.005 with the default
200; ML-Agents' 5000 give its -0.0002); stepping on the next tile in order adds +1 and the episode ends
when every tile is visited; stepping on any other unvisited tile gives -1 and ends the episode (visited
tiles may be crossed freely). Episodes are interrupted after ``max_episode_steps`` decisions.

Returns: the best policy earns one per tile, less the cost of the shortest walks between them (around
the unvisited tiles); `optimal_return` estimates it from 300 seeded layouts with breadth-first search
(1.95 with 2 tiles on the default board). A random policy that respects the masks gets about -0.05 with
2 tiles (it seldom finds the second one in time), -0.87 with 4 to 8.
"""

from __future__ import annotations

import functools
import math
from collections import deque

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.base import VectorTask
from fledge.envs.builtin.gridworld import DOWN, LEFT, MOVES, RIGHT, UP
from fledge.errors import ConfigError

MAX_TILES = 20
ENTITY_SIZE = MAX_TILES + 3
TILE_REWARD = 1.0
WRONG_TILE_REWARD = -1.0
MAX_EPISODE_STEPS = 200
DEFAULT_AGENTS = 16
DEFAULT_BOARD = 7


class SorterTask(VectorTask):
    """Numbered tiles as variable-length entities, to be visited in increasing order."""

    behavior_name = "Sorter"

    def __init__(
        self,
        *,
        num_agents: int = DEFAULT_AGENTS,
        num_tiles: int = 2,
        min_tiles: int | None = None,
        board_size: int | None = None,
        max_episode_steps: int = MAX_EPISODE_STEPS,
    ) -> None:
        self.num_agents = check_count("Sorter", "num_agents", num_agents)
        self.num_tiles = check_count("Sorter", "num_tiles", num_tiles)
        self.min_tiles = check_count("Sorter", "min_tiles", self.num_tiles if min_tiles is None else min_tiles)
        if self.num_tiles > MAX_TILES or self.min_tiles > self.num_tiles:
            raise ConfigError(
                f"Environment 'Sorter': tiles must satisfy 1 <= min_tiles <= num_tiles <= {MAX_TILES}, got "
                f"min_tiles={self.min_tiles}, num_tiles={self.num_tiles}."
            )
        if board_size is None:
            board_size = max(DEFAULT_BOARD, math.ceil(math.sqrt(5 * (self.num_tiles + 1))))
        self.board_size = check_count("Sorter", "board_size", board_size, minimum=2)
        if self.board_size**2 < self.num_tiles + 1:
            raise ConfigError(
                f"Environment 'Sorter': a {self.board_size} x {self.board_size} board has no room for "
                f"{self.num_tiles} tiles and the agent; use a larger board_size."
            )
        self.max_episode_steps = check_count("Sorter", "max_episode_steps", max_episode_steps)
        self.step_reward = -1.0 / self.max_episode_steps
        self.spec = BehaviorSpec(
            observation_specs=[
                ObservationSpec.vector(4, "VectorSensor"),
                ObservationSpec(
                    (MAX_TILES, ENTITY_SIZE),
                    (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE),
                    ObservationType.DEFAULT,
                    "BufferSensor",
                ),
            ],
            action_spec=ActionSpec.create_discrete((5,)),
        )
        n = self.num_agents
        self._rows = np.arange(n)
        self._agent = np.zeros((n, 2), dtype=np.int64)
        self._tile = np.zeros((n, MAX_TILES, 2), dtype=np.int64)
        self._number = np.zeros((n, MAX_TILES), dtype=np.int64)  # 1..20; 0 = no tile in this row
        self._visited = np.zeros((n, MAX_TILES), dtype=bool)
        self._count = np.zeros(n, dtype=np.int64)

    # -- VectorTask --------------------------------------------------------------------------------
    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        k = len(idx)
        if k == 0:
            return
        b, m = self.board_size, self.num_tiles
        count = rng.integers(self.min_tiles, m + 1, size=k)
        cells = np.argsort(rng.random((k, b * b)), axis=1)[:, : m + 1]
        pos = np.stack(np.divmod(cells, b), axis=2)  # (k, m + 1, 2)
        numbers = np.argsort(rng.random((k, MAX_TILES)), axis=1)[:, :m] + 1
        present = np.arange(m)[None, :] < count[:, None]
        tile = np.zeros((k, MAX_TILES, 2), dtype=np.int64)
        tile[:, :m] = pos[:, 1:]
        number = np.zeros((k, MAX_TILES), dtype=np.int64)
        number[:, :m] = np.where(present, numbers, 0)
        self._agent[idx] = pos[:, 0]
        self._tile[idx] = tile
        self._number[idx] = number
        self._visited[idx] = False
        self._count[idx] = count

    def next_tile(self) -> np.ndarray:
        """The row of each agent's next tile to visit (the smallest unvisited number)."""
        waiting = np.where((self._number > 0) & ~self._visited, self._number, MAX_TILES + 1)
        return waiting.argmin(axis=1)

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        target = self.next_tile()
        moved = self._agent + MOVES[actions.discrete[:, 0]]
        np.clip(moved, 0, self.board_size - 1, out=self._agent)
        on = (self._number > 0) & (self._tile == self._agent[:, None, :]).all(axis=2)  # (n, 20)
        on &= ~self._visited
        hit = on.any(axis=1)
        row = on.argmax(axis=1)
        correct = hit & (row == target)
        wrong = hit & ~correct
        self._visited[self._rows[correct], row[correct]] = True
        reward = np.full(self.num_agents, self.step_reward, dtype=np.float32)
        reward[correct] += TILE_REWARD
        reward[wrong] = WRONG_TILE_REWARD
        finished = self._visited.sum(axis=1) == self._count
        return reward, wrong | finished

    def observe(self) -> list[np.ndarray]:
        n, scale = self.num_agents, 1.0 / (self.board_size - 1)
        vector = np.empty((n, 4), dtype=np.float32)
        vector[:, 0:2] = self._agent * (2.0 * scale) - 1.0
        vector[:, 2] = self._visited.sum(axis=1) / np.maximum(self._count, 1)  # 0 tiles only before a reset
        vector[:, 3] = self._count / MAX_TILES
        present = self._number > 0
        entities = np.zeros((n, MAX_TILES, ENTITY_SIZE), dtype=np.float32)
        agent_rows, tile_rows = np.nonzero(present)
        entities[agent_rows, tile_rows, self._number[present] - 1] = 1.0
        relative = (self._tile - self._agent[:, None, :]) * scale
        entities[:, :, MAX_TILES : MAX_TILES + 2] = np.where(present[:, :, None], relative, 0.0)
        entities[:, :, MAX_TILES + 2] = self._visited
        return [vector, entities]

    def action_mask(self) -> list[np.ndarray]:
        row, col, last = self._agent[:, 0], self._agent[:, 1], self.board_size - 1
        mask = np.zeros((self.num_agents, 5), dtype=bool)
        mask[:, UP] = row == 0
        mask[:, DOWN] = row == last
        mask[:, LEFT] = col == 0
        mask[:, RIGHT] = col == last
        return [mask]

    def optimal_return(self) -> float:
        return planned_return(self.board_size, self.min_tiles, self.num_tiles, self.max_episode_steps)

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8: every board with its numbered tiles (visited ones dim, the next
        one outlined), the agent and its chosen move."""
        from fledge.envs.builtin.sorter_render import draw_sorter

        chosen = None if actions is None or actions.discrete.size == 0 else actions.discrete[:, 0]
        return draw_sorter(
            self._agent.copy(),
            self._tile.copy(),
            self._number.copy(),
            self._visited.copy(),
            self.next_tile(),
            board_size=self.board_size,
            actions=chosen,
        )

    # -- a planner on the true state (tests and reference returns) -----------------------------------
    def plan(self) -> np.ndarray:
        """The first move of a shortest walk to each agent's next tile around its other unvisited tiles:
        (n, 1) int32 actions, an optimal policy."""
        act = np.zeros((self.num_agents, 1), dtype=np.int32)
        target = self.next_tile()
        for i in range(self.num_agents):
            blocked = {
                (int(r), int(c))
                for j, (r, c) in enumerate(self._tile[i])
                if self._number[i, j] > 0 and not self._visited[i, j] and j != target[i]
            }
            goal = (int(self._tile[i, target[i], 0]), int(self._tile[i, target[i], 1]))
            start = (int(self._agent[i, 0]), int(self._agent[i, 1]))
            act[i, 0] = _first_move(self.board_size, start, goal, blocked)[0]
        return act


def _first_move(
    size: int, start: tuple[int, int], goal: tuple[int, int], blocked: set[tuple[int, int]]
) -> tuple[int, int]:
    """(first action, length) of a shortest walk from start to goal avoiding `blocked` (breadth-first)."""
    if start == goal:
        return 0, 0
    first: dict[tuple[int, int], int] = {start: 0}
    queue = deque([(start, 0)])
    while queue:
        (r, c), dist = queue.popleft()
        for action in (UP, DOWN, LEFT, RIGHT):
            nxt = (r + int(MOVES[action][0]), c + int(MOVES[action][1]))
            if not (0 <= nxt[0] < size and 0 <= nxt[1] < size) or nxt in first or nxt in blocked:
                continue
            first[nxt] = first[(r, c)] or action
            if nxt == goal:
                return first[nxt], dist + 1
            queue.append((nxt, dist + 1))
    return 0, 0  # walled in by other tiles: stay (the episode is then interrupted)


@functools.lru_cache(maxsize=32)
def planned_return(
    board_size: int, min_tiles: int, num_tiles: int, max_episode_steps: int, layouts: int = 300
) -> float:
    """The mean return of `SorterTask.plan` (an optimal policy) over `layouts` seeded layouts."""
    task = SorterTask(
        num_agents=1,
        num_tiles=num_tiles,
        min_tiles=min_tiles,
        board_size=board_size,
        max_episode_steps=max_episode_steps,
    )
    rng = np.random.default_rng(12345)
    total = 0.0
    for _ in range(layouts):
        task.reset_agents(np.arange(1), rng)
        for _ in range(max_episode_steps):
            reward, done = task.apply(ActionTuple(discrete=task.plan()), rng)
            total += float(reward[0])
            if done[0]:
                break
    return total / layouts
