"""Builds finished trajectories from one step of a behavior's agents, vectorised over agents.

The collector (rollout/collector.py) asks the policy and hands the processor plain arrays: the
DecisionSteps/TerminalSteps, the flat decision observations with the policy's decisions for them, and
the bootstrap value of each terminal agent. Each agent id owns a slot in preallocated arrays of
`time_horizon` rows. Every step:
1. terminal agents: the reward completes their pending experience; their trajectory is emitted with its
   bootstrap value (0 at a true end, V(terminal observation) when interrupted), and the slot is reset;
2. deciding agents: the reward completes their pending experience;
3. agents whose trajectory reached `time_horizon` emit it, bootstrapped with the value of the new decision;
4. the new decision becomes each agent's pending experience.
No Python loop over agents runs except when trajectories are emitted (one per trajectory).
With a recurrent policy (`memory_size` > 0) each slot also keeps the agent's current memory (`memories`
hands it to the policy, zero for a new episode) and every step records the memory BEFORE its decision;
an agent's memory is reset to zero when its episode ends or its slot is released.
Group rewards are added to each agent's own reward (as ML-Agents' extrinsic signal does); the first
non-zero one is reported once through `on_group_reward`.
With `groups=True` (POCA only: the non-group path does no more work) every trajectory row also records
its group id and the processor call it was decided in (`steps`), and every StepOutcome carries the
call's raw rows (`group_step`: who decided with which observation and action, who ended, what rewards
arrived), from which rollout/groups.py assembles what the group's critic needs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fledge.envs.api import BehaviorSpec, DecisionSteps, TerminalSteps
from fledge.networks.numpy_actor import ActOutput


@dataclass
class Trajectory:
    """Consecutive experiences of one agent. `bootstrap` is the value after the last step (0 at a true end)."""

    agent_id: int
    obs: np.ndarray  # (T, obs_size) float32
    continuous: np.ndarray  # (T, c) float32 raw samples
    discrete: np.ndarray  # (T, d) int32
    log_prob: np.ndarray  # (T,) float32
    values: np.ndarray  # (T, n_values) float32
    rewards: np.ndarray  # (T,) float32
    allowed: np.ndarray | None  # (T, sum(branches)) bool, True = allowed
    bootstrap: np.ndarray  # (n_values,) float32
    next_obs: np.ndarray  # (obs_size,) float32: the observation after the last step (terminal or next decision)
    terminal: bool  # the episode ended for real (not interrupted): no bootstrapping
    ends_episode: bool
    memory: np.ndarray | None = None  # (T, memory_size) float32: the actor's memory before each decision
    source: str = ""  # the behavior id whose agent it is (teams of one trainer may reuse agent ids)
    groups: np.ndarray | None = None  # (T,) int64 group id of each row (group mode only; 0 = no group)
    steps: np.ndarray | None = None  # (T,) int64 processor call of each decision (group mode only)
    end_call: int = -1  # the processor call that emitted the trajectory (group mode only)

    @property
    def agent_key(self) -> tuple[str, int]:
        """Who the agent is across the behavior ids that feed one trainer."""
        return self.source, self.agent_id

    def __len__(self) -> int:
        return len(self.rewards)


@dataclass
class GroupStep:
    """One processor call's raw rows, for the group assembler (group mode only)."""

    source: str  # the behavior id
    call: int
    decision_ids: np.ndarray  # (n,) agents that decided
    decision_groups: np.ndarray  # (n,) their group ids
    obs: np.ndarray  # (n, obs_size) their flat observations
    actions: np.ndarray  # (n, c + sum(branches)) their actions: continuous samples then one-hot branches
    reward_ids: np.ndarray  # (k,) agents whose reward arrived (deciding and terminal)
    reward_groups: np.ndarray  # (k,)
    rewards: np.ndarray  # (k,) their individual rewards
    group_rewards: np.ndarray  # (k,) their group rewards
    terminal_ids: np.ndarray  # (m,) agents whose episode ended
    terminal_groups: np.ndarray  # (m,)
    terminal_obs: np.ndarray  # (m, obs_size)
    interrupted: np.ndarray  # (m,) bool


