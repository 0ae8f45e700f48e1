"""N copies of an environment as one BaseEnv, in this process or in worker processes, in lockstep.

`EnvPool` offsets each copy's agent ids (copy i, local id a -> i * 2**32 + a) so agents stay distinct,
and steps every copy once per `step()`, always in copy order, so a run with a given seed and number
of copies is reproducible. Copy i is seeded with seed + i; with `worker_ids=True` it is also built with
worker_id=i (a Unity player's port base_port + i and its log file Player-i.log). In-process copies
whose environment offers `begin_step`/`finish_step` (UnityEnvironment) send every copy's step before
waiting for any answer, so players compute their steps at the same time.

Worker processes (`python -m fledge.rollout.worker_process`) are started from a name, a seed and
JSON-able keyword arguments, and exchange only JSON headers and raw arrays over their stdin/stdout
(see wire.py): nothing is pickled, and scripts need no `if __name__ == "__main__"` guard. A worker
that dies, fails or stops answering within `timeout_wait` seconds is restarted while its restart
budget allows (`max_lifetime_restarts` over the run, `restarts_rate_limit_n` within
`restarts_rate_limit_period_s`; -1 = unlimited); its agents' partial trajectories are dropped
(`take_dropped_agents`) and counted in the custom stat "Environment/Lost Trajectories" (summed over a
summary period). Beyond the budget a WorkerCrashError stops the run.

Other kinds of remote copies (Ray actors, rollout/ray_workers.py) plug in through `remote`, a factory
that the pool calls for copy i with its seed and keyword arguments, at start and after each failure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from fledge.curriculum.samplers import Draw
from fledge.envs.api import (
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    StatsAggregationMethod,
    TerminalSteps,
    require_behavior,
    validate_actions,
)
from fledge.errors import ActionError, EnvironmentFault
from fledge.rollout.copies import CopyFactory, LocalCopy, RemoteCopy, RestartBudget, _Copy

__all__ = ["ID_STRIDE", "LOST_TRAJECTORIES", "EnvPool", "RestartBudget", "WorkerCrashError"]

log = logging.getLogger("fledge")

ID_STRIDE = 1 << 32
LOST_TRAJECTORIES = "Environment/Lost Trajectories"
"""Custom stat (summed): partial trajectories dropped because their environment copy failed and was restarted."""


class WorkerCrashError(EnvironmentFault):
    """An environment worker failed more often than its restart budget allows."""


# ----------------------------------------------------------------------------------------------
# The pool
# ----------------------------------------------------------------------------------------------


class EnvPool(BaseEnv):
    def __init__(
        self,
        *,
        env_name: str,
        copies: int,
        seed: int,
        processes: bool,
        env_kwargs: dict[str, Any] | None = None,
        timeout: float = 60.0,
        budget: RestartBudget | None = None,
        worker_ids: bool = False,
        remote: CopyFactory | None = None,
        step_delay_s: float = 0.0,
        copies_per_remote: int = 1,
        draws: Mapping[str, Draw] | None = None,
        stream_base: int = 0,
    ) -> None:
        self.env_name = env_name
        self.draws: dict[str, Draw] = {
            name: dict(draw) for name, draw in (draws or {}).items()
        }  # environment parameters; a restarted copy gets them too
        self.stream_base = int(stream_base)  # copy i draws from stream stream_base + i (a pool inside an actor)
        self.worker_ids = worker_ids  # copy i gets worker_id=i (Unity players: its port and log file)
        self.n = int(copies)
        self.seed_base = int(seed)
        self.processes = processes
        self.remote = remote  # when given, it starts every copy (and `processes` is not used)
        # a remote copy that is itself a pool of k copies (a Ray actor hosting k environments) takes the ids
        # of k copies: copy i's agents get ids from i * k * ID_STRIDE, as k separate copies would
        self.id_stride = ID_STRIDE * int(copies_per_remote)
        self.step_delay_s = float(step_delay_s)  # benchmarks: every step of every copy made this much slower
        self.lost_trajectories = 0  # over the pool's life; the stat reports them per summary period
        self._lost_unreported = 0
        self.env_kwargs = dict(env_kwargs or {})
        self.timeout = float(timeout)
        self.template = budget or RestartBudget()
        self.budgets = [
            RestartBudget(
                self.template.max_lifetime_restarts, self.template.rate_limit_n, self.template.rate_limit_period_s
            )
            for _ in range(self.n)
        ]
        self.copies: list[_Copy] = [self._start(i) for i in range(self.n)]
        self._specs = self.copies[0].specs
        self.num_areas = self.copies[0].num_areas  # per copy; None when the environment has no areas
        for i, c in enumerate(self.copies[1:], start=1):
            if c.specs != self._specs:
                raise EnvironmentFault(f"environment copy {i} has other behavior specs than copy 0")
        self._pending: list[dict[str, ActionTuple]] = [{} for _ in range(self.n)]
        self._merged: dict[str, tuple[DecisionSteps, TerminalSteps]] = {}
        self._dropped: dict[str, list[np.ndarray]] = {}
        self.steps_done = 0
        self._merge()

    def _start(self, i: int) -> _Copy:
        kwargs = {**self.env_kwargs, "worker_id": i} if self.worker_ids else self.env_kwargs
        draws = self._copy_draws(i)
        if self.remote is not None:
            return self.remote(i, self.seed_base + i, kwargs, draws)
        if self.processes:
            return RemoteCopy(
                env_name=self.env_name,
                seed=self.seed_base + i,
                env_kwargs=kwargs,
                timeout=self.timeout,
                label=f"environment worker {i}",
                step_delay_s=self.step_delay_s,
                draws=draws,
            )
        from fledge.envs import registry

        env = registry.make(self.env_name, seed=self.seed_base + i, **kwargs)
        try:
            return LocalCopy(env, draws, step_delay_s=self.step_delay_s)
        except Exception:
            env.close()
            raise

    def _copy_draws(self, i: int) -> dict[str, Draw]:
        """Copy i draws from its own stream of each sampler (else every copy would draw the same values)."""
        return {name: {**draw, "stream": self.stream_base + i} for name, draw in self.draws.items()}

    def environment_parameter_names(self) -> frozenset[str] | None:
        return self.copies[0].parameter_names

    def set_environment_parameters(self, draws: Mapping[str, Mapping[str, Any]]) -> None:
        """New lesson values for every copy (in order; a copy that cannot be reached is restarted with them)."""
        known = self.copies[0].parameter_names
        if known is not None and any(name not in known for name in draws):
            from fledge.envs.builtin.parameters import unknown_parameters_error

            raise unknown_parameters_error(self.env_name, [n for n in draws if n not in known], sorted(known))
        self.draws = {name: dict(draw) for name, draw in draws.items()}
        for i, c in enumerate(self.copies):
            try:
                c.set_parameters(self._copy_draws(i))
            except EnvironmentFault as exc:
                self._restart(i, exc)
        self._merge()

    @property
    def num_copies(self) -> int:
        return self.n

    # -- BaseEnv ----------------------------------------------------------------------------------
    @property
    def behavior_specs(self) -> Mapping[str, BehaviorSpec]:
        return self._specs

    def reset(self) -> None:
        self._run_all("reset")

    def step(self) -> None:
        self._run_all("step")
        self.steps_done += 1

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        require_behavior(self._specs, behavior_name)
        return self._merged[behavior_name]

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        decision = self._merged[behavior_name][0]
        action = validate_actions(behavior_name, spec.action_spec, action, len(decision))
        start = 0
        for i, c in enumerate(self.copies):
            rows = len(c.steps[behavior_name][0])
            self._pending[i][behavior_name] = ActionTuple(
                action.continuous[start : start + rows], action.discrete[start : start + rows]
            )
            start += rows

    def set_action_for_agent(self, behavior_name: str, agent_id: int, action: ActionTuple) -> None:
        raise ActionError("EnvPool takes actions for all agents at once; use set_actions.")

    def get_stats(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        """Custom stats of all copies; MOST_RECENT values only from copy 0 (as ML-Agents)."""
        merged: dict[str, list[tuple[float, StatsAggregationMethod]]] = {}
        for i, c in enumerate(self.copies):
            for key, values in c.take_stats().items():
                kept = [v for v in values if i == 0 or v[1] != StatsAggregationMethod.MOST_RECENT]
                if kept:
                    merged.setdefault(key, []).extend(kept)
        if self._lost_unreported:
            merged.setdefault(LOST_TRAJECTORIES, []).append((float(self._lost_unreported), StatsAggregationMethod.SUM))
            self._lost_unreported = 0
        return merged

    def close(self) -> None:
        for c in self.copies:
            c.close()

    # -- crashes ----------------------------------------------------------------------------------
    def take_dropped_agents(self) -> dict[str, np.ndarray]:
        """Global ids of agents whose copy was restarted since the last call: forget their partial data."""
        out = {name: np.concatenate(ids) for name, ids in self._dropped.items() if ids}
        self._dropped = {}
        return out

    def _run_all(self, command: str) -> None:
        failures: dict[int, EnvironmentFault] = {}
        for i, c in enumerate(self.copies):
            try:
                c.begin(command, self._pending[i])
            except EnvironmentFault as exc:
                failures[i] = exc
            self._pending[i] = {}
        self._gather([c for i, c in enumerate(self.copies) if i not in failures])
        for i, c in enumerate(self.copies):
            if i in failures:
                continue
            try:
                c.finish()
            except EnvironmentFault as exc:
                failures[i] = exc
        for i, fault in failures.items():
            self._restart(i, fault)
        self._merge()

    def _gather(self, started: list[_Copy]) -> None:
        """Between sending every step and reading the answers in copy order: a kind of copy that can wait for
        all its answers at once does it here (Ray actors: one ray.get). Nothing for in-process and worker copies."""

    def _restart(self, i: int, exc: EnvironmentFault) -> None:
        budget = self.budgets[i]
        now = time.monotonic()
        old = self.copies[i]
        if not budget.allows(now):
            limit = (
                f"max_lifetime_restarts={budget.max_lifetime_restarts}, restarts_rate_limit_n={budget.rate_limit_n} "
                f"per {budget.rate_limit_period_s:g} s"
            )
            raise WorkerCrashError(
                f"Environment worker {i} failed and its restart budget is used up ({budget.lifetime} restarts; "
                f"{limit}). Last failure: {exc}\nThe run stops here with its checkpoints intact; fix the environment "
                "and continue with --resume, or raise --max-lifetime-restarts / --restarts-rate-limit-n."
            )
        budget.record(now)
        log.warning("Restarting environment worker %d after: %s", i, str(exc).splitlines()[0])
        lost = 0
        for name, (decision, terminal) in old.steps.items():
            ids = np.concatenate([decision.agent_id, terminal.agent_id]).astype(np.int64) + i * self.id_stride
            self._dropped.setdefault(name, []).append(ids)
            lost += len(decision.agent_id)  # each agent that was deciding had a trajectory under way
        self.lost_trajectories += lost
        self._lost_unreported += lost
        try:
            old.kill()
        except Exception:
            pass
        try:
            old.close()
        except Exception:
            pass
        self.copies[i] = self._start(i)

    def _merge(self) -> None:
        merged = {}
        for name in self._specs:
            parts = [c.steps[name] for c in self.copies]
            merged[name] = (
                _concat_decisions([p[0] for p in parts], self.id_stride),
                _concat_terminals([p[1] for p in parts], self.id_stride),
            )
        self._merged = merged


def _global_ids(parts: list[np.ndarray], stride: int) -> np.ndarray:
    return np.concatenate([p.astype(np.int64) + i * stride for i, p in enumerate(parts)])


def _global_groups(parts: list[np.ndarray], stride: int) -> np.ndarray:
    """Group ids made global as agent ids are (0, no group, stays 0): copies' groups never merge."""
    return np.concatenate([np.where(p != 0, p.astype(np.int64) + i * stride, 0) for i, p in enumerate(parts)])


