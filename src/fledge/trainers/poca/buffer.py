"""POCA's rollout buffer: the trajectories' rows as chunks, joined at update time.

Groups can grow while a buffer fills (the widest group so far sets the member axis), so the member
fields of earlier chunks are padded with absent members (zeros, mask 0) to the widest when joined.
"""

from __future__ import annotations

import numpy as np

MEMBER_FIELDS = ("members", "members_mask", "others", "others_mask")


def pad_members(arr: np.ndarray, width: int) -> np.ndarray:
    """Absent members (zeros) appended on axis 1 up to `width`."""
    if arr.shape[1] == width:
        return arr
    pad = [(0, 0)] * arr.ndim
    pad[1] = (0, width - arr.shape[1])
    return np.pad(arr, pad)


class GroupBuffer:
    def __init__(self) -> None:
        self.chunks: list[dict[str, np.ndarray]] = []
        self.count = 0

    def append(self, **fields: np.ndarray) -> None:
        self.chunks.append(fields)
        self.count += len(fields["log_prob"])

    def view(self) -> dict[str, np.ndarray]:
        """Every field of every row, the member axes padded to the widest group."""
        width = max(c["members"].shape[1] for c in self.chunks)
        out: dict[str, np.ndarray] = {}
        for key in self.chunks[0]:
            parts = [c[key] for c in self.chunks]
            if key in MEMBER_FIELDS:
                w = width if key.startswith("members") else max(width - 1, 0)
                parts = [pad_members(p, w) for p in parts]
            out[key] = np.concatenate(parts)
        return out

    def clear(self) -> None:
        self.chunks = []
        self.count = 0
