"""Environment copies in Ray actors, stepped in lockstep like the worker processes (`workers: ray`).

`make_ray_pool` connects to Ray (a local instance started for the run, or a running cluster at `address`:
"auto" or "host:port"), checks that the cluster has the CPUs the actors ask for, and returns an `EnvPool`
whose copies are `RayCopy` objects, each one actor (`EnvHost`) placed on any node of the cluster (Ray's
SPREAD strategy, `num_cpus` reserved per actor). An actor hosts one environment copy, or with
`envs_per_worker` k the copies i*k .. i*k + k - 1 stepped together inside it; either way copy c is
seeded seed + c and its agents have the ids of copy c, as with worker processes. Every environment
kind a worker process hosts works here (built-in, `gym:`, `pettingzoo:`, Unity players, one per actor):
the actor builds it through the registry where it runs.

What moves: the environment's name, seed, keyword arguments and a fresh secret as one JSON string at
start (through Ray); then per step one message of the worker wire format (wire.py: a JSON header and raw
array bytes) each way. By default these go over a direct TCP connection from the pool to each actor
(ray_host.py: the actor listens on a port of its node, the pool connects and sends the secret first), so
a step costs neither side a Ray call; where that port cannot be reached the copy falls back, with a
warning, to one Ray actor call per step carrying the message as `bytes` (`direct=False` asks for that
path). No object of the run's state is sent, and what comes back is decoded like a worker process's
answer (plain numeric dtypes only).

Lockstep: the pool sends every copy's step before it waits for any answer, so the actors compute
their steps at the same time, and reads the answers in copy order, which keeps a seeded run the same as
with worker processes (on the actor-call path it fetches all the answers with one `ray.get`, each get
costing the trainer CPU). The actors record no task events (Ray's state API would get one per call). A
failed actor (killed, node lost, environment error, connection closed, no answer within `timeout_wait`)
is an EnvironmentFault for the pool, which restarts the copy as a new actor within the run's restart
budget, drops its agents' partial trajectories and counts them in the stat "Environment/Lost Trajectories".

Ray is imported only here, and only when a run asks for Ray workers (`pip install fledge[ray]`).
"""

from __future__ import annotations

import json
import logging
import secrets
import select
import socket
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from fledge.curriculum.samplers import Draw
from fledge.envs.api import ActionTuple, StatsAggregationMethod
from fledge.errors import ConfigError, EnvironmentFault
from fledge.rollout import wire
from fledge.rollout.copies import RestartBudget, _Copy
from fledge.rollout.ray_connect import (
    RayConnection,
    connect,
)
from fledge.rollout.ray_host import EnvHost, recv_frame, send_frame
from fledge.rollout.workers import EnvPool

if TYPE_CHECKING:
    from types import ModuleType

log = logging.getLogger("fledge")

Arrays = dict[str, np.ndarray]
CONNECT_TIMEOUT_S = 10.0  # to open the direct connection to an actor that has started


# ----------------------------------------------------------------------------------------------
# The pool's side
# ----------------------------------------------------------------------------------------------


