"""WallJump: reach the far side of a wall, jumping over it, or pushing a block to it and jumping from there.

A WallJump-like task (ML-Agents' WallJump, as a small grid game in numpy). Each area is a floor of
`WIDTH` (5) columns and `ROWS` (11) rows seen from above; a wall fills row `WALL_ROW` (8) across the
whole width, the agent starts anywhere before it (rows 0-7), and the goal is the far row (10). Stepping
off the floor's edge is a fall: -1, and the episode ends. The agent jumps `JUMP` (4.5) high: a wall up
to that height is jumped over from the ground (a wall of height 0 is walked over); elsewhere a jump
from the floor lands where it started. A block `BLOCK_HEIGHT` (4) high starts in a random column, the
farther from the wall the higher the wall: against it for walls up to 4.5, then one row farther for
every `ROWS_PER_PUSH` (0.75) of wall above 4.5, at most `MAX_PUSHES` (5) rows away (one row for walls
up to 5.25, two up to 6, three up to 6.75, four up to 7.5, five above). Moving into the block without
a jump pushes it one cell where it can go (within rows 0-7 and the floor); a forward jump into it (from
behind) lands on it; a jump into it from another side does nothing. A forward jump from the block
clears 4 + 4.5 = 8.5 when the block stands against the wall, and `GAP_LOSS` (4) less for every row
between them (no more than a jump from the floor); a jump that falls short lands on the floor ahead.
So every wall above 4.5 is cleared by getting behind the block, pushing it to the wall, climbing it
and jumping: the higher the wall, the farther the block must be pushed (walls of 8: five pushes), so
the skill that walls of 8 need grows step by step from the one lower walls need.

Two behaviors, switched by wall height as in ML-Agents: at every episode start an agent is given a
small wall (probability 1/3; behavior `SmallWallJump`, height `small_wall_height`) or a big one
(`BigWallJump`, height `big_wall_height`); it ends its episode under one behavior and may start the
next under the other (same agent id). Environment parameters: `small_wall_height` (default 4),
`big_wall_height` (default 8), drawn per agent at every episode start.

Actions: two discrete branches, move (none, forward, back, left, right) and jump (no, yes).
Observations (8): agent column and row (scaled to [0, 1]), on the block (0/1), the block's column and
row relative to the agent (scaled), the wall height / 8, past the wall (0/1), the rows between the block
and the wall / 7. Rewards: -0.005 per decision, +1 on reaching the goal row, -1 on falling off
(both end the episode); episodes are interrupted after 50 decisions. `heuristic` solves every wall
up to 8.5.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.teams import TeamTask, TeamTaskEnv

WIDTH = 5
ROWS = 11
WALL_ROW = 8
GOAL_ROW = ROWS - 1
JUMP = 4.5
BLOCK_HEIGHT = 4.0
STEP_REWARD = -0.005
GOAL_REWARD = 1.0
FALL_REWARD = -1.0
ROWS_PER_PUSH = 0.75  # the block starts one row farther from the wall for every 0.75 of wall above JUMP
MAX_PUSHES = 5  # rows from the wall the block starts at most
GAP_LOSS = 4.0  # height a jump from the block loses per row between the block and the wall (all it adds)
FORWARD = 1
MAX_EPISODE_STEPS = 50
SMALL_SHARE = 1.0 / 3.0  # episodes with a small wall
SMALL, BIG = 0, 1
BEHAVIORS = ("SmallWallJump", "BigWallJump")
OBS_SIZE = 8
HEIGHT_SCALE = 8.0
# move branch: none, forward (+row), back (-row), left (-column), right (+column)
_D_ROW = np.array([0, 1, -1, 0, 0])
_D_COL = np.array([0, 0, 0, -1, 1])


def block_distance(height: np.ndarray) -> np.ndarray:
    """Rows between the wall and the block at an episode start: 0 for walls up to JUMP, then one more for every
    ROWS_PER_PUSH of wall above it, at most MAX_PUSHES."""
    rows = np.ceil((np.asarray(height, dtype=np.float64) - JUMP) / ROWS_PER_PUSH)
    return np.clip(rows, 0, MAX_PUSHES).astype(np.int64)


class WallJumpTask(TeamTask):
    """Agents of two behaviors (SmallWallJump, BigWallJump), one per area; each switches per episode."""

    behavior_name = "WallJump"
    behavior_ids = BEHAVIORS
    parameter_defaults = MappingProxyType({"small_wall_height": 4.0, "big_wall_height": 8.0})

    def __init__(self, *, num_agents: int = 16, max_episode_steps: int = MAX_EPISODE_STEPS) -> None:
        self.num_agents = check_count("WallJump", "num_agents", num_agents)
        self.max_episode_steps = check_count("WallJump", "max_episode_steps", max_episode_steps, minimum=0)
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(OBS_SIZE, "VectorSensor")],
            action_spec=ActionSpec.create_discrete((5, 2)),
        )
        n = self.num_agents
        self.agent_behavior = np.zeros(n, dtype=np.int64)
        self.col = np.zeros(n, dtype=np.int64)
        self.row = np.zeros(n, dtype=np.int64)
        self.on_block = np.zeros(n, dtype=bool)
        self.block_col = np.zeros(n, dtype=np.int64)
        self.block_row = np.zeros(n, dtype=np.int64)
        self.height = np.zeros(n)

    # -- VectorTask --------------------------------------------------------------------------------
    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        k = len(idx)
        if k == 0:
            return
        small = rng.random(k) < SMALL_SHARE
        self.agent_behavior[idx] = np.where(small, SMALL, BIG)
        values = self.parameters.values
        self.height[idx] = np.maximum(
            np.where(small, values["small_wall_height"][idx], values["big_wall_height"][idx]), 0.0
        )
        self.block_col[idx] = rng.integers(0, WIDTH, size=k)
        self.block_row[idx] = WALL_ROW - 1 - block_distance(self.height[idx])
        cells = rng.integers(0, WIDTH * WALL_ROW - 1, size=k)  # any start cell but the block's
        block_cell = self.block_row[idx] * WIDTH + self.block_col[idx]
        cells = cells + (cells >= block_cell)
        self.row[idx], self.col[idx] = np.divmod(cells, WIDTH)
        self.on_block[idx] = False

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        move = np.clip(actions.discrete[:, 0].astype(np.int64), 0, 4)
        jump = actions.discrete[:, 1] > 0
        row, col = self.row, self.col
        t_row, t_col = row + _D_ROW[move], col + _D_COL[move]
        moving = move > 0
        inside = (t_row >= 0) & (t_row < ROWS) & (t_col >= 0) & (t_col < WIDTH)
        grounded_jump = jump & ~self.on_block  # a jump on the floor lands where it started unless it clears
        fall = moving & ~inside & ~grounded_jump  # off the floor's edge
        # from the ground: over a wall up to JUMP with a jump (a wall of 0 is walked over)
        into_wall = moving & ~self.on_block & (t_row == WALL_ROW) & (row == WALL_ROW - 1)
        cross_ground = into_wall & (self.height <= np.where(jump, JUMP, 0.0))
        # from the block: a forward jump clears less the farther the block stands from the wall
        gap = np.maximum(WALL_ROW - 1 - row, 0)
        from_block = self.on_block & (move == FORWARD) & (jump | (gap == 0))
        leap = from_block & (self.height <= BLOCK_HEIGHT + np.where(jump, JUMP, 0.0) - GAP_LOSS * gap)
        cross = cross_ground | leap
        at_block = moving & ~self.on_block & (t_row == self.block_row) & (t_col == self.block_col)
        b_row, b_col = self.block_row + _D_ROW[move], self.block_col + _D_COL[move]
        climb = at_block & jump & (move == FORWARD)  # a forward jump into the block lands on it
        push = at_block & ~jump & (b_row >= 0) & (b_row < WALL_ROW) & (b_col >= 0) & (b_col < WIDTH)
        # plain moves: inside the floor, never into the wall row (from either side), not into the block,
        # not with a jump from the floor (it lands where it started); off the block a failed leap lands
        # on the floor ahead
        walk = moving & inside & (t_row != WALL_ROW) & ~at_block & ~cross & ~grounded_jump
        self.block_row = np.where(push, b_row, self.block_row)
        self.block_col = np.where(push, b_col, self.block_col)
        go = walk | push | climb
        self.row = np.where(cross, WALL_ROW + 1, np.where(go, t_row, row))
        self.col = np.where(go, t_col, col)
        self.on_block = np.where(cross | walk | push | fall, False, np.where(climb, True, self.on_block))
        goal = self.row == GOAL_ROW
        reward = STEP_REWARD + np.where(goal, GOAL_REWARD, 0.0) + np.where(fall, FALL_REWARD, 0.0)
        return reward.astype(np.float32), goal | fall

    def observe(self) -> list[np.ndarray]:
        n = self.num_agents
        out = np.empty((n, OBS_SIZE), dtype=np.float32)
        out[:, 0] = self.col / (WIDTH - 1)
        out[:, 1] = self.row / (ROWS - 1)
        out[:, 2] = self.on_block
        out[:, 3] = (self.block_col - self.col) / (WIDTH - 1)
        out[:, 4] = (self.block_row - self.row) / (ROWS - 1)
        out[:, 5] = self.height / HEIGHT_SCALE
        out[:, 6] = self.row > WALL_ROW
        out[:, 7] = (WALL_ROW - 1 - self.block_row) / (WALL_ROW - 1)
        return [out]

    def optimal_return(self) -> float | None:
        return None  # depends on the start cells and the wall heights

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8: every area from above (see walljump_render.draw_walljump)."""
        from fledge.envs.builtin.walljump_render import draw_walljump

        return draw_walljump(
            col=self.col.copy(),
            row=self.row.copy(),
            on_block=self.on_block.copy(),
            block_col=self.block_col.copy(),
            block_row=self.block_row.copy(),
            height=self.height.copy(),
            behavior=self.agent_behavior.copy(),
            behaviors=BEHAVIORS,
            width=WIDTH,
            rows=ROWS,
            wall_row=WALL_ROW,
        )


