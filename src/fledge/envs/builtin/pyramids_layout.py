"""The Pyramids task's layout: sizes, action numbers, ray tags and ray angles, shared by the task
(pyramids.py) and its renderer (pyramids_render.py) so that neither imports the other."""

from __future__ import annotations

AGENT_RADIUS = 0.5
SWITCH_RADIUS = 0.5
PYRAMID_RADIUS = 0.75
FORWARD, BACK, TURN_LEFT, TURN_RIGHT = 0, 1, 2, 3
WALL, SWITCH_OFF, SWITCH_ON, PYRAMID = 0, 1, 2, 3  # ray tags
NUM_TAGS = 4
RAY_SIZE = NUM_TAGS + 1  # one-hot tag + distance fraction
RAY_ANGLES = tuple(15.0 * k if k <= 12 else 15.0 * (k - 24) for k in range(24))  # 0, 15, .., 180, -165, .., -15
NUM_RAYS = len(RAY_ANGLES)
OBS_SIZE = NUM_RAYS * RAY_SIZE + 1
