"""Which Gymnasium/PettingZoo `Box` observation spaces are images, and their conversion to fledge's layout.

fledge's visual observations are float32 (C, H, W) in [0, 1] with dimension properties (NONE,
TRANSLATIONAL_EQUIVARIANCE, TRANSLATIONAL_EQUIVARIANCE), the layout the visual encoders take. A `Box` is
an image when it is:

* uint8 of rank 3 (any bounds; values are divided by 255), or uint8 of rank 2 with bounds [0, 255]
  (a grayscale frame such as Atari's ``obs_type="grayscale"``, which becomes one channel);
* floating point of rank 3 or 2 with bounds exactly [0, 1] (kept as they are) or [0, 255] (divided by 255).

Other Boxes stay vectors (flattened). The channel axis of a rank-3 image: the last axis when it has at
most 4 entries (H, W, C: RGB, RGBA, gray, as cameras and CarRacing give), else the first axis when it has
at most 16 entries and is the shortest (C, H, W: e.g. 4 stacked 84 x 84 frames), else the last.
Only numpy is needed here; `fledge.envs.gymnasium` reads the spaces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_CHANNELS_LAST = 4
MAX_CHANNELS_FIRST = 16


@dataclass(frozen=True)
class ImageLayout:
    """How one agent's image array becomes (C, H, W) float32 in [0, 1]."""

    axes: tuple[int, ...]  # transpose of a batch (n, ...) into (n, C, H, W); empty for rank 2
    chw: tuple[int, int, int]
    scale: float  # values are multiplied by this

    def convert(self, batch: np.ndarray) -> np.ndarray:
        """A batch (n, *space shape) -> a new C-contiguous (n, C, H, W) float32 array."""
        n = batch.shape[0]
        view = batch[:, None] if not self.axes else batch.transpose(self.axes)
        out = np.empty((n, *self.chw), dtype=np.float32)
        if self.scale == 1.0:
            out[...] = view
        else:
            np.multiply(view, np.float32(self.scale), out=out, casting="unsafe")
        return out


def _bounds_are(low: np.ndarray, high: np.ndarray, lo: float, hi: float) -> bool:
    return bool(np.all(low == lo) and np.all(high == hi))


def image_layout(shape: tuple[int, ...], dtype: np.dtype, low: np.ndarray, high: np.ndarray) -> ImageLayout | None:
    """The image layout of a Box space, or None when the Box is not an image (see the module text)."""
    dtype = np.dtype(dtype)
    rank = len(shape)
    if rank not in (2, 3) or min(shape) < 1:
        return None
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if dtype == np.uint8:
        if rank == 2 and not _bounds_are(low, high, 0.0, 255.0):
            return None
        scale = 1.0 / 255.0
    elif np.issubdtype(dtype, np.floating):
        if _bounds_are(low, high, 0.0, 1.0):
            scale = 1.0
        elif _bounds_are(low, high, 0.0, 255.0):
            scale = 1.0 / 255.0
        else:
            return None
    else:
        return None
    if rank == 2:
        h, w = shape
        return ImageLayout((), (1, h, w), scale)
    a, b, c = shape
    if c > MAX_CHANNELS_LAST and a <= MAX_CHANNELS_FIRST and a <= min(b, c):
        return ImageLayout((0, 1, 2, 3), (a, b, c), scale)  # already channels first
    return ImageLayout((0, 3, 1, 2), (c, a, b), scale)