class RayCopy(_Copy):
    """A copy in a Ray actor: `begin` sends the step, `finish` waits for its answer (`timeout` seconds). With a
    `secret` the steps go over a direct connection to the actor (ray_host.py), else through actor calls."""

    def __init__(
        self, *, actor_class: Any, ray: ModuleType, config: str, num_cpus: float, timeout: float, label: str
    ) -> None:
        self.ray = ray
        self.timeout = timeout
        self.label = label
        self.stats = {}
        self.answer: bytes | None = None  # this step's answer when the pool fetched it already
        self.wait_full = True  # False once the pool's wait for all answers ran out of time
        self.sock: socket.socket | None = None  # the direct connection, when there is one
        self.deadline = 0.0  # when the answer to the message sent over the connection is late
        self.serving: Any = None  # the actor's call that serves the connection (it ends with the connection)
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
        secret = json.loads(config).get("secret")
        if values.get("address") is not None and secret:
            self._connect(values["address"], secret)

    def _connect(self, address: list[Any], secret: str) -> None:
        """Open the direct connection to the actor; where its port cannot be reached, stay with actor calls."""
        host, port = str(address[0]), int(address[1])
        try:
            sock = socket.create_connection((host, port), timeout=min(self.timeout, CONNECT_TIMEOUT_S))
        except OSError as exc:
            log.warning(
                "%s: no direct connection to its Ray actor at %s:%d (%s); its steps go through Ray's actor calls, "
                "which cost more CPU per step (open the nodes' ports to the trainer to avoid this)",
                self.label,
                host,
                port,
                exc,
            )
            return
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self.timeout)
        try:
            send_frame(sock, secret.encode())
        except OSError as exc:
            sock.close()
            self.kill()
            raise EnvironmentFault(f"{self.label}: its Ray actor's connection failed at once: {exc}") from None
        self.sock = sock
        self.serving = self.actor.serve.remote(self.timeout)  # from now on the actor answers on the connection

    def _wait(self, what: str, expected: str) -> tuple[dict[str, Any], Arrays]:
        if self.sock is not None:
            return self._receive(what, expected)
        ray = self.ray
        try:
            if self.answer is not None:  # fetched with the other actors' answers (RayEnvPool._gather)
                message = self.answer
            else:
                message = ray.get(self.ref, timeout=self.timeout if self.wait_full else 0.0)
        except ray.exceptions.GetTimeoutError:
            raise self._late(what) from None
        except ray.exceptions.RayActorError as exc:
            raise EnvironmentFault(f"{self.label} (Ray actor) died: {str(exc).splitlines()[0]}") from None
        except ray.exceptions.RayError as exc:
            raise EnvironmentFault(f"{self.label} failed:\n{exc}") from None
        finally:
            self.ref, self.answer, self.wait_full = None, None, True
        if not isinstance(message, bytes):
            raise wire.ProtocolError(f"{self.label} sent {type(message).__name__} instead of a wire message")
        return self._decode(message, expected)

    def _late(self, what: str) -> EnvironmentFault:
        return EnvironmentFault(
            f"{self.label} did not answer its {what} within {self.timeout:g} s (env_settings.timeout_wait); "
            "on a cluster, check that its nodes have the CPUs the actors ask for (ray status)"
        )

    def _receive(self, what: str, expected: str) -> tuple[dict[str, Any], Arrays]:
        """The answer over the direct connection, by the deadline set when its message was sent."""
        assert self.sock is not None
        try:
            ready, _, _ = select.select([self.sock], [], [], max(self.deadline - time.monotonic(), 0.0))
            if not ready:
                raise self._late(what)
            message = recv_frame(self.sock)
        except (OSError, EOFError, ValueError) as exc:  # ValueError: the connection was closed here (kill)
            raise EnvironmentFault(f"{self.label} (Ray actor) stopped answering: {exc}") from None
        return self._decode(message, expected)

    def _decode(self, message: bytes, expected: str) -> tuple[dict[str, Any], Arrays]:
        command, values, arrays = wire.decode(message)  # plain numeric arrays only
        if command == "error":
            raise EnvironmentFault(f"{self.label} failed:\n{values.get('text', '')}")
        if command != expected:
            raise wire.ProtocolError(f"{self.label}: expected {expected}, got '{command}'")
        return values, arrays

    def _send(self, message: bytes) -> None:
        assert self.sock is not None
        try:
            send_frame(self.sock, message)
        except (OSError, ValueError) as exc:
            raise EnvironmentFault(f"{self.label} cannot be reached: {exc}") from None
        self.deadline = time.monotonic() + self.timeout

    def _read(self, values: dict[str, Any], arrays: Arrays) -> None:
        self.steps = {name: wire.steps_from_arrays(i, self.specs[name], arrays) for i, name in enumerate(self.names)}
        for key, value, method in values.get("stats", []):
            self.stats.setdefault(str(key), []).append((float(value), StatsAggregationMethod(int(method))))

    def set_parameters(self, draws: Mapping[str, Draw]) -> None:
        if self.sock is not None:
            self._send(wire.encode("parameters", {"parameters": dict(draws)}))
            self._receive("environment parameters", "ok")
            return
        ray = self.ray
        try:
            answer = ray.get(self.actor.set_parameters.remote(json.dumps(dict(draws))), timeout=self.timeout)
        except ray.exceptions.RayError as exc:
            raise EnvironmentFault(f"{self.label} did not take its environment parameters: {exc}") from None
        if answer != b"ok":
            raise wire.ProtocolError(f"{self.label}: expected 'ok' for the environment parameters")

    def set_delay(self, seconds: float) -> None:
        """Make every later step of the actor this much slower (benchmarks; tests of a late actor)."""
        if self.sock is not None:
            self._send(wire.encode("delay", {"seconds": float(seconds)}))
            self._receive("delay", "ok")
        else:
            self.ray.get(self.actor.set_delay.remote(float(seconds)), timeout=self.timeout)

    def begin(self, command: str, actions: dict[str, ActionTuple]) -> None:
        arrays: Arrays = {}
        for i, name in enumerate(self.names):
            if name in actions:
                arrays[f"{i}.c"] = actions[name].continuous
                arrays[f"{i}.d"] = actions[name].discrete
        message = wire.encode(command, {}, arrays)
        if self.sock is not None:
            self._send(message)
            return
        self.answer, self.wait_full = None, True  # nothing of an earlier step is read for this one
        try:
            self.ref = self.actor.step.remote(message)
        except self.ray.exceptions.RayError as exc:
            raise EnvironmentFault(f"{self.label} cannot be reached: {exc}") from None

    def finish(self) -> None:
        values, arrays = self._wait("step", "steps")
        self._read(values, arrays)

    def close(self) -> None:
        try:
            if self.sock is not None:
                if self.sock.fileno() != -1:
                    self._send(wire.encode("close"))
                    self.deadline = time.monotonic() + min(self.timeout, 5.0)
                    self._receive("close", "closed")
            else:
                self.ray.get(self.actor.close.remote(), timeout=5.0)
        except Exception:
            pass
        self.kill()
        if self.sock is not None:
            self.sock.close()

    def kill(self) -> None:
        """End the actor at once (what a lost node looks like; tests use it, from another thread too). ray.kill
        only asks; this waits (5 s at most) until the actor answers no more, so that no step sent after it can
        still succeed. The connection is shut down first (not closed: a wait on it in another thread ends)."""
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
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
        direct: bool = True,
    ) -> None:
        self.ray = ray
        self.direct = direct  # steps over a direct connection to each actor (else through actor calls)
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
            "secret": secrets.token_hex(16) if self.direct else "",  # what the actor's connection must begin with
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
    direct: bool = True,
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
        direct=direct,
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
