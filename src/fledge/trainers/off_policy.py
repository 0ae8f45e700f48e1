"""Trainers that learn from a replay buffer of past experiences (SAC).

Each step's trajectories update the observation normaliser, report `Policy/<Signal> Value` (the mean
V(s) of each trajectory), and go into the replay buffer with their next observations and done flags
(done only at a true episode end; an interrupted end bootstraps from the real terminal observation).

Update rule (ML-Agents 1.1.0): once the buffer holds >= batch_size experiences and step >=
buffer_init_steps, update while (step - buffer_init_steps) / update_count > steps_per_update,
incrementing update_count (which starts at 1) after each update; the algorithm's `_update_loop` asks
`_updates_due()` how many to run. With save_replay_buffer the buffer is a checkpoint's auxiliary file.

With memory each trajectory enters the buffer cut into sequences of `sequence_length`, padded at the end
(networks/memory.py), with its actor memories and the value network's memory at each sequence start
(`recurrent_critic_starts`, carried per agent by the algorithm).
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from pathlib import Path
from typing import Protocol

import numpy as np

from fledge.networks.memory import pad_sequences, sequence_masks
from fledge.rollout.processor import Trajectory
from fledge.trainers.base import TrainerBase
from fledge.trainers.replay_buffer import ReplayBuffer, ReplaySpec
from fledge.trainers.settings import SIGNAL_STAT_NAMES

log = logging.getLogger("fledge")

REPLAY_BUFFER_FILE = "last_replay_buffer.hdf5"


class ReplaySettings(Protocol):
    """The hyperparameters the off-policy loop reads."""

    @property
    def batch_size(self) -> int: ...

    @property
    def buffer_size(self) -> int: ...

    @property
    def buffer_init_steps(self) -> int: ...

    @property
    def steps_per_update(self) -> float: ...

    @property
    def save_replay_buffer(self) -> bool: ...


class OffPolicyTrainer(TrainerBase):
    hp: ReplaySettings
    buffer: ReplayBuffer
    update_count: float

    def start_replay(self) -> None:
        """An empty replay buffer of buffer_size experiences; no update counted yet (update_count 1)."""
        aspec = self.spec.action_spec
        self.buffer = ReplayBuffer(
            spec=ReplaySpec(
                obs_size=self.policy_settings.obs_size,
                continuous_size=int(aspec.continuous_size),
                discrete_size=len(aspec.discrete_branches),
                mask_size=int(sum(aspec.discrete_branches)),
                memory_size=self.policy_settings.memory_size,
            ),
            max_size=self.hp.buffer_size,
            reserve=4 * self.time_horizon + 2 * self.policy_settings.sequence_length,
            setting=f"behaviors.{self.name}.hyperparameters.buffer_size",
            sequence_length=self.policy_settings.sequence_length,
        )
        self.update_count = 1.0

    def learn(self, trajectories: list[Trajectory]) -> None:
        obs = np.concatenate([t.obs for t in trajectories]) if len(trajectories) > 1 else trajectories[0].obs
        normalizer = self.policy.normalizer
        if normalizer is not None:
            normalizer.update(obs)
        self._report_values(trajectories, obs)
        for traj in trajectories:
            self._summary_before(traj)
            self.step += len(traj)
        self._append(trajectories, obs)
        if self._ready_to_update():
            self._update_loop()

    def _report_values(self, trajectories: list[Trajectory], obs: np.ndarray) -> None:
        """`Policy/<Signal> Value`: the mean V(s) of each trajectory (reporting only)."""
        values = self.policy.values(obs)
        lengths = np.array([len(t) for t in trajectories])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        means = np.add.reduceat(values, starts, axis=0) / lengths[:, None]
        for i, sig in enumerate(self.signal_names):
            key = f"Policy/{SIGNAL_STAT_NAMES[sig]} Value"
            for m in means[:, i].tolist():
                self.stats.add_stat(self.name, key, m)

    def recurrent_critic_starts(self, traj: Trajectory) -> np.ndarray:
        """With memory: the value network's memory at each sequence start of the trajectory (ceil(n / L), M)."""
        raise NotImplementedError(f"{type(self).__name__} does not train recurrent networks")

    def _append_sequences(self, trajectories: list[Trajectory]) -> None:
        """With memory: each trajectory cut into padded sequences, with masks and memories."""
        seq = self.policy_settings.sequence_length
        parts: dict[str, list[np.ndarray]] = {k: [] for k in self.buffer.data}
        for t in trajectories:
            n = len(t)
            assert t.memory is not None, "a recurrent policy's trajectory carries its memories"
            done = np.zeros(n, dtype=np.bool_)
            done[-1] = t.terminal
            allowed = t.allowed if t.allowed is not None else np.ones((n, 0), np.bool_)
            rows = {
                "obs": t.obs,
                "next_obs": np.concatenate([t.obs[1:], t.next_obs[None]]),
                "continuous": t.continuous,
                "discrete": t.discrete,
                "allowed": allowed if self.buffer.spec.mask_size else np.ones((n, 0), np.bool_),
                "rewards": t.rewards,
                "done": done,
                "memory": t.memory,
            }
            for key, value in rows.items():
                parts[key].append(pad_sequences(value, seq, fill=(key == "allowed")))
            parts["masks"].append(sequence_masks(n, seq))
            critic = np.zeros_like(parts["memory"][-1])
            critic[::seq] = self.recurrent_critic_starts(t)
            parts["critic_memory"].append(critic)
        self.buffer.append(**{k: np.concatenate(v) for k, v in parts.items()})

    def _append(self, trajectories: list[Trajectory], obs: np.ndarray) -> None:
        """All trajectories of one step into the buffer at once: next observations and done flags built
        vectorised (done only at a true episode end; interruptions bootstrap from the terminal obs)."""
        if self.policy_settings.memory_size:
            self._append_sequences(trajectories)
            return
        ends = np.cumsum([len(t) for t in trajectories]) - 1
        next_obs = np.empty_like(obs)
        next_obs[:-1] = obs[1:]
        next_obs[ends] = np.stack([t.next_obs for t in trajectories])
        done = np.zeros(len(obs), dtype=np.bool_)
        done[ends] = [t.terminal for t in trajectories]

        def cat(arrays: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(arrays) if len(arrays) > 1 else arrays[0]

        n = len(obs)
        allowed = (
            cat([t.allowed if t.allowed is not None else np.ones((len(t), 0), np.bool_) for t in trajectories])
            if self.buffer.spec.mask_size
            else np.ones((n, 0), dtype=np.bool_)
        )
        self.buffer.append(
            obs=obs,
            next_obs=next_obs,
            continuous=cat([t.continuous for t in trajectories]),
            discrete=cat([t.discrete for t in trajectories]),
            allowed=allowed,
            rewards=cat([t.rewards for t in trajectories]),
            done=done,
        )

    def _ready_to_update(self) -> bool:
        return self.buffer.count >= self.hp.batch_size and self.step >= self.hp.buffer_init_steps

    def _updates_due(self) -> int:
        """How many updates the rule asks for now; counts them in update_count."""
        hp, n = self.hp, 0
        while (self.step - hp.buffer_init_steps) / self.update_count > hp.steps_per_update:
            self.update_count += 1
            n += 1
        return n

    @abstractmethod
    def _update_loop(self) -> None:
        """Run the updates `_updates_due()` asks for."""

    # -- the replay buffer as a checkpoint's auxiliary file ----------------------------------------
    def save_auxiliary(self, folder: Path) -> list[Path]:
        """The replay buffer, atomically, when save_replay_buffer is true."""
        if not self.hp.save_replay_buffer:
            return []
        with self.timers.block("save_replay_buffer"):
            return [self.buffer.save(Path(folder) / REPLAY_BUFFER_FILE)]

    def load_auxiliary(self, folder: Path) -> None:
        if not self.hp.save_replay_buffer:
            log.warning(
                "Behavior '%s': save_replay_buffer is false, so the resumed %s trainer starts with an empty "
                "replay buffer.",
                self.name,
                self.display_name,
            )
            return
        path = Path(folder) / REPLAY_BUFFER_FILE
        if not path.is_file():
            log.warning(
                "Behavior '%s': replay buffer file %s was not found; the replay buffer starts empty.", self.name, path
            )
            return
        self.buffer.load(path)
        log.info("Behavior '%s': loaded %d experiences from %s.", self.name, self.buffer.count, path)
