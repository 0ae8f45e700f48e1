"""SoccerTwos' and StrikersVsGoalie's frames: the first few matches seen from above, field, goals, agents
(with their heading) and the ball."""

from __future__ import annotations

import numpy as np

from fledge.envs.builtin.soccer_field import AGENT_RADIUS, BALL_RADIUS, GOAL_HALF_WIDTH, HALF_LENGTH, HALF_WIDTH
from fledge.envs.drawing import AGENT, BALL, GOAL, GRID, HEADER, HIGHLIGHT, PAD, PANEL, TEXT, WHITE, Canvas, draw_title

MAX_MATCHES = 4
SCALE = 36.0  # pixels per unit


def draw_soccer(
    pos: np.ndarray,
    heading: np.ndarray,
    ball: np.ndarray,
    *,
    team: np.ndarray,
    per_match: int,
    open_goals: tuple[bool, bool],
    title: str,
    steps: np.ndarray,
) -> np.ndarray:
    """pos (n, 2), heading (n,) per agent; ball (m, 4): x, y, vx, vy; `team` per agent (0 blue, 1 green)."""
    matches = len(ball)
    shown = min(matches, MAX_MATCHES)
    field_w, field_h = 2 * HALF_LENGTH * SCALE, 2 * HALF_WIDTH * SCALE
    goal_depth = 0.6 * SCALE
    w = int(field_w + 2 * goal_depth) + 2 * PAD
    h_row = int(field_h) + 28
    canvas = Canvas(w, HEADER + shown * h_row + PAD)
    more = f" (first {shown} of {matches} shown)" if matches > shown else ""
    draw_title(canvas, f"{title}  {matches} match{'es' if matches != 1 else ''}{more}", "blue = team 0, green = team 1")
    x_left = PAD + goal_depth
    for k in range(shown):
        y_top = HEADER + k * h_row + 20

        def px(x: float) -> float:
            return x_left + (x + HALF_LENGTH) * SCALE

        def py(y: float, y_top: float = y_top) -> float:
            return y_top + (HALF_WIDTH - y) * SCALE

        canvas.text(PAD, y_top - 14, f"match {k}  decision {int(steps[k])}", HIGHLIGHT if k == 0 else TEXT)
        canvas.rect(px(-HALF_LENGTH), py(HALF_WIDTH), px(HALF_LENGTH), py(-HALF_WIDTH), PANEL)
        canvas.line(px(0.0), py(HALF_WIDTH), px(0.0), py(-HALF_WIDTH), GRID, 1.5)
        canvas.ring(px(0.0), py(0.0), 1.0 * SCALE, 1.5, GRID)
        for side, is_open, color in ((-1.0, open_goals[0], AGENT), (1.0, open_goals[1], GOAL)):
            x = side * HALF_LENGTH
            if is_open:
                depth = side * goal_depth
                x0, x1 = sorted((px(x), px(x) + depth))
                canvas.rect(x0, py(GOAL_HALF_WIDTH), x1, py(-GOAL_HALF_WIDTH), color)
            canvas.line(px(x), py(HALF_WIDTH), px(x), py(GOAL_HALF_WIDTH if is_open else -HALF_WIDTH), WHITE, 2.0)
            if is_open:
                canvas.line(px(x), py(-GOAL_HALF_WIDTH), px(x), py(-HALF_WIDTH), WHITE, 2.0)
        for i in range(k * per_match, (k + 1) * per_match):
            x, y, h = float(pos[i, 0]), float(pos[i, 1]), float(heading[i])
            color = AGENT if team[i] == 0 else GOAL
            canvas.disc(px(x), py(y), AGENT_RADIUS * SCALE, color)
            tip = (x + AGENT_RADIUS * 1.4 * np.cos(h), y + AGENT_RADIUS * 1.4 * np.sin(h))
            canvas.line(px(x), py(y), px(tip[0]), py(tip[1]), WHITE, 2.0)
        bx, by = float(ball[k, 0]), float(ball[k, 1])
        canvas.disc(px(bx), py(by), max(BALL_RADIUS * SCALE, 4.0), BALL)
    return canvas.img
