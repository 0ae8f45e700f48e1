"""DungeonEscape: three agents, one group; one must give itself up for the key, another escapes with it.

A cooperative task in the manner of ML-Agents' DungeonEscape, on a ``grid_size`` x ``grid_size`` board
(5 by default) per area, 3 agents per area forming one group (group id = area + 1). An episode places a
guard and the 3 agents on distinct random cells other than the door, which is the corner cell (0, 0).

- An agent that steps onto the living guard's cell is taken: its episode ends at once (reward 0, not an
  interruption) and it leaves the board; the guard leaves too and drops the key on its cell.
- An agent on the key's cell picks it up.
- When the agent holding the key reaches the door, the group escapes: every agent still on the board
  ends its episode with the group reward +1.
- After ``max_episode_steps`` decisions the group's episode is interrupted (group reward 0).
Individual rewards are always 0: only the group reward says what was good, and the agent that gave
itself up never receives it (it has left). A learner that credits the group (POCA) learns the sacrifice;
independent learners (PPO) see the sacrifice as an end with nothing after it.

Observations (16): own (x, y); guard present and its (x, y); key on the floor and its (x, y); holds the
key; a groupmate holds the key; for each of the two groupmates in id order: on the board, and its
(x, y). Positions scaled to [0, 1]; absent things are zeros.
With ``camera`` k > 0 each agent also sees the board from above (a second observation, ``CameraSensor``,
(4, S, S) float32 with S = k x ``grid_size``, channels first, k x k pixels per cell, row = y): channel 0
the agent itself, 1 its groupmates on the board, 2 the living guard, 3 the key on the floor. The visual
encoders' minimum sides apply (k = 1 on the 5 x 5 board suits match3 and fully_connected; k = 4, simple).
Actions: one discrete branch of 5: 0 stay, 1 up (y - 1), 2 down, 3 left (x - 1), 4 right; moves into a
wall leave the agent where it is.
The env records `DungeonEscape/Escaped` (1 escaped, 0 interrupted) per finished group episode.

The task is a `GroupTask` (builtin/groups.py): agents that left do not decide until their group
restarts, which happens in the step after the whole group has ended.
"""

from __future__ import annotations

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.groups import GroupTask
from fledge.errors import ConfigError

BEHAVIOR = "DungeonEscape"
GROUP_SIZE = 3
OBS_SIZE = 16
MAX_EPISODE_STEPS = 40
CAMERA_CHANNELS = 4
CAMERA_PROPERTIES = (
    DimensionProperty.NONE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
)
MOVES = np.array([[0, 0], [0, -1], [0, 1], [-1, 0], [1, 0]], dtype=np.int64)


