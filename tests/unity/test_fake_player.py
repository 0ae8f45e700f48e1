"""The fake Unity player, run as a real process against a throwaway gRPC server written here (test scaffolding
only: the trainer's server is fledge.envs.unity.communicator). The server hands each Exchange request to the
test and answers with what the test gives it, so a test plays the trainer's side message by message."""

from __future__ import annotations

import os
import queue
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

from fledge.envs.unity.protocol import observation_pb2 as obs_pb
from fledge.envs.unity.protocol import unity_message_pb2 as msg_pb
from fledge.envs.unity.protocol import unity_message_pb2_grpc as msg_grpc

PLAYER = Path(__file__).resolve().with_name("fake_player.py")
ENGINE_ID = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
STATS_ID = uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")
WAIT = 30.0


class Bridge(msg_grpc.UnityToExternalProtoServicer):
    """Each request goes to `requests`; the reply is the next item the test puts in `replies`."""

    def __init__(self) -> None:
        self.requests: queue.Queue[msg_pb.UnityMessageProto] = queue.Queue()
        self.replies: queue.Queue[msg_pb.UnityMessageProto] = queue.Queue()

    def Exchange(self, request: msg_pb.UnityMessageProto, context: grpc.ServicerContext) -> msg_pb.UnityMessageProto:
        self.requests.put(request)
        return self.replies.get(timeout=WAIT)


