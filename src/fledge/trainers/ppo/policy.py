"""PPO's policy: the ActorCritic (actor and critic, one module) and its numpy acting path.

Continuous actions are sampled unbounded; the environment receives clamp(a, -3, 3) / 3.
The numpy path keeps copies of the weights: `sync()` after every change of the torch weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fledge.envs.api import ActionTuple, BehaviorSpec
from fledge.errors import CheckpointError
from fledge.networks.actor_critic import ENV_ACTION_CLIP, ActorCritic, NetworkShape, actor_graph
from fledge.networks.actor_graph import ActorGraph
from fledge.networks.device import as_device
from fledge.networks.normalizer import RunningNormalizer
from fledge.networks.numpy_actor import ActOutput, NumpyActor
from fledge.trainers import state as S
from fledge.trainers.policy import PolicySettings

PREFIX = "policy."


class PPOPolicy:
    def __init__(
        self,
        settings: PolicySettings,
        *,
        shared_critic: bool,
        rng: np.random.Generator,
        device: torch.device | str | None = None,
    ) -> None:
        self.settings = settings
        self.spec = settings.spec
        self.deterministic = settings.deterministic
        self.model = ActorCritic(
            obs_size=settings.obs_size,
            action_spec=settings.spec.action_spec,
            shape=NetworkShape(
                hidden_units=settings.hidden_units, num_layers=settings.num_layers, normalize=settings.normalize
            ),
            value_names=settings.signal_names,
            shared_critic=shared_critic,
        ).to(as_device(device))
        self.actor = NumpyActor(self.model, rng=rng)

    @classmethod
    def from_settings(
        cls,
        *,
        behavior_name: str,
        spec: BehaviorSpec,
        settings: Any,
        seed: int,
        deterministic: bool = False,
        device: torch.device | str | None = None,
    ) -> PPOPolicy:
        """A policy alone, from a behavior's TrainerSettings, sampling with a generator seeded by `seed`."""
        return cls(
            PolicySettings.read(behavior_name, spec, settings, deterministic=deterministic),
            shared_critic=bool(getattr(settings.hyperparameters, "shared_critic", False)),
            rng=np.random.default_rng(seed),
            device=device,
        )

    @property
    def rng(self) -> np.random.Generator:
        return self.actor.rng

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:
        self.actor.rng = value

    @property
    def normalizer(self) -> RunningNormalizer | None:
        return self.model.normalizer

    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> ActOutput:
        return self.actor.act(obs, allowed, deterministic=self.deterministic)

    def values(self, obs: np.ndarray) -> np.ndarray:
        return self.actor.values(obs)

    @staticmethod
    def env_actions(out: ActOutput) -> ActionTuple:
        cont = np.clip(out.continuous, -ENV_ACTION_CLIP, ENV_ACTION_CLIP) / ENV_ACTION_CLIP
        return ActionTuple(cont, out.discrete)

    def actor_graph(self) -> ActorGraph:
        return actor_graph(self.model, tuple(tuple(o.shape) for o in self.spec.observation_specs))

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
