"""The observation preprocessing of a body: the running normaliser on the vector observations' columns.

It maps the flat raw row (B, row) to the flat row the learned encoders read, of the same width: the
vector columns normalised (when `normalize`), the other columns (pixels, entities) unchanged. It has
no learned weights, so trainers apply it once to a whole buffer before the minibatches.
For a behavior of vector observations only, the normaliser covers the whole row exactly as it always
has (same state names, same maths).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fledge.networks.encoders.layout import ObservationLayout
from fledge.networks.normalizer import RunningNormalizer


class VectorEncoder(nn.Module):
    """forward(raw row (B, size)) -> the row with its vector columns through the running normaliser (if any)."""

    def __init__(self, size: int, *, normalize: bool, layout: ObservationLayout | None = None) -> None:
        super().__init__()
        self.layout = layout if layout is not None else ObservationLayout.vector(size)
        if self.layout.size != size:
            raise ValueError(f"observation layout of width {self.layout.size} given for a row of {size}")
        self.size = size
        self.out_size = size
        columns = self.layout.vector_columns
        self.whole_row = len(columns) == size
        # the vector observations' column runs [start, stop) and the row's pieces in order (vector or not)
        self.pieces = tuple((s.start, s.stop, s.kind == "vector") for s in self.layout.slots)
        self.normalizer: RunningNormalizer | None = None
        if normalize and columns:
            self.normalizer = RunningNormalizer(len(columns), columns=None if self.whole_row else columns)

    def row_scale_offset(self) -> tuple[np.ndarray, np.ndarray] | None:
        """The normaliser as per-column (scale, offset) over the whole row (1 and 0 on other columns), or None."""
        if self.normalizer is None:
            return None
        scale = np.ones(self.size, np.float32)
        offset = np.zeros(self.size, np.float32)
        columns = np.asarray(self.layout.vector_columns, dtype=np.int64)
        scale[columns] = self.normalizer.arrays.scale
        offset[columns] = self.normalizer.arrays.offset
        return scale, offset

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.normalizer is None:
            return obs
        if self.whole_row:
            return self.normalizer(obs)
        vector = torch.cat([obs[:, a:b] for a, b, is_vector in self.pieces if is_vector], dim=1)
        normed = self.normalizer(vector)
        out: list[torch.Tensor] = []
        at = 0
        for a, b, is_vector in self.pieces:
            if is_vector:
                out.append(normed[:, at : at + b - a])
                at += b - a
            else:
                out.append(obs[:, a:b])
        return torch.cat(out, dim=1)
