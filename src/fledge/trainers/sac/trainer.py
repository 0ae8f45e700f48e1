"""SAC, read top to bottom: the networks and their updater, the update loop, the checkpoint state.

One trainer per behavior. Acting runs on the policy's acting path (trainers/sac/policy.py): the numpy
accelerator where it covers the networks, on views of the actor's weights (updates are seen at once,
nothing to synchronise; on a device other than the CPU, on copies taken after each update loop), else
the torch modules themselves; updates run in torch (update.py), on the run's device, on
minibatches sampled from the replay buffer. Formulas: losses.py; networks and the choice of the
V-network formulation: networks/sac.py.

The off-policy base (trainers/off_policy.py) fills the replay buffer and applies ML-Agents' update
rule; this module's `_update_loop` runs the updates it asks for. The replay buffer keeps its newest
int(0.8 x buffer_size) experiences whenever it holds more than buffer_size. Trajectories: done is set
only for true episode ends; an interrupted end (max steps) keeps done false and bootstraps from the
real terminal observation (1.1.0 replaced it by the last observation). Every sampled minibatch gets its
rewards from the reward signals (rewards/), each x strength; a signal that ignores done (curiosity, RND)
bootstraps through true episode ends. The learned signals train in their own loop after the updates:
while (step - buffer_init_steps) / signal_update_count > reward_signal_steps_per_update, one minibatch
of batch_size rows for every signal.

Divergence: when the mean losses of an update loop hold Inf or NaN (any update of the loop had them),
`TrainingDivergedError` stops training. The weights are not rolled back: a copy of every tensor before
each update loop costs about 0.2 ms (3DBall-sized networks), 17% of the update time where loops hold
one update (Basic's shipped config); a state with Inf/NaN is never written as a checkpoint.

Differences from 1.1.0 (on purpose): the entropy coefficients are part of the checkpoint state;
update_count is saved exactly (max(1, step / steps_per_update) only when a state lacks it); the
buffer is truncated whenever it exceeds buffer_size (1.1.0: only after an update loop); the replay
file keeps every field's dtype; `Policy/Entropy` is the joint entropy of the unsquashed Gaussian plus
the branch entropies (fledge's convention, as PPO); `act` returns zero values (V is reported per
trajectory as `Policy/Extrinsic Value`; `values()` gives V(s)).

Memory: minibatches are batch_size // sequence_length whole sequences (at least one) drawn with
replacement; the actor re-runs each from the memory stored when acting, the value network from the
critic memory recomputed per trajectory (carried per agent id, dropped at episode end), the Q networks
from zero memories, the target value network (on the next observations) from the value network's memory
one step after the start (spec 8.4). `Policy/Extrinsic Value` is then reported from zero memories.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fledge.errors import CheckpointError
from fledge.imitation.bc import BehavioralCloning, make_behavioral_cloning
from fledge.networks.device import to_cpu, to_device
from fledge.networks.distributions import MASKED_LOGIT
from fledge.networks.memory import carry_through
from fledge.rewards import STATE_PREFIX as SIGNAL_PREFIX
from fledge.rewards import SignalBatch
from fledge.rollout.processor import Trajectory
from fledge.trainers import state as S
from fledge.trainers.base import TrainerState
from fledge.trainers.divergence import diverged, non_finite
from fledge.trainers.off_policy import OffPolicyTrainer
from fledge.trainers.sac import losses as L
from fledge.trainers.sac.policy import SACPolicy, copy_checked, parts, sac_shape
from fledge.trainers.sac.update import Batches, SACUpdater, UpdateStats, discrete_one_hot
from fledge.trainers.settings import plain

log = logging.getLogger("fledge")

ADAM_STATE_KEYS = ("step", "exp_avg", "exp_avg_sq")
WEIGHT_PARTS = ("policy", "q", "value", "target_value", "entropy")  # what initialize-from copies
UPDATE_CHUNK = 256  # minibatches sampled and prepared at once


@dataclass(frozen=True)
class SACHyper:
    batch_size: int
    buffer_size: int
    learning_rate: float
    learning_rate_schedule: str
    buffer_init_steps: int
    tau: float
    steps_per_update: float
    save_replay_buffer: bool
    init_entcoef: float
    reward_signal_steps_per_update: float

    @classmethod
    def read(cls, hp: Any) -> SACHyper:
        return cls(
            batch_size=int(hp.batch_size),
            buffer_size=int(hp.buffer_size),
            learning_rate=float(hp.learning_rate),
            learning_rate_schedule=str(plain(hp.learning_rate_schedule)),
            buffer_init_steps=int(hp.buffer_init_steps),
            tau=float(hp.tau),
            steps_per_update=float(hp.steps_per_update),
            save_replay_buffer=bool(hp.save_replay_buffer),
            init_entcoef=float(hp.init_entcoef),
            reward_signal_steps_per_update=float(hp.reward_signal_steps_per_update),
        )


class SACTrainer(OffPolicyTrainer):
    trainer_type = "sac"
    display_name = "SAC"
    hp: SACHyper
    policy: SACPolicy

    def build(self) -> None:
        self.hp = SACHyper.read(self.settings.hyperparameters)
        self.gammas = self.gammas.astype(np.float32)  # the update computes in float32
        net_seed, generator_seed, actor_seed = (self.rng.integers(2**63) for _ in range(3))
        shape = sac_shape(self.policy_settings)
        size = self.size_networks(  # actor, twin Q, value and target value networks
            n_in=shape.q_input,
            n_out=2 * shape.continuous_size + shape.n_logits + shape.n_signals * shape.q_columns,
            copies=5,
        )
        with size.building():
            self.policy = SACPolicy(
                self.policy_settings,
                torch_seed=int(net_seed),
                rng=np.random.default_rng(actor_seed),
                device=self.device,
            )
            self.shape, self.nets = shape, self.policy.nets  # what the updates train
            self.updater = SACUpdater(
                self.nets,
                device=self.device,
                gammas=self.gammas,
                tau=self.hp.tau,
                init_entcoef=self.hp.init_entcoef,
                lr=self.hp.learning_rate,
            )
        self.torch_generator = torch.Generator().manual_seed(int(generator_seed))
        self.start_replay()
        self.bc: BehavioralCloning | None = make_behavioral_cloning(
            settings=self.settings,
            behavior=self.name,
            spec=self.spec,
            actor=self.nets.policy.action_parameters,
            to_env=torch.tanh,
            parameters=self.nets.policy.parameters(),
            learning_rate=self.hp.learning_rate,
            batch_size=self.hp.batch_size,
            rng=self.rng,
            device=self.device,
        )
        self.signal_update_count = 1.0  # the reward signals' own update rule (reward_signal_steps_per_update)
        # the value network's memory each agent's next trajectory starts from (memory only)
        self.critic_memories: dict[tuple[str, int], torch.Tensor] = {}

    @torch.no_grad()
    def recurrent_critic_starts(self, traj: Trajectory) -> np.ndarray:
        value = self.nets.value
        assert value.memory is not None
        x = self.nets.normalize(to_device(traj.obs, self.device))
        initial = self.critic_memories.get(traj.agent_key)
        if initial is None:
            initial = torch.zeros(value.memory.memory_size, device=self.device)
        _, starts, final = carry_through(
            value.memory, value.dense_features(x), initial, self.policy_settings.sequence_length
        )
        if traj.ends_episode:
            self.critic_memories.pop(traj.agent_key, None)
        else:
            self.critic_memories[traj.agent_key] = final
        return starts.cpu().numpy()

    # -- updating ---------------------------------------------------------------------------------
    def learning_rate(self) -> float:
        hp = self.hp
        return L.decayed(hp.learning_rate, L.LEARNING_RATE_FLOOR, self.step, self.max_steps, hp.learning_rate_schedule)

    def _update_loop(self) -> None:
        n = self._updates_due()
        if n == 0:
            return
        with self.timers.block("update_policy"):
            lr = self.learning_rate()
            self.updater.stepper.set_lr(lr)
            results: list[UpdateStats] = []
            for start in range(0, n, UPDATE_CHUNK):  # bounded memory for long bursts of updates
                k = min(UPDATE_CHUNK, n - start)
                batches = self.sample_batches(k)
                results.extend(self.updater.update(batches.get(i)) for i in range(k))
            bc_stats = self.bc.update(self.step) if self.bc is not None else {}
            self.policy.sync()  # the numpy actor copies the weights when they live on another device
            self._report_update(results, lr)
            for key, value in bc_stats.items():
                self.stats.add_stat(self.name, key, value)
        self._update_signals()

    def sample_batches(self, n: int) -> Batches:
        """n minibatches of batch_size rows for one update loop, sampled and prepared in one go."""
        shape, device = self.shape, self.device
        seq = self.policy_settings.sequence_length if shape.memory_size else 1
        if shape.memory_size:
            size = max(1, self.hp.batch_size // seq) * seq
            data = self.buffer.gather(self.buffer.sample_sequences(self.rng, n * size // seq))
        else:
            size = self.hp.batch_size
            data = self.buffer.gather(self.buffer.sample_indices(self.rng, n * size))
        with torch.no_grad():
            x = self.nets.normalize(to_device(data["obs"], device))
            next_x = self.nets.normalize(to_device(data["next_obs"], device))
        c, branches = shape.continuous_size, shape.branches
        done = data["done"].astype(np.float32)
        rewards = data["rewards"][:, None] * self.strengths
        if not self.signals.only_extrinsic:
            rewards = self.signals.rewards(self._signal_batch(data))
        if self.signals.ignore_done.any():  # (rows, signals): 0 where a signal bootstraps through the end
            done = done[:, None] * (~self.signals.ignore_done).astype(np.float32)
        action = to_device(data["continuous"], device) if c else None
        allowed = data["allowed"]
        # the noise comes from the trainer's CPU generator, so a seed gives the same numbers on every device
        noise = torch.randn((n * size, c), generator=self.torch_generator).to(device) if c else None
        memory: dict[str, Any] = {}
        if shape.memory_size:
            value = self.nets.value
            assert value.memory is not None
            critic_memory = to_device(np.ascontiguousarray(data["critic_memory"][::seq]), device)
            with torch.no_grad():  # the value network's memory one step into each sequence: V_target(s') starts there
                _, next_memory = value.memory.step(value.dense_features(x[::seq]), critic_memory)
            memory = {
                "seq_len": seq,
                "masks": to_device(data["masks"], device),
                "memory": to_device(np.ascontiguousarray(data["memory"][::seq]), device),
                "critic_memory": critic_memory,
                "next_critic_memory": next_memory,
            }
        return Batches(
            size=size,
            x=x,
            next_x=next_x,
            rewards=to_device(np.ascontiguousarray(rewards, dtype=np.float32), device),
            done=to_device(done, device),
            discount=to_device(((1.0 - done) if done.ndim == 2 else (1.0 - done)[:, None]) * self.gammas, device),
            q_input=torch.cat([x, action], dim=1) if action is not None else x,
            action=action,
            noise=noise,
            one_hot=to_device(discrete_one_hot(data["discrete"], branches), device) if branches else None,
            allowed=to_device(allowed, device) if branches else None,
            mask_add=to_device(np.where(allowed, np.float32(0.0), np.float32(MASKED_LOGIT)), device)
            if branches
            else None,
            **memory,
        )

    @staticmethod
    def _signal_batch(data: dict[str, np.ndarray]) -> SignalBatch:
        """Replay rows as reward-signal transitions (SAC's continuous actions are what the environment got)."""
        return SignalBatch(
            obs=data["obs"],
            next_obs=data["next_obs"],
            continuous=data["continuous"],
            discrete=data["discrete"],
            done=data["done"].astype(np.bool_),
            env_rewards=data["rewards"],
        )

    def _update_signals(self) -> None:
        """ML-Agents' rule for the reward signals' own updates, with reward_signal_steps_per_update."""
        if not self.signals.learned:
            return
        hp, n = self.hp, 0
        while (self.step - hp.buffer_init_steps) / self.signal_update_count > hp.reward_signal_steps_per_update:
            self.signal_update_count += 1
            n += 1
        if n == 0:
            return
        collected: dict[str, list[float]] = {}
        with self.timers.block("update_reward_signals"):
            for _ in range(n):
                data = self.buffer.gather(self.buffer.sample_indices(self.rng, hp.batch_size))
                for key, value in self.signals.update(self._signal_batch(data)).items():
                    collected.setdefault(key, []).append(value)
        self.report_signal_stats({k: float(np.mean(v)) for k, v in collected.items()})

    def _report_update(self, results: list[UpdateStats], lr: float) -> None:
        losses = torch.stack([torch.stack([r.policy_loss, r.value_loss, r.q1_loss, r.q2_loss]) for r in results]).mean(
            0
        )
        policy_loss, value_loss, q1_loss, q2_loss = losses.tolist()
        problems = non_finite(
            {"policy loss": policy_loss, "value loss": value_loss, "Q1 loss": q1_loss, "Q2 loss": q2_loss}, []
        )
        if problems:  # the mean over the loop's updates: non-finite when any update's loss is
            raise diverged(
                behavior=self.name,
                trainer="SAC",
                step=self.step,
                problems=problems,
                learning_rate=self.hp.learning_rate,
                restored=False,
            )
        name, stats = self.name, self.stats
        stats.add_stat(name, "Losses/Policy Loss", policy_loss)
        stats.add_stat(name, "Losses/Value Loss", value_loss)
        stats.add_stat(name, "Losses/Q1 Loss", q1_loss)
        stats.add_stat(name, "Losses/Q2 Loss", q2_loss)
        if self.updater.log_alpha_c is not None:
            stats.add_stat(
                name, "Policy/Continuous Entropy Coeff", float(self.updater.log_alpha_c.detach().exp().mean())
            )
        if self.updater.log_alpha_d is not None:
            stats.add_stat(name, "Policy/Discrete Entropy Coeff", float(self.updater.log_alpha_d.detach().exp().mean()))
        stats.add_stat(name, "Policy/Learning Rate", lr)
        self.episode_rewards_since_update = []

    # -- checkpoints ------------------------------------------------------------------------------
    def entropy_coefficients(self) -> dict[str, np.ndarray]:
        """The current coefficients (not their logarithms), for reports and tests."""
        out = {}
        if self.updater.log_alpha_c is not None:
            out["continuous"] = to_cpu(self.updater.log_alpha_c.exp()).numpy()
        if self.updater.log_alpha_d is not None:
            out["discrete"] = to_cpu(self.updater.log_alpha_d.exp()).numpy()
        return out

    def _live_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor of the trainer's state by checkpoint name (the live objects, not copies)."""
        nets, up = self.nets, self.updater
        live = {
            **S.live_tensors("policy.", nets.policy),
            **S.live_tensors("q.", nets.q),
            **S.live_tensors("value.", nets.value),
            **S.live_tensors("target_value.", nets.target_value),
        }
        if up.log_alpha_c is not None:
            live["entropy.log_coef_continuous"] = up.log_alpha_c
        if up.log_alpha_d is not None:
            live["entropy.log_coef_discrete"] = up.log_alpha_d
        for opt_name, opt in up.optimizers().items():
            params = [p for g in opt.param_groups for p in g["params"]]
            for i, p in enumerate(params):
                for key in ADAM_STATE_KEYS:
                    live[f"optimizer.{opt_name}.{i}.{key}"] = opt.state[p][key]
        return live

    def get_state(self) -> TrainerState:
        tensors = {name: to_cpu(t) for name, t in self._live_tensors().items()}
        meta = {
            "fingerprint": self.fingerprint(),
            "trainer_type": self.trainer_type,
            "step": int(self.step),
            "update_count": float(self.update_count),
            "learning_rate": self.learning_rate(),
            "rng": S.generator_state(self.rng, as_text=True),
            "actor_rng": S.generator_state(self.policy.rng, as_text=True),
            "torch_generator": S.torch_generator_state(self.torch_generator),
            "episode_rewards_since_update": [float(r) for r in self.episode_rewards_since_update],
        }
        if self.signals.learned:
            signal_tensors, signal_meta = self.signals.state()
            tensors.update(signal_tensors)
            meta["signals"] = signal_meta
            meta["signal_update_count"] = float(self.signal_update_count)
        state = TrainerState(tensors=tensors, meta=meta)
        if self.bc is not None:
            self.bc.save_into(state)
        return state

    def set_state(self, state: TrainerState, *, weights_only: bool = False) -> None:
        """Restore everything (resume), or with weights_only (initialize-from) the whole learned agent: actor
        and normaliser, twin Q, value and target value networks and the entropy coefficients, but not the
        optimiser state, the step or the replay buffer (a new run starts at step 0 with fresh optimisers).

        Every name and shape is checked before anything is changed; a mismatch raises CheckpointError.
        """
        live = self._live_tensors()
        given = {
            k: v for k, v in BehavioralCloning.strip(dict(state.tensors)).items() if not k.startswith(SIGNAL_PREFIX)
        }
        if weights_only:
            live, given = parts(live, WEIGHT_PARTS), parts(given, WEIGHT_PARTS)
        elif self.signals.learned:
            problems = self.signals.check_state(state.tensors, state.meta.get("signals", {}))
            if problems:
                raise CheckpointError(
                    f"The checkpoint does not fit behavior '{self.name}' (SAC):\n  " + "\n  ".join(problems)
                )
        copy_checked(live, given, behavior=self.name)
        if not weights_only and self.signals.learned:
            self.signals.load_state(state.tensors, state.meta["signals"])
            self.signal_update_count = float(state.meta.get("signal_update_count", 1.0))
        self.policy.loaded()
        if weights_only:
            log.info(
                "Behavior '%s': copied the actor (with its normaliser), twin Q, value and target value networks "
                "and the entropy coefficients; the optimisers, step count and replay buffer start fresh.",
                self.name,
            )
            return
        meta = state.meta
        self.step = int(meta.get("step", 0))
        default_count = max(1.0, self.step / self.hp.steps_per_update)
        self.update_count = float(meta.get("update_count", default_count))
        if "rng" in meta:
            S.set_generator_state(self.rng, meta["rng"])
        if "actor_rng" in meta:
            S.set_generator_state(self.policy.rng, meta["actor_rng"])
        if "torch_generator" in meta:
            S.set_torch_generator_state(self.torch_generator, meta["torch_generator"])
        self.episode_rewards_since_update = [float(r) for r in meta.get("episode_rewards_since_update", [])]
        if self.bc is not None:
            self.bc.load_from(state, f"behavior '{self.name}' (SAC)")
