"""Assembles what a group's centralised critic needs (POCA) from the processor's per-call group rows.

A processor in group mode (rollout/processor.py, `groups=True`) records, for each trajectory row, the
agent's group id and the processor call it decided in, and hands every call's raw rows over as a
`GroupStep`. The assembler keeps the last `keep` calls per behavior id and answers, for a trajectory:

- for each row: the observations of every group member that decided in the same call (the agent
  itself first; absent members are padding with mask 0) and the observations + actions of its
  groupmates (for the agent's baseline; with `mates_observed` False their actions alone, for a critic
  that reads the groupmates' observations from the members' rows);
- for each row: the individual rewards its groupmates received for the same step (POCA's extrinsic
  reward is own reward + groupmates' rewards + group reward, spec 8.5);
- the group after the last row, for the bootstrap: the members still playing at the call that
  emitted the trajectory. An agent whose episode ended while its groupmates play on is bootstrapped
  with the value of the group that continues without it, so an agent that dies early keeps learning
  from the group reward that comes later. The bootstrap is 0 only when the whole group is done (no
  member continues) and the end was not an interruption; after an interruption it is the value of
  the group's terminal observations.

An agent without a group (group id 0) is a group of one. Groups are keyed by (behavior id, group id):
teams never share groups, and worker copies make group ids global (rollout/workers.py).
`Environment/Group Cumulative Reward` is each finished group's sum of its members' individual rewards
plus its group reward (counted once per call).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from fledge.rollout.processor import GroupStep, Trajectory


class _Gone(Exception):
    """The rows a trajectory needs are no longer kept."""


def _gone() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    raise _Gone


def group_key(group: int, agent: int) -> int:
    """A group's key: its id, or for an agent without a group (0) a key of its own (negative)."""
    return int(group) if group != 0 else -(int(agent) + 1)


class KeyedRows:
    """Rows grouped by key: the arrays reordered by key (stable: the original order within a key), and each
    key's slice of them. `get(k)` answers the key's rows as views, or None."""

    def __init__(self, keys: np.ndarray, *arrays: np.ndarray) -> None:
        self.slices: dict[int, tuple[int, int]] = {}
        if not len(keys):
            self.arrays: tuple[np.ndarray, ...] = arrays
            return
        order = np.argsort(keys, kind="stable")
        self.arrays = tuple(a[order] for a in arrays)
        uniq, starts = np.unique(keys[order], return_index=True)
        ends = [*starts[1:].tolist(), len(keys)]
        self.slices = dict(zip(uniq.tolist(), zip(starts.tolist(), ends)))

    def get(self, key: int) -> tuple[np.ndarray, ...] | None:
        bounds = self.slices.get(key)
        if bounds is None:
            return None
        s, e = bounds
        return tuple([a[s:e] for a in self.arrays])

    def items(self) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        for k, (s, e) in self.slices.items():
            yield k, tuple(a[s:e] for a in self.arrays)

    def __iter__(self) -> Iterator[int]:
        return iter(self.slices)

    def __bool__(self) -> bool:
        return bool(self.slices)

    def widest(self) -> int:
        return max((e - s for s, e in self.slices.values()), default=0)


_NO_ROWS = KeyedRows(np.zeros(0, dtype=np.int64))


@dataclass
class CallRows:
    """One call's rows, by group key."""

    decided: KeyedRows = _NO_ROWS  # ids, obs, act
    ended: KeyedRows = _NO_ROWS  # ids, terminal obs
    rewards: KeyedRows = _NO_ROWS  # ids, individual rewards
    terminal_ids: set[int] = field(default_factory=set)
    continuing_ids: set[int] = field(default_factory=set)  # deciders already in their episode before this call


@dataclass
class GroupContext:
    """What the critic needs for one trajectory of T rows (M: the widest group so far)."""

    members: np.ndarray  # (T + 1, M, obs) members' observations (self first), row T: the group after the last row
    members_mask: np.ndarray  # (T + 1, M) 1.0 present
    others: np.ndarray  # (T, M - 1, obs + act) groupmates' observations and actions (or (T, M - 1, act): actions)
    others_mask: np.ndarray  # (T, M - 1)
    mate_rewards: np.ndarray  # (T,) groupmates' individual rewards for each step
    group_done: bool  # the whole group ended for real after the last row: bootstrap 0


