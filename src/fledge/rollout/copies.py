"""The environment copies an EnvPool steps (see workers.py): in this process (`LocalCopy`), in a worker process
spoken to over its stdin/stdout (`RemoteCopy`), or of another kind through a `CopyFactory` (Ray actors,
ray_workers.py); and the restart budget the pool spends when a copy fails."""

from __future__ import annotations

import json
import logging
import select
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
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
)
from fledge.errors import EnvironmentFault
from fledge.rollout import wire
from fledge.rollout.worker_process import check_fixed_behaviors, read_frame, write_frame

log = logging.getLogger("fledge")

# ----------------------------------------------------------------------------------------------
# The parent's view of copies
# ----------------------------------------------------------------------------------------------


@dataclass
class RestartBudget:
    max_lifetime_restarts: int = 10
    rate_limit_n: int = 1
    rate_limit_period_s: float = 60.0
    lifetime: int = 0
    recent: list[float] = field(default_factory=list)

    def allows(self, now: float) -> bool:
        self.recent = [t for t in self.recent if now - t < self.rate_limit_period_s]
        lifetime_ok = self.max_lifetime_restarts == -1 or self.lifetime < self.max_lifetime_restarts
        rate_ok = self.rate_limit_n == -1 or len(self.recent) < self.rate_limit_n
        return lifetime_ok and rate_ok

    def record(self, now: float) -> None:
        self.lifetime += 1
        self.recent.append(now)


