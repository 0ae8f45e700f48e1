"""Pyramids: press a switch, which raises a pyramid somewhere in the room, then touch its gold brick.

A sparse-reward task in the spirit of ML-Agents' Pyramids (spec 12.1): the only positive reward comes
at the end of a two-stage search, so an agent that does not explore almost never sees it. Each agent
has its own square room, walls at x, z = +-``room_half`` (14 by default), seen from above.

* The agent is a disc of radius 0.5 with a heading. Actions: one discrete branch of 4: 0 = forward,
  1 = back (``SPEED`` = 0.5 units per decision), 2 = turn left, 3 = turn right (15 degrees per
  decision). Walls stop it.
* The switch is a disc of radius 0.5 placed at random (at least 3 units from the agent). The agent
  presses it by touching it (centres closer than 1.0); it turns from off to on for the rest of the
  episode, and at that moment the pyramid appears at a random place at least ``MIN_PYRAMID_GAP`` (4) from
  the agent and clear of the switch. Before the press there is no pyramid: nothing observed tells where
  it will be.
* The pyramid is a disc of radius 0.75 with the gold brick on top; touching it (centres closer than
  1.25) ends the episode.

Rewards as ML-Agents' Pyramids: -0.001 per decision; touching the gold brick ends the episode and that
decision's reward is set to +2 (replacing the -0.001). Episodes are interrupted after
``max_episode_steps`` decisions (1000 by default, as the Unity agent's 5000 steps at a decision period of
5).

Observations (``Pyramids``): one vector of ``NUM_RAYS * RAY_SIZE + 1`` = 121 float32, standing in for
the Unity agent's ray perception sensors. ``NUM_RAYS`` (24) rays leave the agent every 15 degrees
(``RAY_ANGLES``: degrees from the heading, positive = to the left; ray 0 straight ahead), as sphere
casts of radius 0.5 that see ``ray_range`` units far (7 by default; None = across the whole room); a
cast that starts inside an object does not see it (an agent standing on the switch sees past it). Ray
k fills values 5k .. 5k+4: a one-hot of what it hits first within its range (``WALL``, ``SWITCH_OFF``,
``SWITCH_ON``, ``PYRAMID``; all zero when nothing is in range) and the hit distance as a fraction of
the range (1 when nothing is in range). The last value is the switch state (1 = pressed), as the Unity
agent's vector observation has it. No position, no velocity: like the Unity agent it must find its way
from what the rays see. A turn is one ray spacing, so turning rotates the rays' picture by exactly one
ray.

Calibration (defaults, 16 agents): uniformly random actions succeed in about 0.6 % of episodes; PPO with
ML-Agents' Pyramids hyperparameters and the extrinsic reward alone stays near zero in 100,000 steps; the
same PPO with a count-based novelty bonus finds the gold brick in about half of its episodes within
100,000 steps; `heuristic` (with an rng) succeeds in about 96 % (figures in docs/environments.md). The
rays' short range and the room's size keep the task sparse: with rays across a room of 14 PPO learns it
from the extrinsic reward alone within 100,000 steps.

``VisualPyramids`` (`fledge.envs.builtin.visual_pyramids`): the same room through a camera from above.

What differs from the Unity scene: the room is flat and empty (no stone pyramids, no physics); the gold
brick is reached by touching the pyramid (in Unity it sits on top and the blocks must be knocked
off); the agent's 4 actions have no "do nothing" (the Unity agent has a branch of 5); the rays are
flat, evenly spaced and all of one range.
"""

from __future__ import annotations

import math

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.base import VectorTask
from fledge.envs.builtin.pyramids_layout import (
    AGENT_RADIUS,
    FORWARD,
    NUM_RAYS,
    NUM_TAGS,
    OBS_SIZE,
    PYRAMID,
    PYRAMID_RADIUS,
    RAY_ANGLES,
    RAY_SIZE,
    SWITCH_OFF,
    SWITCH_ON,
    SWITCH_RADIUS,
    TURN_LEFT,
    TURN_RIGHT,
    WALL,
)
from fledge.errors import ConfigError

