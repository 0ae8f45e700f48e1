"""Running observation normaliser with float64 accumulators (Chan's parallel update, count from 0).

Applied as clamp((x - mean) / sqrt(var + 1e-8), -5, 5). Before any update it is the identity
(mean 0, var 1 is used while the count is 0). The statistics live in buffers so that they are saved
with the module's state and can be baked into an exported model.

The statistics are updated in numpy through `arrays`: views of the buffers on the CPU (no copies),
CPU mirrors on another device, pushed to the buffers after each update. Numpy readers (the acting
copies of the policy) keep references to `arrays.scale` / `arrays.offset`, which are updated in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

CLIP = 5.0
EPS = 1e-8
_KEYS = ("count", "mean", "m2", "offset", "scale")


@dataclass
class NormalizerArrays:
    count: np.ndarray  # () float64
    mean: np.ndarray  # (size,) float64
    m2: np.ndarray  # (size,) float64
    offset: np.ndarray  # (size,) float32
    scale: np.ndarray  # (size,) float32


class RunningNormalizer(nn.Module):
    count: torch.Tensor
    mean: torch.Tensor
    m2: torch.Tensor
    offset: torch.Tensor
    scale: torch.Tensor

    def __init__(self, size: int, *, columns: tuple[int, ...] | None = None) -> None:
        """`columns`: the columns of the flat observation row this normaliser covers (its vector
        observations' columns), given when the row holds other kinds too; None: the whole row."""
        super().__init__()
        self.size = size
        if columns is not None and len(columns) != size:
            raise ValueError(f"a normaliser of size {size} was given {len(columns)} columns")
        self.columns = None if columns is None else np.asarray(columns, dtype=np.int64)
        self.register_buffer("count", torch.zeros((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("m2", torch.zeros(size, dtype=torch.float64))
        # float32 copies used by forward(): x * scale - offset == (x - mean) / std
        self.register_buffer("offset", torch.zeros(size, dtype=torch.float32))
        self.register_buffer("scale", torch.ones(size, dtype=torch.float32))
        self.arrays = self._views()

    def _views(self) -> NormalizerArrays:
        return NormalizerArrays(
            count=self.count.numpy(),
            mean=self.mean.numpy(),
            m2=self.m2.numpy(),
            offset=self.offset.numpy(),
            scale=self.scale.numpy(),
        )

    def _on_cpu(self) -> bool:
        return self.count.device.type == "cpu"

    def _apply(self, fn: Any, recurse: bool = True) -> RunningNormalizer:
        """After .to(device) (or any buffer conversion): views again on the CPU, mirrors elsewhere.

        The arrays are refilled in place, so numpy readers that hold them stay valid.
        """
        super()._apply(fn, recurse)
        self.pull()
        return self

    @torch.no_grad()
    def pull(self) -> None:
        """Make `arrays` follow the buffers again (after the buffers were replaced or written by torch)."""
        if self._on_cpu() and all(
            getattr(self.arrays, key).ctypes.data == getattr(self, key).data_ptr() for key in _KEYS
        ):
            return  # views of the live buffers already
        for key in _KEYS:
            getattr(self.arrays, key)[...] = getattr(self, key).cpu().numpy()
        if self._on_cpu():  # back on the CPU: the buffers become views of the arrays again
            for key in _KEYS:
                setattr(self, key, torch.from_numpy(getattr(self.arrays, key)))

    @torch.no_grad()
    def _push(self) -> None:
        """Copy the numpy statistics into buffers on another device (nothing to do on the CPU)."""
        if self._on_cpu():
            return
        for key in _KEYS:
            getattr(self, key).copy_(torch.from_numpy(getattr(self.arrays, key)))

    @torch.no_grad()
    def update(self, batch: np.ndarray) -> None:
        """Fold a batch of rows into the running statistics (in place, through `arrays`): rows (n, size), or
        whole observation rows (n, row width) whose `columns` are taken when the normaliser has columns."""
        rows = np.asarray(batch)
        if self.columns is not None:
            rows = rows.reshape(-1, rows.shape[-1])[:, self.columns]
        x = np.asarray(rows, dtype=np.float64).reshape(-1, self.size)
        n_b = x.shape[0]
        if n_b == 0:
            return
        arrays = self.arrays
        count, mean, m2 = arrays.count, arrays.mean, arrays.m2
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
        n = float(self.arrays.count)
        if n <= 0:
            return np.ones(self.size)
        return self.arrays.m2 / n

    @torch.no_grad()
    def _refresh(self) -> None:
        """Recompute the float32 scale and offset used by forward() (and shared with numpy readers)."""
        std = np.sqrt(self.variance() + EPS)
        self.arrays.scale[:] = 1.0 / std
        self.arrays.offset[:] = self.arrays.mean / std
        self._push()

    def _load_from_state_dict(self, *args: object, **kwargs: object) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self.reload()

    @torch.no_grad()
    def reload(self) -> None:
        """Call after the buffers were written by torch (a loaded state): `arrays`, scale and offset follow."""
        self.pull()
        self._refresh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x * self.scale - self.offset, -CLIP, CLIP)