def _by_size(sizes: list[int]) -> dict[int, list[int]]:
    """Positions by value: {size: [i, ...]} in order."""
    out: dict[int, list[int]] = {}
    for i, size in enumerate(sizes):
        out.setdefault(size, []).append(i)
    return out


def _keys(groups: np.ndarray, ids: np.ndarray) -> np.ndarray:
    return np.where(groups != 0, groups.astype(np.int64), -(ids.astype(np.int64) + 1))


class GroupAssembler:
    def __init__(self, *, obs_size: int, act_size: int, keep: int, mates_observed: bool = True) -> None:
        self.obs_size = obs_size
        self.act_size = act_size
        self.mates_observed = mates_observed  # groupmate rows: observations then actions, or actions alone
        self.keep = max(int(keep), 2)
        self.width = 1  # the widest group seen (M)
        self.calls: dict[tuple[str, int], CallRows] = {}
        self._order: dict[str, deque[int]] = {}
        self._returns: dict[tuple[str, int], float] = {}
        self._playing: dict[str, set[int]] = {}  # per behavior id: the agents in an episode after the last call

    def record(self, step: GroupStep) -> list[float]:
        """Keep a call's rows; returns the cumulative rewards of the groups that finished in it."""
        rows = CallRows()
        d_keys = _keys(step.decision_groups, step.decision_ids)
        rows.decided = KeyedRows(d_keys, step.decision_ids, step.obs, step.actions)
        rows.ended = KeyedRows(_keys(step.terminal_groups, step.terminal_ids), step.terminal_ids, step.terminal_obs)
        r_keys = _keys(step.reward_groups, step.reward_ids)
        rows.rewards = KeyedRows(r_keys, step.reward_ids, step.rewards, step.group_rewards)
        rows.terminal_ids = set(step.terminal_ids.tolist())
        # a member that decides in the call its group ends starts the next episode (a group restarted at once, or
        # an early-dead agent re-enabled with it): only agents already playing before this call continue one
        playing = self._playing.setdefault(step.source, set())
        deciders = set(step.decision_ids.tolist())
        rows.continuing_ids = (deciders & playing) - rows.terminal_ids
        playing.difference_update(rows.terminal_ids)
        playing.update(deciders)
        if rows.decided:
            self.width = max(self.width, rows.decided.widest())
        key = (step.source, step.call)
        self.calls[key] = rows
        order = self._order.setdefault(step.source, deque())
        order.append(step.call)
        while len(order) > self.keep:
            self.calls.pop((step.source, order.popleft()), None)
        return self._group_returns(step, rows)

    def _group_returns(self, step: GroupStep, rows: CallRows) -> list[float]:
        finished: list[float] = []
        for k, (_, rew, grew) in rows.rewards.items():
            if k >= 0:  # the group reward once per call (every member receives the same)
                shared = float(grew[int(np.argmax(np.abs(grew)))])
                self._returns[(step.source, k)] = self._returns.get((step.source, k), 0.0) + float(rew.sum()) + shared
        for k in rows.ended:
            if k < 0 or self._continuing(rows, k) is not None:
                continue
            finished.append(self._returns.pop((step.source, k), 0.0))
        return finished

    @staticmethod
    def _continuing(rows: CallRows, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The members of group k that decided in this call and continue the episode they were playing (ids, obs),
        or None."""
        decided = rows.decided.get(k)
        if decided is None:
            return None
        on = np.array([a in rows.continuing_ids for a in decided[0].tolist()], dtype=bool)
        return (decided[0][on], decided[1][on]) if on.any() else None

    def forget(self) -> None:
        """Drop every kept call (after an environment reset)."""
        self.calls.clear()
        self._order.clear()
        self._returns.clear()
        self._playing.clear()

    # -- one trajectory -----------------------------------------------------------------------------
    def context(self, traj: Trajectory) -> GroupContext | None:
        """The trajectory's group context; None when some of its calls are no longer kept (an agent whose
        trajectory spans more calls than `keep`, or one that began before the assembler started)."""
        try:
            return self._context(traj)
        except _Gone:
            return None

    def _context(self, traj: Trajectory) -> GroupContext:
        if traj.groups is None or traj.steps is None:
            raise ValueError("a trajectory without group rows: its processor was not in group mode")
        n, m, agent = len(traj), self.width, traj.agent_id
        members = np.zeros((n + 1, m, self.obs_size), dtype=np.float32)
        members_mask = np.zeros((n + 1, m), dtype=np.float32)
        mate_obs = self.obs_size if self.mates_observed else 0
        others = np.zeros((n, max(m - 1, 0), mate_obs + self.act_size), dtype=np.float32)
        others_mask = np.zeros((n, max(m - 1, 0)), dtype=np.float32)
        mate_rewards = np.zeros(n, dtype=np.float32)
        steps = traj.steps.tolist()
        arrivals = [*steps[1:], traj.end_call]  # the call that paid each row's rewards
        decided: list[tuple[np.ndarray, ...]] = []
        paid: list[tuple[int, tuple[np.ndarray, ...]]] = []
        calls, source, own = self.calls, traj.source, -(int(agent) + 1)
        for t, (call, g, arrival) in enumerate(zip(steps, traj.groups.tolist(), arrivals)):
            k = g if g != 0 else own  # group_key, inline: this loop runs once per trajectory row
            deciding, paying = calls.get((source, call)), calls.get((source, arrival))
            if deciding is None or paying is None:
                raise _Gone
            decided.append(deciding.decided.get(k) or _gone())
            got = paying.rewards.get(k)
            if got is not None:
                paid.append((t, got))
        # the rows of each group size at once: the agent first, then its groupmates in their order
        for size, rows in _by_size([len(d[0]) for d in decided]).items():
            ids = np.stack([decided[t][0] for t in rows])
            mine = ids == agent
            if not mine.any(axis=1).all():
                raise ValueError(f"agent {agent} is missing from its group's rows")
            order = np.argsort(~mine, axis=1, kind="stable")[:, :, None]
            obs = np.take_along_axis(np.stack([decided[t][1] for t in rows]), order, axis=1)
            members[rows, :size] = obs
            members_mask[rows, :size] = 1.0
            if size > 1:
                act = np.take_along_axis(np.stack([decided[t][2] for t in rows]), order[:, 1:], axis=1)
                if mate_obs:
                    others[rows, : size - 1, :mate_obs] = obs[:, 1:]
                others[rows, : size - 1, mate_obs:] = act
                others_mask[rows, : size - 1] = 1.0
        for at in _by_size([len(p[1][0]) for p in paid]).values():
            rows = [paid[i][0] for i in at]
            ids = np.stack([paid[i][1][0] for i in at])
            rew = np.stack([paid[i][1][1] for i in at])
            mate_rewards[rows] = np.where(ids != agent, rew, np.float32(0.0)).sum(axis=1)
        group_done = self._bootstrap_group(traj, members, members_mask)
        return GroupContext(members, members_mask, others, others_mask, mate_rewards, group_done)

    def _bootstrap_group(self, traj: Trajectory, members: np.ndarray, mask: np.ndarray) -> bool:
        """Fill row T with the group after the last row; True when the bootstrap is 0 (the group is done)."""
        assert traj.groups is not None
        k = group_key(int(traj.groups[-1]), traj.agent_id)
        rows = self._rows(traj.source, traj.end_call)
        if not traj.ends_episode:
            ids, obs, _ = rows.decided.get(k) or _gone()
            order = np.argsort(ids != traj.agent_id, kind="stable")  # self first
            members[-1, : len(ids)] = obs[order]
            mask[-1, : len(ids)] = 1.0
            return False
        on = self._continuing(rows, k)
        if on is not None:
            members[-1, : len(on[0])] = on[1]
            mask[-1, : len(on[0])] = 1.0
            return False
        if traj.terminal:
            return True
        ended = rows.ended.get(k) or _gone()
        order = np.argsort(ended[0] != traj.agent_id, kind="stable")
        members[-1, : len(ended[0])] = ended[1][order]
        mask[-1, : len(ended[0])] = 1.0
        return False

    def _rows(self, source: str, call: int) -> CallRows:
        rows = self.calls.get((source, call))
        if rows is None:
            raise _Gone
        return rows
