"""The on-policy rollout buffer (PPO's today): growable preallocated arrays, filled trajectory by trajectory.

With memory (`memory_size` > 0) every trajectory arrives cut into whole sequences (networks/memory.py:
padded at the end), and three more fields are kept: `masks` (1 real step, 0 padding), `memory` (the
actor's memory before each step) and `critic_memory` (the critic's, at sequence starts; other rows 0).
`count` then counts padded rows too, and is always a multiple of the sequence length.
"""

from __future__ import annotations

import numpy as np

FIELDS = ("obs", "continuous", "discrete", "allowed", "log_prob", "old_values", "returns", "advantages")


class RolloutBuffer:
    def __init__(
        self,
        *,
        obs_size: int,
        n_cont: int,
        n_disc: int,
        n_mask: int,
        n_values: int,
        capacity: int,
        memory_size: int = 0,
    ) -> None:
        self.shapes: dict[str, tuple[tuple[int, ...], type]] = {
            "obs": ((obs_size,), np.float32),
            "continuous": ((n_cont,), np.float32),
            "discrete": ((n_disc,), np.int32),
            "allowed": ((n_mask,), np.bool_),
            "log_prob": ((), np.float32),
            "old_values": ((n_values,), np.float32),
            "returns": ((n_values,), np.float32),
            "advantages": ((), np.float32),
        }
        if memory_size:
            self.shapes["masks"] = ((), np.float32)
            self.shapes["memory"] = ((memory_size,), np.float32)
            self.shapes["critic_memory"] = ((memory_size,), np.float32)
        self.count = 0
        self.data: dict[str, np.ndarray] = {}
        self._allocate(max(int(capacity), 1))

    def _allocate(self, capacity: int) -> None:
        new: dict[str, np.ndarray] = {
            k: np.zeros((capacity,) + shape, dtype=dt) for k, (shape, dt) in self.shapes.items()
        }
        for k, arr in self.data.items():
            new[k][: self.count] = arr[: self.count]
        self.data = new
        self.capacity = capacity

    def append(self, **fields: np.ndarray) -> None:
        n = len(fields["log_prob"])
        if self.count + n > self.capacity:
            self._allocate(max(2 * self.capacity, self.count + n))
        end = self.count + n
        for k, v in fields.items():
            self.data[k][self.count : end] = v
        self.count = end

    def view(self) -> dict[str, np.ndarray]:
        return {k: v[: self.count] for k, v in self.data.items()}

    def clear(self) -> None:
        self.count = 0
