"""Where one behavior id of a brain sits at the table: the policy that acts for its agents and what
receives its step outcomes.

A plain trainer seats every team of its brain the same way: its own policy acts and its own `observe`
learns from every team. A trainer that treats teams differently (self-play, trainers/ghost/) offers
`seat(behavior_id)`; the session asks `seat_of`, so it never needs to know which kind it holds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fledge.rollout.collector import ActingPolicy
    from fledge.rollout.processor import StepOutcome
    from fledge.trainers.base import Trainer


@dataclass(frozen=True)
class Seat:
    policy: ActingPolicy
    observe: Callable[[StepOutcome], None]


@runtime_checkable
class SeatingTrainer(Protocol):
    def seat(self, behavior_id: str) -> Seat: ...


def seat_of(trainer: Trainer, behavior_id: str) -> Seat:
    """The seat of `behavior_id` at its brain's trainer."""
    if isinstance(trainer, SeatingTrainer):
        return trainer.seat(behavior_id)
    return Seat(policy=trainer.policy, observe=trainer.observe)
