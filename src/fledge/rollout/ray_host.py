"""The Ray actor that hosts environment copies (`EnvHost`), and the framing of its direct connection.

An actor is built from one JSON string (the environment's name, seed, keyword arguments, draws, and the
secret of its connection) and answers the pool's steps as wire messages (wire.py: a JSON header and raw
array bytes). The steps travel one of two ways:

- directly (the default): the actor listens on a TCP port of its node, the pool connects to it, proves
  that it is the run that made the actor by sending the secret first, and from then on every step,
  reset, parameter change and close is one length-prefixed wire message each way over that socket,
  served by the actor's long call `serve`. A step costs no Ray call, no object in Ray's store and none
  of Ray's threads on either side; Ray places the actor, starts it, reports its death and kills it.
- through Ray's actor calls (`step`, `set_parameters`), each message a `bytes` argument and result:
  where the pool cannot reach the actor's port (a firewall between the nodes), it falls back to these.

Either way nothing is unpickled from the wire: what a message holds is checked to be plain numeric arrays.
"""

from __future__ import annotations

import hmac
import json
import os
import socket
import struct
import time
import traceback
from typing import Any

import numpy as np

from fledge.envs.api import ActionTuple, BaseEnv
from fledge.rollout import wire
from fledge.rollout.worker_process import check_fixed_behaviors
from fledge.rollout.workers import EnvPool

Arrays = dict[str, np.ndarray]
_FRAME = struct.Struct("<Q")
MAX_FRAME = 1 << 31  # a length beyond this is not a message of ours


# ----------------------------------------------------------------------------------------------
# Framing over a socket (both sides)
# ----------------------------------------------------------------------------------------------


def send_frame(sock: socket.socket, data: bytes) -> None:
    """One message: its length (8 bytes, little-endian) then its bytes, in one send."""
    sock.sendall(_FRAME.pack(len(data)) + data)


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buffer = bytearray(n)
    view = memoryview(buffer)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if not k:
            raise EOFError("the other side closed the connection")
        got += k
    return bytes(buffer)


def recv_frame(sock: socket.socket) -> bytes:
    (size,) = _FRAME.unpack(_recv_exact(sock, _FRAME.size))
    if size > MAX_FRAME:
        raise wire.ProtocolError(f"a message of {size} bytes announced: not a message of this protocol")
    return _recv_exact(sock, size)


# ----------------------------------------------------------------------------------------------
# The actor (runs wherever Ray places it)
# ----------------------------------------------------------------------------------------------


class EnvHost:
    """The environment copies of one Ray actor, built from a JSON config and stepped by wire messages:
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
        self.secret = str(values.get("secret", ""))
        self.listener: socket.socket | None = None
        if self.secret:  # the pool wants a direct connection: a port of this node, any free one
            import ray

            self.listener = socket.create_server((ray.util.get_node_ip_address(), 0))

    def start(self) -> bytes:
        """The specs, where the actor runs (node, process, the port it listens on) and the first steps."""
        import ray

        extra = {
            "specs": wire.specs_to_json(dict(self.env.behavior_specs)),
            "num_areas": getattr(self.env, "num_areas", None),
            "node_id": ray.get_runtime_context().get_node_id(),
            "parameters": None if (known := self.env.environment_parameter_names()) is None else sorted(known),
            "pid": os.getpid(),
            "address": None if self.listener is None else list(self.listener.getsockname()[:2]),
        }
        return self._steps("specs", extra)

    def serve(self, accept_timeout: float) -> str:
        """Take the pool's connection and answer its messages until it closes the connection or says "close".
        An environment error is sent back as an "error" message. A connection that does not begin with the
        secret is closed at once, and the next one is taken, for `accept_timeout` seconds in all.

        The pool calls this once it has connected, so the accept does not wait; the call then holds the actor
        (one call at a time, all on one thread, as environments that keep thread-bound state need) until the
        connection ends."""
        sock = self._accept(accept_timeout)
        if sock is None:
            return "nobody connected"
        with sock:
            try:
                while True:
                    command, values, arrays = wire.decode(recv_frame(sock))
                    if command == "close":
                        self.env.close()
                        send_frame(sock, wire.encode("closed"))
                        return "closed"
                    if command == "parameters":
                        self.set_parameters(json.dumps(values["parameters"]))
                        send_frame(sock, wire.encode("ok"))
                    elif command == "delay":
                        send_frame(sock, wire.encode(self.set_delay(float(values["seconds"])).decode()))
                    else:
                        send_frame(sock, self._run(command, arrays))
            except (EOFError, ConnectionError):
                return "disconnected"
            except Exception:
                try:
                    send_frame(sock, wire.encode("error", {"text": traceback.format_exc(limit=8)}))
                except OSError:
                    pass
                raise

    def _accept(self, timeout: float) -> socket.socket | None:
        """The first connection that begins with the secret (its length, then its bytes); then no more."""
        if self.listener is None:
            return None
        secret = self.secret.encode()
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.listener.settimeout(left)
                try:
                    sock, _ = self.listener.accept()
                except OSError:
                    return None
                sock.settimeout(left)
                try:
                    (size,) = _FRAME.unpack(_recv_exact(sock, _FRAME.size))
                    if size == len(secret) and hmac.compare_digest(_recv_exact(sock, size), secret):
                        sock.settimeout(None)  # the steps may be far apart
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        return sock
                except (OSError, EOFError):
                    pass
                sock.close()
            return None
        finally:
            self.listener.close()
            self.listener = None

    def step(self, message: bytes) -> bytes:
        """One message through a Ray call (the path without a direct connection)."""
        if self.listener is not None:  # the pool could not connect: nobody will
            self.listener.close()
            self.listener = None
        command, _, arrays = wire.decode(message)
        return self._run(command, arrays)

    def _run(self, command: str, actions: Arrays) -> bytes:
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
