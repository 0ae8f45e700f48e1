"""What acts: the `Policy` protocol that the run loop, the checkpoint export and `fledge play` use, and the
`PolicySettings` a policy is built from.

A policy holds the networks that decide (and the critic that gives the values the trajectories carry),
its acting path (a numpy accelerator where one covers the networks, else the torch modules), the
observation normaliser, and the generator it samples with.
It has no optimiser, buffer or statistics: a trainer (what learns) holds one and updates its weights,
and a policy is also built on its own from a behavior's spec and network settings (export, play, the
frozen opponents of self-play) and loaded with the "policy." tensors of a checkpoint.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import torch

from fledge.envs.api import ActionTuple, BehaviorSpec, ObservationSpec
from fledge.networks.acting import TorchActor
from fledge.networks.actor_graph import ExportSource
from fledge.networks.numpy_actor import ActOutput
from fledge.networks.numpy_recurrent import NumpyRecurrentActor
from fledge.trainers.settings import encoder_settings, memory_settings, observation_size, reward_signals

if TYPE_CHECKING:
    from fledge.networks.normalizer import RunningNormalizer


@dataclass(frozen=True)
class PolicySettings:
    """What builds a policy: the behavior, its spec, the network settings and the reward signals' names."""

    behavior_name: str
    spec: BehaviorSpec
    hidden_units: int
    num_layers: int
    normalize: bool
    signal_names: tuple[str, ...]
    deterministic: bool = False
    vis_encode_type: str = "simple"  # the encoder of visual observations (network_settings.vis_encode_type)
    goal_conditioning_type: str = "hyper"  # how goal observations condition the body (hyper or none)
    memory_size: int = 0  # network_settings.memory.memory_size (0 without memory)
    sequence_length: int = 1  # network_settings.memory.sequence_length (1 without memory)

    @classmethod
    def read(
        cls, behavior_name: str, spec: BehaviorSpec, settings: Any, *, deterministic: bool = False
    ) -> PolicySettings:
        """From a behavior's TrainerSettings; `deterministic` (or the network settings') picks the most likely
        action instead of sampling."""
        net = settings.network_settings
        signals = reward_signals(settings, f"behaviors.{behavior_name}")
        vis_encode_type, goal_conditioning_type = encoder_settings(settings)
        memory_size, sequence_length = memory_settings(settings)
        return cls(
            behavior_name=behavior_name,
            spec=spec,
            hidden_units=int(net.hidden_units),
            num_layers=int(net.num_layers),
            normalize=bool(net.normalize),
            signal_names=tuple(s[0] for s in signals),
            deterministic=deterministic or bool(net.deterministic),
            vis_encode_type=vis_encode_type,
            goal_conditioning_type=goal_conditioning_type,
            memory_size=memory_size,
            sequence_length=sequence_length,
        )

    @property
    def obs_size(self) -> int:
        """The width of the flat observation row: every observation flattened, in BehaviorSpec order
        (an observation no encoder reads is refused with a ConfigError)."""
        return observation_size(self.spec, self.behavior_name)

    @property
    def observation_specs(self) -> tuple[ObservationSpec, ...]:
        return tuple(self.spec.observation_specs)

    @property
    def observation_shapes(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(int(d) for d in o.shape) for o in self.spec.observation_specs)


class Policy(Protocol):
    """What acts for one behavior."""

    spec: BehaviorSpec
    deterministic: bool  # the most likely action instead of a sample
    rng: np.random.Generator  # what acting samples with (saved as the trainer's "actor_rng")

    @property
    def normalizer(self) -> RunningNormalizer | None:
        """The running normaliser of the vector observations (None when the network settings do not normalise
        or the behavior has no vector observation); its `update` takes whole observation rows."""
        ...

    @property
    def memory_size(self) -> int:
        """Size of the memory vector each agent carries between decisions (0: the policy has no memory)."""
        ...

    def act(self, obs: np.ndarray, allowed: np.ndarray | None, memory: np.ndarray | None = None) -> ActOutput:
        """Decide for a batch of raw observations (B, obs_size); allowed (B, sum(branches)), True = allowed;
        `memory` (B, memory_size): each agent's memory before the decision (recurrent policies; zeros when
        None); the output's `memory` is the one after it."""
        ...

    def values(self, obs: np.ndarray) -> np.ndarray:
        """The value estimates (B, signals) of raw observations."""
        ...

    def env_actions(self, out: ActOutput) -> ActionTuple:
        """The actions the environment receives for what `act` decided."""
        ...

    def actor_graph(self) -> ExportSource:
        """The acting network as plain arrays, for ONNX export."""
        ...

    def sync(self) -> None:
        """Make the acting path follow the weights again after a learner changed them."""
        ...

    def policy_state(self) -> dict[str, torch.Tensor]:
        """The weights and normaliser statistics (CPU copies) under the names a checkpoint stores them."""
        ...

    def load_policy_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Load the policy's tensors from a checkpoint's (other entries are ignored).

        Every name and shape is checked first; a mismatch raises CheckpointError and changes nothing.
        """
        ...


class ActingPath(Protocol):
    """What a policy acts through (networks/acting.py chooses it): a numpy accelerator (networks/numpy_actor.py,
    networks/sac_numpy.py) where it covers the networks, else `TorchActor` over the torch modules."""

    rng: np.random.Generator

    def act(self, obs: np.ndarray, allowed: np.ndarray | None, *, deterministic: bool = False) -> ActOutput: ...

    def values(self, obs: np.ndarray) -> np.ndarray: ...

    def sync(self) -> None: ...


P = TypeVar("P", bound="PolicyBase")


class PolicyBase(ABC):
    """What PPO's and SAC's policies share: settings, acting and values through an acting path (`actor`:
    numpy or torch), and building from a behavior's TrainerSettings."""

    actor: ActingPath

    def __init__(self, settings: PolicySettings) -> None:
        self.settings = settings
        self.spec = settings.spec
        self.deterministic = settings.deterministic

    @classmethod
    def from_settings(
        cls: type[P],
        *,
        behavior_name: str,
        spec: BehaviorSpec,
        settings: Any,
        seed: int,
        deterministic: bool = False,
        device: torch.device | str | None = None,
    ) -> P:
        """A policy alone, from a behavior's TrainerSettings, sampling with a generator seeded by `seed`."""
        policy_settings = PolicySettings.read(behavior_name, spec, settings, deterministic=deterministic)
        return cls.build(policy_settings, settings.hyperparameters, seed=seed, device=device)

    @classmethod
    @abstractmethod
    def build(
        cls: type[P], settings: PolicySettings, hyperparameters: Any, *, seed: int, device: torch.device | str | None
    ) -> P:
        """The policy of these settings (and of the hyperparameters that shape its networks)."""

    @property
    def rng(self) -> np.random.Generator:
        return self.actor.rng

    @rng.setter
    def rng(self, value: np.random.Generator) -> None:
        self.actor.rng = value

    @property
    def memory_size(self) -> int:
        return 0

    def act(self, obs: np.ndarray, allowed: np.ndarray | None, memory: np.ndarray | None = None) -> ActOutput:
        if memory is None:
            return self.actor.act(obs, allowed, deterministic=self.deterministic)
        if not isinstance(self.actor, (TorchActor, NumpyRecurrentActor)):  # the other accelerators have no memory
            raise TypeError(f"{type(self).__name__}: memories given to a policy that has none")
        return self.actor.act(obs, allowed, deterministic=self.deterministic, memory=memory)

    def values(self, obs: np.ndarray) -> np.ndarray:
        return self.actor.values(obs)
