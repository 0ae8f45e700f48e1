"""`SnapshotPool`: the ring of frozen policy snapshots a self-play learner plays against, with their ELOs.

A snapshot is a copy of the policy's tensors (weights and normaliser, CPU) taken every `save_steps`
steps of the learner; the ring keeps the newest `window` (the initial weights are the first one). Each
snapshot has its own rating slot, set to the learner's ELO when it is taken and moved by the games
played against it. The pool is saved in the checkpoint as tensors under `ghost.snapshot.<slot>.` and
JSON (slots, ELOs, next slot), never pickled.
"""

from __future__ import annotations

from typing import Any

import torch

SNAPSHOT_PREFIX = "ghost.snapshot."


class SnapshotPool:
    def __init__(self, window: int) -> None:
        self.window = int(window)
        self.snapshots: list[dict[str, torch.Tensor]] = []
        self.elos: list[float] = []
        self.next_slot = 0  # where the next snapshot goes once the ring is full

    def __len__(self) -> int:
        return len(self.snapshots)

    def add(self, tensors: dict[str, torch.Tensor], elo: float) -> int:
        """Store a copy of `tensors` with rating `elo`; returns its slot (the oldest is replaced when full)."""
        copy = {k: v.detach().clone() for k, v in tensors.items()}
        if len(self.snapshots) < self.window:
            self.snapshots.append(copy)
            self.elos.append(float(elo))
            return len(self.snapshots) - 1
        slot = self.next_slot
        self.snapshots[slot], self.elos[slot] = copy, float(elo)
        self.next_slot = (slot + 1) % self.window
        return slot

    # -- checkpoints ------------------------------------------------------------------------------
    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"{SNAPSHOT_PREFIX}{i}.{k}": v for i, snap in enumerate(self.snapshots) for k, v in snap.items()}

    def meta(self) -> dict[str, Any]:
        return {"window": self.window, "elos": list(self.elos), "next_slot": self.next_slot}

    def load(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[int, int]:
        """Restore a saved pool; returns each kept slot's new index (the same slots unless `window` changed).

        When the run's `window` differs from the saved one, the snapshots are put in the order they were
        taken and the newest `window` are kept."""
        elos = [float(e) for e in meta["elos"]]
        snapshots: list[dict[str, torch.Tensor]] = [{} for _ in elos]
        for name, value in tensors.items():
            if not name.startswith(SNAPSHOT_PREFIX):
                continue
            slot, _, key = name[len(SNAPSHOT_PREFIX) :].partition(".")
            snapshots[int(slot)][key] = value.clone()
        saved_window, next_slot = int(meta["window"]), int(meta["next_slot"])
        if saved_window == self.window:
            self.snapshots, self.elos, self.next_slot = snapshots, elos, next_slot % max(1, self.window)
            return {i: i for i in range(len(elos))}
        full = len(elos) == saved_window
        order = list(range(next_slot, len(elos))) + list(range(next_slot)) if full else list(range(len(elos)))
        kept = order[-self.window :]
        self.snapshots = [snapshots[i] for i in kept]
        self.elos = [elos[i] for i in kept]
        self.next_slot = 0
        return {old: new for new, old in enumerate(kept)}
