"""Which path a policy acts through: the numpy accelerator where it covers the network, else torch.

`make_actor(model, rng=...)` returns, for PPO's ActorCritic, a `NumpyActor` (vector-observation MLPs) or a
`NumpyRecurrentActor` (the same with LSTM memory) and for SAC's networks a `NumpySACActor` when that
accelerator covers the network (vector-observation MLPs), and a `TorchActor` for anything else; all answer act(obs, allowed, deterministic=) with an `ActOutput`, values(obs),
sync() and carry the numpy generator `rng` that checkpoints save.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from torch import nn

from fledge.networks.actor_critic import ActorCritic, Decision
from fledge.networks.numpy_actor import ActOutput, NumpyActor
from fledge.networks.numpy_recurrent import NumpyRecurrentActor
from fledge.networks.sac import SACNetworks
from fledge.networks.sac_numpy import NumpySACActor


class TorchActing(Protocol):
    """A torch module that acts: what `TorchActor` calls (ActorCritic and SACNetworks are ones)."""

    def parameters(self, recurse: bool = ...) -> Iterator[nn.Parameter]: ...

    def act(
        self,
        obs: torch.Tensor,
        allowed: torch.Tensor | None,
        *,
        generator: torch.Generator | None,
        deterministic: bool = False,
        memory: torch.Tensor | None = None,
    ) -> Decision:
        """A decision for raw observations (B, obs_size); allowed (B, sum(branches)) bool or None; `memory`
        (B, memory_size) the memories before it (recurrent networks only)."""
        ...

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """Value estimates (B, n_signals) of raw observations."""
        ...


class TorchActor:
    """Acting through the torch module's own act() and values() (the reference path).

    Each decision seeds a torch generator from `rng`, so the stream of actions follows the numpy
    generator's state (saved with checkpoints) as the numpy path's does.
    """

    def __init__(self, model: TorchActing, *, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.device = next(model.parameters()).device
        self.generator = torch.Generator(device=self.device)

    def sync(self) -> None:
        """Nothing to copy: the module is read directly."""

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    @torch.no_grad()
    def values(self, obs: np.ndarray) -> np.ndarray:
        values: np.ndarray = self.model.values(self._tensor(obs.astype(np.float32, copy=False))).cpu().numpy()
        return values

    def act(
        self,
        obs: np.ndarray,
        allowed: np.ndarray | None,
        *,
        deterministic: bool = False,
        memory: np.ndarray | None = None,
    ) -> ActOutput:
        """Decide for a batch of raw observations (B, obs_size); allowed (B, sum(branches)) bool, True = allowed;
        `memory` (B, memory_size) each agent's memory before the decision (recurrent networks; zeros when None)."""
        n = obs.shape[0]
        self.generator.manual_seed(int(self.rng.integers(2**63)))
        kwargs = {} if memory is None else {"memory": self._tensor(memory.astype(np.float32, copy=False))}
        out = self.model.act(
            self._tensor(obs.astype(np.float32, copy=False)),
            self._tensor(allowed) if allowed is not None else None,
            generator=self.generator,
            deterministic=deterministic,
            **kwargs,
        )
        return ActOutput(
            continuous=out.continuous.cpu().numpy() if out.continuous is not None else np.zeros((n, 0), np.float32),
            discrete=out.discrete.cpu().numpy().astype(np.int32)
            if out.discrete is not None
            else np.zeros((n, 0), np.int32),
            log_prob=out.log_prob.cpu().numpy(),
            values=out.values.cpu().numpy(),
            entropy=out.entropy.cpu().numpy(),
            memory=out.memory.cpu().numpy() if out.memory is not None else None,
        )


def make_actor(
    model: ActorCritic | SACNetworks, *, rng: np.random.Generator
) -> NumpyActor | NumpySACActor | TorchActor:
    """The numpy accelerator of `model`'s kind when it covers `model`, else acting through the torch module."""
    if isinstance(model, SACNetworks):
        if NumpySACActor.covers(model):
            return NumpySACActor(model, rng=rng)
    elif NumpyActor.covers(model):
        return NumpyActor(model, rng=rng)
    elif NumpyRecurrentActor.covers(model):
        return NumpyRecurrentActor(model, rng=rng)
    return TorchActor(model, rng=rng)
