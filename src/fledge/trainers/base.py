"""What every trainer offers the run loop, and small readers of the trainer settings."""

from __future__ import annotations

from enum import Enum
from typing import Any, Protocol

import numpy as np

from fledge.envs.api import ActionTuple, BehaviorSpec, DimensionProperty
from fledge.errors import ConfigError
from fledge.networks.numpy_actor import ActOutput
from fledge.rollout.processor import StepOutcome

# Stat names of reward signals keep the provider's own spelling.
SIGNAL_STAT_NAMES = {"extrinsic": "Extrinsic", "curiosity": "Curiosity", "gail": "GAIL", "rnd": "RND"}
SUPPORTED_SIGNALS = ("extrinsic",)


class Trainer(Protocol):
    name: str
    step: int
    signal_names: tuple[str, ...]

    @property
    def should_train(self) -> bool: ...

    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> ActOutput: ...

    def values(self, obs: np.ndarray) -> np.ndarray: ...

    def env_actions(self, out: ActOutput) -> ActionTuple: ...

    def observe(self, outcome: StepOutcome) -> None: ...

    def finish(self) -> None: ...


def plain(value: Any) -> Any:
    """An enum member as its plain value; anything else unchanged."""
    return value.value if isinstance(value, Enum) else value


def reward_signals(settings: Any, behavior_name: str) -> list[tuple[str, float, float]]:
    """(name, gamma, strength) of every configured reward signal, refusing the ones not built yet."""
    signals = []
    for key, sig in settings.reward_signals.items():
        name = str(plain(key))
        if sig is None:
            continue
        if name not in SUPPORTED_SIGNALS:
            raise ConfigError(
                f"behaviors.{behavior_name}.reward_signals.{name}: this reward signal is not available in this "
                f"version of fledge (available: {', '.join(SUPPORTED_SIGNALS)}). Remove it from the config."
            )
        signals.append((name, float(sig.gamma), float(sig.strength)))
    if not signals:
        raise ConfigError(
            f"behaviors.{behavior_name}.reward_signals: no reward signal is configured; add at least "
            "'extrinsic: {gamma: 0.99, strength: 1.0}'."
        )
    return signals


def vector_observation_size(spec: BehaviorSpec, behavior_name: str) -> int:
    """Total size of the behavior's vector observations; other kinds are refused with a clear error."""
    total = 0
    for i, obs in enumerate(spec.observation_specs):
        if len(obs.shape) != 1:
            raise ConfigError(
                f"Behavior '{behavior_name}': observation {i} ('{obs.name}') has shape {tuple(obs.shape)}; this "
                "version of fledge trains on vector observations only (visual and variable-length observations "
                "are not supported yet)."
            )
        if obs.dimension_property and obs.dimension_property[0] == DimensionProperty.VARIABLE_SIZE:
            raise ConfigError(f"Behavior '{behavior_name}': variable-length observations are not supported yet.")
        total += int(obs.shape[0])
    return total
