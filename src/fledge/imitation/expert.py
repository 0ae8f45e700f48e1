"""A demonstration as arrays: what GAIL's discriminator and behavioral cloning read.

This is the one type that the demonstration reader produces and the imitation consumers take; it
carries no file format and no torch, so reward signals and trainers can depend on it alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fledge.envs.api import BehaviorSpec

__all__ = ["ExpertData"]


@dataclass(frozen=True)
class ExpertData:
    """`n` recorded decision steps of one behavior, in recording order.

    obs: one array per observation of `spec`, each (n, *shape), float32.
    continuous_actions: (n, spec.action_spec.continuous_size), float32.
    discrete_actions: (n, number of discrete branches), int64.
    rewards: (n,) float32, the reward received at each step.
    done: (n,) bool, True where an episode ended at that step.
    action_masks: (n, sum of the discrete branch sizes) bool, True = allowed; all True without masks.
    """

    spec: BehaviorSpec
    obs: list[np.ndarray]
    continuous_actions: np.ndarray
    discrete_actions: np.ndarray
    rewards: np.ndarray
    done: np.ndarray
    action_masks: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.rewards)
        for name, arr in (
            ("continuous_actions", self.continuous_actions),
            ("discrete_actions", self.discrete_actions),
            ("done", self.done),
            ("action_masks", self.action_masks),
            *((f"obs[{i}]", o) for i, o in enumerate(self.obs)),
        ):
            if len(arr) != n:
                raise ValueError(f"ExpertData.{name} has {len(arr)} rows, expected {n} (one per recorded step)")

    @property
    def steps(self) -> int:
        return len(self.rewards)

    @property
    def episodes(self) -> int:
        return int(self.done.sum())