@dataclass
class StepOutcome:
    actions: ActOutput | None  # the decision for the agents of the DecisionSteps, in their row order
    trajectories: list[Trajectory]
    episode_returns: np.ndarray  # sum of individual rewards of each episode that finished this step
    episode_lengths: np.ndarray  # number of decisions in each of those episodes
    group_step: GroupStep | None = None  # the call's raw rows (group mode only)

    @property
    def decisions(self) -> int:
        """How many agents decided in this step."""
        return 0 if self.actions is None else len(self.actions.log_prob)


def flat_observations(obs: list[np.ndarray]) -> np.ndarray:
    """All observations of a batch flattened side by side, (n, total size)."""
    if len(obs) == 1 and obs[0].ndim == 2:  # one vector: already flat
        return obs[0]
    return np.concatenate([o.reshape(o.shape[0], -1) for o in obs], axis=1)


def allowed_actions(mask: list[np.ndarray] | None) -> np.ndarray | None:
    """Environment masks (True = unavailable, one array per branch) as one (n, sum) array, True = allowed."""
    if mask is None:
        return None
    return ~np.concatenate(mask, axis=1)


class AgentProcessor:
    # per-slot storage (first axis: slot), allocated and grown by _grow
    obs: np.ndarray
    cont: np.ndarray
    disc: np.ndarray
    logp: np.ndarray
    vals: np.ndarray
    rew: np.ndarray
    allowed: np.ndarray
    length: np.ndarray
    pending: np.ndarray
    ep_return: np.ndarray
    ep_length: np.ndarray
    mem: np.ndarray
    mem_now: np.ndarray
    grp: np.ndarray  # (slot, h) group ids (group mode; else (slot, 0))
    stepi: np.ndarray  # (slot, h) processor call of each row (group mode; else (slot, 0))

    def __init__(
        self,
        *,
        spec: BehaviorSpec,
        time_horizon: int,
        n_values: int,
        initial_slots: int = 16,
        on_group_reward: Callable[[], None] | None = None,
        memory_size: int = 0,
        source: str = "",
        groups: bool = False,
    ) -> None:
        """`on_group_reward` is called once, the first time a step carries a non-zero group reward;
        `memory_size`: the policy's memory vector (0: not recurrent); `source`: the behavior id, carried by
        the trajectories; `groups`: record group rows (POCA)."""
        self.groups = bool(groups)
        self.calls = 0
        self.branches = tuple(int(b) for b in spec.action_spec.discrete_branches)
        self.memory_size = int(memory_size)
        self.source = source
        self.spec = spec
        self._on_group_reward = on_group_reward
        self.horizon = int(time_horizon)
        self.n_values = n_values
        self.obs_size = int(sum(int(np.prod(s.shape)) for s in spec.observation_specs))
        self.n_cont = spec.action_spec.continuous_size
        self.n_disc = spec.action_spec.discrete_size
        self.n_mask = int(sum(spec.action_spec.discrete_branches))
        self._slot_of: dict[int, int] = {}
        self._free: list[int] = []
        self._capacity = 0
        self._map_version = 0
        # one cached id->slot lookup per role, so terminal lookups do not evict the decision lookup
        self._cache: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
        self._grow(initial_slots)

    # -- storage ----------------------------------------------------------------------------------
    def _grow(self, capacity: int) -> None:
        old = self._capacity
        h = self.horizon

        def grown(arr: np.ndarray | None, shape: tuple[int, ...], dtype: type, fill: object = 0) -> np.ndarray:
            new: np.ndarray = np.full((capacity,) + shape, fill, dtype=dtype)
            if arr is not None:
                new[:old] = arr
            return new

        first = old == 0
        self.obs = grown(None if first else self.obs, (h, self.obs_size), np.float32)
        self.cont = grown(None if first else self.cont, (h, self.n_cont), np.float32)
        self.disc = grown(None if first else self.disc, (h, self.n_disc), np.int32)
        self.logp = grown(None if first else self.logp, (h,), np.float32)
        self.vals = grown(None if first else self.vals, (h, self.n_values), np.float32)
        self.rew = grown(None if first else self.rew, (h,), np.float32)
        self.allowed = grown(None if first else self.allowed, (h, self.n_mask), np.bool_, True)
        self.length = grown(None if first else self.length, (), np.int64)
        self.pending = grown(None if first else self.pending, (), np.bool_, False)
        self.ep_return = grown(None if first else self.ep_return, (), np.float64)
        self.ep_length = grown(None if first else self.ep_length, (), np.int64)
        m = self.memory_size
        self.mem = grown(None if first else self.mem, (h, m) if m else (0,), np.float32)
        self.mem_now = grown(None if first else self.mem_now, (m,), np.float32)
        g = h if self.groups else 0
        self.grp = grown(None if first else self.grp, (g,), np.int64)
        self.stepi = grown(None if first else self.stepi, (g,), np.int64)
        self._free.extend(range(capacity - 1, old - 1, -1))
        self._capacity = capacity

    def _slots(self, ids: np.ndarray, role: str) -> np.ndarray:
        cache = self._cache.get(role)
        if cache is not None and cache[2] == self._map_version and np.array_equal(cache[0], ids):
            return cache[1]
        slots = np.empty(len(ids), dtype=np.int64)
        for i, a in enumerate(ids.tolist()):
            s = self._slot_of.get(a)
            if s is None:
                if not self._free:
                    self._grow(max(2 * self._capacity, 16))
                s = self._free.pop()
                self._slot_of[a] = s
                self._map_version += 1
            slots[i] = s
        self._cache[role] = (ids.copy(), slots, self._map_version)
        return slots

    def _emit(
        self, slot: int, agent_id: int, bootstrap: np.ndarray, next_obs: np.ndarray, *, terminal: bool, ends: bool
    ) -> Trajectory:
        n = int(self.length[slot])
        return Trajectory(
            agent_id=agent_id,
            obs=self.obs[slot, :n].copy(),
            continuous=self.cont[slot, :n].copy(),
            discrete=self.disc[slot, :n].copy(),
            log_prob=self.logp[slot, :n].copy(),
            values=self.vals[slot, :n].copy(),
            rewards=self.rew[slot, :n].copy(),
            allowed=self.allowed[slot, :n].copy() if self.n_mask else None,
            bootstrap=np.asarray(bootstrap, dtype=np.float32).copy(),
            next_obs=np.array(next_obs, dtype=np.float32),
            terminal=terminal,
            ends_episode=ends,
            memory=self.mem[slot, :n].copy() if self.memory_size else None,
            source=self.source,
            groups=self.grp[slot, :n].copy() if self.groups else None,
            steps=self.stepi[slot, :n].copy() if self.groups else None,
            end_call=self.calls if self.groups else -1,
        )

    def memories(self, agent_ids: np.ndarray, ended: np.ndarray) -> np.ndarray:
        """The current memory (n, memory_size) of each deciding agent; zero for new agents and for those whose
        episode ends in this same step (`ended`: the TerminalSteps' agent ids)."""
        slots = self._slots(agent_ids, "decision")  # first: finding slots for new agents may grow mem_now
        memory = self.mem_now[slots]
        if len(ended):
            memory[np.isin(agent_ids, ended)] = 0.0
        return memory

    def has_pending(self, terminal_ids: np.ndarray) -> np.ndarray:
        """Whether each agent of a TerminalSteps has a pending experience (only those emit a trajectory)."""
        return self.pending[self._slots(terminal_ids, "terminal")]

    def forget(self, agent_ids: np.ndarray) -> None:
        """Drop these agents' partial trajectories and episodes without emitting anything (their worker restarted)."""
        for a in np.asarray(agent_ids).tolist():
            s = self._slot_of.pop(a, None)
            if s is None:
                continue
            self._free.append(s)
            self.length[s] = 0
            self.pending[s] = False
            self.ep_return[s] = 0.0
            self.ep_length[s] = 0
            self.mem_now[s] = 0.0
            self._map_version += 1

    def reset(self) -> None:
        """Forget every agent's partial trajectory (after an environment reset)."""
        self._slot_of.clear()
        self._free = list(range(self._capacity - 1, -1, -1))
        self._map_version += 1
        self.length[:] = 0
        self.pending[:] = False
        self.ep_return[:] = 0.0
        self.ep_length[:] = 0
        self.mem_now[:] = 0.0

    # -- the step ---------------------------------------------------------------------------------
    def process(
        self,
        decision: DecisionSteps,
        terminal: TerminalSteps,
        *,
        obs: np.ndarray | None,
        allowed: np.ndarray | None,
        out: ActOutput | None,
        terminal_obs: np.ndarray | None,
        bootstrap: np.ndarray | None,
        memory: np.ndarray | None = None,
    ) -> StepOutcome:
        """One step of the behavior's agents. `obs` (n, obs_size), `allowed` and `out`: the decision rows' flat
        observations, allowed actions (True = allowed) and the policy's decisions (None when no agent decides);
        `terminal_obs` and `bootstrap` (n_terminal, n_values): the terminal rows' flat observations and the value
        after their last step (None when no agent ended); `memory` (n, memory_size): the decision rows' memories
        before the decision (recurrent policies: what `memories` returned; the new ones are `out.memory`)."""
        if self._on_group_reward is not None and (decision.group_reward.any() or terminal.group_reward.any()):
            self._on_group_reward()
            self._on_group_reward = None
        self.calls += 1
        group_step = self._group_step(decision, terminal, obs, out, terminal_obs) if self.groups else None
        trajectories: list[Trajectory] = []
        ep_returns = np.zeros(0)
        ep_lengths = np.zeros(0, dtype=np.int64)
        if len(terminal.agent_id):
            assert terminal_obs is not None and bootstrap is not None
            ep_returns, ep_lengths = self._end_episodes(terminal, terminal_obs, bootstrap, trajectories)
            self._release_gone(terminal.agent_id, decision.agent_id)
        if out is None or len(decision.agent_id) == 0:
            return StepOutcome(None, trajectories, ep_returns, ep_lengths, group_step)
        assert obs is not None
        d_slots = self._slots(decision.agent_id, "decision")
        p_slots, p_rows = self._reward_pending(decision, d_slots)
        if len(p_slots):
            self._cut_full(decision.agent_id, d_slots, p_slots, p_rows, obs, out.values, trajectories)
        self._record_decisions(d_slots, obs, allowed, out, memory)
        if self.groups:
            self.grp[d_slots, self.length[d_slots] - 1] = decision.group_id
            self.stepi[d_slots, self.length[d_slots] - 1] = self.calls
        return StepOutcome(out, trajectories, ep_returns, ep_lengths, group_step)

    def _group_step(
        self,
        decision: DecisionSteps,
        terminal: TerminalSteps,
        obs: np.ndarray | None,
        out: ActOutput | None,
        terminal_obs: np.ndarray | None,
    ) -> GroupStep:
        """The call's raw rows for the group assembler (only agents with a pending experience get a reward)."""
        n = len(decision.agent_id) if out is not None else 0
        actions = np.zeros((n, self.n_cont + sum(self.branches)), dtype=np.float32)
        if n and self.n_cont:
            actions[:, : self.n_cont] = out.continuous  # type: ignore[union-attr]
        col = self.n_cont
        for b, size in enumerate(self.branches):
            if n:
                actions[np.arange(n), col + out.discrete[:, b]] = 1.0  # type: ignore[union-attr]
            col += size
        d_pending = np.zeros(0, dtype=bool)
        if n:
            slots = self._slots(decision.agent_id, "decision")  # first: finding slots may grow the arrays
            d_pending = self.pending[slots]
        if n and len(terminal.agent_id):  # an agent that ended and restarts in this call got its reward as terminal
            d_pending = d_pending & ~np.isin(decision.agent_id, terminal.agent_id)
        t_pending = self.has_pending(terminal.agent_id) if len(terminal.agent_id) else np.zeros(0, dtype=bool)
        return GroupStep(
            source=self.source,
            call=self.calls,
            decision_ids=decision.agent_id[:n].copy(),
            decision_groups=decision.group_id[:n].copy(),
            obs=np.zeros((0, self.obs_size), np.float32) if obs is None or not n else obs.copy(),
            actions=actions,
            reward_ids=np.concatenate([terminal.agent_id[t_pending], decision.agent_id[:n][d_pending]]),
            reward_groups=np.concatenate([terminal.group_id[t_pending], decision.group_id[:n][d_pending]]),
            rewards=np.concatenate([terminal.reward[t_pending], decision.reward[:n][d_pending]]),
            group_rewards=np.concatenate([terminal.group_reward[t_pending], decision.group_reward[:n][d_pending]]),
            terminal_ids=terminal.agent_id.copy(),
            terminal_groups=terminal.group_id.copy(),
            terminal_obs=np.zeros((0, self.obs_size), np.float32) if terminal_obs is None else terminal_obs.copy(),
            interrupted=terminal.interrupted.copy(),
        )

    def _end_episodes(
        self, terminal: TerminalSteps, terminal_obs: np.ndarray, bootstrap: np.ndarray, trajectories: list[Trajectory]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Emit the trajectory of each terminal agent with a pending experience; its episode's return and length."""
        t_slots_all = self._slots(terminal.agent_id, "terminal")
        self.mem_now[t_slots_all] = 0.0  # the next episode starts from a zero memory
        rows = np.flatnonzero(self.pending[t_slots_all])
        t_slots = t_slots_all[rows]
        if not len(t_slots):
            return np.zeros(0), np.zeros(0, dtype=np.int64)
        last = self.length[t_slots] - 1
        self.rew[t_slots, last] = terminal.reward[rows] + terminal.group_reward[rows]
        self.ep_return[t_slots] += terminal.reward[rows]
        interrupted = terminal.interrupted[rows]
        boot = bootstrap[rows]
        for k, (slot, row) in enumerate(zip(t_slots.tolist(), rows.tolist())):
            trajectories.append(
                self._emit(
                    slot,
                    int(terminal.agent_id[row]),
                    boot[k],
                    terminal_obs[row],
                    terminal=not bool(interrupted[k]),
                    ends=True,
                )
            )
        ep_returns = self.ep_return[t_slots].copy()
        ep_lengths = self.ep_length[t_slots].copy()
        self.length[t_slots] = 0
        self.pending[t_slots] = False
        self.ep_return[t_slots] = 0.0
        self.ep_length[t_slots] = 0
        return ep_returns, ep_lengths

    def _release_gone(self, ended: np.ndarray, deciding: np.ndarray) -> None:
        """Release the slots of agents that ended and do not continue in this step."""
        for a in set(ended.tolist()) - set(deciding.tolist()):
            s = self._slot_of.pop(a)
            self._free.append(s)
            self.length[s] = 0
            self.pending[s] = False
            self.mem_now[s] = 0.0
            self._map_version += 1

    def _reward_pending(self, decision: DecisionSteps, d_slots: np.ndarray) -> tuple[np.ndarray, slice | np.ndarray]:
        """The reward completes the pending experience of each deciding agent; returns their slots and rows."""
        has = self.pending[d_slots]
        p_rows: slice | np.ndarray
        if has.all():
            p_slots, p_rows = d_slots, slice(None)
        else:
            p_rows = np.flatnonzero(has)
            p_slots = d_slots[p_rows]
        if len(p_slots):
            self.rew[p_slots, self.length[p_slots] - 1] = decision.reward[p_rows] + decision.group_reward[p_rows]
            self.ep_return[p_slots] += decision.reward[p_rows]
        return p_slots, p_rows

    def _cut_full(
        self,
        agent_ids: np.ndarray,
        d_slots: np.ndarray,
        p_slots: np.ndarray,
        p_rows: slice | np.ndarray,
        obs: np.ndarray,
        values: np.ndarray,
        trajectories: list[Trajectory],
    ) -> None:
        """Emit the trajectories that reached time_horizon, bootstrapped with the value of the new decision."""
        full = self.length[p_slots] >= self.horizon
        if not full.any():
            return
        rows_full = np.arange(len(d_slots))[p_rows][full]
        for slot, row in zip(p_slots[full].tolist(), rows_full.tolist()):
            trajectories.append(
                self._emit(slot, int(agent_ids[row]), values[row], obs[row], terminal=False, ends=False)
            )
        self.length[p_slots[full]] = 0

    def _record_decisions(
        self,
        d_slots: np.ndarray,
        obs: np.ndarray,
        allowed: np.ndarray | None,
        out: ActOutput,
        memory: np.ndarray | None,
    ) -> None:
        """The new decision becomes each deciding agent's pending experience (its reward comes next step)."""
        pos = self.length[d_slots]
        self.obs[d_slots, pos] = obs
        if self.n_cont:
            self.cont[d_slots, pos] = out.continuous
        if self.n_disc:
            self.disc[d_slots, pos] = out.discrete
        if allowed is not None:
            self.allowed[d_slots, pos] = allowed
        elif self.n_mask:
            self.allowed[d_slots, pos] = True
        self.logp[d_slots, pos] = out.log_prob
        self.vals[d_slots, pos] = out.values
        self.rew[d_slots, pos] = 0.0
        self.length[d_slots] = pos + 1
        self.pending[d_slots] = True
        self.ep_length[d_slots] += 1
        if self.memory_size:
            if memory is None or out.memory is None:
                raise ValueError("a recurrent policy's decisions need the memories before and after them")
            self.mem[d_slots, pos] = memory
            self.mem_now[d_slots] = out.memory