class DungeonEscapeTask(GroupTask):
    behavior_name = BEHAVIOR

    def __init__(
        self,
        num_agents: int = GROUP_SIZE,
        grid_size: int = 5,
        max_episode_steps: int = MAX_EPISODE_STEPS,
        camera: int = 0,
    ) -> None:
        n = check_count(BEHAVIOR, "num_agents", num_agents)
        if n % GROUP_SIZE:
            raise ConfigError(
                f"Environment '{BEHAVIOR}': num_agents {n} is not a multiple of {GROUP_SIZE} (one group each)."
            )
        self.size = check_count(BEHAVIOR, "grid_size", grid_size)
        if self.size < 3:
            raise ConfigError(f"Environment '{BEHAVIOR}': grid_size {grid_size} is too small; use 3 or more.")
        self.max_episode_steps = check_count(BEHAVIOR, "max_episode_steps", max_episode_steps)
        self.camera = check_count(BEHAVIOR, "camera", camera, minimum=0)
        side = self.camera * self.size
        cameras = [
            ObservationSpec((CAMERA_CHANNELS, side, side), CAMERA_PROPERTIES, ObservationType.DEFAULT, "CameraSensor")
        ]
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(OBS_SIZE, "VectorSensor"), *(cameras if self.camera else [])],
            action_spec=ActionSpec.create_discrete((5,)),
        )
        a = n // GROUP_SIZE
        self.areas = a
        self.num_agents = n
        self.agent_groups = (np.arange(n) // GROUP_SIZE + 1).astype(np.int32)
        self.pos = np.zeros((a, GROUP_SIZE, 2), dtype=np.int64)
        self.on_board = np.zeros((a, GROUP_SIZE), dtype=bool)
        self.guard = np.zeros((a, 2), dtype=np.int64)
        self.guard_alive = np.zeros(a, dtype=bool)
        self.key = np.zeros((a, 2), dtype=np.int64)
        self.key_on_floor = np.zeros(a, dtype=bool)
        self.holder = np.full(a, -1, dtype=np.int64)
        self.steps = np.zeros(a, dtype=np.int64)
        self.finished = np.zeros(a, dtype=bool)  # every member ended: restart in the next step
        self.group_reward = np.zeros(n, dtype=np.float32)
        self.interrupted = np.zeros(n, dtype=bool)

    # -- GroupTask ---------------------------------------------------------------------------------
    def deciding(self) -> np.ndarray:
        return self.on_board.reshape(-1)

    def waiting(self) -> np.ndarray:
        return np.repeat(self.finished, GROUP_SIZE)

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self._restart(np.unique(np.asarray(idx) // GROUP_SIZE), rng)

    def observe(self) -> list[np.ndarray]:
        return [self._observe(), self._camera()] if self.camera else [self._observe()]

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        ended, self.group_reward, self.interrupted = self._advance(
            actions.discrete[:, 0].reshape(self.areas, GROUP_SIZE)
        )
        return np.zeros(self.num_agents, np.float32), ended

    def optimal_return(self) -> float | None:
        return 0.0  # individual rewards are always 0; the group reward is what counts

    # -- the game ------------------------------------------------------------------------------------
    def _restart(self, areas: np.ndarray, rng: np.random.Generator) -> None:
        cells = self.size * self.size
        for a in areas.tolist():  # one draw per area: distinct cells, none on the door (cell 0)
            chosen = rng.choice(np.arange(1, cells), size=GROUP_SIZE + 1, replace=False)
            xy = np.stack([chosen % self.size, chosen // self.size], axis=1)
            self.guard[a] = xy[0]
            self.pos[a] = xy[1:]
        self.on_board[areas] = True
        self.guard_alive[areas] = True
        self.key_on_floor[areas] = False
        self.holder[areas] = -1
        self.steps[areas] = 0
        self.finished[areas] = False

    def _advance(self, moves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One decision of every agent on the board; (ended, group reward, interrupted) per agent id."""
        a = self.areas
        playing = ~self.finished
        active = self.on_board & playing[:, None]
        step = MOVES[moves] * active[:, :, None]
        self.pos = np.clip(self.pos + step, 0, self.size - 1)
        self.steps += playing
        ended = np.zeros((a, GROUP_SIZE), dtype=bool)
        # the guard takes the first agent on its cell
        on_guard = active & (self.pos == self.guard[:, None, :]).all(axis=2) & self.guard_alive[:, None]
        taken_area = on_guard.any(axis=1)
        if taken_area.any():
            rows = np.flatnonzero(taken_area)
            who = np.argmax(on_guard[rows], axis=1)
            ended[rows, who] = True
            self.on_board[rows, who] = False
            self.guard_alive[rows] = False
            self.key_on_floor[rows] = True
            self.key[rows] = self.guard[rows]
        # the first agent on the key picks it up
        active = self.on_board & playing[:, None]
        on_key = active & (self.pos == self.key[:, None, :]).all(axis=2) & self.key_on_floor[:, None]
        picked = on_key.any(axis=1)
        if picked.any():
            rows = np.flatnonzero(picked)
            self.holder[rows] = np.argmax(on_key[rows], axis=1)
            self.key_on_floor[rows] = False
        # the holder at the door: the group escapes
        has = self.holder >= 0
        holder_pos = self.pos[np.arange(a), np.maximum(self.holder, 0)]
        escaped = playing & has & (holder_pos == 0).all(axis=1)
        timeout = playing & ~escaped & (self.steps >= self.max_episode_steps)
        over = escaped | timeout
        ended |= active & over[:, None]
        group_reward = np.where(escaped[:, None] & active, 1.0, 0.0).astype(np.float32)
        interrupted = np.repeat(timeout[:, None], GROUP_SIZE, axis=1) & active
        if self.stats is not None:
            for e in escaped[over].tolist():
                self.stats.record("DungeonEscape/Escaped", float(e))
        self.on_board[over] = False
        self.finished |= over
        return ended.reshape(-1), group_reward.reshape(-1), interrupted.reshape(-1)

    def _observe(self) -> np.ndarray:
        a, s = self.areas, float(self.size - 1)
        obs = np.zeros((a, GROUP_SIZE, OBS_SIZE), dtype=np.float32)
        obs[:, :, 0:2] = self.pos / s
        obs[:, :, 2] = self.guard_alive[:, None]
        obs[:, :, 3:5] = (self.guard * self.guard_alive[:, None])[:, None, :] / s
        obs[:, :, 5] = self.key_on_floor[:, None]
        obs[:, :, 6:8] = (self.key * self.key_on_floor[:, None])[:, None, :] / s
        holds = self.holder[:, None] == np.arange(GROUP_SIZE)[None, :]
        obs[:, :, 8] = holds
        obs[:, :, 9] = (self.holder >= 0)[:, None] & ~holds
        for i in range(GROUP_SIZE):
            mates = [j for j in range(GROUP_SIZE) if j != i]
            for k, j in enumerate(mates):
                col = 10 + 3 * k
                obs[:, i, col] = self.on_board[:, j]
                obs[:, i, col + 1 : col + 3] = self.pos[:, j] / s * self.on_board[:, j, None]
        return obs.reshape(-1, OBS_SIZE)

    def _camera(self) -> np.ndarray:
        """Each agent's top-down image (n, 4, S, S): itself, its groupmates on the board, the guard, the key."""
        a, s = self.areas, self.size
        cells = np.zeros((a, GROUP_SIZE, CAMERA_CHANNELS, s, s), dtype=np.float32)
        area = np.arange(a)
        for i in range(GROUP_SIZE):
            on = self.on_board[:, i]
            x, y = self.pos[on, i, 0], self.pos[on, i, 1]
            cells[area[on], i, 0, y, x] = 1.0
            for j in range(GROUP_SIZE):
                if j != i:
                    cells[area[on], j, 1, y, x] = 1.0
        for channel, (xy, shown) in ((2, (self.guard, self.guard_alive)), (3, (self.key, self.key_on_floor))):
            cells[area[shown], :, channel, xy[shown, 1], xy[shown, 0]] = 1.0
        k = self.camera
        image = cells.repeat(k, axis=3).repeat(k, axis=4) if k > 1 else cells
        return image.reshape(a * GROUP_SIZE, CAMERA_CHANNELS, s * k, s * k)

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8 of the first areas: door, guard, key and agents."""
        from fledge.envs.builtin.dungeon_render import draw_dungeon

        return draw_dungeon(
            self.pos.copy(),
            self.on_board.copy(),
            self.guard.copy(),
            self.guard_alive.copy(),
            self.key.copy(),
            self.key_on_floor.copy(),
            self.holder.copy(),
            size=self.size,
        )
