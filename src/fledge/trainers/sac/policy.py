"""SAC's policy: the squashed actor and the value network V(s), acting through the numpy accelerator when it
covers the networks, else through the torch modules (networks/acting.py).

The actions are tanh-squashed, so the environment receives them unchanged. The networks are built as
SAC's whole set (actor, twin Q, value, target value: one module, seeded once); a trainer trains them
all, a policy alone uses the actor and the value network. Its checkpoint tensors are "policy." (actor
and normaliser) and "value.".
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fledge.envs.api import ActionTuple
from fledge.errors import CheckpointError
from fledge.networks.acting import make_actor
from fledge.networks.actor_graph import ExportSource
from fledge.networks.device import as_device, is_cpu, to_cpu
from fledge.networks.normalizer import RunningNormalizer
from fledge.networks.numpy_actor import ActOutput
from fledge.networks.sac import SACNetworks, SACShape, export_source
from fledge.trainers import state as S
from fledge.trainers.policy import PolicyBase, PolicySettings

POLICY_PARTS = ("policy", "value")  # the checkpoint parts a policy alone loads


def sac_shape(settings: PolicySettings) -> SACShape:
    aspec = settings.spec.action_spec
    return SACShape(
        obs_size=settings.obs_size,
        continuous_size=int(aspec.continuous_size),
        branches=tuple(int(b) for b in aspec.discrete_branches),
        hidden_units=settings.hidden_units,
        num_layers=settings.num_layers,
        normalize=settings.normalize,
        n_signals=len(settings.signal_names),
        observations=settings.observation_specs,
        vis_encode_type=settings.vis_encode_type,
        goal_conditioning_type=settings.goal_conditioning_type,
    )


def copy_checked(live: dict[str, torch.Tensor], given: dict[str, torch.Tensor], *, behavior: str) -> None:
    """Copy `given` into the `live` tensors after checking that the names and shapes match exactly;
    a mismatch raises CheckpointError before anything is changed."""
    missing = sorted(set(live) - set(given))
    if missing:
        raise CheckpointError(
            f"SAC checkpoint for behavior '{behavior}' lacks tensor(s) {', '.join(missing[:5])}"
            f"{' ...' if len(missing) > 5 else ''}; it was written for other networks or by another trainer."
        )
    unexpected = sorted(set(given) - set(live))
    if unexpected:
        raise CheckpointError(
            f"SAC checkpoint for behavior '{behavior}' has unexpected tensor(s) {', '.join(unexpected[:5])}"
            f"{' ...' if len(unexpected) > 5 else ''}; it does not fit this behavior's networks."
        )
    for key, target in live.items():
        value = given[key]
        if tuple(value.shape) != tuple(target.shape):
            raise CheckpointError(
                f"SAC checkpoint for behavior '{behavior}': tensor '{key}' has shape {tuple(value.shape)} "
                f"but this behavior's network needs {tuple(target.shape)} (observation/action sizes, "
                "hidden_units or num_layers differ)."
            )
    with torch.no_grad():
        for key, target in live.items():
            target.copy_(given[key])


def parts(tensors: dict[str, torch.Tensor], names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The entries whose first name part ("policy", "q", ...) is one of `names`."""
    return {k: v for k, v in tensors.items() if k.split(".", 1)[0] in names}


class SACPolicy(PolicyBase):
    def __init__(
        self,
        settings: PolicySettings,
        *,
        torch_seed: int,
        rng: np.random.Generator,
        device: torch.device | str | None = None,
    ) -> None:
        """`torch_seed` seeds the networks' initial weights (without touching torch's global generator)."""
        super().__init__(settings)
        self.shape = sac_shape(settings)
        self.device = as_device(device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(torch_seed)
            self.nets = SACNetworks(self.shape).to(self.device)
        self.actor = make_actor(self.nets, rng=rng)

    @classmethod
    def build(
        cls, settings: PolicySettings, hyperparameters: Any, *, seed: int, device: torch.device | str | None
    ) -> SACPolicy:
        return cls(settings, torch_seed=seed, rng=np.random.default_rng(seed), device=device)

    @property
    def normalizer(self) -> RunningNormalizer | None:
        return self.nets.policy.normalizer

    @staticmethod
    def env_actions(out: ActOutput) -> ActionTuple:
        """The squashed actions go to the environment unchanged (they are in [-1, 1])."""
        return ActionTuple(out.continuous, out.discrete)

    def actor_graph(self) -> ExportSource:
        return export_source(self.nets, self.settings.observation_shapes)

    def sync(self) -> None:
        """On the CPU the numpy path reads views of the weights and the torch path the module (nothing to do);
        elsewhere the numpy path copies them."""
        if not is_cpu(self.device):
            self.actor.sync()

    def _live(self) -> dict[str, torch.Tensor]:
        return {**S.live_tensors("policy.", self.nets.policy), **S.live_tensors("value.", self.nets.value)}

    def policy_state(self) -> dict[str, torch.Tensor]:
        return {name: to_cpu(t) for name, t in self._live().items()}

    def load_policy_state(self, tensors: dict[str, torch.Tensor]) -> None:
        copy_checked(self._live(), parts(tensors, POLICY_PARTS), behavior=self.settings.behavior_name)
        self.loaded()

    def loaded(self) -> None:
        """After the tensors were written in place: the normaliser's numpy arrays and the acting copies follow."""
        if self.nets.policy.normalizer is not None:
            self.nets.policy.normalizer.reload()
        self.sync()