class WallJumpEnv(TeamTaskEnv):
    """A TeamTaskEnv whose agents change behavior between episodes: an agent's terminal step goes to the
    behavior it played the episode with, its next decisions to the one it starts the next episode with."""

    def __init__(self, task: WallJumpTask, *, seed: int = 0, num_areas: int = 1) -> None:
        super().__init__(task, seed=seed, num_areas=num_areas)
        self._ended_members = self._members

    def _membership(self) -> dict[str, np.ndarray]:
        return {b: self.team_task.agent_behavior == i for i, b in enumerate(self.team_task.behavior_ids)}

    def reset(self) -> None:
        super().reset()
        self._members = self._ended_members = self._membership()

    def step(self) -> None:
        before = self._membership()
        super().step()
        self._ended_members, self._members = before, self._membership()

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        decision, _ = super().get_steps(behavior_name)  # rows of the agents that play it now
        members, self._members = self._members, self._ended_members
        try:
            _, terminal = super().get_steps(behavior_name)  # rows of the agents that ended an episode with it
        finally:
            self._members = members
        return decision, terminal


def heuristic(obs: np.ndarray) -> np.ndarray:
    """Actions (n, 2) that reach the goal whatever the wall (up to 8.5): over a low wall with a jump;
    otherwise push the block to the wall along its column, climb it and jump from it."""
    obs = np.asarray(obs, dtype=np.float64)
    n = len(obs)
    col = np.rint(obs[:, 0] * (WIDTH - 1)).astype(np.int64)
    row = np.rint(obs[:, 1] * (ROWS - 1)).astype(np.int64)
    on_block = obs[:, 2] > 0.5
    b_col = col + np.rint(obs[:, 3] * (WIDTH - 1)).astype(np.int64)
    b_row = row + np.rint(obs[:, 4] * (ROWS - 1)).astype(np.int64)
    high = obs[:, 5] * HEIGHT_SCALE > JUMP
    out = np.zeros((n, 2), dtype=np.int32)
    forward, back, left, right = 1, 2, 3, 4
    for i in range(n):
        if row[i] > WALL_ROW:
            out[i] = (forward, 0)  # on to the goal
            continue
        if on_block[i] or (not high[i] and row[i] == WALL_ROW - 1):
            out[i] = (forward, 1)  # over a low wall, or from the block
            continue
        if not high[i]:  # walk to the wall; a block stuck against it ahead is climbed
            stuck_ahead = col[i] == b_col[i] and row[i] + 1 == b_row[i] == WALL_ROW - 1
            out[i] = (forward, int(stuck_ahead))
            continue
        if b_row[i] == WALL_ROW - 1 and col[i] == b_col[i] and row[i] == WALL_ROW - 2:
            out[i] = (forward, 1)  # climb the block that stands against the wall
            continue
        # get behind the block (one row before it, same column), then push it forward
        t_row, t_col = b_row[i] - 1, b_col[i]
        sidestep = left if b_col[i] > 0 else right
        if (row[i], col[i]) == (t_row, t_col):
            out[i] = (forward, 0)
        elif col[i] == b_col[i] and row[i] > b_row[i]:
            out[i] = (sidestep, 0)
        elif row[i] > t_row:
            out[i] = (back, 0)
        elif col[i] != t_col:
            out[i] = (left if col[i] > t_col else right, 0)
        else:
            out[i] = (forward, 0)
    return out
