"""Divergence checks shared by the trainers: Inf/NaN after an update stops training with one clear error.

After an update a trainer checks the update's mean losses (and, where cheap, its weights) with
`non_finite` and on a problem raises `diverged(...)`. PPO also takes a `Snapshot` of the tensors an
update changes (weights, Adam moments and steps) before each update and restores it before raising,
so it then holds the weights from before the diverged update and a final checkpoint of it is usable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import torch

from fledge.errors import TrainingDivergedError


class Snapshot:
    """Copies of live tensors, restored into the same tensor objects by `restore()`."""

    def __init__(self, tensors: Iterable[torch.Tensor]) -> None:
        self.live = list(tensors)
        with torch.no_grad():
            self.saved = [t.detach().clone() for t in self.live]

    def restore(self) -> None:
        with torch.no_grad():
            for live, saved in zip(self.live, self.saved):
                live.copy_(saved)


def non_finite(losses: Mapping[str, float], tensors: Sequence[tuple[str, torch.Tensor]]) -> list[str]:
    """What holds Inf or NaN: loss names (with their value), then the names of non-finite tensors."""
    found = [f"{name} = {value}" for name, value in losses.items() if not math.isfinite(value)]
    if tensors:
        with torch.no_grad():
            flags = torch.stack([torch.isfinite(t).all() for _, t in tensors]).tolist()
        bad = [name for (name, _), ok in zip(tensors, flags) if not ok]
        if bad:
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            found.append(f"non-finite weights in {', '.join(bad[:3])}{more}")
    return found


def diverged(
    *, behavior: str, trainer: str, step: int, problems: list[str], learning_rate: float, restored: bool
) -> TrainingDivergedError:
    """The error a trainer raises when an update produced Inf or NaN (what, where, what to do).

    `restored`: the trainer put back the weights from before the diverged update (PPO does; SAC does not,
    see sac/trainer.py), which the message then says.
    """
    kept = " The weights from before that update are kept." if restored else ""
    return TrainingDivergedError(
        f"Training of behavior '{behavior}' ({trainer}) diverged at step {step}: Inf or NaN after an update "
        f"({'; '.join(problems)}).{kept} Lower "
        f"behaviors.{behavior}.hyperparameters.learning_rate ({learning_rate:g}), check the environment's "
        "rewards and observations for huge values, then continue from the last checkpoint with --resume "
        "(or start a new run id)."
    )
