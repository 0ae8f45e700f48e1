"""Hallway's frames: a corridor per agent, the symbol at its start, both goals at its end."""

from __future__ import annotations

import numpy as np

from fledge.envs.drawing import (
    AGENT,
    BALL,
    GOAL,
    GRID,
    HEADER,
    HIGHLIGHT,
    MASKED,
    PAD,
    PANEL,
    TEXT,
    WHITE,
    Canvas,
    draw_title,
    more_text,
    shown,
)

_COLOURS = (GOAL, BALL)  # green, orange


def draw_hallway(
    cell: np.ndarray,
    colour: np.ndarray,
    seen: np.ndarray,
    *,
    length: int,
    actions: np.ndarray | None = None,
) -> np.ndarray:
    """Hallway: one corridor per agent (start on the left). The symbol's colour is drawn at the start cell,
    bright while the agent sees it and dim after; the two goals (green above, orange below) sit at the far
    end; blue = the agent; `actions` (n,) in 0..3: an arrow for a move, a white ring round an entered goal."""
    n_all = len(cell)
    n = shown(n_all)
    cw, rh = max(28, min(56, 480 // length)), 44
    x0 = PAD + 40
    width = max(x0 + (length + 1) * cw + PAD, 320)
    canvas = Canvas(width, HEADER + n * rh + PAD)
    draw_title(
        canvas,
        f"Hallway  {n_all} agent{'s' if n_all != 1 else ''}{more_text(n_all)}",
        "symbol (seen at the start only): green = upper goal, orange = lower goal",
    )
    for i in range(n):
        y = HEADER + i * rh
        canvas.text(PAD, y + rh / 2 - 7, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        for c in range(length):
            canvas.rect(x0 + c * cw + 1, y + 12, x0 + (c + 1) * cw - 1, y + rh - 12, PANEL)
        symbol = _COLOURS[int(colour[i])]
        if not seen[i]:
            symbol = tuple(int(v * 0.35 + m * 0.65) for v, m in zip(symbol, MASKED))  # type: ignore[assignment]
        canvas.rect(x0 + 4, y + 4, x0 + 12, y + 12, symbol)
        gx = x0 + length * cw + 2
        canvas.rect(gx, y + 4, gx + cw - 6, y + rh / 2 - 2, GOAL)
        canvas.rect(gx, y + rh / 2 + 2, gx + cw - 6, y + rh - 4, _COLOURS[1])
        cx, cy = x0 + int(cell[i]) * cw + cw / 2, y + rh / 2
        canvas.disc(cx, cy, min(cw, rh - 24) * 0.45, AGENT)
        if actions is not None:
            a = int(actions[i])
            if a in (0, 1):
                step = cw * 0.9 * (1 if a == 0 else -1)
                canvas.arrow(cx, cy, cx + step, cy, WHITE, 2.5, 7)
            else:
                top = y + 4 if a == 2 else y + rh / 2 + 2
                canvas.outline(gx - 2, top - 2, gx + cw - 4, top + rh / 2 - 4, WHITE, 2)
        canvas.outline(x0, y + 2, x0 + length * cw, y + rh - 2, GRID, 1)
    return canvas.img
