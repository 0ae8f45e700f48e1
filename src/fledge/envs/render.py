"""RGB frames of environments, drawn with numpy only (no matplotlib, no display needed).

`render_rgb(env, actions=None)` returns one (H, W, 3) uint8 frame of any fledge environment:

* built-in environments (`VectorTaskEnv`): the task's own `render(actions)` method (3DBall, Basic,
  MoveToGoal, MaskedChoice draw themselves with the helpers below); a task without one is drawn as
  bars of its observations. `actions`, when given, is the ActionTuple about to be applied (one row
  per agent): the frame then shows each agent's decision in that state (arrows, chosen boxes).
* Gymnasium / PettingZoo environments: the wrapped environment's `render()`, which needs the
  environment to be built with ``render_mode="rgb_array"``: build it with `make_for_rendering`.
  Vector environments give one frame per sub-environment; they are tiled into one image.

Built-in frames show at most `MAX_SHOWN` agents; agent 0 (the one `fledge play` follows) has a
yellow outline. Colours: blue = agent, green = goal / rewarded action, yellow = small goal or the
followed agent, red = failure (masked action, ball falling), orange = 3DBall's ball.

The drawing helpers (`Canvas`, `draw_text`, `caption`, `tile`) are small and vectorised: a frame of
the built-in environments costs 1-10 ms (3DBall's 12 shaded platforms about 20 ms).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fledge.envs.api import ActionTuple, BaseEnv
from fledge.errors import ConfigError, EnvironmentFault

__all__ = [
    "MAX_SHOWN",
    "Canvas",
    "caption",
    "draw_ball3d",
    "draw_basic",
    "draw_masked_choice",
    "draw_move_to_goal_1d",
    "draw_move_to_goal_2d",
    "draw_observations",
    "draw_text",
    "make_for_rendering",
    "render_rgb",
    "text_width",
    "tile",
]

MAX_SHOWN = 16  # agents drawn by the built-in renderers

Color = tuple[int, int, int]
BACKGROUND: Color = (24, 26, 33)
PANEL: Color = (44, 48, 58)
GRID: Color = (82, 88, 102)
TEXT: Color = (232, 232, 232)
DIM_TEXT: Color = (150, 156, 170)
AGENT: Color = (66, 135, 245)
GOAL: Color = (46, 204, 113)
SMALL_GOAL: Color = (241, 196, 15)
HIGHLIGHT: Color = (255, 214, 10)
BAD: Color = (231, 76, 60)
BALL: Color = (255, 140, 0)
MASKED: Color = (70, 72, 80)
NEUTRAL: Color = (120, 126, 140)
WHITE: Color = (250, 250, 250)
PLATFORM_LOW: Color = (38, 74, 150)
PLATFORM_HIGH: Color = (170, 210, 255)


# ----------------------------------------------------------------------------------------------
# A 5 x 7 bitmap font (upper case; lower case is drawn upper case)
# ----------------------------------------------------------------------------------------------

_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": ("01110", "10001", "10011", "10101", "11001", "10001", "01110"),
    "1": ("00100", "01100", "00100", "00100", "00100", "00100", "01110"),
    "2": ("01110", "10001", "00001", "00010", "00100", "01000", "11111"),
    "3": ("11110", "00001", "00001", "01110", "00001", "00001", "11110"),
    "4": ("00010", "00110", "01010", "10010", "11111", "00010", "00010"),
    "5": ("11111", "10000", "11110", "00001", "00001", "10001", "01110"),
    "6": ("00110", "01000", "10000", "11110", "10001", "10001", "01110"),
    "7": ("11111", "00001", "00010", "00100", "01000", "01000", "01000"),
    "8": ("01110", "10001", "10001", "01110", "10001", "10001", "01110"),
    "9": ("01110", "10001", "10001", "01111", "00001", "00010", "01100"),
    "A": ("01110", "10001", "10001", "11111", "10001", "10001", "10001"),
    "B": ("11110", "10001", "10001", "11110", "10001", "10001", "11110"),
    "C": ("01110", "10001", "10000", "10000", "10000", "10001", "01110"),
    "D": ("11100", "10010", "10001", "10001", "10001", "10010", "11100"),
    "E": ("11111", "10000", "10000", "11110", "10000", "10000", "11111"),
    "F": ("11111", "10000", "10000", "11110", "10000", "10000", "10000"),
    "G": ("01110", "10001", "10000", "10111", "10001", "10001", "01111"),
    "H": ("10001", "10001", "10001", "11111", "10001", "10001", "10001"),
    "I": ("01110", "00100", "00100", "00100", "00100", "00100", "01110"),
    "J": ("00111", "00010", "00010", "00010", "00010", "10010", "01100"),
    "K": ("10001", "10010", "10100", "11000", "10100", "10010", "10001"),
    "L": ("10000", "10000", "10000", "10000", "10000", "10000", "11111"),
    "M": ("10001", "11011", "10101", "10101", "10001", "10001", "10001"),
    "N": ("10001", "10001", "11001", "10101", "10011", "10001", "10001"),
    "O": ("01110", "10001", "10001", "10001", "10001", "10001", "01110"),
    "P": ("11110", "10001", "10001", "11110", "10000", "10000", "10000"),
    "Q": ("01110", "10001", "10001", "10001", "10101", "10010", "01101"),
    "R": ("11110", "10001", "10001", "11110", "10100", "10010", "10001"),
    "S": ("01111", "10000", "10000", "01110", "00001", "00001", "11110"),
    "T": ("11111", "00100", "00100", "00100", "00100", "00100", "00100"),
    "U": ("10001", "10001", "10001", "10001", "10001", "10001", "01110"),
    "V": ("10001", "10001", "10001", "10001", "10001", "01010", "00100"),
    "W": ("10001", "10001", "10001", "10101", "10101", "10101", "01010"),
    "X": ("10001", "10001", "01010", "00100", "01010", "10001", "10001"),
    "Y": ("10001", "10001", "10001", "01010", "00100", "00100", "00100"),
    "Z": ("11111", "00001", "00010", "00100", "01000", "10000", "11111"),
    " ": ("00000",) * 7,
    ".": ("00000", "00000", "00000", "00000", "00000", "01100", "01100"),
    ",": ("00000", "00000", "00000", "00000", "01100", "00100", "01000"),
    ":": ("00000", "01100", "01100", "00000", "01100", "01100", "00000"),
    ";": ("00000", "01100", "01100", "00000", "01100", "00100", "01000"),
    "-": ("00000", "00000", "00000", "11111", "00000", "00000", "00000"),
    "+": ("00000", "00100", "00100", "11111", "00100", "00100", "00000"),
    "/": ("00001", "00010", "00010", "00100", "01000", "01000", "10000"),
    "=": ("00000", "00000", "11111", "00000", "11111", "00000", "00000"),
    "(": ("00010", "00100", "01000", "01000", "01000", "00100", "00010"),
    ")": ("01000", "00100", "00010", "00010", "00010", "00100", "01000"),
    "[": ("01110", "01000", "01000", "01000", "01000", "01000", "01110"),
    "]": ("01110", "00010", "00010", "00010", "00010", "00010", "01110"),
    "%": ("11001", "11010", "00010", "00100", "01000", "01011", "10011"),
    "|": ("00100",) * 7,
    "_": ("00000",) * 6 + ("11111",),
    "!": ("00100", "00100", "00100", "00100", "00100", "00000", "00100"),
    "?": ("01110", "10001", "00001", "00010", "00100", "00000", "00100"),
    "'": ("00100", "00100", "01000", "00000", "00000", "00000", "00000"),
    "<": ("00010", "00100", "01000", "10000", "01000", "00100", "00010"),
    ">": ("01000", "00100", "00010", "00001", "00010", "00100", "01000"),
    "#": ("01010", "01010", "11111", "01010", "11111", "01010", "01010"),
    "*": ("00000", "00100", "10101", "01110", "10101", "00100", "00000"),
}
_GLYPH_MASKS = {k: np.array([[c == "1" for c in row] for row in rows], dtype=bool) for k, rows in _GLYPHS.items()}
GLYPH_W, GLYPH_H, GLYPH_ADVANCE = 5, 7, 6


def text_width(text: str, scale: int = 1) -> int:
    """Width in pixels of `text` drawn at `scale`."""
    return max(0, len(text) * GLYPH_ADVANCE * scale - scale)


def draw_text(img: np.ndarray, x: int, y: int, text: str, color: Color = TEXT, scale: int = 1) -> None:
    """Draw `text` with its top-left corner at (x, y) in place; clipped at the image borders."""
    h, w = img.shape[:2]
    col = np.asarray(color, dtype=np.uint8)
    for i, ch in enumerate(text):
        mask = _GLYPH_MASKS.get(ch.upper(), _GLYPH_MASKS["?"])
        if scale > 1:
            mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)
        gx = x + i * GLYPH_ADVANCE * scale
        if gx >= w:
            break
        x0, y0 = max(gx, 0), max(y, 0)
        x1, y1 = min(gx + mask.shape[1], w), min(y + mask.shape[0], h)
        if x1 <= x0 or y1 <= y0:
            continue
        sub = mask[y0 - y : y1 - y, x0 - gx : x1 - gx]
        img[y0:y1, x0:x1][sub] = col


# ----------------------------------------------------------------------------------------------
# Canvas: anti-aliased discs, rings, lines, arrows, convex polygons; plain rectangles
# ----------------------------------------------------------------------------------------------


class Canvas:
    """An (h, w, 3) uint8 image with drawing primitives in float pixel coordinates (x right, y down)."""

    def __init__(self, width: int, height: int, background: Color = BACKGROUND) -> None:
        self.w, self.h = int(width), int(height)
        self.img = np.empty((self.h, self.w, 3), dtype=np.uint8)
        self.img[...] = np.asarray(background, dtype=np.uint8)

    # -- helpers -----------------------------------------------------------------------------------
    def _box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int] | None:
        bx0, by0 = max(int(math.floor(x0)), 0), max(int(math.floor(y0)), 0)
        bx1, by1 = min(int(math.ceil(x1)) + 1, self.w), min(int(math.ceil(y1)) + 1, self.h)
        if bx1 <= bx0 or by1 <= by0:
            return None
        return bx0, by0, bx1, by1

    def _blend(self, box: tuple[int, int, int, int], alpha: np.ndarray, color: Color) -> None:
        bx0, by0, bx1, by1 = box
        if not np.any(alpha > 0):
            return
        region = self.img[by0:by1, bx0:bx1].astype(np.float32)
        region += alpha[..., None] * (np.asarray(color, np.float32) - region)
        self.img[by0:by1, bx0:bx1] = np.rint(region).astype(np.uint8)

    def _grid(self, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        bx0, by0, bx1, by1 = box
        xs = np.arange(bx0, bx1, dtype=np.float32) + 0.5
        ys = np.arange(by0, by1, dtype=np.float32) + 0.5
        return xs[None, :], ys[:, None]

    # -- shapes ------------------------------------------------------------------------------------
    def rect(self, x0: float, y0: float, x1: float, y1: float, color: Color) -> None:
        """Fill the pixels [x0, x1) x [y0, y1) (rounded to whole pixels)."""
        a0, b0 = max(int(round(x0)), 0), max(int(round(y0)), 0)
        a1, b1 = min(int(round(x1)), self.w), min(int(round(y1)), self.h)
        if a1 > a0 and b1 > b0:
            self.img[b0:b1, a0:a1] = color

    def outline(self, x0: float, y0: float, x1: float, y1: float, color: Color, width: int = 1) -> None:
        """A rectangle border `width` pixels thick, inside [x0, x1) x [y0, y1)."""
        self.rect(x0, y0, x1, y0 + width, color)
        self.rect(x0, y1 - width, x1, y1, color)
        self.rect(x0, y0, x0 + width, y1, color)
        self.rect(x1 - width, y0, x1, y1, color)

    def disc(self, cx: float, cy: float, r: float, color: Color) -> None:
        box = self._box(cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1)
        if box is None or r <= 0:
            return
        xs, ys = self._grid(box)
        d = np.hypot(xs - cx, ys - cy)
        self._blend(box, np.clip(r - d + 0.5, 0.0, 1.0), color)

    def ring(self, cx: float, cy: float, r: float, width: float, color: Color) -> None:
        reach = r + width / 2 + 1
        box = self._box(cx - reach, cy - reach, cx + reach, cy + reach)
        if box is None:
            return
        xs, ys = self._grid(box)
        d = np.abs(np.hypot(xs - cx, ys - cy) - r)
        self._blend(box, np.clip(width / 2 - d + 0.5, 0.0, 1.0), color)

    def line(self, x0: float, y0: float, x1: float, y1: float, color: Color, width: float = 2.0) -> None:
        reach = width / 2 + 1
        box = self._box(min(x0, x1) - reach, min(y0, y1) - reach, max(x0, x1) + reach, max(y0, y1) + reach)
        if box is None:
            return
        xs, ys = self._grid(box)
        dx, dy = x1 - x0, y1 - y0
        length2 = dx * dx + dy * dy
        t = np.zeros(1, np.float32) if length2 == 0 else np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0, 1)
        d = np.hypot(xs - (x0 + t * dx), ys - (y0 + t * dy))
        self._blend(box, np.clip(width / 2 - d + 0.5, 0.0, 1.0), color)

    def polygon(self, points: Sequence[tuple[float, float]], color: Color) -> None:
        """Fill a convex polygon (any orientation)."""
        pts = np.asarray(points, dtype=np.float64)
        if len(pts) < 3:
            return
        box = self._box(pts[:, 0].min() - 1, pts[:, 1].min() - 1, pts[:, 0].max() + 1, pts[:, 1].max() + 1)
        if box is None:
            return
        xs, ys = self._grid(box)
        area = 0.5 * float(np.sum(pts[:, 0] * np.roll(pts[:, 1], -1) - np.roll(pts[:, 0], -1) * pts[:, 1]))
        sign = 1.0 if area >= 0 else -1.0
        inside = np.full(np.broadcast_shapes(xs.shape, ys.shape), np.inf, dtype=np.float32)
        for (ax, ay), (bx, by) in zip(pts, np.roll(pts, -1, axis=0)):
            ex, ey = bx - ax, by - ay
            norm = math.hypot(ex, ey)
            if norm == 0:
                continue
            dist = sign * (ex * (ys - ay) - ey * (xs - ax)) / norm  # > 0 inside
            inside = np.minimum(inside, dist)
        self._blend(box, np.clip(inside + 0.5, 0.0, 1.0), color)

    def arrow(
        self, x0: float, y0: float, x1: float, y1: float, color: Color, width: float = 2.0, head: float = 7.0
    ) -> None:
        """A line from (x0, y0) with a triangular head at (x1, y1); nothing when shorter than a pixel."""
        dx, dy = x1 - x0, y1 - y0
        length = math.hypot(dx, dy)
        if length < 1.0:
            return
        ux, uy = dx / length, dy / length
        head = min(head, length)
        bx, by = x1 - ux * head, y1 - uy * head
        self.line(x0, y0, bx, by, color, width)
        half = head * 0.6
        self.polygon([(x1, y1), (bx - uy * half, by + ux * half), (bx + uy * half, by - ux * half)], color)

    def text(self, x: float, y: float, text: str, color: Color = TEXT, scale: int = 1) -> None:
        draw_text(self.img, int(round(x)), int(round(y)), text, color, scale)

    def text_centered(self, cx: float, cy: float, text: str, color: Color = TEXT, scale: int = 1) -> None:
        self.text(cx - text_width(text, scale) / 2, cy - GLYPH_H * scale / 2, text, color, scale)


def _title(canvas: Canvas, title: str, legend: str = "") -> None:
    canvas.text(10, 7, title, TEXT, 2)
    if legend:
        canvas.text(10, 27, legend, DIM_TEXT, 1)


def _grid_shape(n: int, *, max_cols: int = 4) -> tuple[int, int, int]:
    """(columns, rows, cell size in pixels) for n square panels, about 256-640 pixels wide."""
    cols = max(1, min(n, max_cols))
    rows = int(math.ceil(n / cols))
    cell = int(min(256, max(128, 640 // cols)))
    return cols, rows, cell


def _shown(n: int) -> int:
    return min(int(n), MAX_SHOWN)


def _more_text(n: int) -> str:
    return f" (first {MAX_SHOWN} of {n} shown)" if n > MAX_SHOWN else ""


# ----------------------------------------------------------------------------------------------
# Built-in environments (called by each task's render method with its state)
# ----------------------------------------------------------------------------------------------

_HEADER = 42  # title + legend
_PAD = 10


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
    n_all = len(rot_t)
    n = _shown(n_all)
    cols, rows, cell = _grid_shape(n)
    width, height = cols * cell, _HEADER + rows * cell
    canvas = Canvas(width, height)
    _title(
        canvas,
        f"3DBall  {n_all} agents{_more_text(n_all)}",
        "top view: platform shade = height, arrow = downhill, orange = ball",
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
        ox, oy = (i % cols) * cell, _HEADER + (i // cols) * cell
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
    n = _shown(n_all)
    cw, rh = 28, 40
    width = 2 * _PAD + size * cw + 40
    height = _HEADER + 14 + n * rh + _PAD
    canvas = Canvas(width, height)
    _title(
        canvas,
        f"Basic  {n_all} agent{'s' if n_all != 1 else ''}{_more_text(n_all)}",
        "yellow = small goal +0.1, green = large goal +1, blue = agent, arrow = move",
    )
    x0 = _PAD + 40
    for c in range(size):  # cell numbers above the first row
        if c % 5 == 0 or c in (small_goal, large_goal, start):
            canvas.text_centered(x0 + c * cw + cw / 2, _HEADER + 5, str(c), DIM_TEXT)
    for i in range(n):
        y = _HEADER + 14 + i * rh
        canvas.text(_PAD, y + rh / 2 - 7, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
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
    n = _shown(n_all)
    line_w, rh = 540, 26
    width = 2 * _PAD + 36 + line_w + 24
    height = _HEADER + 14 + n * rh + _PAD
    canvas = Canvas(width, height)
    _title(canvas, f"MoveToGoal 1D  {n_all} agents{_more_text(n_all)}", "green = goal zone, blue = agent, arrow = move")
    x0 = _PAD + 36
    scale = line_w / (high - low)

    def px(v: float) -> float:
        return x0 + (v - low) * scale

    for v in np.linspace(low, high, 5):
        canvas.text_centered(px(float(v)), _HEADER + 5, f"{v:g}", DIM_TEXT)
    for i in range(n):
        y = _HEADER + 14 + i * rh
        cy = y + rh / 2
        canvas.text(_PAD, cy - 7, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
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
    n_all = len(pos)
    n = _shown(n_all)
    cols, rows, cell = _grid_shape(n)
    canvas = Canvas(cols * cell, _HEADER + rows * cell)
    _title(
        canvas,
        f"MoveToGoal 2D  {n_all} agents{_more_text(n_all)}",
        "green = goal, blue = agent, arrow = move, yellow ring = grab",
    )
    margin = 8
    ppu = (cell - 2 * margin) / (high - low)
    for i in range(n):
        ox, oy = (i % cols) * cell, _HEADER + (i // cols) * cell
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
    n = _shown(n_all)
    box, gap, rh = 64, 12, 40
    width = max(2 * _PAD + 36 + num_actions * (box + gap), 420)
    height = _HEADER + 14 + n * rh + _PAD
    canvas = Canvas(width, height)
    _title(
        canvas,
        f"MaskedChoice  {n_all} agents{_more_text(n_all)}",
        "green = rewarded +1, red cross = masked, white frame = chosen",
    )
    x0 = _PAD + 36
    for a in range(num_actions):
        canvas.text_centered(x0 + a * (box + gap) + box / 2, _HEADER + 5, str(a), DIM_TEXT)
    for i in range(n):
        y = _HEADER + 14 + i * rh
        canvas.text(_PAD, y + rh / 2 - 7, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
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


def draw_observations(obs: np.ndarray, title: str = "observations") -> np.ndarray:
    """Any vector task: one row of bars per agent, bar height tanh(value) (up = positive)."""
    obs = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
    n_all, size = obs.shape
    n = _shown(n_all)
    size = min(size, 64)
    bw, rh = max(4, min(24, 560 // max(size, 1))), 40
    width = max(2 * _PAD + 36 + size * bw, 320)
    canvas = Canvas(width, _HEADER + n * rh + _PAD)
    _title(canvas, f"{title}  {n_all} agents{_more_text(n_all)}", "bars = observations (tanh scaled)")
    x0 = _PAD + 36
    for i in range(n):
        y = _HEADER + i * rh
        mid = y + rh / 2
        canvas.text(_PAD, mid - 7, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        canvas.rect(x0, mid, x0 + size * bw, mid + 1, GRID)
        for j in range(size):
            v = math.tanh(float(obs[i, j])) * (rh / 2 - 3)
            top, bottom = (mid - v, mid) if v >= 0 else (mid, mid - v)
            canvas.rect(x0 + j * bw + 1, top, x0 + (j + 1) * bw - 1, max(bottom, top + 1), AGENT if v >= 0 else BAD)
    return canvas.img


# ----------------------------------------------------------------------------------------------
# Frames of any environment
# ----------------------------------------------------------------------------------------------


def make_for_rendering(name: str, *, seed: int = 0, **kwargs: Any) -> BaseEnv:
    """An environment by registry name that `render_rgb` can draw.

    Built-in names are built as usual (they always render). "gym:<id>" and "pettingzoo:<module>" are
    built with ``render_mode="rgb_array"`` (passed to `gymnasium.make` / the PettingZoo constructor).
    """
    from fledge.envs import registry

    if ":" in name and "render_mode" not in kwargs:
        kwargs = {**kwargs, "render_mode": "rgb_array"}
    return registry.make(name, seed=seed, **kwargs)


def render_rgb(env: BaseEnv, actions: ActionTuple | Mapping[str, ActionTuple] | None = None) -> np.ndarray:
    """One (H, W, 3) uint8 frame of `env` in its current state.

    actions: the actions about to be applied (an ActionTuple, or a mapping behavior -> ActionTuple);
    built-in tasks draw them, other environments ignore them.
    """
    from fledge.envs.builtin.base import VectorTaskEnv

    if isinstance(env, VectorTaskEnv):
        task = env.task
        act = actions.get(task.behavior_name) if isinstance(actions, Mapping) else actions
        draw = getattr(task, "render", None)
        if callable(draw):
            takes_actions = bool(inspect.signature(draw).parameters)  # a user task may define render(self)
            return _as_rgb(draw(act) if takes_actions else draw(), type(task).__name__)
        return draw_observations(task.observe()[0], task.behavior_name)
    target = env if callable(getattr(env, "render", None)) else getattr(env, "env", None)
    draw = getattr(target, "render", None)
    if not callable(draw):
        raise ConfigError(f"{type(env).__name__} cannot be rendered: it has no render() method.")
    mode = getattr(target, "render_mode", "rgb_array")
    if mode != "rgb_array":
        raise ConfigError(
            f"{_env_label(env)} was built with render_mode={mode!r}; frames need render_mode='rgb_array'. "
            "Build it with fledge.envs.render.make_for_rendering(name, seed=...)."
        )
    try:
        frame = draw()
    except Exception as exc:
        if type(exc).__name__ == "DependencyNotInstalled":
            raise ConfigError(
                f"Rendering {_env_label(env)} needs an extra package: {exc}. "
                "For Gymnasium's classic-control and Box2D environments: pip install 'gymnasium[classic-control]' "
                "(or 'gymnasium[box2d]')."
            ) from exc
        raise
    if frame is None:
        raise ConfigError(
            f"{_env_label(env)} returned no frame from render(); build it with render_mode='rgb_array' "
            "(fledge.envs.render.make_for_rendering) and reset it first."
        )
    return _as_rgb(frame, _env_label(env))


def _env_label(env: BaseEnv) -> str:
    for attr in ("env_id", "name"):
        value = getattr(env, attr, None)
        if isinstance(value, str):
            return f"Environment '{value}'"
    return type(env).__name__


def _as_rgb(frame: Any, label: str) -> np.ndarray:
    """A frame (or a list of frames, tiled) as a contiguous (H, W, 3) uint8 array."""
    if isinstance(frame, (list, tuple)):
        frames = [_as_rgb(f, label) for f in frame if f is not None]
        if not frames:
            raise EnvironmentFault(f"{label}: render() returned no frames.")
        return frames[0] if len(frames) == 1 else tile(frames)
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise EnvironmentFault(f"{label}: render() returned an array of shape {arr.shape}, not an (H, W, 3) image.")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and float(np.nanmax(arr, initial=0.0)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def tile(frames: Sequence[np.ndarray], cols: int | None = None, gap: int = 4) -> np.ndarray:
    """Frames side by side in a grid (at most MAX_SHOWN), padded to the largest frame."""
    frames = [_as_rgb(f, "frame") for f in frames[:MAX_SHOWN]]
    cols = cols or int(math.ceil(math.sqrt(len(frames))))
    rows = int(math.ceil(len(frames) / cols))
    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    out = np.empty((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    for k, f in enumerate(frames):
        r, c = divmod(k, cols)
        y, x = r * (h + gap), c * (w + gap)
        out[y : y + f.shape[0], x : x + f.shape[1]] = f
    return out


def caption(frame: np.ndarray, text: str, *, lines: Sequence[str] = (), scale: int = 1) -> np.ndarray:
    """A new frame with a dark strip on top holding `text` (and further `lines`), same width."""
    all_lines = [text, *lines]
    line_h = (GLYPH_H + 4) * scale
    strip = 6 + line_h * len(all_lines)
    out = np.empty((frame.shape[0] + strip, frame.shape[1], 3), dtype=np.uint8)
    out[:strip] = (12, 13, 17)
    out[strip:] = frame
    for k, line in enumerate(all_lines):
        draw_text(out, 6, 4 + k * line_h, line, TEXT if k == 0 else DIM_TEXT, scale)
    return out
