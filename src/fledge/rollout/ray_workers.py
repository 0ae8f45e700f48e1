"""Environment copies in Ray actors, stepped in lockstep like the worker processes (`workers: ray`).

`make_ray_pool` connects to Ray (a local instance started for the run, or a running cluster at `address`:
"auto" or "host:port"), checks that the cluster has the CPUs the actors ask for, and returns an `EnvPool`
whose copies are `RayCopy` objects, each one actor (`EnvHost`) placed on any node of the cluster (Ray's
SPREAD strategy, `num_cpus` reserved per actor). An actor hosts one environment copy, or with
`envs_per_worker` k the copies i*k .. i*k + k - 1 stepped together inside it; either way copy c is
seeded seed + c and its agents have the ids of copy c, as with worker processes. Every environment
kind a worker process hosts works here (built-in, `gym:`, `pettingzoo:`, Unity players, one per actor):
the actor builds it through the registry where it runs.

What moves: the environment's name, seed and keyword arguments as one JSON string at start; then per
step one message of the worker wire format (wire.py: a JSON header and raw array bytes) each way,
as a plain `bytes` object through Ray: the command and the actions out, the steps and the stats back.
No object of the run's state is sent, and what comes back is decoded like a worker process's answer
(plain numeric dtypes only), so Ray's own serialisation only ever carries bytes.

Lockstep: the pool sends every copy's step before it waits for any answer, so the actors compute
their steps at the same time; it fetches all the answers with one `ray.get` (each get costs the trainer
CPU) and reads them in copy order, which keeps a seeded run the same as with worker processes. The
actors record no task events (Ray's state API would get one per step). A failed actor (killed, node
lost, environment error, no answer within `timeout_wait`) is an EnvironmentFault for the pool, which
restarts the copy as a new actor within the run's restart budget, drops its agents' partial
trajectories and counts them in the stat "Environment/Lost Trajectories".

Ray is imported only here, and only when a run asks for Ray workers (`pip install fledge[ray]`).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fledge.curriculum.samplers import Draw
from fledge.envs.api import ActionTuple, BaseEnv, StatsAggregationMethod
from fledge.errors import ConfigError, EnvironmentFault
from fledge.rollout import wire
from fledge.rollout.copies import RestartBudget, _Copy
from fledge.rollout.ray_connect import (
    RayConnection,
    connect,
)
from fledge.rollout.workers import EnvPool

if TYPE_CHECKING:
    from types import ModuleType

log = logging.getLogger("fledge")

Arrays = dict[str, np.ndarray]


# ----------------------------------------------------------------------------------------------
# The actor (runs wherever Ray places it)
# ----------------------------------------------------------------------------------------------


class EnvHost:
    """The environment copies of one Ray actor, built from a JSON config and stepped by wire messages (bytes):
    one environment, or with "copies" k > 1 an in-process pool of k copies seeded seed .. seed + k - 1."""

    def __init__(self, config: str) -> None:
        from fledge.envs import registry

        values = json.loads(config)
        name, seed, kwargs = values["env_name"], int(values["seed"]), values.get("env_kwargs", {})
        self.copies = int(values.get("copies", 1))
        draws = values.get("environment_parameters") or {}
        self.env: BaseEnv
        if self.copies > 1:  # its copies are reset as they start, as a pool's in-process copies are
            self.env = EnvPool(
                env_name=name,
                copies=self.copies,
                seed=seed,
                processes=False,
                env_kwargs=kwargs,
                draws=draws,
                stream_base=self._stream(draws),
            )
        else:
            self.env = registry.make(name, seed=seed, **kwargs)
            if draws:
                self.env.set_environment_parameters(draws)  # before the first episode
            self.env.reset()
        self.delay = float(values.get("step_delay_s", 0.0))
        self.names = list(self.env.behavior_specs)

    def start(self) -> bytes:
        """The specs, where the actor runs, and the first steps."""
        import ray

        extra = {
            "specs": wire.specs_to_json(dict(self.env.behavior_specs)),
            "num_areas": getattr(self.env, "num_areas", None),
            "node_id": ray.get_runtime_context().get_node_id(),
            "parameters": None if (known := self.env.environment_parameter_names()) is None else sorted(known),
            "pid": os.getpid(),
        }
        return self._steps("specs", extra)

    def step(self, message: bytes) -> bytes:
        from fledge.rollout.worker_process import check_fixed_behaviors

        command, _, actions = wire.decode(message)
        if command == "reset":
            self.env.reset()
        elif command == "step":
            for i, name in enumerate(self.names):
                if f"{i}.c" in actions:
                    self.env.set_actions(name, ActionTuple(actions[f"{i}.c"], actions[f"{i}.d"]))
            self.env.step()
            if self.delay:
                time.sleep(self.delay)
        else:
            raise wire.ProtocolError(f"unknown command '{command}'")
        check_fixed_behaviors(self.names, list(self.env.behavior_specs))
        return self._steps("steps", {})

    def set_parameters(self, message: str) -> bytes:
        """New environment parameter draws (JSON), applied at the next episode starts."""
        draws = json.loads(message)
        if isinstance(self.env, EnvPool):
            self.env.stream_base = self._stream(draws)
        self.env.set_environment_parameters(draws)
        return b"ok"

    def _stream(self, draws: dict[str, Any]) -> int:
        """The first sampler stream of this actor's copies: actor a (its draws carry stream a) hosts copies
        a*k .. a*k + k - 1."""
        streams = [int(draw.get("stream", 0)) for draw in draws.values()]
        return self.copies * streams[0] if streams else 0

    def close(self) -> None:
        self.env.close()

    def ping(self) -> bytes:
        return b""

    def set_delay(self, seconds: float) -> bytes:
        """Make every later step this much slower (benchmarks; tests of a late actor)."""
        self.delay = float(seconds)
        return b"ok"

    def _steps(self, command: str, values: dict[str, Any]) -> bytes:
        arrays: Arrays = {}
        for i, name in enumerate(self.names):
            arrays.update(wire.steps_to_arrays(i, *self.env.get_steps(name)))
        stats = [[k, v, int(m)] for k, values in self.env.get_stats().items() for v, m in values]
        return wire.encode(command, {**values, "stats": stats}, arrays)


# ----------------------------------------------------------------------------------------------
# The pool's side
# ----------------------------------------------------------------------------------------------


class RayCopy(_Copy):
    """A copy in a Ray actor: `begin` sends the step, `finish` waits for its answer (`timeout` seconds)."""

    def __init__(self, *, actor_class: Any, ray: ModuleType, config: str, num_cpus: float, timeout: float, label: str):
        self.ray = ray
        self.timeout = timeout
        self.label = label
        self.stats = {}
        self.answer: bytes | None = None  # this step's answer when the pool fetched it already
        self.wait_full = True  # False once the pool's wait for all answers ran out of time
        # enable_task_events=False: Ray records no state-API event for each of the actor's calls (a step each)
        self.actor = actor_class.options(
            num_cpus=num_cpus, max_restarts=0, scheduling_strategy="SPREAD", enable_task_events=False
        ).remote(config)
        self.ref: Any = self.actor.start.remote()
        values, arrays = self._wait("start", "specs")
        self.specs = wire.specs_from_json(values["specs"])
        self.num_areas = values.get("num_areas")
        self.node_id = str(values.get("node_id"))
        self.pid = int(values.get("pid", -1))
        names = values.get("parameters")
        self.parameter_names = None if names is None else frozenset(str(n) for n in names)
        self.names = list(self.specs)
        self._read(values, arrays)

    def _wait(self, what: str, expected: str) -> tuple[dict[str, Any], Arrays]:
        ray = self.ray
        try:
            if self.answer is not None:  # fetched with the other actors' answers (RayEnvPool._gather)
                message = self.answer
            else:
                message = ray.get(self.ref, timeout=self.timeout if self.wait_full else 0.0)
        except ray.exceptions.GetTimeoutError:
            raise EnvironmentFault(
                f"{self.label} did not answer its {what} within {self.timeout:g} s (env_settings.timeout_wait); "
                "on a cluster, check that its nodes have the CPUs the actors ask for (ray status)"
            ) from None
        except ray.exceptions.RayActorError as exc:
            raise EnvironmentFault(f"{self.label} (Ray actor) died: {str(exc).splitlines()[0]}") from None
        except ray.exceptions.RayError as exc:
            raise EnvironmentFault(f"{self.label} failed:\n{exc}") from None
        finally:
            self.ref, self.answer, self.wait_full = None, None, True
        if not isinstance(message, bytes):
            raise wire.ProtocolError(f"{self.label} sent {type(message).__name__} instead of a wire message")
        command, values, arrays = wire.decode(message)  # plain numeric arrays only
        if command != expected:
            raise wire.ProtocolError(f"{self.label}: expected {expected}, got '{command}'")
        return values, arrays

    def _read(self, values: dict[str, Any], arrays: Arrays) -> None:
        self.steps = {name: wire.steps_from_arrays(i, self.specs[name], arrays) for i, name in enumerate(self.names)}
        for key, value, method in values.get("stats", []):
            self.stats.setdefault(str(key), []).append((float(value), StatsAggregationMethod(int(method))))

    def set_parameters(self, draws: Mapping[str, Draw]) -> None:
        ray = self.ray
        try:
            answer = ray.get(self.actor.set_parameters.remote(json.dumps(dict(draws))), timeout=self.timeout)
        except ray.exceptions.RayError as exc:
            raise EnvironmentFault(f"{self.label} did not take its environment parameters: {exc}") from None
        if answer != b"ok":
            raise wire.ProtocolError(f"{self.label}: expected 'ok' for the environment parameters")

    def begin(self, command: str, actions: dict[str, ActionTuple]) -> None:
        arrays: Arrays = {}
        for i, name in enumerate(self.names):
            if name in actions:
                arrays[f"{i}.c"] = actions[name].continuous
                arrays[f"{i}.d"] = actions[name].discrete
        self.answer, self.wait_full = None, True  # nothing of an earlier step is read for this one
        try:
            self.ref = self.actor.step.remote(wire.encode(command, {}, arrays))
        except self.ray.exceptions.RayError as exc:
            raise EnvironmentFault(f"{self.label} cannot be reached: {exc}") from None

    def finish(self) -> None:
        values, arrays = self._wait("step", "steps")
        self._read(values, arrays)

    def close(self) -> None:
        try:
            self.ray.get(self.actor.close.remote(), timeout=5.0)
        except Exception:
            pass
        self.kill()

    def kill(self) -> None:
        """End the actor at once (what a lost node looks like; tests use it). ray.kill only asks; this waits
        (5 s at most) until the actor answers no more, so that no step sent after it can still succeed."""
        ray = self.ray
        try:
            ray.kill(self.actor, no_restart=True)
        except Exception:
            return
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            try:
                ray.get(self.actor.ping.remote(), timeout=1.0)
            except ray.exceptions.RayActorError:
                return
            except Exception:
                pass
            time.sleep(0.01)


class RayCopies:
    """The pool's factory of copies: copy i with its seed and keyword arguments as a new actor."""

    def __init__(
        self,
        *,
        ray: ModuleType,
        env_name: str,
        num_cpus: float,
        timeout: float,
        seed: int,
        per_actor: int = 1,
        step_delay_s: float = 0.0,
    ) -> None:
        self.ray = ray
        self.seed = int(seed)
        self.per_actor = int(per_actor)
        self.env_name = env_name
        self.num_cpus = float(num_cpus)
        self.timeout = float(timeout)
        self.step_delay_s = float(step_delay_s)
        self.actor_class = ray.remote(EnvHost)

    def __call__(self, index: int, seed: int, env_kwargs: dict[str, Any], draws: Mapping[str, Draw]) -> RayCopy:
        """Actor `index`; it hosts the copies index * k .. index * k + k - 1, seeded as those copies would be
        (the pool's own seed + index is right only for k = 1)."""
        config = {
            "env_name": self.env_name,
            "seed": self.seed + index * self.per_actor,
            "copies": self.per_actor,
            "env_kwargs": env_kwargs,
            "step_delay_s": self.step_delay_s,
            "environment_parameters": dict(draws),
        }
        try:
            text = json.dumps(config)
        except TypeError as exc:
            raise ConfigError(f"env_settings.env_args must be plain values for Ray workers: {exc}") from None
        return RayCopy(
            actor_class=self.actor_class,
            ray=self.ray,
            config=text,
            num_cpus=self.num_cpus,
            timeout=self.timeout,
            label=f"environment worker {index}",
        )


