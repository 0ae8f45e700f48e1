"""Sorter's frames: every board with its numbered tiles, the agent and its chosen move."""

from __future__ import annotations

import numpy as np

from fledge.envs.drawing import (
    AGENT,
    GOAL,
    GRID,
    HEADER,
    HIGHLIGHT,
    MASKED,
    PANEL,
    TEXT,
    WHITE,
    Canvas,
    draw_title,
    grid_shape,
    more_text,
    shown,
)

_MOVES = {1: (0.0, -1.0), 2: (0.0, 1.0), 3: (-1.0, 0.0), 4: (1.0, 0.0)}  # action -> (dx, dy) on screen


def draw_sorter(
    agent: np.ndarray,
    tile: np.ndarray,
    number: np.ndarray,
    visited: np.ndarray,
    next_tile: np.ndarray,
    *,
    board_size: int,
    actions: np.ndarray | None = None,
) -> np.ndarray:
    """Sorter: one panel per agent; tiles show their numbers (green = to visit, grey = visited, a yellow
    outline on the next one), blue = the agent, white arrow = its chosen move (`actions` (n,) in 0..4)."""
    n_all = len(agent)
    n = shown(n_all)
    cols, rows, cell = grid_shape(n)
    canvas = Canvas(cols * cell, HEADER + rows * cell)
    draw_title(
        canvas,
        f"Sorter  {n_all} agents{more_text(n_all)}",
        "visit the tiles in increasing order: green = to visit, grey = visited, yellow = next",
    )
    margin = 20
    px = (cell - margin - 8) // board_size
    for i in range(n):
        ox, oy = (i % cols) * cell, HEADER + (i // cols) * cell
        bx, by = ox + (cell - px * board_size) // 2, oy + margin
        canvas.rect(bx, by, bx + px * board_size, by + px * board_size, PANEL)
        for k in range(board_size + 1):
            canvas.rect(bx + k * px, by, bx + k * px + 1, by + px * board_size, GRID)
            canvas.rect(bx, by + k * px, bx + px * board_size, by + k * px + 1, GRID)
        for j in np.flatnonzero(number[i] > 0):
            r, c = int(tile[i, j, 0]), int(tile[i, j, 1])
            x0, y0 = bx + c * px + 2, by + r * px + 2
            canvas.rect(x0, y0, x0 + px - 3, y0 + px - 3, MASKED if visited[i, j] else GOAL)
            if j == next_tile[i] and not visited[i, j]:
                canvas.outline(x0, y0, x0 + px - 3, y0 + px - 3, HIGHLIGHT, 2)
            canvas.text_centered(x0 + (px - 3) / 2, y0 + (px - 3) / 2, str(int(number[i, j])), TEXT, 1)
        cx, cy = bx + (agent[i, 1] + 0.5) * px, by + (agent[i, 0] + 0.5) * px
        canvas.disc(cx, cy, px * 0.3, AGENT)
        if actions is not None and int(actions[i]) in _MOVES:
            dx, dy = _MOVES[int(actions[i])]
            canvas.arrow(cx, cy, cx + dx * px * 0.9, cy + dy * px * 0.9, WHITE, 2.0, 6.0)
        canvas.text(ox + 6, oy + 4, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        canvas.outline(ox, oy, ox + cell, oy + cell, HIGHLIGHT if i == 0 else GRID, 2 if i == 0 else 1)
    return canvas.img
