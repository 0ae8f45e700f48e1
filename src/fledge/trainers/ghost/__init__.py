"""Self-play (the `self_play` block of a behavior): the ghost trainer, its team controller and ELO."""

from __future__ import annotations

from typing import Any

from fledge.trainers.ghost.controller import TeamController
from fledge.trainers.ghost.trainer import GhostTrainer

__all__ = ["GhostTrainer", "TeamController", "with_self_play"]


def with_self_play(trainer: Any, *, settings: Any, controller: TeamController, stats: Any, seed: int) -> Any:
    """The brain's trainer as the run loop sees it: wrapped in a ghost when its settings ask for self-play."""
    if settings.self_play is None:
        return trainer
    return GhostTrainer(trainer, settings=settings.self_play, controller=controller, stats=stats, seed=seed)
