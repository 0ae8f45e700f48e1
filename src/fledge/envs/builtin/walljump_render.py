"""WallJump's frames: each area from above, the goal row at the top, the wall shaded by its height."""

from __future__ import annotations

import numpy as np

from fledge.envs.drawing import AGENT, BALL, GOAL, GRID, HEADER, HIGHLIGHT, PANEL, TEXT, WHITE, panel_grid

_WALL_LOW = np.array([150, 150, 160], dtype=np.float64)
_WALL_HIGH = np.array([90, 60, 50], dtype=np.float64)
_MARGIN = 22  # pixels above each floor for the behavior and wall height


def draw_walljump(
    *,
    col: np.ndarray,
    row: np.ndarray,
    on_block: np.ndarray,
    block_col: np.ndarray,
    block_row: np.ndarray,
    height: np.ndarray,
    behavior: np.ndarray,
    behaviors: tuple[str, ...],
    width: int,
    rows: int,
    wall_row: int,
) -> np.ndarray:
    """One panel per area: the floor (row 0 at the bottom, the goal row green at the top), the wall row shaded
    from grey (low) to brown (high, 8 or more), the block orange, the agent blue (ringed white on the block)."""
    WIDTH, ROWS, WALL_ROW, GOAL_ROW = width, rows, wall_row, rows - 1
    canvas, n, cols, cell = panel_grid(
        len(col), "WallJump", "green = goal row, wall shaded by height, orange = block, blue = agent"
    )
    size = min((cell - 12) // WIDTH, (cell - _MARGIN - 8) // ROWS)
    for i in range(n):
        ox, oy = (i % cols) * cell, HEADER + (i // cols) * cell
        fx, fy = ox + (cell - size * WIDTH) // 2, oy + _MARGIN

        def box(
            r: int, c: int, inset: float = 1.0, fx: float = fx, fy: float = fy
        ) -> tuple[float, float, float, float]:
            y = fy + (ROWS - 1 - r) * size  # row 0 at the bottom
            x = fx + c * size
            return x + inset, y + inset, x + size - inset, y + size - inset

        share = float(np.clip(height[i] / 8.0, 0.0, 1.0))
        wall = tuple(int(v) for v in _WALL_LOW * (1 - share) + _WALL_HIGH * share)
        for r in range(ROWS):
            colour = GOAL if r == GOAL_ROW else wall if r == WALL_ROW else PANEL
            for c in range(WIDTH):
                canvas.rect(*box(r, c), colour)  # type: ignore[arg-type]
        canvas.rect(*box(int(block_row[i]), int(block_col[i]), size * 0.15), BALL)
        x0, y0, x1, y1 = box(int(row[i]), int(col[i]))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        canvas.disc(cx, cy, size * 0.3, AGENT)
        if on_block[i]:
            canvas.ring(cx, cy, size * 0.36, 2.0, WHITE)
        label = f"{behaviors[int(behavior[i])]} {height[i]:.1f}"
        canvas.text(ox + 6, oy + 4, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        canvas.text(ox + 30, oy + 6, label, TEXT, 1)
        border = HIGHLIGHT if i == 0 else GRID
        canvas.outline(ox, oy, ox + cell, oy + cell, border, 2 if i == 0 else 1)
    return canvas.img
