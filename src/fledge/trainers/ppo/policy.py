"""PPO's policy: the ActorCritic (actor and critic, one module) and its acting path (the numpy accelerator
when it covers the network, else the torch module; networks/acting.py).

Continuous actions are sampled unbounded; the environment receives clamp(a, -3, 3) / 3.
The numpy path keeps copies of the weights: `sync()` after every change of the torch weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fledge.envs.api import ActionTuple
from fledge.errors import CheckpointError
from fledge.networks.acting import make_actor
from fledge.networks.actor_critic import ENV_ACTION_CLIP, ActorCritic, NetworkShape, export_source
from fledge.networks.actor_graph import ExportSource
from fledge.networks.device import as_device
from fledge.networks.normalizer import RunningNormalizer
from fledge.networks.numpy_actor import ActOutput
from fledge.trainers import state as S
from fledge.trainers.policy import PolicyBase, PolicySettings

PREFIX = "policy."


class PPOPolicy(PolicyBase):
    def __init__(
        self,
        settings: PolicySettings,
        *,
        shared_critic: bool,
        rng: np.random.Generator,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(settings)
        self.model = ActorCritic(
            obs_size=settings.obs_size,
            observation_specs=settings.observation_specs,
            action_spec=settings.spec.action_spec,
            shape=NetworkShape(
                hidden_units=settings.hidden_units,
                num_layers=settings.num_layers,
                normalize=settings.normalize,
                vis_encode_type=settings.vis_encode_type,
                goal_conditioning_type=settings.goal_conditioning_type,
            ),
            value_names=settings.signal_names,
            shared_critic=shared_critic,
        ).to(as_device(device))
        self.actor = make_actor(self.model, rng=rng)

    @classmethod
    def build(
        cls, settings: PolicySettings, hyperparameters: Any, *, seed: int, device: torch.device | str | None
    ) -> PPOPolicy:
        shared_critic = bool(getattr(hyperparameters, "shared_critic", False))
        return cls(settings, shared_critic=shared_critic, rng=np.random.default_rng(seed), device=device)

    @property
    def normalizer(self) -> RunningNormalizer | None:
        return self.model.normalizer

    @staticmethod
    def env_actions(out: ActOutput) -> ActionTuple:
        cont = np.clip(out.continuous, -ENV_ACTION_CLIP, ENV_ACTION_CLIP) / ENV_ACTION_CLIP
        return ActionTuple(cont, out.discrete)

    def actor_graph(self) -> ExportSource:
        return export_source(self.model, tuple(tuple(o.shape) for o in self.spec.observation_specs))

    def sync(self) -> None:
        self.actor.sync()

    def policy_state(self) -> dict[str, torch.Tensor]:
        return S.module_tensors(PREFIX, self.model)

    def check_policy_state(self, tensors: dict[str, torch.Tensor]) -> list[str]:
        """The mismatches between the stored policy tensors and this policy's network (empty when they fit)."""
        return S.check_module(PREFIX, self.model, tensors)

    def load_policy_state(self, tensors: dict[str, torch.Tensor]) -> None:
        problems = self.check_policy_state(tensors)
        if problems:
            raise CheckpointError(
                f"The checkpoint does not fit behavior '{self.settings.behavior_name}' (PPO):\n  "
                + "\n  ".join(problems)
            )
        S.load_module(PREFIX, self.model, tensors)
        self.actor.sync()
