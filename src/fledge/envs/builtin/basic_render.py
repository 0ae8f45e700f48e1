"""Basic's frames: a row of cells per agent, both goals, the agent and its chosen move."""

from __future__ import annotations

import numpy as np

from fledge.envs.drawing import (
    AGENT,
    DIM_TEXT,
    GOAL,
    GRID,
    HEADER,
    HIGHLIGHT,
    PAD,
    PANEL,
    SMALL_GOAL,
    TEXT,
    WHITE,
    Canvas,
    draw_title,
    more_text,
    shown,
)


def draw_basic(
    position: np.ndarray,
    *,
    size: int = 20,
    start: int = 10,
    small_goal: int = 7,
    large_goal: int = 17,
    actions: np.ndarray | None = None,
) -> np.ndarray:
    """Basic: one row of cells per agent; yellow = small goal (+0.1), green = large goal (+1), blue =
    the agent (with its chosen move as an arrow when `actions` (n,) in {0, 1, 2} is given)."""
    n_all = len(position)
    n = shown(n_all)
    cw, rh = 28, 40
    width = 2 * PAD + size * cw + 40
    height = HEADER + 14 + n * rh + PAD
    canvas = Canvas(width, height)
    draw_title(
        canvas,
        f"Basic  {n_all} agent{'s' if n_all != 1 else ''}{more_text(n_all)}",
        "yellow = small goal +0.1, green = large goal +1, blue = agent, arrow = move",
    )
    x0 = PAD + 40
    for c in range(size):  # cell numbers above the first row
        if c % 5 == 0 or c in (small_goal, large_goal, start):
            canvas.text_centered(x0 + c * cw + cw / 2, HEADER + 5, str(c), DIM_TEXT)
    for i in range(n):
        y = HEADER + 14 + i * rh
        canvas.text(PAD, y + rh / 2 - 7, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        for c in range(size):
            fill = SMALL_GOAL if c == small_goal else GOAL if c == large_goal else PANEL
            canvas.rect(x0 + c * cw + 1, y + 4, x0 + (c + 1) * cw - 1, y + rh - 4, fill)
        canvas.outline(x0 + start * cw + 1, y + 4, x0 + (start + 1) * cw - 1, y + rh - 4, GRID, 1)
        p = int(position[i])
        cx, cy = x0 + p * cw + cw / 2, y + rh / 2
        canvas.disc(cx, cy, cw * 0.36, AGENT)
        if i == 0:
            canvas.ring(cx, cy, cw * 0.36 + 2, 2, HIGHLIGHT)
        if actions is not None:
            move = int(actions[i]) - 1
            if move:
                canvas.arrow(cx, cy, cx + move * cw * 0.95, cy, WHITE, 2.5, 7)
            else:
                canvas.disc(cx, cy, 3, WHITE)
    return canvas.img