STEP_REWARD = -0.001
GOLD_REWARD = 2.0
MAX_EPISODE_STEPS = 1000
DEFAULT_AGENTS = 16
DEFAULT_ROOM_HALF = 14.0
DEFAULT_RAY_RANGE: float | None = 7.0
CAST_RADIUS = 0.5  # the sphere casts' radius: an object is hit when a ray passes within this of its rim
SPEED = 0.5  # units per decision, forward or back
TURN = math.radians(15.0)  # per decision
MIN_SWITCH_GAP = 3.0  # agent centre to switch centre at the start of an episode
MIN_PYRAMID_GAP = 4.0  # agent centre to pyramid centre when the pyramid appears
_RAY_COS = np.cos(np.radians(np.asarray(RAY_ANGLES)))[None, :]
_RAY_SIN = np.sin(np.radians(np.asarray(RAY_ANGLES)))[None, :]
_REACH2 = np.array([SWITCH_RADIUS + CAST_RADIUS, PYRAMID_RADIUS + CAST_RADIUS])[None, :, None] ** 2
_TAG_OF = np.array([[WALL, SWITCH_OFF, PYRAMID], [WALL, SWITCH_ON, PYRAMID]])  # [pressed, kind of hit]
_TAGS = np.arange(NUM_TAGS)
_TURN_OF = np.array([0.0, 0.0, TURN, -TURN])  # per action
_STEP_OF = np.array([SPEED, -SPEED, 0.0, 0.0])
_FAR = 1e9
_WALL_NEAR = 0.2  # distance fraction under which the heuristic turns away from a wall ahead
WANDER_TURN = 0.1


