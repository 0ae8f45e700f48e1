"""What every trainer offers the run loop, and small readers of the trainer settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from fledge.envs.api import ActionTuple, BehaviorSpec, DimensionProperty
from fledge.errors import ConfigError
from fledge.networks.actor_graph import ExportSource
from fledge.networks.numpy_actor import ActOutput
from fledge.rollout.processor import StepOutcome

# Stat names of reward signals keep the provider's own spelling.
SIGNAL_STAT_NAMES = {"extrinsic": "Extrinsic", "curiosity": "Curiosity", "gail": "GAIL", "rnd": "RND"}
SUPPORTED_SIGNALS = ("extrinsic",)


@dataclass
class TrainerState:
    """Everything a trainer needs to continue exactly where it stopped, without pickle.

    `tensors`: flat names -> tensors (weights, optimiser moments, normaliser statistics, ...);
    `meta`: JSON-serialisable values (counters, schedule positions, random generator states, ...).
    `tensors` must hold the actor weights under names starting with "policy." so that
    `--initialize-from` can copy weights only.
    """

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


RUN_PREFIX = "run."


def trainer_part(state: TrainerState) -> TrainerState:
    """A checkpoint's entries that belong to the trainer (the run adds its own under "run.")."""
    return TrainerState(
        tensors={k: v for k, v in state.tensors.items() if not k.startswith(RUN_PREFIX)}, meta=state.meta
    )


class Trainer(Protocol):
    """What the run loop and the checkpoint manager need from a trainer (PPO, SAC, ...)."""

    name: str
    step: int
    signal_names: tuple[str, ...]
    trainer_type: str
    spec: BehaviorSpec
    deterministic: bool

    @property
    def should_train(self) -> bool: ...

    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> ActOutput: ...

    def values(self, obs: np.ndarray) -> np.ndarray: ...

    def env_actions(self, out: ActOutput) -> ActionTuple: ...

    def observe(self, outcome: StepOutcome) -> None: ...

    def finish(self) -> None: ...

    def get_state(self) -> TrainerState:
        """All state, for the checkpoint unit (step counters included)."""
        ...

    def set_state(self, state: TrainerState, *, weights_only: bool = False) -> None:
        """Restore all state (resume), or only the policy weights and normaliser (initialize-from).

        Raises CheckpointError naming the mismatch when shapes or names do not fit.
        """
        ...

    def actor_graph(self) -> ExportSource:
        """What ONNX export builds from: the acting network as plain arrays, or as its torch module."""
        ...

    def save_auxiliary(self, folder: Path) -> list[Path]:
        """Write extra files of a checkpoint (SAC: the replay buffer) atomically; return their paths."""
        ...

    def load_auxiliary(self, folder: Path) -> None:
        """Read back what save_auxiliary wrote (on resume); warn clearly when it is missing."""
        ...

    @property
    def mean_reward_since_update(self) -> float | None:
        """Mean return of the episodes finished since the last policy update (for checkpoint records)."""
        ...


def record_episode_stats(
    stats: Any, name: str, outcome: StepOutcome, signal_names: tuple[str, ...], strengths: np.ndarray
) -> None:
    """What every trainer reports per step: entropy of each decision, and per finished episode its
    return (HISTOGRAM), length and the reward of each signal (x strength)."""
    from fledge.stats import Aggregation

    if outcome.actions is not None and len(outcome.actions.entropy):
        stats.add_stats(name, "Policy/Entropy", outcome.actions.entropy)
    if len(outcome.episode_returns):
        stats.add_stats(name, "Environment/Cumulative Reward", outcome.episode_returns, Aggregation.HISTOGRAM)
        stats.add_stats(name, "Environment/Episode Length", outcome.episode_lengths.astype(np.float64))
        for sig, strength in zip(signal_names, strengths):
            stats.add_stats(name, f"Policy/{SIGNAL_STAT_NAMES[sig]} Reward", outcome.episode_returns * strength)


def summary_due(step: int, added: int, freq: int) -> int | None:
    """The summary step label when adding `added` steps to `step` crosses the next multiple of `freq`
    (as ML-Agents: checked before the crossing trajectory is counted, never at step 0)."""
    label = (step // freq + 1) * freq
    return label if step > 0 and step + added >= label else None


def write_summary(stats: Any, name: str, *, step: int, label_step: int, training: bool) -> None:
    """Close a summary period: `Is Training` and `Step`, then every writer gets the period's stats."""
    stats.add_stat(name, "Is Training", float(training))
    stats.set_stat(name, "Step", float(step))
    stats.write_stats(name, label_step)


def plain(value: Any) -> Any:
    """An enum member as its plain value; anything else unchanged."""
    return value.value if isinstance(value, Enum) else value


def refuse_memory(settings: Any, where: str) -> None:
    """Recurrent networks are not built yet: a memory block is refused, naming `where` ("behaviors.3DBall")."""
    if settings.network_settings.memory is not None:
        raise ConfigError(
            f"{where}.network_settings.memory: recurrent networks are not supported yet; remove the memory block."
        )


def reward_signals(settings: Any, where: str) -> list[tuple[str, float, float]]:
    """(name, gamma, strength) of every configured reward signal, refusing the ones not built yet;
    `where` names the settings in the error ("behaviors.3DBall", "default_settings")."""
    signals = []
    for key, sig in settings.reward_signals.items():
        name = str(plain(key))
        if sig is None:
            continue
        if name not in SUPPORTED_SIGNALS:
            raise ConfigError(
                f"{where}.reward_signals.{name}: this reward signal is not available in this "
                f"version of fledge (available: {', '.join(SUPPORTED_SIGNALS)}). Remove it from the config."
            )
        signals.append((name, float(sig.gamma), float(sig.strength)))
    if not signals:
        raise ConfigError(
            f"{where}.reward_signals: no reward signal is configured; add at least "
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
