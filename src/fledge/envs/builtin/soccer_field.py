"""The soccer field's geometry, shared by the games (soccer.py) and their renderer (soccer_render.py)."""

from __future__ import annotations

HALF_LENGTH = 3.5  # the field spans x in [-HALF_LENGTH, HALF_LENGTH]
HALF_WIDTH = 2.5  # and y in [-HALF_WIDTH, HALF_WIDTH]
GOAL_HALF_WIDTH = 1.0  # goal mouths: |y| < GOAL_HALF_WIDTH on both end lines
AGENT_RADIUS = 0.4
BALL_RADIUS = 0.25