@dataclass
class Session:
    bridge: Bridge
    port: int
    log: Path
    processes: list[subprocess.Popen[bytes]]

    def launch(self, *flags: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")}
        command = [
            str(PLAYER),
            "--mlagents-port",
            str(self.port),
            "-logFile",
            str(self.log),
            "-nographics",
            "-batchmode",
        ]
        process = subprocess.Popen([*command, *flags], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.processes.append(process)
        return process

    def exchange(self, reply: msg_pb.UnityMessageProto | None = None) -> msg_pb.UnityMessageProto:
        """Answer the pending request with `reply` (if any), then wait for the player's next message."""
        if reply is not None:
            self.bridge.replies.put(reply)
        deadline = time.monotonic() + WAIT
        while True:
            try:
                return self.bridge.requests.get(timeout=0.1)
            except queue.Empty:
                ended = [p for p in self.processes if p.poll() is not None]
                if ended or time.monotonic() > deadline:
                    errors = b"".join(p.stderr.read() for p in ended if p.stderr).decode(errors="replace")
                    raise AssertionError(f"no message from the player; it ended: {errors[-3000:]}") from None


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    bridge = Bridge()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    msg_grpc.add_UnityToExternalProtoServicer_to_server(bridge, server)
    port = server.add_insecure_port("localhost:0")  # port 0: the system picks a free one
    server.start()
    s = Session(bridge, port, tmp_path / "Player-0.log", [])
    try:
        yield s
    finally:
        for process in s.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=WAIT)
        server.stop(grace=None)


# -- the trainer's side of the conversation ------------------------------------------------------------------


def init_reply(*, seed: int = 7, num_areas: int = 1) -> msg_pb.UnityMessageProto:
    reply = msg_pb.UnityMessageProto(header=msg_pb.HeaderProto(status=200))
    init = reply.unity_input.rl_initialization_input
    init.seed, init.num_areas, init.communication_version, init.package_version = seed, num_areas, "1.5.0", "1.1.0"
    return reply


def command(
    kind: int, *, actions: dict[str, np.ndarray] | None = None, side_channel: bytes = b""
) -> msg_pb.UnityMessageProto:
    reply = msg_pb.UnityMessageProto(header=msg_pb.HeaderProto(status=200))
    rl_input = reply.unity_input.rl_input
    rl_input.command = kind
    rl_input.side_channel = side_channel
    for behavior, values in (actions or {}).items():
        listed = rl_input.agent_actions[behavior].value
        for row in values:
            listed.add(continuous_actions=row.tolist())
    return reply


def close_reply() -> msg_pb.UnityMessageProto:
    return msg_pb.UnityMessageProto(header=msg_pb.HeaderProto(status=400))


def engine_time_scale(value: float) -> bytes:
    payload = struct.pack("<if", 2, value)
    return ENGINE_ID.bytes_le + struct.pack("<i", len(payload)) + payload


def read_stats(blob: bytes) -> list[tuple[str, float, int]]:
    """(key, value, aggregation) of every stats record in a side-channel blob."""
    stats, offset = [], 0
    while offset < len(blob):
        channel = uuid.UUID(bytes_le=blob[offset : offset + 16])
        (length,) = struct.unpack_from("<i", blob, offset + 16)
        payload = blob[offset + 20 : offset + 20 + length]
        offset += 20 + length
        if channel == STATS_ID:
            (size,) = struct.unpack_from("<i", payload)
            value, method = struct.unpack_from("<fi", payload, 4 + size)
            stats.append((payload[4 : 4 + size].decode("ascii"), value, method))
    return stats


def deciding(message: msg_pb.UnityMessageProto, behavior: str) -> list[obs_pb.AgentInfoProto]:
    return [info for info in message.unity_output.rl_output.agentInfos[behavior].value if not info.done]


# -- tests ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("visual", [False, True], ids=["vector", "visual-4-channels"])
def test_handshake_reset_steps_and_close(session: Session, visual: bool) -> None:
    flags = ["--agents", "3", "--max-steps", "10"] + (["--visual", "--visual-channels", "4"] if visual else [])
    process = session.launch(*flags)
    behavior = "Ball3DFake?team=0"

    first = session.exchange()
    assert first.header.status == 200
    init = first.unity_output.rl_initialization_output
    assert (init.communication_version, init.package_version) == ("1.5.0", "2.0.0")
    assert all(getattr(init.capabilities, f.name) for f in init.capabilities.DESCRIPTOR.fields)
    (brain,) = init.brain_parameters
    assert brain.brain_name == behavior and brain.action_spec.num_continuous_actions == 2
    assert list(brain.vector_action_size_deprecated) == [] and brain.action_spec.num_discrete_actions == 0

    first_infos = session.exchange(init_reply(num_areas=2))  # 2 areas of 3 agents
    assert [b.brain_name for b in first_infos.unity_output.rl_initialization_output.brain_parameters] == [behavior]
    assert len(deciding(first_infos, behavior)) == 6

    message = session.exchange(command(msg_pb.RESET, side_channel=engine_time_scale(20.0)))
    rng = np.random.default_rng(0)
    stats: list[tuple[str, float, int]] = []
    dones = 0
    for _ in range(20):
        agents = deciding(message, behavior)
        assert len(agents) == 6 and len({a.id for a in agents}) == 6
        for agent in agents:
            vector = agent.observations[0]
            assert list(vector.shape) == [8] and len(vector.float_data.data) == 8
            if visual:
                camera = agent.observations[1]
                assert list(camera.shape) == [4, 84, 84] and camera.compression_type == 1
                assert list(camera.compressed_channel_mapping) == [0, 1, 2, 3, 3, 3]
                assert camera.compressed_data.startswith(b"\x89PNG")
            else:
                assert len(agent.observations) == 1
        actions = rng.uniform(-1, 1, size=(len(agents), 2)).astype(np.float32)
        message = session.exchange(command(msg_pb.STEP, actions={behavior: actions}))
        dones += sum(info.done for info in message.unity_output.rl_output.agentInfos[behavior].value)
        stats += read_stats(message.unity_output.rl_output.side_channel)

    assert dones >= 12  # episodes of 10 decisions at most: every agent ended at least twice
    rewards = [v for key, v, method in stats if key == "Fake/Episode Reward" and method == 0]
    time_scales = {(v, method) for key, v, method in stats if key == "Fake/Time Scale"}
    assert len(rewards) == dones and all(-1.0 <= r <= 1.0 + 1e-5 for r in rewards)
    assert time_scales == {(20.0, 1)}

    session.bridge.replies.put(close_reply())
    assert process.wait(timeout=WAIT) == 0, process.stderr.read() if process.stderr else ""
    log = session.log.read_text()
    assert "time_scale=20" in log and "closed after 20 steps" in log


def test_quit_ends_the_player(session: Session) -> None:
    process = session.launch("--agents", "2")
    session.exchange()
    session.exchange(init_reply())
    session.bridge.replies.put(command(msg_pb.QUIT))
    assert process.wait(timeout=WAIT) == 0


def test_fault_flags(session: Session) -> None:
    """--old-version announces 0.9.0; --wrong-shapes sends 7 floats for a shape of 8 from the third STEP;
    --crash-after ends the process with status 3 without answering."""
    process = session.launch("--agents", "2", "--old-version", "--wrong-shapes", "--crash-after", "4")
    assert session.exchange().unity_output.rl_initialization_output.communication_version == "0.9.0"
    message = session.exchange(init_reply())
    lengths = []
    for _ in range(3):
        lengths.append({len(i.observations[0].float_data.data) for i in deciding(message, "Ball3DFake?team=0")})
        message = session.exchange(command(msg_pb.STEP))
    assert lengths == [{8}, {8}, {8}]
    assert {len(i.observations[0].float_data.data) for i in deciding(message, "Ball3DFake?team=0")} == {7}
    session.bridge.replies.put(command(msg_pb.STEP))
    assert process.wait(timeout=WAIT) == 3
    assert session.bridge.requests.empty()


def test_garbage_reaches_no_exchange(session: Session) -> None:
    process = session.launch("--garbage")
    assert process.wait(timeout=WAIT) == 0
    with pytest.raises(queue.Empty):
        session.bridge.requests.get(timeout=0.5)
