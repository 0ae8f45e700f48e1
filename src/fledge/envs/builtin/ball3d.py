"""3DBall: each agent tilts its own 5 x 5 platform to keep a ball on it (ML-Agents' 3DBall, in numpy).

Physics (all agents at once, float64 internally):

* The platform orientation is two tilt angles, az about z and ax about x, composed as in Unity's
  episode start (``Rotate(x)`` then ``Rotate(z)``): ``R = Rx(ax) @ Rz(az)``; its quaternion has
  ``q.z = cos(ax/2) sin(az/2)`` and ``q.x = sin(ax/2) cos(az/2)``.
* Each decision, action ``a`` (clipped to [-1, 1]) turns the platform by ``2 * a[0]`` degrees about z and
  ``2 * a[1]`` degrees about x, but, as in Unity, a turn is only applied while the quaternion component
  is below 0.25 in the direction of the turn (|tilt| up to about 29 degrees).
* The ball (radius 0.5) rolls on the plane: a rolling sphere accelerates along each platform axis with
  ``5/7 * g`` times the slope (``-sin az cos ax`` along platform x, ``sin ax`` along platform z),
  ``g = 9.81``, with a little linear rolling damping. One decision covers 5 physics substeps of
  ``dt = 0.02`` s (Unity's decision period 5) integrated with semi-implicit Euler; because the slope
  is constant during a decision, the 5 substeps are applied in closed form (one matrix product).
* When the ball crosses the platform edge (|x| or |z| > 2.5 in platform coordinates) it leaves the
  platform and falls freely under gravity in world space. The episode ends with reward -1 once the
  ball is 2 below the platform centre or more than 3 away from it along world x or z; otherwise
  every decision gives +0.1. Episodes are interrupted after 1000 decisions (best return 100).
* Episode start: tilt uniform in +-10 degrees about x and z, ball at rest on the platform at x, z
  uniform in [-1.5, 1.5]. A random policy loses the ball after about 30 decisions; `heuristic` (a PD
  controller) keeps it forever.

Environment parameters (spec 12.1; each agent draws its own values at its episode start): ``scale``
(default 1) multiplies the ball's radius (its height above the platform); ``gravity`` (9.81) sets g for
rolling and falling; ``mass`` (1) divides the rolling damping, as a drag force of fixed size slows a
heavier ball less (for a ball rolling on a plane, mass otherwise cancels out). With the defaults the
physics is exactly the one above.

Observations (8, float32): platform ``q.z``, ``q.x``, ball position relative to the platform centre
(x, y, z, world frame) and ball velocity (x, y, z, world frame).

Speed: every trigonometric value is one ``np.sin`` of a phase table followed by one matrix product
(product-to-sum identities), and per-agent state lives in one row so that a decision is a handful of
numpy calls whatever the number of agents.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.base import VectorTask
from fledge.envs.builtin.parameters import TaskParameters

GRAVITY = 9.81
BALL_RADIUS = 0.5
PLATFORM_HALF_SIZE = 2.5
SUBSTEPS = 5
DT = 0.02
ROLLING_DAMPING = 0.1  # 1/s, linear damping of the rolling ball
MAX_TURN_DEG = 2.0  # degrees of turn per decision at |action| = 1
QUATERNION_LIMIT = 0.25
START_TILT_DEG = 10.0
START_SPAN = 1.5
FALL_DEPTH = 2.0
FALL_DISTANCE = 3.0
STEP_REWARD = 0.1
FALL_REWARD = -1.0
MAX_EPISODE_STEPS = 1000

_ROLL_ACCEL = 5.0 / 7.0 * GRAVITY
_TURN = float(np.deg2rad(MAX_TURN_DEG))


def _closed_form_substeps() -> tuple[float, float, float, float]:
    """Coefficients of SUBSTEPS semi-implicit Euler steps with damping: (x_v, x_a, v_v, v_a).

    After the substeps, ``x = x0 + x_v * v0 + x_a * a`` and ``v = v_v * v0 + v_a * a``.
    """
    d = 1.0 - ROLLING_DAMPING * DT
    coeffs = []
    for v0, a in ((1.0, 0.0), (0.0, 1.0)):
        x, v = 0.0, v0
        for _ in range(SUBSTEPS):
            v = d * v + a * DT
            x += v * DT
        coeffs.append((x, v))
    (x_v, v_v), (x_a, v_a) = coeffs
    return x_v, x_a, v_v, v_a


_X_V, _X_A, _V_V, _V_A = _closed_form_substeps()


def _substep_coefficients(damping: np.ndarray) -> np.ndarray:
    """(x_v, x_a, v_v, v_a) of `_closed_form_substeps` for one linear damping per agent: shape (n, 4)."""
    d = 1.0 - damping * DT
    x_v, v_v = np.zeros_like(d), np.ones_like(d)
    x_a, v_a = np.zeros_like(d), np.zeros_like(d)
    for _ in range(SUBSTEPS):
        v_v, v_a = d * v_v, d * v_a + DT
        x_v, x_a = x_v + v_v * DT, x_a + v_a * DT
    return np.stack([x_v, x_a, v_v, v_a], axis=1)


# Free fall in world space, same integrator without damping: new [position; velocity] = _FALL_C @ old + _FALL_G.
_FALL_T = SUBSTEPS * DT
_FALL_C = np.array([[1.0, _FALL_T], [0.0, 1.0]])
_FALL_G = np.array([[0.0, -GRAVITY * DT * DT * SUBSTEPS * (SUBSTEPS + 1) / 2.0, 0.0], [0.0, -GRAVITY * _FALL_T, 0.0]])

# Trigonometric factors as sin(offset + wz * az + wx * ax), az/ax being the tilt about z/x.
_PI = float(np.pi)
_FACTORS: dict[str, tuple[float, float, float]] = {
    "sz": (0.0, 1.0, 0.0),
    "sx": (0.0, 0.0, 1.0),
    "cz": (_PI / 2, 1.0, 0.0),
    "cx": (_PI / 2, 0.0, 1.0),
    "-sz": (_PI, 1.0, 0.0),
    "-sx": (_PI, 0.0, 1.0),
    "shz": (0.0, 0.5, 0.0),  # sin(az / 2)
    "shx": (0.0, 0.0, 0.5),
    "-shz": (_PI, 0.5, 0.0),
    "-shx": (_PI, 0.0, 0.5),
    "chz": (_PI / 2, 0.5, 0.0),
    "chx": (_PI / 2, 0.0, 0.5),
}

# Per-agent row of the simulation state. The first 16 columns are products of two factors ("1" and "0"
# are the constants), refreshed whenever the tilt changes; the last 6 are the ball on the platform.
#   0-1   quaternion q.z, q.x          2-3  -q.z, -q.x
#   4-12  R^T for R = Rx(ax) Rz(az): rows are the platform x, y, z axes in world space
#   13-15 slope direction along platform (x, y, z); times 5/7 g it is the rolling acceleration
#   16-18 ball position on the platform (x, height of the centre = radius, z)
#   19-21 ball velocity on the platform (x, 0, z)
_PRODUCTS: list[tuple[str, str]] = [
    ("shz", "chx"), ("shx", "chz"), ("-shz", "chx"), ("-shx", "chz"),
    ("cz", "1"), ("sz", "cx"), ("sz", "sx"),
    ("-sz", "1"), ("cz", "cx"), ("cz", "sx"),
    ("0", "1"), ("-sx", "1"), ("cx", "1"),
    ("-sz", "cx"), ("0", "1"), ("sx", "1"),
]  # fmt: skip
_N_PROD = len(_PRODUCTS)
_ROW = _N_PROD + 6


def _product_to_sum() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Phases (offsets, weights per tilt angle) and a matrix M such that products = sin(phases) @ M.

    sin A * sin B = (sin(A - B + pi/2) - sin(A + B + pi/2)) / 2, so one np.sin and one matmul give every
    product at once.
    """
    columns: dict[tuple[float, float, float], int] = {}
    entries: list[tuple[int, int, float]] = []

    def column(offset: float, wz: float, wx: float) -> int:
        key = (round(offset % (2 * _PI), 12), wz, wx)
        return columns.setdefault(key, len(columns))

    for j, (a, b) in enumerate(_PRODUCTS):
        if "0" in (a, b):
            continue
        oa, za, xa = _FACTORS[a]
        if b == "1":
            entries.append((column(oa, za, xa), j, 1.0))
            continue
        ob, zb, xb = _FACTORS[b]
        entries.append((column(oa - ob + _PI / 2, za - zb, xa - xb), j, 0.5))
        entries.append((column(oa + ob + _PI / 2, za + zb, xa + xb), j, -0.5))
    keys = list(columns)
    offsets = np.array([k[0] for k in keys])
    weights = np.array([[k[1] for k in keys], [k[2] for k in keys]])
    mix = np.zeros((len(keys), _N_PROD))
    for col, j, coef in entries:
        mix[col, j] += coef
    return offsets, weights, mix


