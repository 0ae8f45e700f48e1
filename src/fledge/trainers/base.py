"""What every trainer offers the run loop (`Trainer`), and what every trainer shares (`TrainerBase`).

A trainer is what learns: it holds a policy (what acts, trainers/policy.py), observes the outcome of
every step, updates the policy's weights, and saves and restores everything it needs to continue.
The on-policy and off-policy bases (on_policy.py, off_policy.py) add how experiences are gathered and
when an update runs; an algorithm adds its hyperparameters, its networks' learner state and its update.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch

from fledge.envs.api import BehaviorSpec
from fledge.networks.device import as_device
from fledge.networks.size import NetworkSize, mlp_parameters
from fledge.rewards import ExpertLoader, SignalBatch, build_signals
from fledge.rollout.processor import StepOutcome, Trajectory
from fledge.stats import StatsReporter
from fledge.stats.timers import Timers
from fledge.trainers.policy import Policy, PolicySettings
from fledge.trainers.settings import (
    SIGNAL_STAT_NAMES,
    encoder_settings,
    memory_settings,
    reward_signals,
    warn_unused_encoders,
)


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
    policy: Policy  # what acts: the run loop, the export and play use it

    @property
    def should_train(self) -> bool: ...

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
            if sig == "extrinsic":  # the other signals' episode sums come from the trainer (TrainerBase.signal_rewards)
                stats.add_stats(name, f"Policy/{SIGNAL_STAT_NAMES[sig]} Reward", outcome.episode_returns * strength)


def signal_seed(seed: int) -> int:
    """The seed of a trainer's reward-signal networks, derived from the trainer's seed without drawing from
    its generator (a run with the extrinsic signal alone draws exactly what it drew before signals existed)."""
    return int(np.random.SeedSequence([int(seed), 15]).generate_state(1, dtype=np.uint64)[0] % 2**62)


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


class TrainerBase(ABC):
    """The part every trainer shares: settings read once, episode statistics, summaries, the fingerprint.

    The constructor reads what all trainers read (max_steps, summary_freq, time_horizon, the reward
    signals' gammas and strengths, the policy settings), seeds the trainer's generator, then calls
    `build()`, where an algorithm reads its hyperparameters and makes its policy and learner state.
    `observe` records the episode statistics of a step and hands its trajectories to `learn` while
    the trainer still trains.
    """

    trainer_type: ClassVar[str]
    display_name: ClassVar[str]  # the algorithm in messages ("PPO")
    policy: Policy

    def __init__(
        self,
        *,
        behavior_name: str,
        spec: BehaviorSpec,
        settings: Any,
        stats: StatsReporter,
        seed: int,
        timers: Timers | None = None,
        deterministic: bool = False,
        device: torch.device | str | None = None,
        expert_loader: ExpertLoader | None = None,
    ) -> None:
        self.name = behavior_name
        self.device = as_device(device)
        self.timers = timers if timers is not None else Timers()
        self.spec = spec
        self.stats = stats
        self.settings = settings
        self.max_steps = int(settings.max_steps)
        self.summary_freq = int(settings.summary_freq)
        self.time_horizon = int(settings.time_horizon)
        where = f"behaviors.{behavior_name}"
        reward_signals(settings, where)  # refuses what cannot run, with the config's own words
        self.signals = build_signals(
            settings, spec, where=where, seed=signal_seed(seed), device=self.device, expert_loader=expert_loader
        )
        self.signal_names = self.signals.names
        self.gammas = self.signals.gammas
        self.strengths = self.signals.strengths
        self.signal_episode_sums: dict[tuple[str, int], np.ndarray] = {}
        self.signal_transitions: list[SignalBatch] = []  # on-policy: what the learned signals train on next
        net = settings.network_settings
        vis_encode_type, goal_conditioning_type = encoder_settings(settings)
        warn_unused_encoders(behavior_name, spec, settings)
        self.policy_settings = PolicySettings(
            behavior_name=behavior_name,
            spec=spec,
            hidden_units=int(net.hidden_units),
            num_layers=int(net.num_layers),
            normalize=bool(net.normalize),
            signal_names=self.signal_names,
            deterministic=deterministic or bool(net.deterministic),
            memory_size=memory_settings(settings)[0],
            sequence_length=memory_settings(settings)[1],
            vis_encode_type=vis_encode_type,
            goal_conditioning_type=goal_conditioning_type,
        )
        self.step = 0
        self.episode_rewards_since_update: list[float] = []
        self.rng = np.random.default_rng(seed)
        self.build()

    @abstractmethod
    def build(self) -> None:
        """Read the algorithm's hyperparameters; make `self.policy`, the optimisers and the buffer."""

    def size_networks(self, *, n_in: int, n_out: int, copies: int) -> NetworkSize:
        """The size of the networks about to be built (`copies` MLPs of n_in -> n_out), checked against the
        machine's memory and kept as `network_size`; build them inside its `building()`."""
        ps = self.policy_settings
        self.network_size = size = NetworkSize(
            behavior=self.name,
            hidden_units=ps.hidden_units,
            num_layers=ps.num_layers,
            parameters=mlp_parameters(
                n_in=n_in, hidden=ps.hidden_units, num_layers=ps.num_layers, n_out=n_out, copies=copies
            ),
        )
        size.check()
        return size

    @property
    def should_train(self) -> bool:
        return self.step < self.max_steps

    @property
    def mean_reward_since_update(self) -> float | None:
        rewards = self.episode_rewards_since_update
        return float(np.mean(rewards)) if rewards else None

    # -- observing --------------------------------------------------------------------------------
    def observe(self, outcome: StepOutcome) -> None:
        record_episode_stats(self.stats, self.name, outcome, self.signal_names, self.strengths)
        if len(outcome.episode_returns):
            self.episode_rewards_since_update.extend(outcome.episode_returns.tolist())
        if outcome.trajectories and self.should_train:
            self.learn(outcome.trajectories)

    def watch(self, outcome: StepOutcome) -> None:
        """A step of a team that plays but does not learn now (self-play): nothing to keep by default."""
        return None

    # -- reward signals ---------------------------------------------------------------------------
    def env_continuous(self, continuous: np.ndarray) -> np.ndarray:
        """The continuous actions as the environment received them (what signals see); PPO and POCA clip."""
        return continuous

    def signal_batch(self, trajectories: list[Trajectory]) -> SignalBatch:
        """The trajectories' transitions, one row per step (done at a true episode end)."""
        parts = []
        for t in trajectories:
            n = len(t)
            done = np.zeros(n, dtype=np.bool_)
            done[-1] = t.terminal
            parts.append(
                SignalBatch(
                    obs=t.obs,
                    next_obs=np.concatenate([t.obs[1:], t.next_obs[None]]),
                    continuous=self.env_continuous(t.continuous),
                    discrete=t.discrete,
                    done=done,
                    env_rewards=t.rewards,
                )
            )
        return SignalBatch.concatenate(parts)

    def signal_rewards(
        self, trajectories: list[Trajectory], extrinsic: list[np.ndarray] | None = None
    ) -> tuple[list[np.ndarray], SignalBatch | None]:
        """Each trajectory's (n, S) rewards x strength, and its transitions when a signal learns from them.

        `extrinsic`: the extrinsic signal's reward of each trajectory when it is not the agent's own (POCA's
        team reward). With the extrinsic signal alone this is the reward times its strength, as it always was.
        Episode sums of the other signals are reported as `Policy/<Signal> Reward` when an episode ends."""
        if self.signals.only_extrinsic:
            own = extrinsic or [t.rewards for t in trajectories]
            return [r[:, None] * self.strengths[None, :] for r in own], None
        batch = self.signal_batch(trajectories)
        rewards = self.signals.rewards(batch)
        out, first = [], 0
        for i, t in enumerate(trajectories):
            rows = rewards[first : first + len(t)]
            first += len(t)
            if extrinsic is not None and "extrinsic" in self.signal_names:
                rows[:, self.signal_names.index("extrinsic")] = (
                    extrinsic[i] * self.strengths[self.signal_names.index("extrinsic")]
                )
            out.append(rows)
            self._episode_signal_sums(t, rows)
        return out, batch if self.signals.learned else None

    def _episode_signal_sums(self, traj: Trajectory, rows: np.ndarray) -> None:
        key = traj.agent_key
        sums = self.signal_episode_sums.get(key)
        total = rows.sum(axis=0, dtype=np.float64) if sums is None else sums + rows.sum(axis=0, dtype=np.float64)
        if not traj.ends_episode:
            self.signal_episode_sums[key] = total
            return
        self.signal_episode_sums.pop(key, None)
        for sig, label, value in zip(self.signal_names, self.signals.labels, total):
            if sig != "extrinsic":
                self.stats.add_stat(self.name, f"Policy/{label} Reward", float(value))

    def train_signals(self, *, epochs: int, batch_size: int) -> None:
        """On-policy trainers: after an update, the learned signals train on the same transitions (`epochs`
        passes of batch_size minibatches, as the policy did), which are then dropped."""
        if not self.signal_transitions:
            return
        with self.timers.block("update_reward_signals"):
            batch = SignalBatch.concatenate(self.signal_transitions)
            self.signal_transitions = []
            stats = self.signals.train(batch, epochs=epochs, batch_size=batch_size, rng=self.rng)
        self.report_signal_stats(stats)

    def report_signal_stats(self, stats: dict[str, float]) -> None:
        for key, value in stats.items():
            self.stats.add_stat(self.name, key, value)

    @abstractmethod
    def learn(self, trajectories: list[Trajectory]) -> None:
        """Take the trajectories one step finished (the step counter grows here), updating when due."""

    def _write_summary(self, label_step: int) -> None:
        write_summary(self.stats, self.name, step=self.step, label_step=label_step, training=self.should_train)

    def _summary_before(self, traj: Trajectory) -> None:
        """Close a summary period when this trajectory's steps cross the next multiple of summary_freq."""
        label = summary_due(self.step, len(traj), self.summary_freq)
        if label is not None:
            self._write_summary(label)

    def finish(self) -> None:
        """Nothing is pending between updates; the run calls this when training ends."""
        return None

    # -- checkpoints ------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must agree with to be loaded into this trainer (also lets `fledge export`
        rebuild the policy)."""
        ps, aspec = self.policy_settings, self.spec.action_spec
        return {
            "trainer_type": self.trainer_type,
            "observation_shapes": [list(o.shape) for o in self.spec.observation_specs],
            "action_spec": [aspec.continuous_size, list(aspec.discrete_branches)],
            "hidden_units": ps.hidden_units,
            "num_layers": ps.num_layers,
            "normalize": ps.normalize,
            # what rebuilds the encoders (absent from older checkpoints, which only had vector observations)
            "observation_kinds": [
                [[int(p) for p in o.dimension_property], int(o.observation_type)] for o in self.spec.observation_specs
            ],
            **self.encoder_fingerprint(),
            **self.fingerprint_extras(),
            **({"memory": [ps.memory_size, ps.sequence_length]} if ps.memory_size else {}),
            "reward_signals": list(self.signal_names),
        }

    def encoder_fingerprint(self) -> dict[str, Any]:
        """The encoder settings that shape this behavior's networks: vis_encode_type with visual
        observations, goal_conditioning_type with goal observations (they change nothing otherwise)."""
        ps, specs = self.policy_settings, self.spec.observation_specs
        out: dict[str, Any] = {}
        if any(len(o.shape) == 3 for o in specs):
            out["vis_encode_type"] = ps.vis_encode_type
        if any(int(o.observation_type) == 1 for o in specs):
            out["goal_conditioning_type"] = ps.goal_conditioning_type
        return out

    def fingerprint_extras(self) -> dict[str, Any]:
        """The algorithm's own entries of the fingerprint (PPO: shared_critic)."""
        return {}

    @abstractmethod
    def get_state(self) -> TrainerState: ...

    @abstractmethod
    def set_state(self, state: TrainerState, *, weights_only: bool = False) -> None: ...

    def save_auxiliary(self, folder: Path) -> list[Path]:
        return []

    def load_auxiliary(self, folder: Path) -> None:
        return None
