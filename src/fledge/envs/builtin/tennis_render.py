"""Tennis's frames: one side view per match (the first few), court, net, both paddles and the ball."""

from __future__ import annotations

import numpy as np

from fledge.envs.drawing import AGENT, BAD, GOAL, GRID, HEADER, HIGHLIGHT, PAD, PANEL, TEXT, WHITE, Canvas, draw_title

ORANGE = (243, 156, 18)
MAX_MATCHES = 4


def draw_tennis(
    paddle: np.ndarray, ball: np.ndarray, *, half: float, net: float, reach: float, hits: np.ndarray
) -> np.ndarray:
    """paddle (2m, 3): x, height, velocity per agent (left agent 2k, right 2k + 1); ball (m, 4): x, y, vx, vy.
    Blue = team 0 (left), green = team 1 (right), orange = the ball, white = the net."""
    matches = len(ball)
    shown = min(matches, MAX_MATCHES)
    scale, top = 56.0, 3.5  # pixels per unit; the highest height drawn
    w = int(2 * half * scale) + 2 * PAD
    h_row = int(top * scale) + 24
    canvas = Canvas(w, HEADER + shown * h_row + PAD)
    more = f" (first {shown} of {matches} shown)" if matches > shown else ""
    draw_title(canvas, f"Tennis  {matches} match{'es' if matches != 1 else ''}{more}", "blue = team 0, green = team 1")
    for k in range(shown):
        y0 = HEADER + k * h_row
        ground = y0 + top * scale

        def px(x: float) -> float:
            return PAD + (x + half) * scale

        def py(y: float, ground: float = ground) -> float:
            return ground - y * scale

        canvas.rect(PAD, y0 + 4, w - PAD, ground, PANEL)
        canvas.rect(PAD, ground, w - PAD, ground + 3, GRID)
        canvas.rect(px(0.0) - 2, py(net), px(0.0) + 2, ground, WHITE)
        canvas.text(PAD + 4, y0 + 8, f"match {k}  hits {int(hits[k])}", HIGHLIGHT if k == 0 else TEXT)
        for side, color in ((0, AGENT), (1, GOAL)):
            x, height = paddle[2 * k + side, 0], paddle[2 * k + side, 1]
            canvas.rect(px(x - reach), py(height) - 2, px(x + reach), py(height) + 2, color)
            canvas.line(px(x), py(height), px(x), ground, color, 1.5)
        bx, by = float(ball[k, 0]), float(ball[k, 1])
        if abs(bx) <= half + 0.5 and by <= top:
            canvas.disc(px(bx), py(max(by, 0.0)), 6, ORANGE if by > 0 else BAD)
    return canvas.img
