"""GridWorld's frames: each agent's camera image enlarged, its goal signal and its chosen move."""

from __future__ import annotations

import numpy as np

from fledge.envs.drawing import (
    AGENT,
    BAD,
    GOAL,
    GRID,
    HEADER,
    HIGHLIGHT,
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
_MARGIN = 22  # pixels above each board for the goal text


def camera_rgb(image: np.ndarray) -> np.ndarray:
    """(n, 3, S, S) camera observations -> (n, S, S, 3) float32 colours: red x, green plus, blue agent on
    the panel colour."""
    chans = np.clip(image.transpose(0, 2, 3, 1), 0.0, 1.0)
    colors = np.array([BAD, GOAL, AGENT], dtype=np.float32)  # per channel
    cover = np.clip(chans.sum(axis=3, keepdims=True), 0.0, 1.0)
    return np.asarray(PANEL, np.float32) * (1.0 - cover) + np.clip(chans @ colors, 0.0, 255.0)


def draw_gridworld(
    image: np.ndarray,
    target: np.ndarray,
    agent: np.ndarray,
    scale: int,
    actions: np.ndarray | None = None,
) -> np.ndarray:
    """GridWorld: one panel per agent showing its camera image (red x, green plus, blue agent), the goal
    the signal names above it, and the chosen move (`actions` (n,) in 0..4) as a white arrow."""
    n_all = len(image)
    n = shown(n_all)
    cols, rows, cell = grid_shape(n)
    canvas = Canvas(cols * cell, HEADER + rows * cell)
    draw_title(
        canvas,
        f"GridWorld  {n_all} agents{more_text(n_all)}",
        "camera view: green plus, red x, blue agent; text = goal signal, arrow = move",
    )
    side = image.shape[2]
    board = cell - _MARGIN - 8
    px = max(1, board // side)  # screen pixels per camera pixel
    size = px * side
    rgb = camera_rgb(image[:n])
    g = side // scale
    for i in range(n):
        ox, oy = (i % cols) * cell, HEADER + (i // cols) * cell
        bx, by = ox + (cell - size) // 2, oy + _MARGIN
        big = np.repeat(np.repeat(rgb[i], px, axis=0), px, axis=1)
        canvas.img[by : by + size, bx : bx + size] = (big + 0.5).astype(np.uint8)
        for k in range(g + 1):  # cell lines
            line = k * scale * px - (1 if k == g else 0)
            canvas.rect(bx + line, by, bx + line + 1, by + size, GRID)
            canvas.rect(bx, by + line, bx + size, by + line + 1, GRID)
        plus = int(target[i]) == 0
        canvas.text(ox + 6, oy + 4, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        canvas.text(ox + 30, oy + 6, "GO TO +" if plus else "GO TO X", GOAL if plus else BAD, 1)
        if actions is not None and int(actions[i]) in _MOVES:
            dx, dy = _MOVES[int(actions[i])]
            cx = bx + (agent[i, 1] + 0.5) * scale * px
            cy = by + (agent[i, 0] + 0.5) * scale * px
            reach = scale * px * 0.9
            canvas.arrow(cx, cy, cx + dx * reach, cy + dy * reach, WHITE, 2.0, 6.0)
        border = HIGHLIGHT if i == 0 else GRID
        canvas.outline(ox, oy, ox + cell, oy + cell, border, 2 if i == 0 else 1)
    return canvas.img
