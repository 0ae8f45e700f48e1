"""Trainers that learn from the experiences of their current policy only (PPO; POCA next).

Each step's trajectories update the observation normaliser, get their rewards from the reward signals
(rewards/: each signal's reward x strength), their advantages and returns by GAE per signal (each with
its own gamma; signals that ignore done bootstrap through true episode ends; the advantage stored is the
mean over signals), report `Policy/<Signal> Value Estimate`, and fill the rollout buffer. When the
buffer holds `buffer_size` experiences the algorithm's `_update` runs on all of them (it empties the
buffer), then the learned signals train on the same transitions.

With memory, the critic's values of each trajectory (and its bootstrap value) are recomputed by
running the critic's memory through the trajectory (`recurrent_values`), from the critic memory that
agent's previous trajectory left (kept per agent id, dropped when its episode ends; not one memory
shared by every agent as ML-Agents 1.1.0 does, spec 13.3); the trajectory is then cut into padded
sequences of `sequence_length` before it enters the buffer.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Protocol

import numpy as np

from fledge.networks.memory import pad_sequences, sequence_masks
from fledge.rollout.processor import Trajectory
from fledge.trainers.base import TrainerBase, summary_due
from fledge.trainers.returns import gae
from fledge.trainers.rollout_buffer import RolloutBuffer
from fledge.trainers.settings import SIGNAL_STAT_NAMES


class RolloutSettings(Protocol):
    """The hyperparameters the on-policy loop reads."""

    @property
    def buffer_size(self) -> int: ...

    @property
    def lambd(self) -> float: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def num_epoch(self) -> int: ...


class OnPolicyTrainer(TrainerBase):
    hp: RolloutSettings
    buffer: RolloutBuffer
    rewards_before_update: list[float]

    def start_rollouts(self) -> None:
        """An empty rollout buffer, with room for buffer_size experiences and the trajectories that cross it."""
        aspec = self.spec.action_spec
        self.rewards_before_update = []
        self.pending: list[tuple[Trajectory, np.ndarray]] = []  # (trajectory, signal bootstrap), see defer_rewards
        self.pending_rows = 0
        self.buffer = RolloutBuffer(
            obs_size=self.policy_settings.obs_size,
            n_cont=aspec.continuous_size,
            n_disc=aspec.discrete_size,
            n_mask=int(sum(aspec.discrete_branches)),
            n_values=len(self.signal_names),
            capacity=self.hp.buffer_size + 2 * self.time_horizon + self.policy_settings.sequence_length,
            memory_size=self.policy_settings.memory_size,
        )

    @property
    def mean_reward_since_update(self) -> float | None:
        """Right after an update (no episode finished since), the episodes that led to it."""
        rewards = self.episode_rewards_since_update or self.rewards_before_update
        return float(np.mean(rewards)) if rewards else None

    def learn(self, trajectories: list[Trajectory]) -> None:
        normalizer = self.policy.normalizer
        if normalizer is not None:
            normalizer.update(np.concatenate([t.obs for t in trajectories]))
        added = sum(len(t) for t in trajectories)
        if self.defer_rewards and not (
            summary_due(self.step, added, self.summary_freq) is not None
            or self.buffer.count + self.pending_rows + added >= self.hp.buffer_size
        ):
            for traj in trajectories:  # counted now; rewards, returns and stats when next flushed
                self.pending.append((traj, self.signal_bootstrap(traj, traj.bootstrap)))
                self.pending_rows += len(traj)
                self.step += len(traj)
            return
        self._flush_and_add(trajectories)
        if self.buffer.count >= self.hp.buffer_size and self.should_train:
            with self.timers.block("update_policy"):
                self._update()
            self.train_signals(epochs=self.hp.num_epoch, batch_size=self.hp.batch_size)

    @property
    def defer_rewards(self) -> bool:
        """Whether learned signals' rewards wait for the next flush: their networks and normalisers change only
        when they train (after an update, which a flush always precedes), so a trajectory's rewards are the
        same whenever they are computed, and one batched call replaces one call per environment step.
        Not with memory (its values are recomputed per trajectory, in order)."""
        return self.signals.learned and not self.policy_settings.memory_size

    def _flush_and_add(self, trajectories: list[Trajectory]) -> None:
        """The pending trajectories (already counted) then these: their signal rewards in one batch, then
        returns, stats and the buffer, in the order they arrived; a summary period closes at its trajectory,
        after the stats of those before it (the flush happens before any period closes)."""
        pending, self.pending, self.pending_rows = self.pending, [], 0
        with self.timers.block("reward_signals"):
            rewards, transitions = self.signal_rewards([t for t, _ in pending] + trajectories)
        if transitions is not None:
            self.signal_transitions.append(transitions)
        for (traj, bootstrap), traj_rewards in zip(pending, rewards):
            self._fill(traj, traj_rewards, bootstrap)
        for traj, traj_rewards in zip(trajectories, rewards[len(pending) :]):
            self._add_trajectory(traj, traj_rewards)

    def finish(self) -> None:
        """Trajectories still waiting for their rewards enter the buffer (and report their stats)."""
        if self.pending:
            self._flush_and_add([])

    def signal_bootstrap(self, traj: Trajectory, bootstrap: np.ndarray) -> np.ndarray:
        """Signals that ignore done (curiosity, RND) bootstrap from the value of the terminal observation even
        where the episode truly ended (spec 8.6); the others keep 0 there."""
        if not (traj.terminal and self.signals.ignore_done.any()) or self.policy_settings.memory_size:
            return bootstrap
        boot = np.array(bootstrap, dtype=np.float32, copy=True)
        ignore = self.signals.ignore_done
        boot[ignore] = self.policy.values(traj.next_obs[None])[0][ignore]
        return boot

    def recurrent_values(self, traj: Trajectory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """With memory: the trajectory's values (n, S) and bootstrap (S,) from carried critic memories, and the
        critic memory at each sequence start (ceil(n / L), memory_size)."""
        raise NotImplementedError(f"{type(self).__name__} does not train recurrent networks")

    def _add_trajectory(self, traj: Trajectory, rewards: np.ndarray) -> None:
        self._summary_before(traj)
        self._fill(traj, rewards)
        self.step += len(traj)

    def _fill(self, traj: Trajectory, rewards: np.ndarray, signal_bootstrap: np.ndarray | None = None) -> None:
        """Returns, value stats and the buffer rows of a trajectory (`signal_bootstrap`: already computed)."""
        n = len(traj)
        seq_len = self.policy_settings.sequence_length
        recurrent = self.policy_settings.memory_size > 0
        values, bootstrap, critic_starts = traj.values, traj.bootstrap, None
        if recurrent:
            values, bootstrap, critic_starts = self.recurrent_values(traj)
        bootstrap = self.signal_bootstrap(traj, bootstrap) if signal_bootstrap is None else signal_bootstrap
        advantages = np.empty((n, len(self.signal_names)), dtype=np.float32)
        returns = np.empty_like(advantages)
        for i in range(len(self.signal_names)):
            advantages[:, i], returns[:, i] = gae(
                rewards[:, i], values[:, i], bootstrap[i], gamma=float(self.gammas[i]), lambd=self.hp.lambd
            )
        for i, sig in enumerate(self.signal_names):
            stat_label = SIGNAL_STAT_NAMES[sig]
            self.stats.add_stat(self.name, f"Policy/{stat_label} Value Estimate", float(values[:, i].mean()))
        fields = {
            "obs": traj.obs,
            "continuous": traj.continuous,
            "discrete": traj.discrete,
            "allowed": traj.allowed if traj.allowed is not None else np.ones((n, 0), dtype=np.bool_),
            "log_prob": traj.log_prob,
            "old_values": values,
            "returns": returns,
            "advantages": advantages.mean(axis=1),
        }
        if recurrent:
            assert traj.memory is not None, "a recurrent policy's trajectory carries its memories"
            fields = {k: pad_sequences(v, seq_len, fill=(k == "allowed")) for k, v in fields.items()}
            fields["masks"] = sequence_masks(n, seq_len)
            fields["memory"] = pad_sequences(traj.memory, seq_len)
            assert critic_starts is not None
            critic_memory = np.zeros_like(fields["memory"])
            critic_memory[::seq_len] = critic_starts
            fields["critic_memory"] = critic_memory
        self.buffer.append(**fields)

    @abstractmethod
    def _update(self) -> None:
        """Learn from the whole buffer, then empty it."""