_PHASE0, _PHASE_W, _PHASE_MIX = _product_to_sum()
# A ball has fallen once it is this far from the platform centre (world x, y, z), beyond or below.
_FALL_HIGH = np.array([FALL_DISTANCE, np.inf, FALL_DISTANCE])
_FALL_LOW = np.array([-FALL_DISTANCE, -FALL_DEPTH, -FALL_DISTANCE])
_BALL_AT_CENTRE = np.array([[0.0, BALL_RADIUS, 0.0], [0.0, 0.0, 0.0]])
_LIMIT_SIGN = np.array([1.0, 1.0, -1.0, -1.0])
# New [position; velocity] = [slope; position; velocity] @ _ROLL_M, each flattened over (x, y, z): the 5
# substeps in closed form (the slope is constant during one decision).
_ROLL_M = np.kron(np.array([[_X_A * _ROLL_ACCEL, 1.0, _X_V], [_V_A * _ROLL_ACCEL, 0.0, _V_V]]).T, np.eye(3))


class Ball3DTask(VectorTask):
    """ML-Agents' 3DBall: 12 agents by default, 8 vector observations, 2 continuous actions."""

    behavior_name = "3DBall"
    parameter_defaults = MappingProxyType({"scale": 1.0, "gravity": GRAVITY, "mass": 1.0})

    def __init__(self, *, num_agents: int = 12, max_episode_steps: int = MAX_EPISODE_STEPS) -> None:
        self.num_agents = check_count("3DBall", "num_agents", num_agents)
        self.max_episode_steps = check_count("3DBall", "max_episode_steps", max_episode_steps, minimum=0)
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(8, "VectorSensor")],
            action_spec=ActionSpec.create_continuous(2),
        )
        n = self.num_agents
        self._phase = np.tile(_PHASE0, (n, 1))
        self._trig = np.zeros((n, len(_PHASE0)))
        self._state = np.zeros((n, _ROW))
        st = self._state
        self._prod = st[:, :_N_PROD]
        self._quat = st[:, 0:2]
        self._quat_pm = st[:, 0:4]
        self._rot_t = st[:, 4:13].reshape(n, 3, 3)
        self._roll_in = st[:, 13:22]  # [slope; position; velocity]
        self._roll_out = st[:, 16:22]
        self._ball = st[:, 16:22].reshape(n, 2, 3)  # [position; velocity], platform coordinates
        self._plane_pos = st[:, 16:19:2]  # ball x, z on the platform
        st[:, 17] = BALL_RADIUS
        # Turn bounds per axis: [upper z, upper x, lower z, lower x]; 0 where Unity would not turn.
        self._bounds = np.zeros((n, 4))
        self._upper = self._bounds[:, 0:2]
        self._lower = self._bounds[:, 2:4]
        # Balls that left the platform: rows [position; velocity] in world space, relative to the centre.
        self._falling = np.zeros(n, dtype=bool)
        self._any_falling = False
        self._fall = np.zeros((n, 2, 3))
        self._fall_next = np.zeros((n, 2, 3))
        self._turn = np.zeros((n, 2))
        self._dphase = np.zeros((n, len(_PHASE0)))
        self._abs = np.zeros((n, 2))
        self._reward = np.full(n, STEP_REWARD, dtype=np.float32)
        self._no_done = np.zeros(n, dtype=bool)
        self._phase_w = _PHASE_W * _TURN
        self._update_trig()
        self._varied = False  # any agent's scale, gravity or mass differs from the default
        self._gravity = np.full(n, GRAVITY)
        self._coef = np.tile([_X_V, _X_A, _V_V, _V_A], (n, 1))  # per agent, for its mass
        self._radius = np.full(n, BALL_RADIUS)

    def _take_parameters(self, idx: np.ndarray, params: TaskParameters) -> None:
        """The agents at `idx` start an episode with their drawn scale, gravity and mass."""
        values = params.values
        mass = np.maximum(values["mass"][idx], 1e-3)
        self._gravity[idx] = values["gravity"][idx]
        self._radius[idx] = BALL_RADIUS * np.maximum(values["scale"][idx], 0.0)
        self._coef[idx] = _substep_coefficients(ROLLING_DAMPING / mass)
        self._varied = bool(
            (self._gravity != GRAVITY).any() or (self._radius != BALL_RADIUS).any() or (values["mass"] != 1.0).any()
        )

    # -- VectorTask --------------------------------------------------------------------------------
    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        if len(idx) == 0:
            return
        k = len(idx)
        tilt = np.deg2rad(rng.uniform(-START_TILT_DEG, START_TILT_DEG, size=(k, 2)))
        self._phase[idx] = _PHASE0 + tilt @ _PHASE_W
        ball = np.zeros((k, 2, 3))
        ball[:, 0, 0::2] = rng.uniform(-START_SPAN, START_SPAN, size=(k, 2))
        if self.parameters.samplers:
            self._take_parameters(idx, self.parameters)
        ball[:, 0, 1] = self._radius[idx]
        self._ball[idx] = ball
        self._falling[idx] = False
        self._any_falling = bool(self._falling.any())
        self._update_trig()

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        # Clip to [-1, 1], and (as Unity) no turn further out once the quaternion component is at 0.25.
        turn = self._turn
        np.minimum(actions.continuous, self._upper, out=turn)
        np.maximum(turn, self._lower, out=turn)
        np.matmul(turn, self._phase_w, out=self._dphase)
        self._phase += self._dphase
        self._update_trig()
        # The rolling ball: 5 substeps in closed form, the slope being fixed during a decision.
        if self._varied:
            self._roll_varied()
        else:
            np.matmul(self._roll_in, _ROLL_M, out=self._roll_out)

        reward = self._reward.copy()
        if self._any_falling:  # free fall in world space (rows of balls still on a platform are unused)
            np.matmul(_FALL_C, self._fall, out=self._fall_next)
            if self._varied:
                self._fall_next += _FALL_G * (self._gravity / GRAVITY)[:, None, None]
            else:
                self._fall_next += _FALL_G
            self._fall, self._fall_next = self._fall_next, self._fall
        if np.abs(self._plane_pos, out=self._abs).max() > PLATFORM_HALF_SIZE:
            idx = np.flatnonzero((self._abs > PLATFORM_HALF_SIZE).any(axis=1) & ~self._falling)
            self._fall[idx] = self._ball[idx] @ self._rot_t[idx]
            self._ball[idx] = _BALL_AT_CENTRE  # keeps the platform check cheap while the ball falls
            self._falling[idx] = True
            self._any_falling = True
        if not self._any_falling:
            return reward, self._no_done.copy()
        w = self._fall[:, 0, :]
        done = ((w > _FALL_HIGH) | (w < _FALL_LOW)).any(axis=1)
        done &= self._falling
        reward[done] = FALL_REWARD
        return reward, done

    def observe(self) -> list[np.ndarray]:
        return [self.vector_observation()]

    def vector_observation(self) -> np.ndarray:
        """The (n, 8) float32 vector observation (a new array); Visual3DBall draws its images from it."""
        n = self.num_agents
        out = np.empty((n, 8), dtype=np.float32)
        out[:, 0:2] = self._quat
        world = np.matmul(self._ball, self._rot_t)  # (n, [position; velocity], world x y z)
        if self._any_falling:
            np.copyto(world, self._fall, where=self._falling[:, None, None])
        out[:, 2:8] = world.reshape(n, 6)
        return out

    def optimal_return(self) -> float:
        return STEP_REWARD * self.max_episode_steps

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8: every platform from above, shaded by height, with its ball
        (see `fledge.envs.builtin.ball3d_render.draw_ball3d`). Reads the state only; `actions` are not drawn."""
        from fledge.envs.builtin.ball3d_render import draw_ball3d

        world = self.vector_observation()[:, 2:5]
        return draw_ball3d(
            self._rot_t.copy(),
            world,
            self._falling.copy(),
            half_size=PLATFORM_HALF_SIZE,
            radius=BALL_RADIUS,
            view=FALL_DISTANCE + 0.3,
        )

    # -- helpers -----------------------------------------------------------------------------------
    def _roll_varied(self) -> None:
        """The rolling step with each agent's own gravity and damping (the closed form, per agent)."""
        slope = self._roll_in[:, 0:3] * (5.0 / 7.0 * self._gravity)[:, None]
        pos, vel = self._roll_in[:, 3:6].copy(), self._roll_in[:, 6:9].copy()
        c = self._coef
        self._roll_out[:, 0:3] = pos + c[:, 0:1] * vel + c[:, 1:2] * slope
        self._roll_out[:, 3:6] = c[:, 2:3] * vel + c[:, 3:4] * slope

    def _update_trig(self) -> None:
        """Refresh quaternion, rotation, slope and turn bounds from the tilt phases."""
        np.sin(self._phase, out=self._trig)
        np.matmul(self._trig, _PHASE_MIX, out=self._prod)
        np.less(self._quat_pm, QUATERNION_LIMIT, out=self._bounds)
        self._bounds *= _LIMIT_SIGN


def heuristic(obs: np.ndarray) -> np.ndarray:
    """A PD controller for 3DBall: tilt the platform so the ball accelerates back to the centre.

    obs: (n, 8) observations; returns (n, 2) float32 actions in [-1, 1].
    """
    obs = np.asarray(obs, dtype=np.float64)
    tilt_z = 2.0 * np.arcsin(np.clip(obs[:, 0], -1.0, 1.0))
    tilt_x = 2.0 * np.arcsin(np.clip(obs[:, 1], -1.0, 1.0))
    # Positive z-tilt raises +x (ball accelerates to -x); positive x-tilt lowers +z (ball accelerates to +z).
    kp, kd, limit = 0.1, 0.15, np.deg2rad(20.0)
    want_z = np.clip(kp * obs[:, 2] + kd * obs[:, 5], -limit, limit)
    want_x = np.clip(-(kp * obs[:, 4] + kd * obs[:, 7]), -limit, limit)
    act = np.empty((len(obs), 2), dtype=np.float32)
    act[:, 0] = np.clip((want_z - tilt_z) / _TURN, -1.0, 1.0)
    act[:, 1] = np.clip((want_x - tilt_x) / _TURN, -1.0, 1.0)
    return act
