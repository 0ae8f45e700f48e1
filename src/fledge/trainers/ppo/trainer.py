"""PPO, read top to bottom: the policy and its optimiser, the checkpoint state, the update.

One trainer per behavior. The on-policy base (trainers/on_policy.py) fills the rollout buffer with
GAE advantages and calls `_update` when it is full. Acting runs on the policy's acting path
(trainers/ppo/policy.py: the numpy accelerator when it covers the network, else the torch module;
synchronised after every update); updates run in torch, on the run's device, on minibatches of the
whole buffer for `num_epoch` epochs. With memory, minibatches are batch_size // sequence_length whole
sequences (at least one), shuffled as sequences, each re-run from the memories stored at its start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fledge.imitation.bc import BehavioralCloning, make_behavioral_cloning
from fledge.networks.actor_critic import ENV_ACTION_CLIP
from fledge.networks.device import to_device
from fledge.networks.numpy_recurrent import NumpyRecurrentActor
from fledge.rollout.processor import Trajectory
from fledge.trainers import state as S
from fledge.trainers.base import TrainerState
from fledge.trainers.divergence import Snapshot, diverged, non_finite
from fledge.trainers.fast_adam import AdamStepper, fused_if_possible
from fledge.trainers.on_policy import OnPolicyTrainer
from fledge.trainers.ppo import losses as L
from fledge.trainers.ppo.losses import Minibatch
from fledge.trainers.ppo.policy import PPOPolicy
from fledge.trainers.ppo.update import ppo_gradients
from fledge.trainers.schedules import ppo_schedules
from fledge.trainers.settings import plain

log = logging.getLogger("fledge")
# Trajectories of at most this many rows carry the critic's memory through the numpy acting path (a step at
# a time); longer ones through one torch LSTM call, cheaper per step once its fixed cost is spread.
NUMPY_TRAJECTORY_ROWS = 128


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

    @classmethod
    def read(cls, hp: Any) -> PPOHyper:
        return cls(
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


class PPOTrainer(OnPolicyTrainer):
    trainer_type = "ppo"
    display_name = "PPO"
    hp: PPOHyper
    policy: PPOPolicy

    def build(self) -> None:
        self.hp = PPOHyper.read(self.settings.hyperparameters)
        aspec, ps = self.spec.action_spec, self.policy_settings
        size = self.size_networks(
            n_in=ps.obs_size,
            n_out=aspec.continuous_size + sum(aspec.discrete_branches) + len(self.signal_names),
            copies=1 if self.hp.shared_critic else 2,
        )
        with size.building():
            self.policy = PPOPolicy(
                ps,
                shared_critic=self.hp.shared_critic,
                rng=np.random.default_rng(self.rng.integers(2**63)),
                device=self.device,
            )
        self.model = self.policy.model  # what the update trains
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.hp.learning_rate, **fused_if_possible())
        self.adam = AdamStepper(self.optimizer)
        self.start_rollouts()
        self.update_count = 0
        self.bc: BehavioralCloning | None = make_behavioral_cloning(
            settings=self.settings,
            behavior=self.name,
            spec=self.spec,
            actor=self.model.action_parameters,
            to_env=_bc_env_action,
            parameters=self.model.parameters(),
            learning_rate=self.hp.learning_rate,
            batch_size=self.hp.batch_size,
            rng=self.rng,
            device=self.device,
        )
        # the critic memory each agent's next trajectory starts from (separate critics with memory)
        self.critic_memories: dict[tuple[str, int], torch.Tensor] = {}

    def env_continuous(self, continuous: np.ndarray) -> np.ndarray:
        return np.clip(continuous, -ENV_ACTION_CLIP, ENV_ACTION_CLIP) / ENV_ACTION_CLIP

    # -- checkpoints ------------------------------------------------------------------------------
    def fingerprint_extras(self) -> dict[str, Any]:
        return {"shared_critic": self.hp.shared_critic}

    def get_state(self) -> TrainerState:
        state = S.policy_optimizer_state(self)
        if self.bc is not None:
            self.bc.save_into(state)
        return state

    def set_state(self, state: TrainerState, *, weights_only: bool = False) -> None:
        label = f"behavior '{self.name}' (PPO)"
        S.load_policy_optimizer_state(self, state, weights_only=weights_only, label=label)
        if self.bc is not None and not weights_only:
            self.bc.load_from(state, label)

    # -- memory -----------------------------------------------------------------------------------
    @torch.no_grad()
    def recurrent_values(self, traj: Trajectory) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Values and bootstrap of a trajectory from carried critic memories, and the critic memory at each
        sequence start. A separate critic starts from the memory the agent's previous trajectory left (zero
        at an episode's start); a shared critic from the actor memory stored before the first step."""
        assert traj.memory is not None
        model, device = self.model, self.device
        seq_len = self.policy_settings.sequence_length
        rows = np.concatenate([traj.obs, traj.next_obs[None]])
        kept = self.critic_memories.get(traj.agent_key)
        if model.shared_critic:
            initial = to_device(traj.memory[0], device)
        elif kept is not None:
            initial = kept
        else:
            initial = torch.zeros(model.memory_size, device=device)
        actor = self.policy.actor
        bootstrap = np.zeros(len(self.signal_names), dtype=np.float32)
        if isinstance(actor, NumpyRecurrentActor) and len(rows) <= NUMPY_TRAJECTORY_ROWS:
            all_values, starts_np, final_np = actor.critic_trajectory(rows, initial.cpu().numpy(), seq_len)
            final = torch.from_numpy(final_np.copy()).to(device)
            values_np = all_values[:-1]
            if not traj.terminal:
                bootstrap = all_values[-1]
        else:
            x = model.normalize(to_device(rows, device))
            values, starts, final = model.critic_trajectory(x[:-1], initial, seq_len)
            if not traj.terminal:
                bootstrap = model.critic_trajectory(x[-1:], final, seq_len)[0][0].cpu().numpy()
            values_np, starts_np = values.cpu().numpy(), starts.cpu().numpy()
        if traj.ends_episode:
            self.critic_memories.pop(traj.agent_key, None)
        elif not model.shared_critic:
            self.critic_memories[traj.agent_key] = final
        return values_np, bootstrap, starts_np

    # -- updating ---------------------------------------------------------------------------------
    def schedules(self) -> tuple[float, float, float]:
        return ppo_schedules(self.hp, self.step, self.max_steps)

    def _update(self) -> None:
        hp = self.hp
        lr, beta, eps = self.schedules()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        data = self.buffer.view()
        model = self.model
        device = self.device
        recurrent = model.memory_size > 0
        seq_len = self.policy_settings.sequence_length if recurrent else 1
        n_seq = self.buffer.count // seq_len  # sequences (rows without memory)
        seqs = min(max(1, hp.batch_size // seq_len), n_seq)  # sequences per minibatch
        masks = data["masks"] if recurrent else None
        with torch.no_grad():
            x_all = model.normalize(to_device(data["obs"], device))
        tensors = {
            "x": x_all,
            "log_prob": to_device(data["log_prob"], device),
            "old_values": to_device(data["old_values"], device),
            "returns": to_device(data["returns"], device),
            "advantages": to_device(L.normalize_advantages(data["advantages"], masks), device),
        }
        starts: dict[str, torch.Tensor] = {}  # one row per sequence
        if recurrent:
            tensors["masks"] = to_device(data["masks"], device)
            starts["memory"] = to_device(np.ascontiguousarray(data["memory"][::seq_len]), device)
            starts["critic_memory"] = to_device(np.ascontiguousarray(data["critic_memory"][::seq_len]), device)
        if model.mu is not None:
            tensors["continuous"] = to_device(data["continuous"], device)
        if model.logits is not None:
            tensors["discrete"] = to_device(data["discrete"].astype(np.int64), device)
            tensors["allowed"] = to_device(data["allowed"], device)
        offsets = np.arange(seq_len)
        policy_losses: list[torch.Tensor] = []
        value_losses: list[torch.Tensor] = []
        before = self._snapshot()
        for _ in range(hp.num_epoch):
            seq_perm = self.rng.permutation(n_seq)
            rows = seq_perm if seq_len == 1 else (seq_perm[:, None] * seq_len + offsets).reshape(-1)
            perm = to_device(rows, device)
            shuffled = {k: v.index_select(0, perm) for k, v in tensors.items()}
            seq_index = to_device(seq_perm, device)
            shuffled_starts = {k: v.index_select(0, seq_index) for k, v in starts.items()}
            for first in range(0, n_seq - seqs + 1, seqs):
                start, end = first * seq_len, (first + seqs) * seq_len
                minibatch = Minibatch(
                    x=shuffled["x"][start:end],
                    continuous=shuffled["continuous"][start:end] if "continuous" in shuffled else None,
                    discrete=shuffled["discrete"][start:end] if "discrete" in shuffled else None,
                    allowed=shuffled["allowed"][start:end] if "allowed" in shuffled else None,
                    old_log_prob=shuffled["log_prob"][start:end],
                    advantages=shuffled["advantages"][start:end],
                    old_values=shuffled["old_values"][start:end],
                    returns=shuffled["returns"][start:end],
                    masks=shuffled["masks"][start:end] if recurrent else None,
                    memory=shuffled_starts["memory"][first : first + seqs] if recurrent else None,
                    critic_memory=shuffled_starts["critic_memory"][first : first + seqs] if recurrent else None,
                    seq_len=seq_len,
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
        self.policy.sync()
        name = self.name
        self.stats.add_stat(name, "Losses/Policy Loss", policy_loss)
        self.stats.add_stat(name, "Losses/Value Loss", value_loss)
        self.stats.add_stat(name, "Policy/Learning Rate", lr)
        self.stats.add_stat(name, "Policy/Epsilon", eps)
        self.stats.add_stat(name, "Policy/Beta", beta)
        if self.bc is not None:
            for key, value in self.bc.update(self.step).items():
                self.stats.add_stat(name, key, value)
            self.policy.sync()
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


def _bc_env_action(raw: torch.Tensor) -> torch.Tensor:
    """A raw Gaussian sample in the environment's units for behavioral cloning: a / 3, without the clamp (so
    that a sample beyond the range still has a gradient towards the expert)."""
    return raw / ENV_ACTION_CLIP