class PyramidsTask(VectorTask):
    """Press the switch, then reach the pyramid it raises: +2 at the gold brick, -0.001 per decision."""

    behavior_name = "Pyramids"

    def __init__(
        self,
        *,
        num_agents: int = DEFAULT_AGENTS,
        max_episode_steps: int = MAX_EPISODE_STEPS,
        room_half: float = DEFAULT_ROOM_HALF,
        ray_range: float | None = DEFAULT_RAY_RANGE,
    ) -> None:
        self.num_agents = check_count(self.behavior_name, "num_agents", num_agents)
        self.max_episode_steps = check_count(self.behavior_name, "max_episode_steps", max_episode_steps)
        if isinstance(room_half, bool) or not isinstance(room_half, (int, float)) or not 4.0 <= room_half <= 50.0:
            raise ConfigError(
                f"Environment '{self.behavior_name}': room_half must be a number from 4 to 50 (half the side of "
                f"the room, in units of the agent's diameter), got {room_half!r}."
            )
        self.room_half = float(room_half)
        across = 2.0 * math.sqrt(2.0) * self.room_half
        if ray_range is not None and (
            isinstance(ray_range, bool) or not isinstance(ray_range, (int, float)) or not 1.0 <= ray_range
        ):
            raise ConfigError(
                f"Environment '{self.behavior_name}': ray_range must be a number >= 1 (how far the rays see) or "
                f"null (across the whole room), got {ray_range!r}."
            )
        self.ray_length = across if ray_range is None else min(float(ray_range), across)
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(OBS_SIZE, "VectorSensor")],
            action_spec=ActionSpec.create_discrete((4,)),
        )
        n = self.num_agents
        self._rows = np.arange(n)
        self.pos = np.zeros((n, 2))  # agent centre (x, z)
        self.heading = np.zeros(n)  # radians in [0, 2 pi), 0 = +x, counter-clockwise
        self._objects = np.zeros((n, 2, 2))  # centres of the switch and the pyramid
        self.switch = self._objects[:, 0]  # (n, 2) views
        self.pyramid = self._objects[:, 1]  # meaningful only where pressed
        self.pressed = np.zeros(n, dtype=bool)
        self.pressed_now = np.zeros(n, dtype=bool)  # pressed by the last decision (for renderers and tests)

    # -- VectorTask --------------------------------------------------------------------------------
    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        k = len(idx)
        if k == 0:
            return
        inner = self.room_half - AGENT_RADIUS
        self.pos[idx] = rng.uniform(-inner, inner, size=(k, 2))
        self.heading[idx] = rng.uniform(0.0, 2.0 * math.pi, size=k)
        self.switch[idx] = self._place(rng, self.pos[idx], MIN_SWITCH_GAP, SWITCH_RADIUS)
        self.pressed[idx] = False
        self.pressed_now[idx] = False
        self.pyramid[idx] = 0.0

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        act = actions.discrete[:, 0]
        self.heading += _TURN_OF[act]
        np.remainder(self.heading, 2.0 * math.pi, out=self.heading)
        step = _STEP_OF[act]
        self.pos[:, 0] += step * np.cos(self.heading)
        self.pos[:, 1] += step * np.sin(self.heading)
        inner = self.room_half - AGENT_RADIUS
        np.clip(self.pos, -inner, inner, out=self.pos)

        gold = self.pressed & (_dist(self.pos, self.pyramid) < AGENT_RADIUS + PYRAMID_RADIUS)
        press = ~self.pressed & (_dist(self.pos, self.switch) < AGENT_RADIUS + SWITCH_RADIUS)
        self.pressed_now[:] = press
        if press.any():
            idx = np.flatnonzero(press)
            self.pressed[idx] = True
            self.pyramid[idx] = self._place(rng, self.pos[idx], MIN_PYRAMID_GAP, PYRAMID_RADIUS, avoid=self.switch[idx])
        reward = np.full(self.num_agents, STEP_REWARD, dtype=np.float32)
        reward[gold] = GOLD_REWARD
        return reward, gold

    def observe(self) -> list[np.ndarray]:
        return [self.ray_observation()]

    # -- observations ------------------------------------------------------------------------------
    def ray_observation(self) -> np.ndarray:
        """(n, OBS_SIZE) float32: per ray the one-hot tag of the first hit and its distance fraction, then the
        switch state."""
        n = self.num_agents
        c, s = np.cos(self.heading)[:, None], np.sin(self.heading)[:, None]
        dx = c * _RAY_COS - s * _RAY_SIN  # (n, K) ray directions
        dz = s * _RAY_COS + c * _RAY_SIN
        px, pz = self.pos[:, 0:1], self.pos[:, 1:2]
        dist = np.empty((n, 3, NUM_RAYS))  # to the wall, the switch, the pyramid
        with np.errstate(divide="ignore"):
            tx = (np.copysign(self.room_half, dx) - px) / dx
            tz = (np.copysign(self.room_half, dz) - pz) / dz
        np.minimum(tx, tz, out=dist[:, 0])
        # sphere casts against both discs at once: where along each ray it first comes within reach of a centre
        ox = self._objects[:, :, 0:1] - px[:, None]  # (n, 2, 1)
        oz = self._objects[:, :, 1:2] - pz[:, None]
        along = ox * dx[:, None] + oz * dz[:, None]  # (n, 2, K)
        gap = _REACH2 - (ox * ox + oz * oz - along * along)  # >= 0: the ray's line comes within reach
        t = along - np.sqrt(np.maximum(gap, 0.0))
        hit = (gap >= 0.0) & (t > 0.0)  # a cast starting inside the reach does not see the object
        hit[:, 1] &= self.pressed[:, None]  # no pyramid before the press
        dist[:, 1:] = np.where(hit, t, _FAR)
        kind = dist.argmin(axis=1)  # (n, K): 0 wall, 1 switch, 2 pyramid
        nearest = np.take_along_axis(dist, kind[:, None], axis=1)[:, 0]
        tag = _TAG_OF[self.pressed.astype(np.int64)[:, None], kind]
        out = np.empty((n, OBS_SIZE), dtype=np.float32)
        rays = out[:, : NUM_RAYS * RAY_SIZE].reshape(n, NUM_RAYS, RAY_SIZE)
        in_range = nearest <= self.ray_length  # out of range: no tag, fraction 1
        rays[:, :, :NUM_TAGS] = (tag[:, :, None] == _TAGS) & in_range[:, :, None]
        np.minimum(nearest * (1.0 / self.ray_length), 1.0, out=rays[:, :, NUM_TAGS])
        out[:, -1] = self.pressed
        return out

    # -- helpers -----------------------------------------------------------------------------------
    def _place(
        self,
        rng: np.random.Generator,
        agent: np.ndarray,
        gap: float,
        radius: float,
        *,
        avoid: np.ndarray | None = None,
    ) -> np.ndarray:
        """Random centres (k, 2) inside the room for an object of `radius`, at least `gap` from `agent` (k, 2)
        and clear of the objects at `avoid` (k, 2) (by rejection, a few rounds at most)."""
        k = len(agent)
        inner = self.room_half - radius
        out = rng.uniform(-inner, inner, size=(k, 2))
        for _ in range(1000):
            bad = _dist(out, agent) < gap
            if avoid is not None:
                bad |= _dist(out, avoid) < SWITCH_RADIUS + PYRAMID_RADIUS + 2.0 * AGENT_RADIUS
            if not bad.any():
                return out
            out[bad] = rng.uniform(-inner, inner, size=(int(bad.sum()), 2))
        raise RuntimeError("Pyramids: could not place an object in the room")  # pragma: no cover (room >= 4)

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8: each agent's room from above (switch, pyramid, agent and its rays);
        the chosen action of `actions` is drawn as an arrow."""
        from fledge.envs.builtin.pyramids_render import draw_pyramids

        chosen = None if actions is None or actions.discrete.size == 0 else actions.discrete[:, 0]
        obs = self.ray_observation()
        return draw_pyramids(
            self.pos.copy(),
            self.heading.copy(),
            self.switch.copy(),
            self.pressed.copy(),
            self.pyramid.copy(),
            obs,
            room_half=self.room_half,
            ray_length=self.ray_length,
            actions=chosen,
        )


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1])


def heuristic(obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """A scripted policy from the `Pyramids` observation alone: the target is the switch until it is pressed,
    then the pyramid; turn towards the ray that sees it nearest to straight ahead and walk when the forward
    ray sees it. While no ray sees it, wander: walk ahead and turn left at a wall close ahead; with `rng`,
    also turn either way at random in WANDER_TURN of the decisions (a wander that covers the room where the
    rays do not reach across it). obs (n, OBS_SIZE); returns (n, 1) int32."""
    obs = np.asarray(obs, dtype=np.float32)
    n = len(obs)
    rays = obs[:, : NUM_RAYS * RAY_SIZE].reshape(n, NUM_RAYS, RAY_SIZE)
    target = np.where(obs[:, -1] > 0.5, PYRAMID, SWITCH_OFF)
    seen = rays[np.arange(n)[:, None], np.arange(NUM_RAYS)[None, :], target[:, None]] > 0.5  # (n, K)
    cost = np.where(seen, np.abs(np.asarray(RAY_ANGLES))[None, :], np.inf)
    best = np.argmin(cost, axis=1)
    angle = np.asarray(RAY_ANGLES)[best]
    act = np.where(angle == 0.0, FORWARD, np.where(angle > 0.0, TURN_LEFT, TURN_RIGHT))
    wall_ahead = (rays[:, 0, WALL] > 0.5) & (rays[:, 0, NUM_TAGS] < _WALL_NEAR)
    wander = np.where(wall_ahead, TURN_LEFT, FORWARD)
    if rng is not None:
        turn = rng.random(n) < WANDER_TURN
        wander = np.where(turn & ~wall_ahead, rng.integers(TURN_LEFT, TURN_RIGHT + 1, size=n), wander)
    act = np.where(seen.any(axis=1), act, wander)
    return act[:, None].astype(np.int32)
