"""POCA's policy: the same per-agent actor as PPO (spec 8.5), so acting, `fledge play` and the ONNX export
(actor only, the same contract) are PPO's. Its own per-agent value head (on the actor's body, the cheapest) is not trained: POCA's values come
from the group critic (networks/group_critic.py), which the trainer holds."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fledge.trainers.policy import PolicySettings
from fledge.trainers.ppo.policy import PPOPolicy


class POCAPolicy(PPOPolicy):
    @classmethod
    def build(
        cls, settings: PolicySettings, hyperparameters: Any, *, seed: int, device: torch.device | str | None
    ) -> POCAPolicy:
        return cls(settings, shared_critic=True, rng=np.random.default_rng(seed), device=device)
