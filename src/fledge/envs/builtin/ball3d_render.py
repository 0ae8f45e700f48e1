"""3DBall's frames: every platform from above, shaded by height, with its ball."""

from __future__ import annotations

import math

import numpy as np

from fledge.envs.drawing import (
    BAD,
    BALL,
    GRID,
    HEADER,
    HIGHLIGHT,
    PANEL,
    PLATFORM_HIGH,
    PLATFORM_LOW,
    TEXT,
    WHITE,
    panel_grid,
)


def draw_ball3d(
    rot_t: np.ndarray,
    ball: np.ndarray,
    falling: np.ndarray,
    *,
    half_size: float = 2.5,
    radius: float = 0.5,
    view: float = 3.3,
) -> np.ndarray:
    """3DBall from above: one panel per agent (world x to the right, world z up).

    rot_t: (n, 3, 3) rows = the platform's x, y, z axes in world space; ball: (n, 3) ball centre relative
    to the platform centre in world space; falling: (n,) bool. The platform is shaded by height (dark
    blue = low, light blue = high) and a white arrow points downhill (longer = steeper); the ball is an
    orange disc (red and shrinking while it falls, with a red panel border).
    """
    canvas, n, cols, cell = panel_grid(
        len(rot_t), "3DBall", "top view: platform shade = height, arrow = downhill, orange = ball"
    )
    ppu = cell / (2 * view)  # pixels per world unit
    coords = ((np.arange(cell, dtype=np.float64) + 0.5) / ppu - view).astype(np.float32)
    wx = coords[None, :]  # world x grows to the right
    wz = -coords[:, None]  # world z grows upwards
    low, high = np.asarray(PLATFORM_LOW, np.float32), np.asarray(PLATFORM_HIGH, np.float32)
    panel = np.asarray(PANEL, np.float32)
    max_height = half_size * math.sin(math.radians(15.0)) * 1.5  # full colour range at about 15 degrees
    for i in range(n):
        r = np.asarray(rot_t[i], np.float32)
        ox, oy = (i % cols) * cell, HEADER + (i // cols) * cell
        nx, ny, nz = (float(v) for v in r[1])
        ny = ny if abs(ny) > 1e-6 else 1e-6
        wy = -(nx * wx + nz * wz) / ny  # the plane through the centre
        lx = wx * r[0, 0] + wy * r[0, 1] + wz * r[0, 2]
        lz = wx * r[2, 0] + wy * r[2, 1] + wz * r[2, 2]
        edge = (half_size - np.maximum(np.abs(lx), np.abs(lz))) * np.float32(ppu * abs(ny))
        alpha = np.clip(edge + 0.5, 0.0, 1.0)[..., None]
        shade = np.clip(0.5 + wy * np.float32(1 / (2 * max_height)), 0.0, 1.0)[..., None]
        color = panel + alpha * (low - panel + shade * (high - low))
        canvas.img[oy : oy + cell, ox : ox + cell] = (color + 0.5).astype(np.uint8)
        cx, cy = ox + cell / 2, oy + cell / 2
        # downhill arrow: the steepest descent direction in the (x, z) plane, length by steepness
        gx, gz = nx / ny, nz / ny  # -gradient of the height
        steep = math.hypot(gx, gz)
        if steep > 1e-3:
            length = min(steep / math.tan(math.radians(20.0)), 1.0) * half_size * 0.9 * ppu
            canvas.arrow(cx, cy, cx + gx / steep * length, cy - gz / steep * length, WHITE, 2.0, 8.0)
        bx, by, bz = (float(v) for v in ball[i])
        if falling[i]:
            r_px = max(radius * ppu * (1.0 + max(by, -2.0) / 3.0), 2.0)
            canvas.disc(ox + (bx + view) * ppu, oy + (view - bz) * ppu, r_px, BAD)
        else:
            canvas.disc(ox + (bx + view) * ppu, oy + (view - bz) * ppu, radius * ppu + 1, (60, 30, 0))
            canvas.disc(ox + (bx + view) * ppu, oy + (view - bz) * ppu, radius * ppu, BALL)
        border = BAD if falling[i] else (HIGHLIGHT if i == 0 else GRID)
        canvas.outline(ox, oy, ox + cell, oy + cell, border, 2 if (i == 0 or falling[i]) else 1)
        canvas.text(ox + 6, oy + 6, str(i), TEXT, 2)
    return canvas.img
