"""SAC, read top to bottom: act (numpy), observe trajectories into the replay buffer, update, log, checkpoint.

One trainer per behavior. Acting runs in numpy on views of the actor's weights (updates are seen at
once, nothing to synchronise; on a device other than the CPU, on copies taken after each update loop);
updates run in torch (update.py), on the run's device, on minibatches sampled from the replay buffer. Formulas: losses.py; networks and the choice of the V-network formulation: networks/sac.py.

Update rule (ML-Agents 1.1.0): once the buffer holds >= batch_size experiences and step >=
buffer_init_steps, update while (step - buffer_init_steps) / update_count > steps_per_update,
incrementing update_count (which starts at 1) after each update. The replay buffer keeps its newest
int(0.8 x buffer_size) experiences whenever it holds more than buffer_size.

Trajectories: done is set only for true episode ends; an interrupted end (max steps) keeps done
false and bootstraps from the real terminal observation (1.1.0 replaced it by the last observation).
Only the extrinsic reward signal exists in this version (reward_signal_steps_per_update is therefore
unused: there is no reward-signal network to update).

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
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fledge.envs.api import ActionTuple, BehaviorSpec
from fledge.errors import CheckpointError
from fledge.networks.actor_graph import ActorGraph
from fledge.networks.device import as_device, is_cpu, to_cpu, to_device
from fledge.networks.distributions import MASKED_LOGIT
from fledge.networks.numpy_actor import ActOutput
from fledge.networks.sac import SACNetworks, SACShape, actor_graph
from fledge.networks.sac_numpy import NumpySACActor
from fledge.networks.size import NetworkSize, mlp_parameters
from fledge.rollout.processor import StepOutcome, Trajectory
from fledge.stats import StatsReporter
from fledge.stats.timers import Timers
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
from fledge.trainers.divergence import diverged, non_finite
from fledge.trainers.sac import losses as L
from fledge.trainers.sac.replay import ReplayBuffer, ReplaySpec
from fledge.trainers.sac.update import Batches, SACUpdater, UpdateStats, discrete_one_hot

log = logging.getLogger("fledge")

REPLAY_BUFFER_FILE = "last_replay_buffer.hdf5"
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


class SACTrainer:
    trainer_type = "sac"

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
        net = settings.network_settings
        refuse_memory(settings, f"behaviors.{behavior_name}")
        hp = settings.hyperparameters
        self.hp = SACHyper(
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
        self.max_steps = int(settings.max_steps)
        self.summary_freq = int(settings.summary_freq)
        self.time_horizon = int(settings.time_horizon)
        signals = reward_signals(settings, f"behaviors.{behavior_name}")
        self.signal_names = tuple(s[0] for s in signals)
        self.gammas = np.array([s[1] for s in signals], dtype=np.float32)
        self.strengths = np.array([s[2] for s in signals], dtype=np.float32)
        self.deterministic = deterministic or bool(net.deterministic)
        aspec = spec.action_spec
        self.shape = SACShape(
            obs_size=vector_observation_size(spec, behavior_name),
            continuous_size=int(aspec.continuous_size),
            branches=tuple(int(b) for b in aspec.discrete_branches),
            hidden_units=int(net.hidden_units),
            num_layers=int(net.num_layers),
            normalize=bool(net.normalize),
            n_signals=len(self.signal_names),
        )
        self.rng = np.random.default_rng(seed)
        shape = self.shape
        self.network_size = size = NetworkSize(
            behavior=behavior_name,
            hidden_units=shape.hidden_units,
            num_layers=shape.num_layers,
            parameters=mlp_parameters(  # actor, twin Q, value and target value networks
                n_in=shape.q_input,
                hidden=shape.hidden_units,
                num_layers=shape.num_layers,
                n_out=2 * shape.continuous_size + shape.n_logits + shape.n_signals * shape.q_columns,
                copies=5,
            ),
        )
        size.check()
        with size.building():
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(self.rng.integers(2**63)))
                self.nets = SACNetworks(self.shape).to(self.device)
            self.updater = SACUpdater(
                self.nets,
                device=self.device,
                gammas=self.gammas,
                tau=self.hp.tau,
                init_entcoef=self.hp.init_entcoef,
                lr=self.hp.learning_rate,
            )
        self.torch_generator = torch.Generator().manual_seed(int(self.rng.integers(2**63)))
        self.actor = NumpySACActor(self.nets, rng=np.random.default_rng(self.rng.integers(2**63)))
        self.buffer = ReplayBuffer(
            spec=ReplaySpec(
                obs_size=self.shape.obs_size,
                continuous_size=self.shape.continuous_size,
                discrete_size=len(self.shape.branches),
                mask_size=self.shape.n_logits,
            ),
            max_size=self.hp.buffer_size,
            reserve=4 * self.time_horizon,
            setting=f"behaviors.{behavior_name}.hyperparameters.buffer_size",
        )
        self.step = 0
        self.update_count: float = 1.0
        self.episode_rewards_since_update: list[float] = []

    # -- acting -----------------------------------------------------------------------------------
    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> ActOutput:
        return self.actor.act(obs, allowed, deterministic=self.deterministic)

    def values(self, obs: np.ndarray) -> np.ndarray:
        return self.actor.values(obs)

    @staticmethod
    def env_actions(out: ActOutput) -> ActionTuple:
        """The squashed actions go to the environment unchanged (they are in [-1, 1])."""
        return ActionTuple(out.continuous, out.discrete)

    @property
    def should_train(self) -> bool:
        return self.step < self.max_steps

    @property
    def mean_reward_since_update(self) -> float | None:
        rewards = self.episode_rewards_since_update
        return float(np.mean(rewards)) if rewards else None

    # -- observing --------------------------------------------------------------------------------
    def observe(self, outcome: StepOutcome) -> None:
        name, stats = self.name, self.stats
        record_episode_stats(stats, name, outcome, self.signal_names, self.strengths)
        if len(outcome.episode_returns):
            self.episode_rewards_since_update.extend(outcome.episode_returns.tolist())
        if not outcome.trajectories or not self.should_train:
            return
        trajectories = outcome.trajectories
        obs = np.concatenate([t.obs for t in trajectories]) if len(trajectories) > 1 else trajectories[0].obs
        if self.nets.policy.normalizer is not None:
            self.nets.policy.normalizer.update(obs)
        self._report_values(trajectories, obs)
        for traj in trajectories:
            n = len(traj)
            label = summary_due(self.step, n, self.summary_freq)
            if label is not None:
                self._write_summary(label)
            self.step += n
        self._append(trajectories, obs)
        if self._ready_to_update():
            self._update_loop()

    def _report_values(self, trajectories: list[Trajectory], obs: np.ndarray) -> None:
        """`Policy/<Signal> Value`: the mean V(s) of each trajectory (reporting only)."""
        values = self.actor.values(obs)
        lengths = np.array([len(t) for t in trajectories])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        means = np.add.reduceat(values, starts, axis=0) / lengths[:, None]
        for i, sig in enumerate(self.signal_names):
            key = f"Policy/{SIGNAL_STAT_NAMES[sig]} Value"
            for m in means[:, i].tolist():
                self.stats.add_stat(self.name, key, m)

    def _append(self, trajectories: list[Trajectory], obs: np.ndarray) -> None:
        """All trajectories of one step into the buffer at once: next observations and done flags built
        vectorised (done only at a true episode end; interruptions bootstrap from the terminal obs)."""
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
            if self.shape.n_logits
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

    def _write_summary(self, label_step: int) -> None:
        write_summary(self.stats, self.name, step=self.step, label_step=label_step, training=self.should_train)

    def finish(self) -> None:
        """Nothing is pending between updates; the run calls this when training ends."""

    # -- updating ---------------------------------------------------------------------------------
    def learning_rate(self) -> float:
        hp = self.hp
        return L.decayed(hp.learning_rate, L.LEARNING_RATE_FLOOR, self.step, self.max_steps, hp.learning_rate_schedule)

    def _ready_to_update(self) -> bool:
        return self.buffer.count >= self.hp.batch_size and self.step >= self.hp.buffer_init_steps

    def _updates_due(self) -> int:
        hp, n = self.hp, 0
        while (self.step - hp.buffer_init_steps) / self.update_count > hp.steps_per_update:
            self.update_count += 1
            n += 1
        return n

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
            if not is_cpu(self.device):
                self.actor.sync()  # the numpy actor holds copies of weights that live on another device
            self._report_update(results, lr)

    def sample_batches(self, n: int) -> Batches:
        """n minibatches of batch_size rows for one update loop, sampled and prepared in one go."""
        size = self.hp.batch_size
        data = self.buffer.gather(self.buffer.sample_indices(self.rng, n * size))
        shape, device = self.shape, self.device
        with torch.no_grad():
            x = self.nets.normalize(to_device(data["obs"], device))
            next_x = self.nets.normalize(to_device(data["next_obs"], device))
        c, branches = shape.continuous_size, shape.branches
        done = data["done"].astype(np.float32)
        action = to_device(data["continuous"], device) if c else None
        allowed = data["allowed"]
        # the noise comes from the trainer's CPU generator, so a seed gives the same numbers on every device
        noise = torch.randn((n * size, c), generator=self.torch_generator).to(device) if c else None
        return Batches(
            size=size,
            x=x,
            next_x=next_x,
            rewards=to_device(data["rewards"][:, None] * self.strengths, device),
            done=to_device(done, device),
            discount=to_device((1.0 - done)[:, None] * self.gammas, device),
            q_input=torch.cat([x, action], dim=1) if action is not None else x,
            action=action,
            noise=noise,
            one_hot=to_device(discrete_one_hot(data["discrete"], branches), device) if branches else None,
            allowed=to_device(allowed, device) if branches else None,
            mask_add=to_device(np.where(allowed, np.float32(0.0), np.float32(MASKED_LOGIT)), device)
            if branches
            else None,
        )

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
        live: dict[str, torch.Tensor] = {}
        for prefix, module in (("policy", nets.policy), ("q", nets.q), ("value", nets.value)):
            for key, t in module.state_dict(keep_vars=True).items():
                live[f"{prefix}.{key}"] = t
        for key, t in nets.target_value.state_dict(keep_vars=True).items():
            live[f"target_value.{key}"] = t
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

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must agree with (also lets `fledge export` rebuild the policy)."""
        return {
            "trainer_type": self.trainer_type,
            "observation_shapes": [list(o.shape) for o in self.spec.observation_specs],
            "action_spec": [self.spec.action_spec.continuous_size, list(self.spec.action_spec.discrete_branches)],
            "hidden_units": self.shape.hidden_units,
            "num_layers": self.shape.num_layers,
            "normalize": self.shape.normalize,
            "reward_signals": list(self.signal_names),
        }

    def get_state(self) -> TrainerState:
        tensors = {name: to_cpu(t) for name, t in self._live_tensors().items()}
        meta = {
            "fingerprint": self.fingerprint(),
            "trainer_type": self.trainer_type,
            "step": int(self.step),
            "update_count": float(self.update_count),
            "learning_rate": self.learning_rate(),
            "rng": _generator_to_json(self.rng),
            "actor_rng": _generator_to_json(self.actor.rng),
            "torch_generator": base64.b64encode(self.torch_generator.get_state().numpy().tobytes()).decode("ascii"),
            "episode_rewards_since_update": [float(r) for r in self.episode_rewards_since_update],
        }
        return TrainerState(tensors=tensors, meta=meta)

    def set_state(self, state: TrainerState, *, weights_only: bool = False) -> None:
        """Restore everything (resume), or with weights_only (initialize-from) the whole learned agent: actor
        and normaliser, twin Q, value and target value networks and the entropy coefficients, but not the
        optimiser state, the step or the replay buffer (a new run starts at step 0 with fresh optimisers).

        Every name and shape is checked before anything is changed; a mismatch raises CheckpointError.
        """
        live = self._live_tensors()
        if weights_only:
            live = {k: v for k, v in live.items() if k.split(".", 1)[0] in WEIGHT_PARTS}
            given = {k: v for k, v in state.tensors.items() if k.split(".", 1)[0] in WEIGHT_PARTS}
        else:
            given = dict(state.tensors)
        missing = sorted(set(live) - set(given))
        if missing:
            raise CheckpointError(
                f"SAC checkpoint for behavior '{self.name}' lacks tensor(s) {', '.join(missing[:5])}"
                f"{' ...' if len(missing) > 5 else ''}; it was written for other networks or by another trainer."
            )
        unexpected = sorted(set(given) - set(live))
        if unexpected:
            raise CheckpointError(
                f"SAC checkpoint for behavior '{self.name}' has unexpected tensor(s) {', '.join(unexpected[:5])}"
                f"{' ...' if len(unexpected) > 5 else ''}; it does not fit this behavior's networks."
            )
        for key, target in live.items():
            value = given[key]
            if tuple(value.shape) != tuple(target.shape):
                raise CheckpointError(
                    f"SAC checkpoint for behavior '{self.name}': tensor '{key}' has shape {tuple(value.shape)} "
                    f"but this behavior's network needs {tuple(target.shape)} (observation/action sizes, "
                    "hidden_units or num_layers differ)."
                )
        with torch.no_grad():
            for key, target in live.items():
                target.copy_(given[key])
        if self.nets.policy.normalizer is not None:
            self.nets.policy.normalizer.reload()
        if not is_cpu(self.device):
            self.actor.sync()
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
            _generator_from_json(self.rng, meta["rng"])
        if "actor_rng" in meta:
            _generator_from_json(self.actor.rng, meta["actor_rng"])
        if "torch_generator" in meta:
            raw = np.frombuffer(base64.b64decode(meta["torch_generator"]), dtype=np.uint8).copy()
            self.torch_generator.set_state(torch.from_numpy(raw))
        self.episode_rewards_since_update = [float(r) for r in meta.get("episode_rewards_since_update", [])]

    def actor_graph(self) -> ActorGraph:
        shapes = tuple(tuple(int(d) for d in o.shape) for o in self.spec.observation_specs)
        return actor_graph(self.nets, shapes)

    def save_auxiliary(self, folder: Path) -> list[Path]:
        """The replay buffer, atomically, when save_replay_buffer is true."""
        if not self.hp.save_replay_buffer:
            return []
        with self.timers.block("save_replay_buffer"):
            return [self.buffer.save(Path(folder) / REPLAY_BUFFER_FILE)]

    def load_auxiliary(self, folder: Path) -> None:
        if not self.hp.save_replay_buffer:
            log.warning(
                "Behavior '%s': save_replay_buffer is false, so the resumed SAC trainer starts with an empty "
                "replay buffer.",
                self.name,
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


def _generator_to_json(gen: np.random.Generator) -> dict[str, Any]:
    """A numpy Generator's state with its large integers as decimal strings (portable JSON)."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return str(int(value))
        return value

    return convert(gen.bit_generator.state)


def _generator_from_json(gen: np.random.Generator, data: dict[str, Any]) -> None:
    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        return value

    state = convert(data)
    if state.get("bit_generator") != gen.bit_generator.state["bit_generator"]:
        raise CheckpointError(
            f"random generator state of kind {state.get('bit_generator')!r} does not fit this trainer"
        )
    gen.bit_generator.state = state
