"""The one interface of the reward signals, and what the learned ones (curiosity, RND, GAIL) share.

A trainer holds its signals in a `RewardSignals` (rewards/signals.py) and never asks which kind a signal
is: it hands a `SignalBatch` of transitions to `rewards` (the provider's reward, before `strength`),
a minibatch to `update` (returns the stats of that update), and saves `state` in its checkpoint.

A learned signal's networks start from a NetworkBody (networks/body.py) built from the behavior's
observation specs and the signal's own `network_settings` (memory is not used), so it reads every
observation kind the policy reads. Its Adam optimiser uses the signal's `learning_rate`. Its state in
a checkpoint is its modules' tensors, the optimiser's moments (tensors) and its param groups, counters
and random generator states (JSON): no pickle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fledge.checkpoints.parts import (
    generator_state,
    load_module,
    load_optimizer,
    module_tensors,
    optimizer_entries,
    set_generator_state,
    set_torch_generator_state,
    torch_generator_state,
)
from fledge.envs.api import ActionSpec, ObservationSpec
from fledge.networks.actor_critic import NetworkShape
from fledge.networks.body import NetworkBody
from fledge.networks.device import to_device
from fledge.rewards.fast import Gradients
from fledge.trainers.fast_adam import AdamStepper, fused_if_possible

__all__ = ["BodySettings", "LearnedSignal", "RewardSignal", "SignalBatch", "flat_actions"]


@dataclass(frozen=True)
class SignalBatch:
    """n transitions: obs and next_obs (n, obs_size) raw flat rows, the action taken (continuous as the
    environment received it, in [-1, 1]; discrete branch indices), done (a true episode end at that step),
    and the environment's reward (extrinsic's provider reward)."""

    obs: np.ndarray
    next_obs: np.ndarray
    continuous: np.ndarray  # (n, c) float32
    discrete: np.ndarray  # (n, branches) integer
    done: np.ndarray  # (n,) bool
    env_rewards: np.ndarray  # (n,) float32

    def __len__(self) -> int:
        return len(self.env_rewards)

    def rows(self, index: np.ndarray | slice) -> SignalBatch:
        return SignalBatch(
            obs=self.obs[index],
            next_obs=self.next_obs[index],
            continuous=self.continuous[index],
            discrete=self.discrete[index],
            done=self.done[index],
            env_rewards=self.env_rewards[index],
        )

    @staticmethod
    def concatenate(batches: Sequence[SignalBatch]) -> SignalBatch:
        if len(batches) == 1:
            return batches[0]
        return SignalBatch(
            obs=np.concatenate([b.obs for b in batches]),
            next_obs=np.concatenate([b.next_obs for b in batches]),
            continuous=np.concatenate([b.continuous for b in batches]),
            discrete=np.concatenate([b.discrete for b in batches]),
            done=np.concatenate([b.done for b in batches]),
            env_rewards=np.concatenate([b.env_rewards for b in batches]),
        )


#: The parts of a signal's `network_settings` its encoder reads: the networks' shape, without memory (signals
#: ignore it, with a warning).
BodySettings = NetworkShape


def flat_actions(continuous: torch.Tensor, discrete: torch.Tensor, spec: ActionSpec) -> torch.Tensor:
    """(B, c + sum(branches)): continuous values then one one-hot block per discrete branch."""
    parts = [continuous] if spec.continuous_size else []
    for b, size in enumerate(spec.discrete_branches):
        parts.append(torch.nn.functional.one_hot(discrete[:, b].long(), int(size)).to(torch.float32))
    if not parts:
        return torch.zeros((len(discrete), 0))
    return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


class RewardSignal(ABC):
    """One reward signal: its name ("extrinsic", "curiosity", "rnd", "gail"), gamma, strength, whether
    returns bootstrap through episode ends (`ignore_done`), and its stat label ("Curiosity")."""

    name: str
    label: str
    ignore_done: bool = False

    def __init__(self, *, gamma: float, strength: float) -> None:
        self.gamma = float(gamma)
        self.strength = float(strength)

    @property
    def learned(self) -> bool:
        """Whether the signal has networks that `update` trains."""
        return False

    @abstractmethod
    def rewards(self, batch: SignalBatch) -> np.ndarray:
        """(n,) float32 provider rewards of the transitions (the trainer multiplies them by strength)."""

    def update(self, batch: SignalBatch) -> dict[str, float]:
        """One optimiser step on a minibatch; returns its stats by stat name."""
        return {}

    def state(self, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        return {}, {}

    def check_state(self, prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> list[str]:
        return []

    def load_state(self, prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        return None


class LearnedSignal(RewardSignal):
    """A signal with networks (`module`), an Adam optimiser over them, a torch generator (noise, sampling)
    and a numpy generator, all saved and restored with the checkpoint."""

    module: torch.nn.Module

    def __init__(
        self,
        *,
        gamma: float,
        strength: float,
        learning_rate: float,
        observation_specs: Sequence[ObservationSpec],
        action_spec: ActionSpec,
        body: BodySettings,
        seed: int,
        device: torch.device,
    ) -> None:
        super().__init__(gamma=gamma, strength=strength)
        self.learning_rate = float(learning_rate)
        self.observation_specs = tuple(observation_specs)
        self.action_spec = action_spec
        self.body_settings = body
        self.device = device
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(int(seed % 2**63))
        self.update_count = 0
        self.autograd = False  # True: train through autograd even where rewards/fast.py covers the networks
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed % 2**63))
            self.module = self.build().to(device)
        self.optimizer = torch.optim.Adam(self.trained_parameters(), lr=self.learning_rate, **fused_if_possible())
        self.stepper = AdamStepper(self.optimizer)

    def trained_parameters(self) -> list[torch.nn.Parameter]:
        """What the optimiser trains (every parameter of `module` unless a signal says otherwise)."""
        return list(self.module.parameters())

    @property
    def learned(self) -> bool:
        return True

    @abstractmethod
    def build(self) -> torch.nn.Module:
        """The signal's networks (built under the signal's own seed)."""

    def make_body(self, extra_inputs: int = 0) -> NetworkBody:
        b = self.body_settings
        return NetworkBody(
            observation_specs=self.observation_specs,
            hidden_units=b.hidden_units,
            num_layers=b.num_layers,
            normalize=b.normalize,
            vis_encode_type=b.vis_encode_type,
            goal_conditioning_type=b.goal_conditioning_type,
            extra_inputs=extra_inputs,
        )

    def tensor(self, array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return to_device(np.ascontiguousarray(array), self.device).to(dtype)

    def step(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.update_count += 1

    def apply(self, grads: Gradients) -> None:
        """One optimiser step on hand-derived gradients (rewards/fast.py) of every trained parameter."""
        grads.write(self.optimizer.param_groups[0]["params"])
        self.stepper.step()
        self.update_count += 1

    def extra_meta(self) -> dict[str, Any]:
        """A signal's own JSON state (GAIL: the VAIL beta)."""
        return {}

    def load_extra_meta(self, meta: dict[str, Any]) -> None:
        return None

    # -- checkpoint ---------------------------------------------------------------------------------------
    def state(self, prefix: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The network under `prefix`, its Adam state under `prefix` + "optimizer.", counters and generators."""
        tensors = module_tensors(prefix, self.module)
        optimizer, groups = optimizer_entries(f"{prefix}optimizer.", self.optimizer)
        tensors.update(optimizer)
        meta = {
            "update_count": self.update_count,
            **groups,
            "rng": generator_state(self.rng, as_text=True),
            "generator": torch_generator_state(self.generator),
            **self.extra_meta(),
        }
        return tensors, meta

    def check_state(self, prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> list[str]:
        problems = []
        own = self.module.state_dict()
        stored = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        for name, value in own.items():
            if name not in stored:
                problems.append(f"'{prefix}{name}' is missing")
            elif tuple(stored[name].shape) != tuple(value.shape):
                problems.append(
                    f"'{prefix}{name}' has shape {tuple(stored[name].shape)}, this run's {self.name} network "
                    f"needs {tuple(value.shape)}"
                )
        for key in ("update_count", "param_groups", "rng", "generator"):
            if key not in meta:
                problems.append(f"the {self.name} signal's metadata has no '{key}'")
        return problems

    def load_state(self, prefix: str, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        own = {f"{prefix}{k}" for k in self.module.state_dict()}  # the optimiser's entries share the prefix
        load_module(prefix, self.module, {k: v for k, v in tensors.items() if k in own})
        load_optimizer(f"{prefix}optimizer.", self.optimizer, tensors, meta)
        self.stepper.reset()
        self.update_count = int(meta["update_count"])
        set_generator_state(self.rng, meta["rng"])
        set_torch_generator_state(self.generator, meta["generator"])
        self.load_extra_meta(meta)