def _concat_decisions(parts: list[DecisionSteps], stride: int = ID_STRIDE) -> DecisionSteps:
    masks = None
    if any(p.action_mask is not None for p in parts):
        n_branches = max(len(p.action_mask) for p in parts if p.action_mask is not None)
        masks = []
        for b in range(n_branches):
            pieces = []
            for p in parts:
                if p.action_mask is not None:
                    pieces.append(p.action_mask[b])
                else:
                    size = next(q.action_mask[b].shape[1] for q in parts if q.action_mask is not None)
                    pieces.append(np.zeros((len(p.agent_id), size), dtype=bool))
            masks.append(np.concatenate(pieces))
    return DecisionSteps(
        obs=[np.concatenate([p.obs[k] for p in parts]) for k in range(len(parts[0].obs))],
        reward=np.concatenate([p.reward for p in parts]),
        agent_id=_global_ids([p.agent_id for p in parts], stride),
        action_mask=masks,
        group_id=_global_groups([p.group_id for p in parts], stride),
        group_reward=np.concatenate([p.group_reward for p in parts]),
    )


def _concat_terminals(parts: list[TerminalSteps], stride: int = ID_STRIDE) -> TerminalSteps:
    return TerminalSteps(
        obs=[np.concatenate([p.obs[k] for p in parts]) for k in range(len(parts[0].obs))],
        reward=np.concatenate([p.reward for p in parts]),
        interrupted=np.concatenate([p.interrupted for p in parts]),
        agent_id=_global_ids([p.agent_id for p in parts], stride),
        group_id=_global_groups([p.group_id for p in parts], stride),
        group_reward=np.concatenate([p.group_reward for p in parts]),
    )
