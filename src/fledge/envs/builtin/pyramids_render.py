"""Pyramids' frames: each agent's room from above with the switch, the pyramid, the agent and what its rays see."""

from __future__ import annotations

import math

import numpy as np

from fledge.envs.drawing import AGENT, BAD, GOAL, GRID, HEADER, HIGHLIGHT, PANEL, TEXT, WHITE, Color, panel_grid

GOLD: Color = (241, 196, 15)
STONE: Color = (150, 130, 105)
RAY: Color = (70, 76, 92)
_MARGIN = 24


def draw_pyramids(
    pos: np.ndarray,
    heading: np.ndarray,
    switch: np.ndarray,
    pressed: np.ndarray,
    pyramid: np.ndarray,
    obs: np.ndarray,
    *,
    room_half: float,
    ray_length: float,
    actions: np.ndarray | None = None,
) -> np.ndarray:
    """One panel per agent (world x to the right, world z up): the switch (red while off, green once
    pressed), the pyramid (stone with its gold brick, once the switch is pressed), the agent (blue, a white
    nose for its heading) and its rays (`ray_length` units at most) as faint lines to their hits, ending in
    the colour of what they hit; `actions` (n,) in 0..3: an arrow for forward/back, a curved mark for a turn."""
    from fledge.envs.builtin.pyramids_layout import (
        AGENT_RADIUS,
        NUM_RAYS,
        NUM_TAGS,
        PYRAMID,
        PYRAMID_RADIUS,
        RAY_ANGLES,
        RAY_SIZE,
        SWITCH_OFF,
        SWITCH_ON,
        SWITCH_RADIUS,
        TURN_LEFT,
        TURN_RIGHT,
    )

    canvas, n, cols, cell = panel_grid(
        len(pos), "Pyramids", "red switch (green: pressed), stone pyramid with gold brick, blue agent, rays"
    )
    side = cell - 2 * _MARGIN + 8
    ppu = side / (2.0 * room_half)
    hit_colour = {SWITCH_OFF: BAD, SWITCH_ON: GOAL, PYRAMID: GOLD}
    for i in range(n):
        ox, oy = (i % cols) * cell, HEADER + (i // cols) * cell
        bx, by = ox + (cell - side) / 2, oy + _MARGIN - 4

        def at(x: float, z: float, bx: float = bx, by: float = by) -> tuple[float, float]:
            return bx + (x + room_half) * ppu, by + (room_half - z) * ppu

        canvas.rect(bx, by, bx + side, by + side, PANEL)
        ax, ay = at(float(pos[i, 0]), float(pos[i, 1]))
        rays = obs[i, : NUM_RAYS * RAY_SIZE].reshape(NUM_RAYS, RAY_SIZE)
        for k in range(NUM_RAYS):
            angle = float(heading[i]) + math.radians(RAY_ANGLES[k])
            reach = float(rays[k, NUM_TAGS]) * ray_length * ppu
            ex, ey = ax + math.cos(angle) * reach, ay - math.sin(angle) * reach
            canvas.line(ax, ay, ex, ey, RAY, 1.0)
            tag = int(np.argmax(rays[k, :NUM_TAGS]))
            if tag in hit_colour:
                canvas.disc(ex, ey, 2.0, hit_colour[tag])
        sx, sy = at(float(switch[i, 0]), float(switch[i, 1]))
        canvas.disc(sx, sy, SWITCH_RADIUS * ppu, GOAL if pressed[i] else BAD)
        if pressed[i]:
            px, py = at(float(pyramid[i, 0]), float(pyramid[i, 1]))
            r = PYRAMID_RADIUS * ppu
            canvas.polygon([(px, py - r), (px + r, py + r * 0.8), (px - r, py + r * 0.8)], STONE)
            canvas.disc(px, py + r * 0.1, max(r * 0.3, 2.0), GOLD)
        canvas.disc(ax, ay, AGENT_RADIUS * ppu, AGENT)
        hx, hy = math.cos(float(heading[i])), -math.sin(float(heading[i]))
        canvas.disc(ax + hx * AGENT_RADIUS * ppu * 0.6, ay + hy * AGENT_RADIUS * ppu * 0.6, 2.5, WHITE)
        if actions is not None:
            a = int(actions[i])
            if a in (TURN_LEFT, TURN_RIGHT):
                side_x, side_y = (-hy, hx) if a == TURN_RIGHT else (hy, -hx)
                length = AGENT_RADIUS * ppu * 1.6
                canvas.arrow(
                    ax + hx * length,
                    ay + hy * length,
                    ax + (hx + side_x) * length,
                    ay + (hy + side_y) * length,
                    WHITE,
                    2.0,
                    6.0,
                )
            else:
                sign = 1.0 if a == 0 else -1.0
                length = AGENT_RADIUS * ppu * 2.2 * sign
                canvas.arrow(ax, ay, ax + hx * length, ay + hy * length, WHITE, 2.0, 6.0)
        canvas.outline(bx, by, bx + side, by + side, GRID, 1)
        canvas.text(ox + 6, oy + 4, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        state = "pressed" if pressed[i] else "switch off"
        canvas.text(ox + 30, oy + 6, state, TEXT, 1)
        canvas.outline(ox, oy, ox + cell, oy + cell, HIGHLIGHT if i == 0 else GRID, 2 if i == 0 else 1)
    return canvas.img
