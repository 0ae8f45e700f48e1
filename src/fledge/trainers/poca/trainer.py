"""POCA, read top to bottom: PPO's actor with a centralised group critic (spec 8.5).

One trainer per behavior (its teams share it). The processors of a POCA behavior run in group mode
(rollout/processor.py): each step the trainer hands the call's group rows to the group assembler
(rollout/groups.py), then takes the finished trajectories. For each trajectory the assembler gives the
members' observations at every step, the groupmates' observations and actions, their rewards and the
group after the last step; the trainer then computes, with the current critic:
- V(group) after every step (the bootstrap: 0 only when the whole group is done for real),
- b_i, the agent's baseline, at every step,
- TD(lambda) targets G of the team reward (own + groupmates' + group reward) per reward signal,
- the advantage G - b (mean over signals),
and keeps the rows until `buffer_size` experiences are held. The update then runs `num_epoch` epochs of
shuffled minibatches of `batch_size` over the whole buffer with one Adam over the actor and the critic:
loss = PPO's clipped surrogate + 0.5 * (clipped value loss + 0.5 * clipped baseline loss) - beta * entropy
(trainers/poca/losses.py), with PPO's schedules of learning rate, beta and epsilon.

Any observations the actor takes (vectors, cameras, variable-length entities, goal signals) work: the
actor is PPO's, and the group critic encodes each member's observations with its own observation encoders
(networks/group_critic.py). With memory (`network_settings.memory`) the actor is PPO's recurrent actor, the
group critic has an LSTM with value and baseline memories carried per agent, and the buffer holds whole
sequences (trainers/poca/recurrent.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
import torch

from fledge.networks.actor_critic import ENV_ACTION_CLIP
from fledge.networks.device import to_device
from fledge.networks.encoders.layout import ObservationLayout
from fledge.networks.group_critic import GroupCritic
from fledge.networks.group_critic_memory import RecurrentGroupCritic
from fledge.rollout.groups import GroupAssembler, GroupContext
from fledge.rollout.processor import StepOutcome, Trajectory
from fledge.stats import Aggregation
from fledge.trainers import state as S
from fledge.trainers.base import TrainerBase, TrainerState
from fledge.trainers.divergence import Snapshot, diverged, non_finite
from fledge.trainers.fast_adam import AdamStepper, fused_if_possible
from fledge.trainers.poca import losses as L
from fledge.trainers.poca import recurrent as R
from fledge.trainers.poca.buffer import GroupBuffer, pad_members
from fledge.trainers.poca.policy import POCAPolicy
from fledge.trainers.ppo import losses as P
from fledge.trainers.ppo.trainer import PPOHyper
from fledge.trainers.schedules import ppo_schedules
from fledge.trainers.settings import SIGNAL_STAT_NAMES

log = logging.getLogger("fledge")


def _after_last(rows: np.ndarray) -> np.ndarray:
    """Per-row groupmate fields (T, ...) with a row of absent groupmates appended (T + 1, ...)."""
    return np.concatenate([rows, np.zeros((1, *rows.shape[1:]), dtype=rows.dtype)])


class POCATrainer(TrainerBase):
    trainer_type = "poca"
    display_name = "POCA"
    uses_groups = True  # the session runs this behavior's processors in group mode
    hp: PPOHyper
    policy: POCAPolicy

    def build(self) -> None:
        self.hp = PPOHyper.read(self.settings.hyperparameters)
        spec, ps = self.spec, self.policy_settings
        aspec = spec.action_spec
        self.act_size = aspec.continuous_size + int(sum(aspec.discrete_branches))
        size = self.size_networks(n_in=ps.obs_size, n_out=self.act_size + len(self.signal_names), copies=2)
        with size.building():
            self.policy = POCAPolicy.build(ps, self.settings.hyperparameters, seed=0, device=self.device)
            self.policy.rng = np.random.default_rng(self.rng.integers(2**63))
            critic_args: dict[str, Any] = {
                "obs_size": ps.obs_size,
                "act_size": self.act_size,
                "hidden_units": ps.hidden_units,
                "num_layers": ps.num_layers,
                "n_values": len(self.signal_names),
                "layout": ObservationLayout.of(spec.observation_specs),
                "vis_encode_type": ps.vis_encode_type,
            }
            critic = (
                RecurrentGroupCritic(memory_size=ps.memory_size, **critic_args)
                if ps.memory_size
                else GroupCritic(**critic_args)
            )
            self.critic: GroupCritic = critic.to(self.device)
        # with memory: the critic's value and baseline memories each agent's next trajectory starts from
        self.critic_memories = (
            R.CriticMemories(critic, ps.sequence_length) if isinstance(critic, RecurrentGroupCritic) else None
        )
        self.model = self.policy.model
        # the actor's own value head is never trained (the group critic gives the values): left out of Adam
        actor = [p for name, p in self.model.named_parameters() if not name.startswith("value_head.")]
        self.parameters = actor + list(self.critic.parameters())
        self.optimizer = torch.optim.Adam(self.parameters, lr=self.hp.learning_rate, **fused_if_possible())
        self.adam = AdamStepper(self.optimizer)
        self.assembler = GroupAssembler(
            obs_size=ps.obs_size,
            act_size=self.act_size,
            keep=4 * self.time_horizon + 8,
            mates_observed=self.critic.mates_observed,
        )
        self.buffer = GroupBuffer()
        self.update_count = 0
        self.rewards_before_update: list[float] = []
        self.dropped = 0  # trajectories whose group rows were no longer kept

    @property
    def mean_reward_since_update(self) -> float | None:
        rewards = self.episode_rewards_since_update or self.rewards_before_update
        return float(np.mean(rewards)) if rewards else None

    # -- observing --------------------------------------------------------------------------------
    def observe(self, outcome: StepOutcome) -> None:
        if outcome.group_step is not None:
            finished = self.assembler.record(outcome.group_step)
            if finished:
                self.stats.add_stats(
                    self.name, "Environment/Group Cumulative Reward", np.asarray(finished), Aggregation.HISTOGRAM
                )
        super().observe(outcome)

    def watch(self, outcome: StepOutcome) -> None:
        """Keep the group rows of a team that does not learn now, so that its trajectories that run across the
        next team change still find their groupmates' rows (as PPO self-play keeps those trajectories)."""
        if outcome.group_step is not None:
            self.assembler.record(outcome.group_step)

    def learn(self, trajectories: list[Trajectory]) -> None:
        normalizer = self.policy.normalizer
        if normalizer is not None:
            normalizer.update(np.concatenate([t.obs for t in trajectories]))
        self._add_trajectories(trajectories)
        if self.buffer.count >= self.hp.buffer_size and self.should_train:
            with self.timers.block("update_policy"):
                self._update()
            self.train_signals(epochs=self.hp.num_epoch, batch_size=self.hp.batch_size)

    def env_continuous(self, continuous: np.ndarray) -> np.ndarray:
        return np.clip(continuous, -ENV_ACTION_CLIP, ENV_ACTION_CLIP) / ENV_ACTION_CLIP

    def _normalized(self, x: np.ndarray) -> torch.Tensor:
        """Raw observations (..., obs) normalised by the actor's normaliser, as a tensor of the same shape."""
        flat = to_device(np.ascontiguousarray(x.reshape(-1, x.shape[-1])), self.device)
        return self.model.normalize(flat).reshape(x.shape)

    def _others(self, others: np.ndarray) -> torch.Tensor:
        """The groupmate rows as the critic reads them: observations normalised (when they carry them), actions."""
        if not self.critic.mates_observed:
            return to_device(np.ascontiguousarray(others), self.device)
        obs = self._normalized(others[..., : self.policy_settings.obs_size])
        return torch.cat([obs, to_device(np.ascontiguousarray(others[..., obs.shape[-1] :]), self.device)], dim=-1)

    def _add_trajectories(self, trajectories: list[Trajectory]) -> None:
        """Group contexts of the step's trajectories, the critic run once over all of them, then each
        trajectory's targets and advantages into the buffer."""
        kept: list[tuple[Trajectory, GroupContext]] = []
        for traj in trajectories:
            if traj.steps is None:
                raise RuntimeError(
                    f"Behavior '{self.name}' (POCA) got a trajectory without group rows: its processor is not in "
                    "group mode."
                )
            ctx = self.assembler.context(traj)
            if ctx is None:
                self.dropped += 1
                if self.dropped == 1:
                    log.warning(
                        "POCA '%s': a trajectory of agent %d was left out: its group rows are no longer kept (its "
                        "steps span more than %d environment steps, e.g. a long decision period). Later ones are "
                        "counted in silence.",
                        self.name,
                        traj.agent_id,
                        self.assembler.keep,
                    )
                continue
            kept.append((traj, ctx))
        if not kept:
            return
        width = max(c.members.shape[1] for _, c in kept)
        self.critic.see_width(width)
        members = np.concatenate([pad_members(c.members, width) for _, c in kept])
        members_mask = np.concatenate([pad_members(c.members_mask, width) for _, c in kept])
        # one pass over every row, the rows after the last (the bootstrap) included: their baselines, computed
        # against absent groupmates, are left out
        others = np.concatenate([pad_members(_after_last(c.others), width - 1) for _, c in kept])
        others_mask = np.concatenate([pad_members(_after_last(c.others_mask), width - 1) for _, c in kept])
        critic_starts: list[dict[str, np.ndarray]] = [{} for _ in kept]
        if self.critic_memories is not None:
            values, baselines, critic_starts = self._carried_values(kept, members, members_mask, others, others_mask)
        else:
            with torch.no_grad():
                v, b = self.critic.value_and_baseline(
                    self._normalized(members),
                    to_device(members_mask, self.device),
                    self._others(others),
                    to_device(others_mask, self.device),
                )
            values = v.cpu().numpy()
            last = np.cumsum([len(t) + 1 for t, _ in kept]) - 1
            baselines = np.delete(b.cpu().numpy(), last, axis=0)
        # the extrinsic signal rewards the team (own + groupmates' + group reward); the others each agent's own steps
        team = [L.team_rewards(t.rewards, c.mate_rewards) for t, c in kept]
        rewards, transitions = self.signal_rewards([t for t, _ in kept], extrinsic=team)
        if transitions is not None:
            self.signal_transitions.append(transitions)
        v_at = b_at = 0
        for (traj, ctx), traj_rewards, starts in zip(kept, rewards, critic_starts):
            n = len(traj)
            v_rows, b_rows = values[v_at : v_at + n + 1], baselines[b_at : b_at + n]
            self._add_trajectory(traj, ctx, v_rows, b_rows, traj_rewards, critic_starts=starts)
            v_at += n + 1
            b_at += n

    def _carried_values(
        self,
        kept: list[tuple[Trajectory, GroupContext]],
        members: np.ndarray,
        members_mask: np.ndarray,
        others: np.ndarray,
        others_mask: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, list[dict[str, np.ndarray]]]:
        """With memory: the rows' critic features in one pass, then each trajectory's values (its rows and the
        row after the last) and baselines (its rows) from the memories its agent carries, in arrival order;
        and each trajectory's value and baseline memories at its sequence starts."""
        assert isinstance(self.critic, RecurrentGroupCritic) and self.critic_memories is not None
        with torch.no_grad():
            hv, hb = self.critic.features(
                self._normalized(members),
                to_device(members_mask, self.device),
                self._others(others),
                to_device(others_mask, self.device),
            )
        values, baselines, starts = [], [], []
        at = 0
        for traj, _ in kept:
            n = len(traj)
            v, b, v_starts, b_starts = self.critic_memories.run(
                traj.agent_key, hv[at : at + n + 1], hb[at : at + n], ends_episode=traj.ends_episode
            )
            values.append(v)
            baselines.append(b)
            starts.append({"value_memory": v_starts, "baseline_memory": b_starts})
            at += n + 1
        return np.concatenate(values), np.concatenate(baselines), starts

    def _add_trajectory(
        self,
        traj: Trajectory,
        ctx: GroupContext,
        v: np.ndarray,
        b: np.ndarray,
        rewards: np.ndarray,
        *,
        critic_starts: dict[str, np.ndarray],
    ) -> None:
        """One trajectory with its group values v (T + 1, S), baselines b (T, S) and rewards x strength (T, S);
        with memory, the critic's memories at its sequence starts."""
        self._summary_before(traj)
        n = len(traj)
        next_values = L.group_bootstrap(v[1:], group_done=ctx.group_done)
        returns = np.empty((n, len(self.signal_names)), dtype=np.float32)
        for i, sig in enumerate(self.signal_names):
            returns[:, i] = L.lambda_returns(
                rewards[:, i], next_values[:, i], gamma=float(self.gammas[i]), lambd=self.hp.lambd
            )
            label = SIGNAL_STAT_NAMES[sig]
            self.stats.add_stat(self.name, f"Policy/{label} Value Estimate", float(v[:-1, i].mean()))
            self.stats.add_stat(self.name, f"Policy/{label} Baseline Estimate", float(b[:, i].mean()))
        fields = {
            "obs": traj.obs,
            "continuous": traj.continuous,
            "discrete": traj.discrete,
            "allowed": traj.allowed if traj.allowed is not None else np.ones((n, 0), dtype=np.bool_),
            "log_prob": traj.log_prob,
            "old_values": v[:-1],
            "old_baselines": b,
            "returns": returns,
            "advantages": L.advantages(returns, b),
            "members": ctx.members[:-1],
            "members_mask": ctx.members_mask[:-1],
            "others": ctx.others,
            "others_mask": ctx.others_mask,
        }
        if self.policy_settings.memory_size:
            assert traj.memory is not None, "a recurrent policy's trajectory carries its memories"
            fields = R.cut_into_sequences(fields, traj.memory, critic_starts, self.policy_settings.sequence_length)
        self.buffer.append(**fields)
        self.step += n

    # -- updating ---------------------------------------------------------------------------------
    def schedules(self) -> tuple[float, float, float]:
        return ppo_schedules(self.hp, self.step, self.max_steps)

    def _update(self) -> None:
        """`num_epoch` epochs of shuffled minibatches over the buffer, one Adam step each: rows of `batch_size`,
        or with memory whole sequences re-run from their start memories with every loss a masked mean
        (trainers/poca/recurrent.py)."""
        hp = self.hp
        lr, beta, eps = self.schedules()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        data = self.buffer.view()
        device, seq_len = self.device, self.policy_settings.sequence_length
        LossFn = Callable[[], tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
        epoch: Callable[[], Iterator[LossFn]]
        if isinstance(self.critic, RecurrentGroupCritic):
            critic = self.critic
            t = self._update_tensors(data, tuple(R.STEP_FIELDS), data["masks"])
            starts = {k: to_device(np.ascontiguousarray(data[k][::seq_len]), device) for k in R.MEMORY_FIELDS}

            def epoch() -> Iterator[LossFn]:
                for mb, mb_starts in R.sequence_minibatches(
                    t, starts, seq_len=seq_len, batch_size=hp.batch_size, rng=self.rng
                ):
                    yield partial(
                        R.sequence_loss, self.model, critic, mb, mb_starts, seq_len=seq_len, epsilon=eps, beta=beta
                    )

        else:
            fields = ("log_prob", "old_values", "old_baselines", "returns", "members_mask", "others_mask")
            t = self._update_tensors(data, fields)
            count = len(data["log_prob"])
            size = min(hp.batch_size, count)

            def epoch() -> Iterator[LossFn]:
                perm = to_device(self.rng.permutation(count), device)
                for first in range(0, count - size + 1, size):
                    idx = perm[first : first + size]
                    yield partial(self._loss, {k: v.index_select(0, idx) for k, v in t.items()}, epsilon=eps, beta=beta)

        losses: dict[str, list[torch.Tensor]] = {"policy": [], "value": [], "baseline": []}
        before = Snapshot(self.parameters + self._adam_tensors())
        for _ in range(hp.num_epoch):
            for loss in epoch():
                p_loss, v_loss, b_loss, total = loss()
                self.optimizer.zero_grad(set_to_none=True)
                total.backward()
                self.adam.step()
                for key, value in zip(("policy", "value", "baseline"), (p_loss, v_loss, b_loss)):
                    losses[key].append(value.detach())
        means = {k: float(torch.stack(v).mean()) for k, v in losses.items()}
        self._check_finite(before, means)
        self._after_update(means, lr=lr, eps=eps, beta=beta)

    def _update_tensors(
        self, data: dict[str, np.ndarray], fields: tuple[str, ...], masks: np.ndarray | None = None
    ) -> dict[str, torch.Tensor]:
        """The buffer's rows as the update's tensors: normalised observations, `fields` as they are, the
        advantages normalised (over the real rows when `masks` are given) and the actions."""
        device = self.device
        with torch.no_grad():
            t = {
                "x": self._normalized(data["obs"]),
                "members": self._normalized(data["members"]),
                "others": self._others(data["others"]),
            }
        for key in fields:
            t[key] = to_device(data[key], device)
        t["advantages"] = to_device(P.normalize_advantages(data["advantages"], masks), device)
        aspec = self.spec.action_spec
        if aspec.continuous_size:
            t["continuous"] = to_device(data["continuous"], device)
        if aspec.discrete_size:
            t["discrete"] = to_device(data["discrete"].astype(np.int64), device)
            t["allowed"] = to_device(data["allowed"], device)
        return t

    def _after_update(self, means: dict[str, float], *, lr: float, eps: float, beta: float) -> None:
        """The buffer emptied, the acting path synchronised and the update's stats reported."""
        self.buffer.clear()
        self.update_count += 1
        self.policy.sync()
        name = self.name
        self.stats.add_stat(name, "Losses/Policy Loss", abs(means["policy"]))
        self.stats.add_stat(name, "Losses/Value Loss", means["value"])
        self.stats.add_stat(name, "Losses/Baseline Loss", means["baseline"])
        self.stats.add_stat(name, "Policy/Learning Rate", lr)
        self.stats.add_stat(name, "Policy/Epsilon", eps)
        self.stats.add_stat(name, "Policy/Beta", beta)
        self.rewards_before_update = self.episode_rewards_since_update
        self.episode_rewards_since_update = []

    def _loss(
        self, mb: dict[str, torch.Tensor], *, epsilon: float, beta: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        log_prob, entropy, _ = self.model.evaluate(mb["x"], mb.get("continuous"), mb.get("discrete"), mb.get("allowed"))
        p_loss = P.policy_loss(log_prob, mb["log_prob"], mb["advantages"], epsilon)
        values, baselines = self.critic.value_and_baseline(
            mb["members"], mb["members_mask"], mb["others"], mb["others_mask"]
        )
        v_loss = P.value_loss(values, mb["old_values"], mb["returns"], epsilon)
        b_loss = P.value_loss(baselines, mb["old_baselines"], mb["returns"], epsilon)
        total = L.total_loss(p_loss, v_loss, b_loss, entropy.mean(), beta)
        return p_loss, v_loss, b_loss, total

    def _adam_tensors(self) -> list[torch.Tensor]:
        state = self.optimizer.state
        return [x for p in self.parameters if p in state for x in state[p].values() if isinstance(x, torch.Tensor)]

    def _check_finite(self, before: Snapshot, losses: dict[str, float]) -> None:
        named = list(self.model.named_parameters()) + [(f"critic.{k}", v) for k, v in self.critic.named_parameters()]
        problems = non_finite(losses, named)
        if not problems:
            return
        before.restore()
        if len(before.live) == len(self.parameters):  # Adam's state was created by this update
            self.optimizer.state.clear()
        self.adam.reset()
        raise diverged(
            behavior=self.name,
            trainer="POCA",
            step=self.step,
            problems=problems,
            learning_rate=self.hp.learning_rate,
            restored=True,
        )

    # -- checkpoints ------------------------------------------------------------------------------
    def get_state(self) -> TrainerState:
        return S.policy_optimizer_state(self, {"critic.": self.critic})

    def set_state(self, state: TrainerState, *, weights_only: bool = False) -> None:
        S.load_policy_optimizer_state(
            self,
            state,
            weights_only=weights_only,
            label=f"behavior '{self.name}' (POCA)",
            modules={"critic.": self.critic},
        )
        self.assembler.forget()
        if self.critic_memories is not None:
            self.critic_memories.forget()
