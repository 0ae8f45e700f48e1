"""Frames of the toy tasks: MoveToGoal (1D lines, 2D panels) and MaskedChoice (rows of boxes)."""

from __future__ import annotations

import numpy as np

from fledge.envs.drawing import (
    AGENT,
    BACKGROUND,
    BAD,
    DIM_TEXT,
    GOAL,
    GRID,
    HEADER,
    HIGHLIGHT,
    MASKED,
    NEUTRAL,
    PAD,
    PANEL,
    TEXT,
    WHITE,
    Canvas,
    draw_title,
    more_text,
    panel_grid,
    shown,
)


def draw_move_to_goal_1d(
    pos: np.ndarray,
    goal: np.ndarray,
    *,
    low: float = -1.0,
    high: float = 1.0,
    goal_radius: float = 0.1,
    move: np.ndarray | None = None,
) -> np.ndarray:
    """MoveToGoal 1D: one line per agent from `low` to `high`; green band = goal zone, blue = agent,
    white arrow = the move about to be made (`move` (n,) in world units)."""
    n_all = len(pos)
    n = shown(n_all)
    line_w, rh = 540, 26
    width = 2 * PAD + 36 + line_w + 24
    height = HEADER + 14 + n * rh + PAD
    canvas = Canvas(width, height)
    draw_title(
        canvas, f"MoveToGoal 1D  {n_all} agents{more_text(n_all)}", "green = goal zone, blue = agent, arrow = move"
    )
    x0 = PAD + 36
    scale = line_w / (high - low)

    def px(v: float) -> float:
        return x0 + (v - low) * scale

    for v in np.linspace(low, high, 5):
        canvas.text_centered(px(float(v)), HEADER + 5, f"{v:g}", DIM_TEXT)
    for i in range(n):
        y = HEADER + 14 + i * rh
        cy = y + rh / 2
        canvas.text(PAD, cy - 7, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        canvas.rect(x0, cy - 1, x0 + line_w, cy + 1, GRID)
        g = float(goal[i])
        canvas.rect(px(g - goal_radius), y + 3, px(g + goal_radius), y + rh - 3, GOAL)
        p = float(pos[i])
        canvas.disc(px(p), cy, 8, AGENT)
        if i == 0:
            canvas.ring(px(p), cy, 10, 2, HIGHLIGHT)
        if move is not None:
            if abs(float(move[i])) > 1e-9:
                canvas.arrow(px(p), cy, px(p + float(move[i])), cy, WHITE, 2.0, 6)
            else:
                canvas.disc(px(p), cy, 2.5, WHITE)
    return canvas.img


def draw_move_to_goal_2d(
    pos: np.ndarray,
    goal: np.ndarray,
    *,
    low: float = -2.0,
    high: float = 2.0,
    goal_radius: float = 0.1,
    move: np.ndarray | None = None,
    grab: np.ndarray | None = None,
) -> np.ndarray:
    """MoveToGoal 2D: one panel per agent showing the plane; green square = goal zone (with a green
    ring to find it), blue = agent, white arrow = move, yellow ring = grabbing on this decision."""
    canvas, n, cols, cell = panel_grid(
        len(pos), "MoveToGoal 2D", "green = goal, blue = agent, arrow = move, yellow ring = grab"
    )
    margin = 8
    ppu = (cell - 2 * margin) / (high - low)
    for i in range(n):
        ox, oy = (i % cols) * cell, HEADER + (i // cols) * cell
        canvas.rect(ox + margin, oy + margin, ox + cell - margin, oy + cell - margin, PANEL)

        def px(x: float, y: float, ox: float = ox, oy: float = oy) -> tuple[float, float]:
            return ox + margin + (x - low) * ppu, oy + margin + (high - y) * ppu

        cx0, cy0 = px(0.0, 0.0)
        canvas.line(ox + margin, cy0, ox + cell - margin, cy0, GRID, 1)
        canvas.line(cx0, oy + margin, cx0, oy + cell - margin, GRID, 1)
        gx, gy = px(float(goal[i, 0]), float(goal[i, 1]))
        half = max(goal_radius * ppu, 3.0)
        canvas.rect(gx - half, gy - half, gx + half, gy + half, GOAL)
        canvas.ring(gx, gy, half + 5, 2, GOAL)
        ax, ay = px(float(pos[i, 0]), float(pos[i, 1]))
        canvas.line(ax, ay, gx, gy, GRID, 1)
        canvas.disc(ax, ay, 6, AGENT)
        if move is not None:
            tx, ty = px(float(pos[i, 0] + move[i, 0]), float(pos[i, 1] + move[i, 1]))
            canvas.arrow(ax, ay, tx, ty, WHITE, 2.0, 6)
        if grab is not None and bool(grab[i]):
            canvas.ring(ax, ay, 10, 2.5, HIGHLIGHT)
        canvas.outline(ox, oy, ox + cell, oy + cell, HIGHLIGHT if i == 0 else BACKGROUND, 2)
        canvas.text(ox + margin + 4, oy + margin + 4, str(i), TEXT, 2)
    return canvas.img


def draw_masked_choice(
    rewarded: np.ndarray, masked: np.ndarray, *, num_actions: int = 4, chosen: np.ndarray | None = None
) -> np.ndarray:
    """MaskedChoice: one row of boxes per agent; green = rewarded (+1), dark with a red cross = masked
    (-1 if picked), grey = 0, white frame = the chosen action (when `chosen` (n,) is given)."""
    n_all = len(rewarded)
    n = shown(n_all)
    box, gap, rh = 64, 12, 40
    width = max(2 * PAD + 36 + num_actions * (box + gap), 420)
    height = HEADER + 14 + n * rh + PAD
    canvas = Canvas(width, height)
    draw_title(
        canvas,
        f"MaskedChoice  {n_all} agents{more_text(n_all)}",
        "green = rewarded +1, red cross = masked, white frame = chosen",
    )
    x0 = PAD + 36
    for a in range(num_actions):
        canvas.text_centered(x0 + a * (box + gap) + box / 2, HEADER + 5, str(a), DIM_TEXT)
    for i in range(n):
        y = HEADER + 14 + i * rh
        canvas.text(PAD, y + rh / 2 - 7, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        for a in range(num_actions):
            bx = x0 + a * (box + gap)
            y0, y1 = y + 5, y + rh - 5
            if a == int(rewarded[i]):
                canvas.rect(bx, y0, bx + box, y1, GOAL)
            elif a == int(masked[i]):
                canvas.rect(bx, y0, bx + box, y1, MASKED)
                canvas.line(bx + 20, y0 + 4, bx + box - 20, y1 - 4, BAD, 3)
                canvas.line(bx + 20, y1 - 4, bx + box - 20, y0 + 4, BAD, 3)
            else:
                canvas.rect(bx, y0, bx + box, y1, NEUTRAL)
            if chosen is not None and a == int(chosen[i]):
                canvas.outline(bx - 3, y0 - 3, bx + box + 3, y1 + 3, WHITE, 3)
    return canvas.img
