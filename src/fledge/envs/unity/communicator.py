"""The trainer's end of ML-Agents' wire protocol: a gRPC server that a Unity player calls.

The player is the gRPC client. It calls `Exchange` with its output and blocks until the trainer
answers with its input. The server thread hands each request to the environment's thread through a
queue and waits for the reply, so exactly one exchange is outstanding at any time:

    player: init output  ->  trainer: init input   (handshake)
    player: observations ->  trainer: actions      (every step)
    ...                  ->  trainer: status 400   (close)

Requests arrive as raw bytes and are parsed here, so a player that sends bytes that are not a
message gives an EnvironmentFault naming the worker rather than a silent gRPC error.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from google.protobuf.message import DecodeError  # type: ignore[import-untyped]

from fledge.envs.unity.protocol.unity_message_pb2 import (
    HeaderProto,
    UnityInputProto,
    UnityMessageProto,
    UnityOutputProto,
    UnityRLInitializationInputProto,
    UnityRLInitializationOutputProto,
)
from fledge.errors import EnvironmentFault

log = logging.getLogger("fledge")

SERVICE = "communicator_objects.UnityToExternalProto"
STATUS_OK = 200
STATUS_CLOSE = 400


class UnityTimeoutError(EnvironmentFault):
    """A Unity player or the Editor did not connect or answer within timeout_wait seconds."""


class UnityWorkerInUseError(EnvironmentFault):
    """The port of a worker is taken by another program."""


class UnityStoppedError(EnvironmentFault):
    """The Unity side stopped: its process exited, it disconnected or it answered with a non-200 status."""


def check_port_free(port: int, worker_id: int) -> None:
    """Test-bind `port` on localhost; a clear error when another program holds it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("localhost", port))
        except OSError:
            raise UnityWorkerInUseError(
                f"Cannot listen for Unity worker {worker_id}: port {port} is already in use. Another fledge run "
                "or a Unity player may be using it; stop it, or give this run other ports with --base-port "
                "(worker i listens on base-port + i)."
            ) from None


