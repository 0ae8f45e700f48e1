"""Turns an environment's DecisionSteps/TerminalSteps into finished trajectories, vectorised over agents.

Each agent id owns a slot in preallocated arrays of `time_horizon` rows. Every step:
1. terminal agents: the reward completes their pending experience; their trajectory is emitted with a
   bootstrap value of 0 (true end) or V(terminal observation) (interrupted), and the slot is reset;
2. deciding agents: the reward completes their pending experience;
3. one batched policy call decides for all deciding agents;
4. agents whose trajectory reached `time_horizon` emit it, bootstrapped with the value just computed;
5. the new decision becomes each agent's pending experience.
No Python loop over agents runs except when trajectories are emitted (one per trajectory).
Group rewards are added to each agent's own reward (as ML-Agents' extrinsic signal does); the first
non-zero one is reported once through `on_group_reward`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from fledge.envs.api import BehaviorSpec, DecisionSteps, TerminalSteps
from fledge.networks.numpy_actor import ActOutput


class ActingPolicy(Protocol):
    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> ActOutput: ...

    def values(self, obs: np.ndarray) -> np.ndarray: ...


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

    def __len__(self) -> int:
        return len(self.rewards)


@dataclass
class StepOutcome:
    actions: ActOutput | None  # the decision for the agents of the DecisionSteps, in their row order
    trajectories: list[Trajectory]
    episode_returns: np.ndarray  # sum of individual rewards of each episode that finished this step
    episode_lengths: np.ndarray  # number of decisions in each of those episodes


def flat_observations(obs: list[np.ndarray]) -> np.ndarray:
    """All vector observations of a batch side by side, (n, total size)."""
    if len(obs) == 1:
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

    def __init__(
        self,
        *,
        spec: BehaviorSpec,
        time_horizon: int,
        n_values: int,
        initial_slots: int = 16,
        on_group_reward: Callable[[], None] | None = None,
    ) -> None:
        """`on_group_reward` is called once, the first time a step carries a non-zero group reward."""
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
        )

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

    # -- the step ---------------------------------------------------------------------------------
    def process(self, decision: DecisionSteps, terminal: TerminalSteps, policy: ActingPolicy) -> StepOutcome:
        if self._on_group_reward is not None and (decision.group_reward.any() or terminal.group_reward.any()):
            self._on_group_reward()
            self._on_group_reward = None
        trajectories: list[Trajectory] = []
        ep_returns = np.zeros(0)
        ep_lengths = np.zeros(0, dtype=np.int64)

        if len(terminal.agent_id):
            t_slots_all = self._slots(terminal.agent_id, "terminal")
            known = self.pending[t_slots_all]
            rows = np.flatnonzero(known)
            t_slots = t_slots_all[rows]
            if len(t_slots):
                last = self.length[t_slots] - 1
                self.rew[t_slots, last] = terminal.reward[rows] + terminal.group_reward[rows]
                self.ep_return[t_slots] += terminal.reward[rows]
                interrupted = terminal.interrupted[rows]
                terminal_obs = flat_observations(terminal.obs)
                boot = np.zeros((len(t_slots), self.n_values), dtype=np.float32)
                if interrupted.any():
                    boot[interrupted] = policy.values(terminal_obs[rows[interrupted]])
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
            # release the slots of agents that ended and do not continue in this step
            gone = set(terminal.agent_id.tolist()) - set(decision.agent_id.tolist())
            for a in gone:
                s = self._slot_of.pop(a)
                self._free.append(s)
                self.length[s] = 0
                self.pending[s] = False
                self._map_version += 1

        if len(decision.agent_id) == 0:
            return StepOutcome(None, trajectories, ep_returns, ep_lengths)

        d_slots = self._slots(decision.agent_id, "decision")
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

        obs = flat_observations(decision.obs)
        allowed = allowed_actions(decision.action_mask)
        out = policy.act(obs, allowed)

        if len(p_slots):
            full = self.length[p_slots] >= self.horizon
            if full.any():
                rows_full = np.arange(len(d_slots))[p_rows][full]
                for slot, row in zip(p_slots[full].tolist(), rows_full.tolist()):
                    trajectories.append(
                        self._emit(
                            slot, int(decision.agent_id[row]), out.values[row], obs[row], terminal=False, ends=False
                        )
                    )
                self.length[p_slots[full]] = 0

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
        return StepOutcome(out, trajectories, ep_returns, ep_lengths)
