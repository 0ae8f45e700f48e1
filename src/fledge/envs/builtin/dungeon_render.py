"""DungeonEscape's frames: one panel per area with the door, the guard, the key and the agents."""

from __future__ import annotations

import numpy as np

from fledge.envs.drawing import AGENT, BAD, GOAL, GRID, HEADER, HIGHLIGHT, PANEL, TEXT, WHITE, panel_grid

KEY = (243, 156, 18)
_MARGIN = 22


def draw_dungeon(
    pos: np.ndarray,
    on_board: np.ndarray,
    guard: np.ndarray,
    guard_alive: np.ndarray,
    key: np.ndarray,
    key_on_floor: np.ndarray,
    holder: np.ndarray,
    *,
    size: int,
) -> np.ndarray:
    """pos (a, 3, 2) cells (x, y); green = the door (top-left), red = the guard, orange = the key, blue =
    agents (the one holding the key ringed in orange); agents that left are not drawn."""
    canvas, n, cols, cell = panel_grid(
        len(pos), "DungeonEscape", "green door, red guard, orange key, blue agents (ringed: holds the key)"
    )
    board = cell - _MARGIN - 8
    px = max(1, board // size)
    for a in range(n):
        ox, oy = (a % cols) * cell, HEADER + (a // cols) * cell
        bx, by = ox + (cell - px * size) // 2, oy + _MARGIN
        canvas.rect(bx, by, bx + px * size, by + px * size, PANEL)
        for k in range(size + 1):
            canvas.rect(bx + k * px, by, bx + k * px + 1, by + px * size, GRID)
            canvas.rect(bx, by + k * px, bx + px * size, by + k * px + 1, GRID)
        canvas.rect(bx + 2, by + 2, bx + px - 1, by + px - 1, GOAL)

        def centre(xy: np.ndarray, bx: int = bx, by: int = by) -> tuple[float, float]:
            return bx + (float(xy[0]) + 0.5) * px, by + (float(xy[1]) + 0.5) * px

        if guard_alive[a]:
            canvas.disc(*centre(guard[a]), px * 0.4, BAD)
        if key_on_floor[a]:
            canvas.disc(*centre(key[a]), px * 0.2, KEY)
        for j in range(pos.shape[1]):
            if not on_board[a, j]:
                continue
            cx, cy = centre(pos[a, j])
            if holder[a] == j:
                canvas.ring(cx, cy, px * 0.38, 3.0, KEY)
            canvas.disc(cx, cy, px * 0.28, AGENT)
            canvas.text_centered(cx, cy, str(j), WHITE)
        left = int(pos.shape[1] - on_board[a].sum())
        canvas.text(ox + 6, oy + 4, f"{a}", HIGHLIGHT if a == 0 else TEXT, 2)
        canvas.text(ox + 30, oy + 6, f"left {left}", TEXT, 1)
        canvas.outline(ox, oy, ox + cell, oy + cell, HIGHLIGHT if a == 0 else GRID, 2 if a == 0 else 1)
    return canvas.img