class _Servicer:
    """gRPC handler: each Exchange request goes to `inbox`, its reply is read from `outbox`."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[bytes] = queue.Queue()
        self.outbox: queue.Queue[bytes] = queue.Queue()
        self.stopped = threading.Event()

    def exchange(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.inbox.put(request)
        while not self.stopped.is_set():
            try:
                return self.outbox.get(timeout=0.2)
            except queue.Empty:
                if not context.is_active():
                    return b""
        return _closing_message()


class _DaemonExecutor(futures.Executor):
    """Runs RPCs on a few long-lived daemon threads, so a program that ends without close() is not held
    open by a request that waits for its answer (the player then sees the connection drop). The threads
    are reused: starting one per request would cost more than the rest of a round trip's bookkeeping."""

    def __init__(self, threads: int = 2) -> None:
        self._work: queue.SimpleQueue[tuple[Callable[[], Any], futures.Future[Any]] | None] = queue.SimpleQueue()
        self._threads = threads
        for _ in range(threads):
            threading.Thread(target=self._serve, name="fledge-unity-rpc", daemon=True).start()

    def _serve(self) -> None:
        while (item := self._work.get()) is not None:
            call, future = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(call())
            except BaseException as exc:
                future.set_exception(exc)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> futures.Future[Any]:
        future: futures.Future[Any] = futures.Future()
        self._work.put((lambda: fn(*args, **kwargs), future))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Let the threads end once the requests before this call are served (they never block a program's exit)."""
        for _ in range(self._threads):
            self._work.put(None)


def _closing_message() -> bytes:
    return UnityMessageProto(header=HeaderProto(status=STATUS_CLOSE)).SerializeToString()


class UnityCommunicator:
    """One worker's server: `initialize` once, then `exchange` per step, then `close`.

    `alive` is called while waiting (about ten times a second); it raises when the launched player
    has exited, so a crash is noticed at once instead of after `timeout_wait`.
    """

    def __init__(self, *, worker_id: int, port: int, timeout_wait: float) -> None:
        self.worker_id = worker_id
        self.port = port
        self.timeout_wait = float(timeout_wait)
        self._servicer = _Servicer()
        self._pending = False  # a request waits for our reply
        self._closed = False
        check_port_free(port, worker_id)
        self._executor = _DaemonExecutor()
        self._server = grpc.server(self._executor, options=[("grpc.so_reuseport", 0)])
        handler = grpc.unary_unary_rpc_method_handler(self._servicer.exchange)  # raw bytes both ways
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Exchange": handler}),))
        try:
            self._server.add_insecure_port(f"localhost:{port}")
        except RuntimeError as exc:
            raise UnityWorkerInUseError(
                f"Cannot listen for Unity worker {worker_id} on port {port}: {exc}. Stop the program that uses "
                "the port or choose other ports with --base-port."
            ) from None
        self._server.start()

    @property
    def label(self) -> str:
        return f"Unity worker {self.worker_id} (port {self.port})"

    # -- the handshake ------------------------------------------------------------------------------
    def initialize(
        self, init_input: UnityRLInitializationInputProto, alive: Callable[[], None]
    ) -> tuple[UnityRLInitializationOutputProto, UnityOutputProto]:
        """Wait for the player's first message, answer with `init_input`, and read its next message.

        Returns the player's initialization output and its first regular output (the first observations).
        """
        first = self._receive(alive, waiting_for="connect")
        if not first.unity_output.HasField("rl_initialization_output"):
            raise EnvironmentFault(
                f"{self.label}: the first message of the player has no initialization output; it does not speak "
                "ML-Agents' protocol as fledge expects (communication version 1.5.0)."
            )
        init_output = first.unity_output.rl_initialization_output
        self._reply(UnityInputProto(rl_initialization_input=init_input))
        return init_output, self._receive_output(alive)

    # -- steps --------------------------------------------------------------------------------------
    def exchange(self, unity_input: UnityInputProto, alive: Callable[[], None]) -> UnityOutputProto:
        """Answer the waiting request with `unity_input` and return the player's next output."""
        self.send(unity_input)
        return self.receive(alive)

    def send(self, unity_input: UnityInputProto) -> None:
        self._reply(unity_input)

    def receive(self, alive: Callable[[], None]) -> UnityOutputProto:
        return self._receive_output(alive)

    def close(self) -> bool:
        """Tell the player to stop (status 400) and stop the server; whether the player was told."""
        if self._closed:
            return False
        self._closed = True
        told = self._pending
        if told:
            self._servicer.outbox.put(_closing_message())
            self._pending = False
            time.sleep(0.05)  # let the reply leave before the server stops
        self._servicer.stopped.set()
        self._server.stop(grace=0.5).wait(2.0)
        self._executor.shutdown()
        return told

    # -- internals ----------------------------------------------------------------------------------
    def _reply(self, unity_input: UnityInputProto) -> None:
        if not self._pending:
            raise UnityStoppedError(f"{self.label}: no request of the player waits for an answer.")
        message = UnityMessageProto(header=HeaderProto(status=STATUS_OK), unity_input=unity_input)
        self._pending = False
        self._servicer.outbox.put(message.SerializeToString())

    def _receive_output(self, alive: Callable[[], None]) -> UnityOutputProto:
        message = self._receive(alive, waiting_for="answer")
        if message.header.status != STATUS_OK:
            raise UnityStoppedError(
                f"{self.label}: the player stopped the connection (status {message.header.status}"
                + (f": {message.header.message}" if message.header.message else "")
                + ")."
            )
        output = message.unity_output
        if not output.HasField("rl_output"):
            raise EnvironmentFault(
                f"{self.label}: the player's message carries no RL output (observations); it does not speak "
                "ML-Agents' protocol as fledge expects."
            )
        return output

    def _receive(self, alive: Callable[[], None], *, waiting_for: str) -> UnityMessageProto:
        if self._closed:
            raise UnityStoppedError(f"{self.label}: the connection is closed.")
        deadline = time.monotonic() + self.timeout_wait
        raw: bytes | None = None
        while raw is None:
            alive()
            try:
                raw = self._servicer.inbox.get(timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise UnityTimeoutError(self._timeout_text(waiting_for)) from None
        self._pending = True
        message = UnityMessageProto()
        try:
            message.ParseFromString(raw)
        except DecodeError as exc:
            raise EnvironmentFault(
                f"{self.label}: the player sent {len(raw)} bytes that are not an ML-Agents message ({exc}). "
                "Check that the player was built with a compatible ML-Agents package."
            ) from None
        return message

    def _timeout_text(self, waiting_for: str) -> str:
        what = "connect" if waiting_for == "connect" else "answer"
        return (
            f"{self.label} did not {what} within {self.timeout_wait:g} s (--timeout-wait). Check that:\n"
            "  - the scene needs no user interaction to start (menus, dialogs);\n"
            "  - the agents' Behavior Type is Default (not Heuristic Only or Inference Only);\n"
            "  - the player's ML-Agents package is compatible (communication version 1.x);\n"
            "  - on a machine without a display, --no-graphics is given;\n"
            "  - nothing blocks localhost connections to the port (firewall)."
        )
