"""Visual3DBall: 3DBall seen only through a camera above each platform (ML-Agents' Visual3DBall scene).

The dynamics, rewards, episode starts and limits are 3DBall's (`fledge.envs.builtin.ball3d`, imported,
not copied): 12 agents, 2 continuous actions, +0.1 per decision, -1 when the ball falls, 1000 decisions.
Only the observation differs: one image per agent instead of the 8 numbers.

Observation ``CameraSensor`` (3, R, R) float32 in [0, 1], R = ``resolution`` (24 by default; the
visual encoders need 20 for ``simple``, 36 for ``nature_cnn``, 15 for ``resnet``): the square of world
x, z in [-3, 3] around the platform centre seen from above (world x to the right, world z up), pixel
values anti-aliased. Channels: 0 = the platform's height at that point (0.5 = level with the centre,
brighter = higher, full range at about 30 degrees of tilt; 0 off the platform), 1 = the ball (its disc,
wherever it is, also while it falls), 2 = the platform's outline (1 on the platform). Dimension
properties (NONE, TRANSLATIONAL_EQUIVARIANCE, TRANSLATIONAL_EQUIVARIANCE). One image shows the tilt and
where the ball is, not how fast it rolls (as ML-Agents' 3DBallHard hides the velocity).
"""

from __future__ import annotations

import math

import numpy as np

from fledge.envs.api import ActionSpec, BehaviorSpec, ObservationSpec, ObservationType
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.ball3d import BALL_RADIUS, MAX_EPISODE_STEPS, PLATFORM_HALF_SIZE, Ball3DTask
from fledge.envs.builtin.gridworld import VISUAL_PROPERTIES

DEFAULT_RESOLUTION = 24
VIEW = PLATFORM_HALF_SIZE + BALL_RADIUS  # half the side of the square the camera sees, world units
_MAX_HEIGHT = PLATFORM_HALF_SIZE * math.sin(math.radians(30.0))  # platform edge height at 30 degrees


class Visual3DBallTask(Ball3DTask):
    """3DBall with one top-down camera image per agent as its only observation."""

    behavior_name = "Visual3DBall"

    def __init__(
        self,
        *,
        num_agents: int = 12,
        max_episode_steps: int = MAX_EPISODE_STEPS,
        resolution: int = DEFAULT_RESOLUTION,
    ) -> None:
        super().__init__(num_agents=num_agents, max_episode_steps=max_episode_steps)
        self.resolution = check_count("Visual3DBall", "resolution", resolution, minimum=4)
        r = self.resolution
        self.spec = BehaviorSpec(
            observation_specs=[
                ObservationSpec((3, r, r), VISUAL_PROPERTIES, ObservationType.DEFAULT, "CameraSensor"),
            ],
            action_spec=ActionSpec.create_continuous(2),
        )
        self._ppu = r / (2.0 * VIEW)  # pixels per world unit
        centres = ((np.arange(r) + 0.5) / self._ppu - VIEW).astype(np.float32)
        self._wx = centres[None, None, :]  # world x grows to the right
        self._wz = -centres[None, :, None]  # world z grows upwards

    def observe(self) -> list[np.ndarray]:
        return [self.image(self.vector_observation())]

    def image(self, vector: np.ndarray) -> np.ndarray:
        """The camera images (n, 3, R, R) of the state whose 3DBall observation is `vector` (n, 8)."""
        n, r = self.num_agents, self.resolution
        rot = self._rot_t.astype(np.float32)  # rows: the platform's x, y, z axes in world space
        wx, wz = self._wx, self._wz
        normal = rot[:, 1, :]
        ny = normal[:, 1:2, None]
        wy = -(normal[:, 0:1, None] * wx + normal[:, 2:3, None] * wz) / ny  # the platform plane
        lx = rot[:, 0, 0, None, None] * wx + rot[:, 0, 1, None, None] * wy + rot[:, 0, 2, None, None] * wz
        lz = rot[:, 2, 0, None, None] * wx + rot[:, 2, 1, None, None] * wy + rot[:, 2, 2, None, None] * wz
        out = np.empty((n, 3, r, r), dtype=np.float32)
        inside = (PLATFORM_HALF_SIZE - np.maximum(np.abs(lx), np.abs(lz))) * np.float32(self._ppu) + 0.5
        np.clip(inside, 0.0, 1.0, out=out[:, 2])
        height = np.clip(0.5 + wy * np.float32(0.5 / _MAX_HEIGHT), 0.0, 1.0)
        np.multiply(height, out[:, 2], out=out[:, 0])
        ball = vector[:, 2:5]
        dist = np.sqrt((wx - ball[:, 0, None, None]) ** 2 + (wz - ball[:, 2, None, None]) ** 2)
        np.clip((BALL_RADIUS - dist) * np.float32(self._ppu) + 0.5, 0.0, 1.0, out=out[:, 1])
        return out
