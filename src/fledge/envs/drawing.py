"""Drawing on numpy RGB images (no matplotlib, no display needed): colours, a 5 x 7 bitmap font, a canvas of
anti-aliased shapes, and the panel layout the built-in environments' frames share.

Built-in frames show at most `MAX_SHOWN` agents; agent 0 (the one `fledge play` follows) has a yellow outline.
Colours: blue = agent, green = goal / rewarded action, yellow = small goal or the followed agent, red = failure
(masked action, ball falling), orange = 3DBall's ball. Each built-in task draws itself with these helpers
(`fledge.envs.builtin.<task>_render`); `fledge.envs.render` turns any environment into frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

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


# ----------------------------------------------------------------------------------------------
# Panel layout of the built-in environments' frames
# ----------------------------------------------------------------------------------------------

HEADER = 42  # title + legend
PAD = 10


def draw_title(canvas: Canvas, title: str, legend: str = "") -> None:
    canvas.text(10, 7, title, TEXT, 2)
    if legend:
        canvas.text(10, 27, legend, DIM_TEXT, 1)


def grid_shape(n: int, *, max_cols: int = 4) -> tuple[int, int, int]:
    """(columns, rows, cell size in pixels) for n square panels, about 256-640 pixels wide."""
    cols = max(1, min(n, max_cols))
    rows = int(math.ceil(n / cols))
    cell = int(min(256, max(128, 640 // cols)))
    return cols, rows, cell


class PanelGrid(NamedTuple):
    """A titled canvas of square panels, one per shown agent: `n` panels in `cols` columns of `cell` pixels."""

    canvas: Canvas
    n: int
    cols: int
    cell: int


def panel_grid(n_all: int, name: str, legend: str) -> PanelGrid:
    """The canvas for `n_all` agents' panels (the first MAX_SHOWN), titled "<name>  <n> agents" with `legend`."""
    n = shown(n_all)
    cols, rows, cell = grid_shape(n)
    canvas = Canvas(cols * cell, HEADER + rows * cell)
    draw_title(canvas, f"{name}  {n_all} agents{more_text(n_all)}", legend)
    return PanelGrid(canvas, n, cols, cell)


def shown(n: int) -> int:
    return min(int(n), MAX_SHOWN)


def more_text(n: int) -> str:
    return f" (first {MAX_SHOWN} of {n} shown)" if n > MAX_SHOWN else ""