class _Copy:
    """One environment copy as the pool sees it: start a step, finish it, read its steps and stats."""

    specs: dict[str, BehaviorSpec]
    steps: dict[str, tuple[DecisionSteps, TerminalSteps]]
    stats: dict[str, list[tuple[float, StatsAggregationMethod]]]
    num_areas: int | None  # training areas of the copy; None when the environment has none
    parameter_names: frozenset[str] | None  # the environment parameters the copy reads (None: any)

    def take_stats(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        stats, self.stats = self.stats, {}
        return stats

    def begin(self, command: str, actions: dict[str, ActionTuple]) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def set_parameters(self, draws: Mapping[str, Draw]) -> None:
        raise NotImplementedError

    def kill(self) -> None:
        """Stop a remote copy at once (before a restart; tests use it to crash one). Local copies: nothing."""


CopyFactory = Callable[[int, int, dict[str, Any], Mapping[str, Draw]], _Copy]
"""(copy index, seed, environment keyword arguments, its environment parameter draws) -> a started remote
copy (rollout/ray_workers.py)."""


class LocalCopy(_Copy):
    def __init__(self, env: BaseEnv, draws: Mapping[str, Draw] | None = None, *, step_delay_s: float = 0.0) -> None:
        self.env = env
        self.step_delay_s = step_delay_s
        self.stats = {}
        self._split = False  # the last step was sent with begin_step and is read back by finish_step
        self.parameter_names = env.environment_parameter_names()
        if draws:
            env.set_environment_parameters(draws)
        self.env.reset()
        self.specs = dict(env.behavior_specs)
        self.num_areas = getattr(env, "num_areas", None)
        self._read()

    def _read(self) -> None:
        check_fixed_behaviors(list(self.specs), list(self.env.behavior_specs))
        self.steps = {name: self.env.get_steps(name) for name in self.specs}
        for key, values in self.env.get_stats().items():
            self.stats.setdefault(key, []).extend(values)

    def begin(self, command: str, actions: dict[str, ActionTuple]) -> None:
        self._split = False
        if command == "reset":
            self.env.reset()
        else:
            for name, action in actions.items():
                self.env.set_actions(name, action)
            begin_step = getattr(self.env, "begin_step", None)
            if begin_step is not None:  # Unity players: every copy computes its step at the same time
                begin_step()
                self._split = True
            else:
                self.env.step()
            if self.step_delay_s:
                time.sleep(self.step_delay_s)

    def finish(self) -> None:
        if self._split:
            self.env.finish_step()  # type: ignore[attr-defined]  # present where begin_step is
        self._read()

    def close(self) -> None:
        self.env.close()

    def set_parameters(self, draws: Mapping[str, Draw]) -> None:
        self.env.set_environment_parameters(draws)


class RemoteCopy(_Copy):
    """A copy in a worker process (fledge.rollout.worker_process), spoken to over its stdin/stdout."""

    def __init__(
        self,
        *,
        env_name: str,
        seed: int,
        env_kwargs: dict[str, Any],
        timeout: float,
        label: str,
        step_delay_s: float = 0.0,
        draws: Mapping[str, Draw] | None = None,
    ) -> None:
        config = json.dumps(
            {
                "env_name": env_name,
                "seed": seed,
                "env_kwargs": env_kwargs,
                "step_delay_s": float(step_delay_s),
                "environment_parameters": draws or {},
            }
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fledge.rollout.worker_process", config],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self.inp, self.out = self.process.stdout, self.process.stdin
        self.timeout = timeout
        self.label = label
        self.stats = {}
        command, values, _ = self._receive()
        if command != "specs":
            raise wire.ProtocolError(f"{label}: expected the behavior specs first, got '{command}'")
        self.specs = wire.specs_from_json(values["specs"])
        self.num_areas = values.get("num_areas")
        names = values.get("parameters")
        self.parameter_names = None if names is None else frozenset(str(n) for n in names)
        self.names = list(self.specs)
        self.finish()

    def _receive(self) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
        ready, _, _ = select.select([self.inp], [], [], self.timeout)
        if not ready:
            raise EnvironmentFault(f"{self.label} did not answer within {self.timeout:g} s")
        try:
            message = read_frame(self.inp)
        except (EOFError, OSError) as exc:
            code = self.process.poll()
            raise EnvironmentFault(f"{self.label} stopped (exit code {code}): {exc}") from None
        command, values, arrays = wire.decode(message)
        if command == "error":
            raise EnvironmentFault(f"{self.label} failed:\n{values.get('text', '')}")
        return command, values, arrays

    def begin(self, command: str, actions: dict[str, ActionTuple]) -> None:
        arrays: dict[str, np.ndarray] = {}
        for i, name in enumerate(self.names):
            if name in actions:
                arrays[f"{i}.c"] = actions[name].continuous
                arrays[f"{i}.d"] = actions[name].discrete
        try:
            write_frame(self.out, wire.encode(command, {"behaviors": self.names}, arrays))
        except (OSError, ValueError) as exc:
            raise EnvironmentFault(f"{self.label} cannot be reached: {exc}") from None

    def set_parameters(self, draws: Mapping[str, Draw]) -> None:
        try:
            write_frame(self.out, wire.encode("parameters", {"parameters": dict(draws)}))
        except (OSError, ValueError) as exc:
            raise EnvironmentFault(f"{self.label} cannot be reached: {exc}") from None
        command, _, _ = self._receive()
        if command != "ok":
            raise wire.ProtocolError(f"{self.label}: expected 'ok' for the environment parameters, got '{command}'")

    def finish(self) -> None:
        command, values, arrays = self._receive()
        if command != "steps":
            raise wire.ProtocolError(f"{self.label}: expected steps, got '{command}'")
        self.steps = {name: wire.steps_from_arrays(i, self.specs[name], arrays) for i, name in enumerate(self.names)}
        for key, value, method in values.get("stats", []):
            self.stats.setdefault(str(key), []).append((float(value), StatsAggregationMethod(int(method))))

    def close(self) -> None:
        try:
            if self.process.poll() is None:
                write_frame(self.out, wire.encode("close"))
                self.process.wait(timeout=2.0)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5.0)
        for stream in (self.inp, self.out):
            try:
                stream.close()
            except OSError:
                pass

    def kill(self) -> None:
        """Stop the worker at once (what a crash looks like; tests use it)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5.0)
