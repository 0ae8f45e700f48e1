"""Running observation normaliser with float64 accumulators (Chan's parallel update, count from 0).

Applied as clamp((x - mean) / sqrt(var + 1e-8), -5, 5). Before any update it is the identity
(mean 0, var 1 is used while the count is 0). The statistics live in buffers so that they are saved
with the module's state and can be baked into an exported model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CLIP = 5.0
EPS = 1e-8


class RunningNormalizer(nn.Module):
    count: torch.Tensor
    mean: torch.Tensor
    m2: torch.Tensor
    offset: torch.Tensor
    scale: torch.Tensor

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(size, dtype=torch.float64))
        # float32 copies used by forward(): x * scale - offset == (x - mean) / std
        self.register_buffer("offset", torch.zeros(size, dtype=torch.float32))
        self.register_buffer("scale", torch.ones(size, dtype=torch.float32))

    @torch.no_grad()
    def update(self, batch: np.ndarray) -> None:
        """Fold a batch of rows (n, size) into the running statistics (in place, through numpy views)."""
        x = np.asarray(batch, dtype=np.float64).reshape(-1, self.size)
        n_b = x.shape[0]
        if n_b == 0:
            return
        count, mean, m2 = self.count.numpy(), self.mean.numpy(), self.m2.numpy()
        n_a = float(count)
        mean_b = x.mean(axis=0)
        m2_b = ((x - mean_b) ** 2).sum(axis=0)
        n = n_a + n_b
        delta = mean_b - mean
        mean += delta * (n_b / n)
        m2 += m2_b + delta**2 * (n_a * n_b / n)
        count[...] = n
        self._refresh()

    def variance(self) -> np.ndarray:
        n = float(self.count.item())
        if n <= 0:
            return np.ones(self.size)
        return self.m2.numpy() / n

    @torch.no_grad()
    def _refresh(self) -> None:
        """Recompute the float32 scale and offset used by forward() (and shared with numpy readers)."""
        std = np.sqrt(self.variance() + EPS)
        self.scale.numpy()[:] = 1.0 / std
        self.offset.numpy()[:] = self.mean.numpy() / std

    def _load_from_state_dict(self, *args: object, **kwargs: object) -> None:  # type: ignore[override]
        super()._load_from_state_dict(*args, **kwargs)  # type: ignore[arg-type]
        self._refresh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x * self.scale - self.offset, -CLIP, CLIP)

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x * self.scale.numpy() - self.offset.numpy(), -CLIP, CLIP)
