"""Behavioral cloning (`behavioral_cloning`, spec 2.7 and 8.7): the actor learns to imitate a demonstration.

A trainer with a `behavioral_cloning` block holds one `BehavioralCloning` object and calls `update(step)`
after each of its own policy updates (PPO: after the epochs; SAC: after each update round). BC knows the
trainer's network only through `BCActor` (action parameters of raw observations, and the map from a raw
sample to the environment's action), and has its own Adam over the actor's parameters, with the
learning rate of `losses.bc_learning_rate`. A call runs `num_epoch` epochs; each shuffles the
demonstration and walks minibatches of `batch_size` rows (at most the demonstration's size) until
`samples_per_update` rows (0 = all) are used. Stat: `Losses/Pretraining Loss` (0 once the learning
rate has decayed to its floor and updates stop).

The demonstration is loaded (and checked against the behavior's spec) when the trainer is built, before
any step; `resolve_demo_path` lets an ML-Agents example path that does not exist here fall back to the demo
of the same name that fledge ships. Recurrent policies are cloned row by row from a zero memory (ML-Agents
unrolls sequences from a zero memory). The Adam state and BC's generator go into the trainer's checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from fledge.envs.api import BehaviorSpec
from fledge.errors import CheckpointError
from fledge.imitation import losses as L
from fledge.imitation.expert import ExpertData
from fledge.imitation.protocol import require_protocol
from fledge.networks.device import to_device
from fledge.rollout.processor import flat_observations
from fledge.trainers import state as S

__all__ = ["BCActor", "BCSettings", "BehavioralCloning", "make_behavioral_cloning"]

DEFAULT_NUM_EPOCH = 3
PREFIX = "bc_optimizer."
PRETRAINING_LOSS = "Losses/Pretraining Loss"


class BCActor(Protocol):
    def __call__(self, obs: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(Gaussian mean (B, c), log-std (c,) or (B, c), logits (B, sum(branches))) of RAW observations."""
        ...


@dataclass(frozen=True)
class BCSettings:
    demo_path: str
    steps: int
    strength: float
    samples_per_update: int
    num_epoch: int
    batch_size: int

    @classmethod
    def read(cls, block: Any, trainer_batch_size: int) -> BCSettings:
        return cls(
            demo_path=str(block.demo_path),
            steps=int(block.steps),
            strength=float(block.strength),
            samples_per_update=int(block.samples_per_update),
            num_epoch=int(block.num_epoch) if block.num_epoch is not None else DEFAULT_NUM_EPOCH,
            batch_size=int(block.batch_size) if block.batch_size is not None else int(trainer_batch_size),
        )


