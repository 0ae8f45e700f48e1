"""Pyramids: press a switch, which raises a pyramid somewhere in the room, then touch its gold brick.

A sparse-reward task in the spirit of ML-Agents' Pyramids (spec 12.1): the only positive reward comes
at the end of a two-stage search, so an agent that does not explore almost never sees it. Each agent
has its own square room, walls at x, z = +-``room_half`` (7 by default), seen from above.

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
``max_episode_steps`` decisions (1000 by default).

Observations (``Pyramids``): one vector of ``NUM_RAYS * RAY_SIZE + 1`` = 121 float32, standing in for
the Unity agent's ray perception sensors. ``NUM_RAYS`` (24) rays leave the agent every 15 degrees
(``RAY_ANGLES``: degrees from the heading, positive = to the left; ray 0 straight ahead), as sphere
casts of radius 0.5 reaching across the whole room; a cast that starts inside an object does not see
it (an agent standing on the switch sees past it). Ray k fills values 5k .. 5k+4: a one-hot of what it
hits first (``WALL``, ``SWITCH_OFF``, ``SWITCH_ON``, ``PYRAMID``) and the hit distance as a fraction of
``2 * sqrt(2) * room_half`` (every ray meets a wall, so each ray has exactly one tag). The last value is
the switch state (1 = pressed), as the Unity agent's vector observation has it. No position, no
velocity: like the Unity agent it must find its way from what the rays see. A turn is one ray spacing,
so turning rotates the rays' picture by exactly one ray.

``VisualPyramids``: the same room seen only through a top-down camera (3, R, R), R = ``resolution``
(20 by default, the minimum of ``vis_encode_type: simple``); channel 0 = the agent (its body 0.5,
a nose ahead of it 1.0, so the heading shows), channel 1 = the switch (1.0 off, 0.4 on), channel 2 =
the pyramid (absent before the press). Unity's VisualPyramids has a first-person camera.

What differs from the Unity scene: the room is flat and empty (no stone pyramids, no physics); the gold
brick is reached by touching the pyramid (in Unity it sits on top and the blocks must be knocked
off); the agent's 4 actions have no "do nothing" (the Unity agent has a branch of 5); the episode
is 1000 decisions, not 5000 physics steps. `heuristic` solves it from the observation alone (turn
to the target's ray, walk; turn on the spot while nothing is seen) in well over 90 % of episodes.
"""

from __future__ import annotations

import math

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.base import VectorTask
from fledge.errors import ConfigError

STEP_REWARD = -0.001
GOLD_REWARD = 2.0
MAX_EPISODE_STEPS = 1000
DEFAULT_AGENTS = 16
DEFAULT_ROOM_HALF = 7.0
AGENT_RADIUS = 0.5
SWITCH_RADIUS = 0.5
PYRAMID_RADIUS = 0.75
CAST_RADIUS = 0.5  # the sphere casts' radius: an object is hit when a ray passes within this of its rim
SPEED = 0.5  # units per decision, forward or back
TURN = math.radians(15.0)  # per decision
MIN_SWITCH_GAP = 3.0  # agent centre to switch centre at the start of an episode
MIN_PYRAMID_GAP = 4.0  # agent centre to pyramid centre when the pyramid appears
FORWARD, BACK, TURN_LEFT, TURN_RIGHT = 0, 1, 2, 3
WALL, SWITCH_OFF, SWITCH_ON, PYRAMID = 0, 1, 2, 3  # ray tags
NUM_TAGS = 4
RAY_SIZE = NUM_TAGS + 1  # one-hot tag + distance fraction
RAY_ANGLES = tuple(15.0 * k if k <= 12 else 15.0 * (k - 24) for k in range(24))  # 0, 15, .., 180, -165, .., -15
NUM_RAYS = len(RAY_ANGLES)
OBS_SIZE = NUM_RAYS * RAY_SIZE + 1
_RAY_RAD = np.radians(np.asarray(RAY_ANGLES, dtype=np.float64))
_FAR = 1e9
_WALL_NEAR = 0.05  # distance fraction under which the heuristic turns away from a wall ahead


