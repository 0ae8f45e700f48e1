"""VisualPyramids: Pyramids seen only through a camera above each room (for ML-Agents' VisualPyramids config).

The room, the switch, the pyramid, the actions, the rewards and the limits are Pyramids'
(`fledge.envs.builtin.pyramids`, imported, not copied). Only the observation differs: one top-down image
per agent instead of the rays and the switch state.

Observation ``CameraSensor`` (3, R, R) float32 in [0, 1], R = ``resolution`` (56 by default: 2 pixels per
unit in the default room of 28; every encoder accepts it, ``simple`` needs 20, ``nature_cnn`` 36): the
whole room from above (world x to the right, world z up), pixel values anti-aliased, each disc drawn at
least one pixel in radius. Channel 0 = the agent: its body 0.5 and a nose on its rim ahead of it 1.0,
so the heading shows; channel 1 = the switch, 1.0 while off and 0.4 once pressed; channel 2 = the
pyramid (all zero before the press). Dimension properties (NONE,
TRANSLATIONAL_EQUIVARIANCE, TRANSLATIONAL_EQUIVARIANCE). Unity's VisualPyramids agent has a first-person
camera instead; a view from above shows the pyramid as soon as it exists, which makes this task easier
than the ray version once the switch is pressed, and no easier before.
"""

from __future__ import annotations

import numpy as np

from fledge.envs.api import ActionSpec, BehaviorSpec, ObservationSpec, ObservationType
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.gridworld import VISUAL_PROPERTIES
from fledge.envs.builtin.pyramids import DEFAULT_AGENTS, DEFAULT_ROOM_HALF, MAX_EPISODE_STEPS, PyramidsTask
from fledge.envs.builtin.pyramids_layout import AGENT_RADIUS, PYRAMID_RADIUS, SWITCH_RADIUS

DEFAULT_RESOLUTION = 56
NOSE_RADIUS = 0.25
SWITCH_ON_LEVEL = 0.4
BODY_LEVEL = 0.5


class VisualPyramidsTask(PyramidsTask):
    """Pyramids with one top-down camera image per agent as its only observation."""

    behavior_name = "VisualPyramids"

    def __init__(
        self,
        *,
        num_agents: int = DEFAULT_AGENTS,
        max_episode_steps: int = MAX_EPISODE_STEPS,
        room_half: float = DEFAULT_ROOM_HALF,
        resolution: int = DEFAULT_RESOLUTION,
    ) -> None:
        super().__init__(num_agents=num_agents, max_episode_steps=max_episode_steps, room_half=room_half)
        self.resolution = check_count(self.behavior_name, "resolution", resolution, minimum=4)
        r = self.resolution
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec((3, r, r), VISUAL_PROPERTIES, ObservationType.DEFAULT, "CameraSensor")],
            action_spec=ActionSpec.create_discrete((4,)),
        )
        self._ppu = r / (2.0 * self.room_half)  # pixels per world unit
        centres = ((np.arange(r) + 0.5) / self._ppu - self.room_half).astype(np.float32)
        self._wx = centres[None, None, :]  # world x grows to the right
        self._wz = -centres[None, :, None]  # world z grows upwards (row 0 is the far wall)

    def observe(self) -> list[np.ndarray]:
        return [self.image()]

    def image(self) -> np.ndarray:
        """The camera images (n, 3, R, R) of the current state."""
        n, r = self.num_agents, self.resolution
        out = np.empty((n, 3, r, r), dtype=np.float32)
        nose = self.pos + AGENT_RADIUS * np.stack([np.cos(self.heading), np.sin(self.heading)], 1)
        body = self._disc(self.pos, AGENT_RADIUS) * np.float32(BODY_LEVEL)
        np.maximum(body, self._disc(nose, NOSE_RADIUS), out=out[:, 0])
        level = np.where(self.pressed, SWITCH_ON_LEVEL, 1.0).astype(np.float32)[:, None, None]
        np.multiply(self._disc(self.switch, SWITCH_RADIUS), level, out=out[:, 1])
        np.multiply(self._disc(self.pyramid, PYRAMID_RADIUS), self.pressed[:, None, None], out=out[:, 2])
        return out

    def _disc(self, centre: np.ndarray, radius: float) -> np.ndarray:
        """(n, R, R) anti-aliased coverage of discs of `radius` at `centre` (n, 2)."""
        cx = centre[:, 0, None, None].astype(np.float32)
        cz = centre[:, 1, None, None].astype(np.float32)
        d = np.sqrt((self._wx - cx) ** 2 + (self._wz - cz) ** 2)
        r = np.float32(max(radius * self._ppu, 1.0))  # in pixels
        return np.clip(r - d * np.float32(self._ppu) + 0.5, 0.0, 1.0)