class RayEnvPool(EnvPool):
    """An EnvPool of Ray actors that also ends its link to Ray when it closes."""

    def __init__(self, *, connection: RayConnection, **pool: Any) -> None:
        self.connection = connection
        super().__init__(**pool)

    def _gather(self, started: list[_Copy]) -> None:
        """Every actor's answer with one ray.get (each get costs the trainer a fixed share of CPU, a large part
        of a Ray step's cost), within one `timeout_wait` for all. When one actor failed or was late, each copy
        reads its own answer instead, so that the failure is its own and the others keep their steps; after a
        timeout those reads do not wait again."""
        copies = [c for c in started if isinstance(c, RayCopy) and c.ref is not None]
        if len(copies) < 2:
            return
        ray = self.connection.ray
        try:
            answers = ray.get([c.ref for c in copies], timeout=self.timeout)
        except ray.exceptions.GetTimeoutError:
            for c in copies:
                c.wait_full = False
            return
        except ray.exceptions.RayError:
            return
        for c, answer in zip(copies, answers):
            c.answer = answer

    def nodes(self) -> list[str]:
        """The Ray node of each copy, in copy order."""
        return [c.node_id for c in self.copies if isinstance(c, RayCopy)]

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.connection.close()


def make_ray_pool(
    *,
    env_name: str,
    copies: int,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    address: str | None = None,
    num_cpus: float = 1.0,
    timeout: float = 60.0,
    budget: RestartBudget | None = None,
    worker_ids: bool = False,
    step_delay_s: float = 0.0,
    envs_per_worker: int = 1,
    draws: Mapping[str, Draw] | None = None,
) -> RayEnvPool:
    """`copies` environment copies in Ray actors, `envs_per_worker` of them in each, copy i seeded seed + i
    (see the module's text). The agent ids are those of `copies` separate copies, so a seeded run is the
    same whatever the number of copies per actor."""
    k = int(envs_per_worker)
    if k < 1 or copies % k:
        raise ConfigError(
            f"env_settings.ray_envs_per_worker: {k} must divide num_envs ({copies}) so that every Ray actor hosts "
            "as many copies; choose a divisor of num_envs."
        )
    if k > 1 and worker_ids:
        raise ConfigError(
            "env_settings.ray_envs_per_worker: Unity players need one actor each (each player has its own port); "
            "set ray_envs_per_worker to 1."
        )
    actors = copies // k
    connection = connect(address, cpus_needed=actors * num_cpus)
    factory = RayCopies(
        ray=connection.ray,
        env_name=env_name,
        num_cpus=num_cpus,
        timeout=timeout,
        seed=seed,
        per_actor=k,
        step_delay_s=step_delay_s,
    )
    try:
        return RayEnvPool(
            connection=connection,
            env_name=env_name,
            copies=actors,
            seed=seed,
            processes=False,
            env_kwargs=env_kwargs,
            timeout=timeout,
            budget=budget,
            worker_ids=worker_ids,
            remote=factory,
            draws=draws,
            step_delay_s=step_delay_s,
            copies_per_remote=k,
        )
    except BaseException:
        connection.close()
        raise