class PyramidsTask(VectorTask):
    """Press the switch, then reach the pyramid it raises: +2 at the gold brick, -0.001 per decision."""

    behavior_name = "Pyramids"

    def __init__(
        self,
        *,
        num_agents: int = DEFAULT_AGENTS,
        max_episode_steps: int = MAX_EPISODE_STEPS,
        room_half: float = DEFAULT_ROOM_HALF,
    ) -> None:
        self.num_agents = check_count(self.behavior_name, "num_agents", num_agents)
        self.max_episode_steps = check_count(self.behavior_name, "max_episode_steps", max_episode_steps)
        if isinstance(room_half, bool) or not isinstance(room_half, (int, float)) or not 4.0 <= room_half <= 50.0:
            raise ConfigError(
                f"Environment '{self.behavior_name}': room_half must be a number from 4 to 50 (half the side of "
                f"the room, in units of the agent's diameter), got {room_half!r}."
            )
        self.room_half = float(room_half)
        self.ray_length = 2.0 * math.sqrt(2.0) * self.room_half
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(OBS_SIZE, "RayPerceptionSensor")],
            action_spec=ActionSpec.create_discrete((4,)),
        )
        n = self.num_agents
        self._rows = np.arange(n)
        self.pos = np.zeros((n, 2))  # agent centre (x, z)
        self.heading = np.zeros(n)  # radians, 0 = +x, counter-clockwise
        self.switch = np.zeros((n, 2))
        self.pressed = np.zeros(n, dtype=bool)
        self.pyramid = np.zeros((n, 2))  # meaningful only where pressed
        self.pressed_now = np.zeros(n, dtype=bool)  # pressed by the last decision (for renderers and tests)

    # -- VectorTask --------------------------------------------------------------------------------
    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        idx = np.asarray(idx, dtype=np.int64)
        k = len(idx)
        if k == 0:
            return
        inner = self.room_half - AGENT_RADIUS
        self.pos[idx] = rng.uniform(-inner, inner, size=(k, 2))
        self.heading[idx] = rng.uniform(-math.pi, math.pi, size=k)
        self.switch[idx] = self._place(rng, self.pos[idx], MIN_SWITCH_GAP, SWITCH_RADIUS)
        self.pressed[idx] = False
        self.pressed_now[idx] = False
        self.pyramid[idx] = 0.0

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        act = actions.discrete[:, 0]
        turn = (act == TURN_LEFT).astype(np.float64) - (act == TURN_RIGHT)
        self.heading += turn * TURN
        np.remainder(self.heading + math.pi, 2.0 * math.pi, out=self.heading)
        self.heading -= math.pi
        step = ((act == FORWARD).astype(np.float64) - (act == BACK)) * SPEED
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
        angle = self.heading[:, None] + _RAY_RAD[None, :]  # (n, K)
        dx, dz = np.cos(angle), np.sin(angle)
        px, pz = self.pos[:, 0:1], self.pos[:, 1:2]
        room = self.room_half
        with np.errstate(divide="ignore", invalid="ignore"):
            tx = np.where(dx > 1e-12, (room - px) / dx, np.where(dx < -1e-12, (-room - px) / dx, _FAR))
            tz = np.where(dz > 1e-12, (room - pz) / dz, np.where(dz < -1e-12, (-room - pz) / dz, _FAR))
        dist = np.minimum(tx, tz)
        tag = np.zeros((n, NUM_RAYS), dtype=np.int64)
        t_switch = _cast(px, pz, dx, dz, self.switch, SWITCH_RADIUS + CAST_RADIUS)
        closer = t_switch < dist
        dist = np.where(closer, t_switch, dist)
        tag = np.where(closer, np.where(self.pressed[:, None], SWITCH_ON, SWITCH_OFF), tag)
        t_pyr = _cast(px, pz, dx, dz, self.pyramid, PYRAMID_RADIUS + CAST_RADIUS)
        closer = self.pressed[:, None] & (t_pyr < dist)
        dist = np.where(closer, t_pyr, dist)
        tag = np.where(closer, PYRAMID, tag)
        out = np.zeros((n, OBS_SIZE), dtype=np.float32)
        rays = out[:, : NUM_RAYS * RAY_SIZE].reshape(n, NUM_RAYS, RAY_SIZE)
        np.put_along_axis(rays, tag[:, :, None], 1.0, axis=2)
        rays[:, :, NUM_TAGS] = np.clip(dist / self.ray_length, 0.0, 1.0)
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
            actions=chosen,
        )


def _dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1])


def _cast(
    px: np.ndarray, pz: np.ndarray, dx: np.ndarray, dz: np.ndarray, centre: np.ndarray, reach: float
) -> np.ndarray:
    """Distance along each ray (n, K) to where it first comes within `reach` of `centre` (n, 2); _FAR where it
    never does, where the object is behind, or where the ray starts within reach (as a ray cast that starts
    inside a collider does not hit it: an agent standing on the switch sees past it)."""
    ox, oz = centre[:, 0:1] - px, centre[:, 1:2] - pz
    along = ox * dx + oz * dz
    across2 = ox * ox + oz * oz - along * along
    half = np.sqrt(np.maximum(reach * reach - across2, 0.0))
    hit = (across2 <= reach * reach) & (along - half > 0.0)
    return np.where(hit, along - half, _FAR)


def heuristic(obs: np.ndarray) -> np.ndarray:
    """A scripted policy from the `Pyramids` observation alone: the target is the switch until it is pressed,
    then the pyramid; turn towards the ray that sees it nearest to straight ahead and walk when the forward
    ray sees it; turn left on the spot while no ray sees it. obs (n, OBS_SIZE); returns (n, 1) int32."""
    obs = np.asarray(obs, dtype=np.float32)
    n = len(obs)
    rays = obs[:, : NUM_RAYS * RAY_SIZE].reshape(n, NUM_RAYS, RAY_SIZE)
    target = np.where(obs[:, -1] > 0.5, PYRAMID, SWITCH_OFF)
    seen = rays[np.arange(n)[:, None], np.arange(NUM_RAYS)[None, :], target[:, None]] > 0.5  # (n, K)
    cost = np.where(seen, np.abs(np.asarray(RAY_ANGLES))[None, :], np.inf)
    best = np.argmin(cost, axis=1)
    angle = np.asarray(RAY_ANGLES)[best]
    act = np.where(angle == 0.0, FORWARD, np.where(angle > 0.0, TURN_LEFT, TURN_RIGHT))
    wall_ahead = (rays[:, 0, WALL] > 0.5) & (rays[:, 0, NUM_TAGS] < _WALL_NEAR)  # a wall close ahead
    wander = np.where(wall_ahead, TURN_LEFT, FORWARD)
    act = np.where(seen.any(axis=1), act, wander)
    return act[:, None].astype(np.int32)