class BehavioralCloning:
    """One behavior's cloning of its demonstration (see the module text)."""

    def __init__(
        self,
        *,
        expert: ExpertData,
        actor: BCActor,
        to_env: Callable[[torch.Tensor], torch.Tensor],
        parameters: Iterable[torch.nn.Parameter],
        learning_rate: float,
        settings: BCSettings,
        seed: int,
        device: torch.device,
    ) -> None:
        self.settings = settings
        self.actor = actor
        self.to_env = to_env
        self.learning_rate = float(learning_rate)
        self.branches = tuple(int(b) for b in expert.spec.action_spec.discrete_branches)
        self.n = expert.steps
        self.device = device
        self.obs = to_device(flat_observations(expert.obs), device)
        self.continuous = to_device(expert.continuous_actions, device)
        self.discrete = to_device(expert.discrete_actions.astype(np.int64), device)
        self.allowed = to_device(expert.action_masks, device)
        self.optimizer = torch.optim.Adam(list(parameters), lr=self.lr_at(0))
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(int(self.rng.integers(2**62)))

    def lr_at(self, step: int) -> float:
        s = self.settings
        return L.bc_learning_rate(self.learning_rate, s.strength, s.steps, step)

    def loss(self, rows: torch.Tensor) -> torch.Tensor:
        mean, log_std, logits = self.actor(self.obs.index_select(0, rows))
        total = torch.zeros((), device=self.device)
        if mean is not None and log_std is not None and self.continuous.shape[1]:
            noise = torch.randn(mean.shape, generator=self.generator, device=mean.device)
            sample = mean + noise * torch.exp(log_std)
            total = total + L.continuous_bc_loss(self.to_env(sample), self.continuous.index_select(0, rows))
        if logits is not None and self.branches:
            total = total + L.discrete_bc_loss(
                logits, self.discrete.index_select(0, rows), self.allowed.index_select(0, rows), self.branches
            )
        return total

    def update(self, step: int) -> dict[str, float]:
        """One BC update call at trainer step `step`; the stats to report."""
        lr = self.lr_at(step)
        if lr <= L.BC_LEARNING_RATE_FLOOR:
            return {PRETRAINING_LOSS: 0.0}
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        s = self.settings
        used = self.n if s.samples_per_update <= 0 else min(self.n, s.samples_per_update)
        batch = max(1, min(s.batch_size, used))
        losses = []
        for _ in range(s.num_epoch):
            perm = to_device(self.rng.permutation(self.n), self.device)
            for first in range(0, max(used - batch, 0) + 1, batch):
                loss = self.loss(perm[first : first + batch])
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                losses.append(loss.detach())
        self.optimizer.zero_grad(set_to_none=True)  # the trainer's own update finds no gradient of BC's
        return {PRETRAINING_LOSS: float(torch.stack(losses).mean())}

    # -- checkpoints ------------------------------------------------------------------------------
    def save_into(self, state: Any) -> None:
        """Add the Adam state and generators to a TrainerState."""
        tensors, meta = S.optimizer_entries(PREFIX, self.optimizer)
        state.tensors.update(tensors)
        state.meta["behavioral_cloning"] = {
            "optimizer": meta,
            "rng": S.generator_state(self.rng, as_text=True),
            "torch_rng": S.torch_generator_state(self.generator),
        }

    @staticmethod
    def strip(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A state's tensors without BC's (for trainers that check their own names strictly)."""
        return {k: v for k, v in tensors.items() if not k.startswith(PREFIX)}

    def load_from(self, state: Any, label: str) -> None:
        """Restore what `save_into` wrote; a checkpoint from a run without BC starts BC afresh."""
        meta = state.meta.get("behavioral_cloning")
        if meta is None:
            return
        problems = S.check_optimizer(PREFIX, self.optimizer, state.tensors)
        if problems:
            raise CheckpointError(f"The checkpoint's behavioral cloning state does not fit {label}: {problems}")
        S.load_optimizer(PREFIX, self.optimizer, state.tensors, meta["optimizer"])
        S.set_generator_state(self.rng, meta["rng"])
        S.set_torch_generator_state(self.generator, meta["torch_rng"])


def make_behavioral_cloning(
    *,
    settings: Any,
    behavior: str,
    spec: BehaviorSpec,
    actor: BCActor,
    to_env: Callable[[torch.Tensor], torch.Tensor],
    parameters: Iterable[torch.nn.Parameter],
    learning_rate: float,
    batch_size: int,
    rng: np.random.Generator,
    device: torch.device,
) -> BehavioralCloning | None:
    """The BC of a behavior's trainer settings, or None without a `behavioral_cloning` block. Loads and checks
    the demonstration now (a clear ConfigError when it is missing, damaged or of another spec). BC's seed is
    drawn from the trainer's `rng` only when there is a block, so runs without BC draw what they drew before."""
    block = getattr(settings, "behavioral_cloning", None)
    if block is None:
        return None
    bc_settings = BCSettings.read(block, batch_size)
    where = f"behaviors.{behavior}.behavioral_cloning.demo_path"
    require_protocol(where)
    from fledge.imitation.demo_reader import load_demonstrations  # protobuf: imported once it is known to load

    expert = load_demonstrations(bc_settings.demo_path, spec, where)
    return BehavioralCloning(
        expert=expert,
        actor=actor,
        to_env=to_env,
        parameters=parameters,
        learning_rate=learning_rate,
        settings=bc_settings,
        seed=int(rng.integers(2**62)),
        device=device,
    )
