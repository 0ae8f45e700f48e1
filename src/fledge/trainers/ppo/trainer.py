"""PPO, read top to bottom: act, observe trajectories (GAE), update when the buffer is full, log.

One trainer per behavior. Acting runs on a numpy copy of the policy (synchronised after every
update); updates run in torch, on the run's device, on minibatches of the whole buffer for `num_epoch`
epochs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fledge.envs.api import ActionTuple, BehaviorSpec
from fledge.networks.acting import make_actor
from fledge.networks.actor_critic import ENV_ACTION_CLIP, ActorCritic, NetworkShape, export_source
from fledge.networks.actor_graph import ExportSource
from fledge.networks.device import as_device, to_device
from fledge.networks.numpy_actor import ActOutput
from fledge.networks.size import NetworkSize, mlp_parameters
from fledge.rollout.processor import StepOutcome, Trajectory
from fledge.stats import StatsReporter
from fledge.stats.timers import Timers
from fledge.trainers import state as S
from fledge.trainers.base import (
    SIGNAL_STAT_NAMES,
    TrainerState,
    plain,
    record_episode_stats,
    refuse_memory,
    reward_signals,
    summary_due,
    vector_observation_size,
    write_summary,
)
from fledge.trainers.divergence import Snapshot, diverged, non_finite
from fledge.trainers.fast_adam import AdamStepper, fused_if_possible
from fledge.trainers.ppo import losses as L
from fledge.trainers.ppo.buffer import RolloutBuffer
from fledge.trainers.ppo.losses import Minibatch
from fledge.trainers.ppo.update import ppo_gradients

log = logging.getLogger("fledge")


@dataclass(frozen=True)
class PPOHyper:
    batch_size: int
    buffer_size: int
    learning_rate: float
    learning_rate_schedule: str
    beta: float
    beta_schedule: str
    epsilon: float
    epsilon_schedule: str
    lambd: float
    num_epoch: int
    shared_critic: bool


class PPOTrainer:
    trainer_type = "ppo"

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
    ) -> None:
        self.name = behavior_name
        self.device = as_device(device)
        self.timers = timers if timers is not None else Timers()
        self.spec = spec
        self.stats = stats
        self.settings = settings
        refuse_memory(settings, f"behaviors.{behavior_name}")
        hp = settings.hyperparameters
        self.hp = PPOHyper(
            batch_size=int(hp.batch_size),
            buffer_size=int(hp.buffer_size),
            learning_rate=float(hp.learning_rate),
            learning_rate_schedule=str(plain(hp.learning_rate_schedule)),
            beta=float(hp.beta),
            beta_schedule=str(plain(hp.beta_schedule)),
            epsilon=float(hp.epsilon),
            epsilon_schedule=str(plain(hp.epsilon_schedule)),
            lambd=float(hp.lambd),
            num_epoch=int(hp.num_epoch),
            shared_critic=bool(getattr(hp, "shared_critic", False)),
        )
        self.max_steps = int(settings.max_steps)
        self.summary_freq = int(settings.summary_freq)
        self.time_horizon = int(settings.time_horizon)
        signals = reward_signals(settings, f"behaviors.{behavior_name}")
        self.signal_names = tuple(s[0] for s in signals)
        self.gammas = np.array([s[1] for s in signals])
        self.strengths = np.array([s[2] for s in signals], dtype=np.float32)
        self.deterministic = deterministic or bool(settings.network_settings.deterministic)
        net = settings.network_settings
        obs_size = vector_observation_size(spec, behavior_name)
        outputs = spec.action_spec.continuous_size + sum(spec.action_spec.discrete_branches) + len(self.signal_names)
        self.network_size = size = NetworkSize(
            behavior=behavior_name,
            hidden_units=int(net.hidden_units),
            num_layers=int(net.num_layers),
            parameters=mlp_parameters(
                n_in=obs_size,
                hidden=int(net.hidden_units),
                num_layers=int(net.num_layers),
                n_out=outputs,
                copies=1 if self.hp.shared_critic else 2,
            ),
        )
        size.check()
        with size.building():
            self.model = ActorCritic(
                obs_size=obs_size,
                action_spec=spec.action_spec,
                shape=NetworkShape(
                    hidden_units=int(net.hidden_units), num_layers=int(net.num_layers), normalize=bool(net.normalize)
                ),
                value_names=self.signal_names,
                shared_critic=self.hp.shared_critic,
            ).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.hp.learning_rate, **fused_if_possible())
        self.adam = AdamStepper(self.optimizer)
        self.rng = np.random.default_rng(seed)
        self.actor = make_actor(self.model, rng=np.random.default_rng(self.rng.integers(2**63)))
        aspec = spec.action_spec
        self.buffer = RolloutBuffer(
            obs_size=self.model.obs_size,
            n_cont=aspec.continuous_size,
            n_disc=aspec.discrete_size,
            n_mask=int(sum(aspec.discrete_branches)),
            n_values=len(self.signal_names),
            capacity=self.hp.buffer_size + 2 * self.time_horizon,
        )
        self.step = 0
        self.update_count = 0
        self.episode_rewards_since_update: list[float] = []
        self.rewards_before_update: list[float] = []

    # -- acting -----------------------------------------------------------------------------------
    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> ActOutput:
        return self.actor.act(obs, allowed, deterministic=self.deterministic)

    def values(self, obs: np.ndarray) -> np.ndarray:
        return self.actor.values(obs)

    @staticmethod
    def env_actions(out: ActOutput) -> ActionTuple:
        cont = np.clip(out.continuous, -ENV_ACTION_CLIP, ENV_ACTION_CLIP) / ENV_ACTION_CLIP
        return ActionTuple(cont, out.discrete)

    @property
    def should_train(self) -> bool:
        return self.step < self.max_steps

    # -- observing --------------------------------------------------------------------------------
    def observe(self, outcome: StepOutcome) -> None:
        name, stats = self.name, self.stats
        record_episode_stats(stats, name, outcome, self.signal_names, self.strengths)
        if len(outcome.episode_returns):
            self.episode_rewards_since_update.extend(outcome.episode_returns.tolist())
        if not outcome.trajectories or not self.should_train:
            return
        if self.model.normalizer is not None:
            self.model.normalizer.update(np.concatenate([t.obs for t in outcome.trajectories]))
        for traj in outcome.trajectories:
            self._add_trajectory(traj)
        if self.buffer.count >= self.hp.buffer_size and self.should_train:
            with self.timers.block("update_policy"):
                self._update()

    def _add_trajectory(self, traj: Trajectory) -> None:
        n = len(traj)
        label = summary_due(self.step, n, self.summary_freq)
        if label is not None:
            self._write_summary(label)
        rewards = traj.rewards[:, None] * self.strengths[None, :]
        advantages = np.empty((n, len(self.signal_names)), dtype=np.float32)
        returns = np.empty_like(advantages)
        for i in range(len(self.signal_names)):
            advantages[:, i], returns[:, i] = L.gae(
                rewards[:, i], traj.values[:, i], traj.bootstrap[i], gamma=float(self.gammas[i]), lambd=self.hp.lambd
            )
        for i, sig in enumerate(self.signal_names):
            stat_label = SIGNAL_STAT_NAMES[sig]
            self.stats.add_stat(self.name, f"Policy/{stat_label} Value Estimate", float(traj.values[:, i].mean()))
        self.buffer.append(
            obs=traj.obs,
            continuous=traj.continuous,
            discrete=traj.discrete,
            allowed=traj.allowed if traj.allowed is not None else np.ones((n, 0), dtype=np.bool_),
            log_prob=traj.log_prob,
            old_values=traj.values,
            returns=returns,
            advantages=advantages.mean(axis=1),
        )
        self.step += n

    def _write_summary(self, label_step: int) -> None:
        write_summary(self.stats, self.name, step=self.step, label_step=label_step, training=self.should_train)

    def finish(self) -> None:
        """Nothing is pending between updates; the run calls this when training ends."""

    # -- checkpoints ------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must agree with to be loaded into this trainer."""
        return {
            "trainer_type": self.trainer_type,
            "observation_shapes": [list(o.shape) for o in self.spec.observation_specs],
            "action_spec": [self.spec.action_spec.continuous_size, list(self.spec.action_spec.discrete_branches)],
            "hidden_units": self.model.hidden_units,
            "num_layers": self.model.num_layers,
            "normalize": self.model.normalizer is not None,
            "shared_critic": self.hp.shared_critic,
            "reward_signals": list(self.signal_names),
        }

    def get_state(self) -> TrainerState:
        tensors = S.module_tensors("policy.", self.model)
        opt_tensors, opt_meta = S.optimizer_entries("optimizer.", self.optimizer)
        tensors.update(opt_tensors)
        meta = {
            "fingerprint": self.fingerprint(),
            "step": self.step,
            "update_count": self.update_count,
            "optimizer": opt_meta,
            "rng": S.generator_state(self.rng),
            "actor_rng": S.generator_state(self.actor.rng),
            "episode_rewards_since_update": list(self.episode_rewards_since_update),
        }
        return TrainerState(tensors=tensors, meta=meta)

    def set_state(self, state: TrainerState, *, weights_only: bool = False) -> None:
        problems = S.check_module("policy.", self.model, state.tensors)
        if not weights_only:
            problems += S.check_optimizer("optimizer.", self.optimizer, state.tensors)
            for key in ("step", "update_count", "optimizer", "rng", "actor_rng"):
                if key not in state.meta:
                    problems.append(f"the metadata has no '{key}'")
        S.require_fit(state, self.fingerprint(), problems, what=f"behavior '{self.name}' (PPO)")
        S.load_module("policy.", self.model, state.tensors)
        if not weights_only:
            S.load_optimizer("optimizer.", self.optimizer, state.tensors, state.meta["optimizer"])
            self.adam.reset()
            self.step = int(state.meta["step"])
            self.update_count = int(state.meta["update_count"])
            S.set_generator_state(self.rng, state.meta["rng"])
            S.set_generator_state(self.actor.rng, state.meta["actor_rng"])
            self.episode_rewards_since_update = list(state.meta.get("episode_rewards_since_update", []))
        self.buffer.clear()
        self.actor.sync()

    def actor_graph(self) -> ExportSource:
        return export_source(self.model, tuple(tuple(o.shape) for o in self.spec.observation_specs))

    def save_auxiliary(self, folder: Path) -> list[Path]:
        return []

    def load_auxiliary(self, folder: Path) -> None:
        return None

    @property
    def mean_reward_since_update(self) -> float | None:
        rewards = self.episode_rewards_since_update or self.rewards_before_update
        return float(np.mean(rewards)) if rewards else None

    # -- updating ---------------------------------------------------------------------------------
    def schedules(self) -> tuple[float, float, float]:
        hp, step, max_steps = self.hp, self.step, self.max_steps
        lr = L.decayed(hp.learning_rate, L.LEARNING_RATE_FLOOR, step, max_steps, hp.learning_rate_schedule)
        beta = L.decayed(hp.beta, L.BETA_FLOOR, step, max_steps, hp.beta_schedule)
        eps = L.decayed(hp.epsilon, L.EPSILON_FLOOR, step, max_steps, hp.epsilon_schedule)
        return lr, beta, eps

    def _update(self) -> None:
        hp = self.hp
        lr, beta, eps = self.schedules()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        data = self.buffer.view()
        n = self.buffer.count
        batch = min(hp.batch_size, n)
        model = self.model
        device = self.device
        with torch.no_grad():
            x_all = model.normalize(to_device(data["obs"], device))
        tensors = {
            "x": x_all,
            "log_prob": to_device(data["log_prob"], device),
            "old_values": to_device(data["old_values"], device),
            "returns": to_device(data["returns"], device),
            "advantages": to_device(L.normalize_advantages(data["advantages"]), device),
        }
        if model.mu is not None:
            tensors["continuous"] = to_device(data["continuous"], device)
        if model.logits is not None:
            tensors["discrete"] = to_device(data["discrete"].astype(np.int64), device)
            tensors["allowed"] = to_device(data["allowed"], device)
        policy_losses: list[torch.Tensor] = []
        value_losses: list[torch.Tensor] = []
        before = self._snapshot()
        for _ in range(hp.num_epoch):
            perm = to_device(self.rng.permutation(n), device)
            shuffled = {k: v.index_select(0, perm) for k, v in tensors.items()}
            for start in range(0, n - batch + 1, batch):
                end = start + batch
                minibatch = Minibatch(
                    x=shuffled["x"][start:end],
                    continuous=shuffled["continuous"][start:end] if "continuous" in shuffled else None,
                    discrete=shuffled["discrete"][start:end] if "discrete" in shuffled else None,
                    allowed=shuffled["allowed"][start:end] if "allowed" in shuffled else None,
                    old_log_prob=shuffled["log_prob"][start:end],
                    advantages=shuffled["advantages"][start:end],
                    old_values=shuffled["old_values"][start:end],
                    returns=shuffled["returns"][start:end],
                )
                _, p_loss, v_loss = ppo_gradients(model, minibatch, epsilon=eps, beta=beta)
                self.adam.step()
                policy_losses.append(p_loss)
                value_losses.append(v_loss)
        policy_loss = float(torch.stack(policy_losses).mean().abs())
        value_loss = float(torch.stack(value_losses).mean())
        self._check_finite(before, {"policy loss": policy_loss, "value loss": value_loss})
        self.buffer.clear()
        self.update_count += 1
        self.actor.sync()
        name = self.name
        self.stats.add_stat(name, "Losses/Policy Loss", policy_loss)
        self.stats.add_stat(name, "Losses/Value Loss", value_loss)
        self.stats.add_stat(name, "Policy/Learning Rate", lr)
        self.stats.add_stat(name, "Policy/Epsilon", eps)
        self.stats.add_stat(name, "Policy/Beta", beta)
        self.rewards_before_update = self.episode_rewards_since_update
        self.episode_rewards_since_update = []

    def _snapshot(self) -> Snapshot:
        """The weights and Adam state an update changes (about 35k numbers for 3DBall: cheap next to an update)."""
        params = list(self.model.parameters())
        state = self.optimizer.state
        adam = [t for p in params if p in state for t in state[p].values() if isinstance(t, torch.Tensor)]
        return Snapshot(params + adam)

    def _check_finite(self, before: Snapshot, losses: dict[str, float]) -> None:
        """Raise TrainingDivergedError, with the weights and Adam state of `before` restored, after a bad update."""
        problems = non_finite(losses, list(self.model.named_parameters()))
        if not problems:
            return
        before.restore()
        if len(before.live) == len(list(self.model.parameters())):  # Adam's state was created by this update
            self.optimizer.state.clear()
            self.adam.reset()
        raise diverged(
            behavior=self.name,
            trainer="PPO",
            step=self.step,
            problems=problems,
            learning_rate=self.hp.learning_rate,
            restored=True,
        )
