#!/usr/bin/env python3
"""A stand-in for a Unity player built with the ML-Agents package (wire protocol 1.5.0), for tests.

It plays Unity's part: it is the gRPC client of the trainer's `UnityToExternalProto` service, and it
uses nothing of fledge but the generated protocol classes (its side-channel codec, PNG encoding and
the wire bytes of its agent infos, written for all agents at once in fake_wire.py, are its own). Flow:

1. connect to localhost:PORT (retrying for --connect-timeout seconds) and call Exchange with header
   status 200 and `rl_initialization_output` (name, communication version "1.5.0" or "0.9.0" with
   --old-version, package version, all capabilities, the behavior's brain parameters);
2. read `rl_initialization_input` from the reply (seed; num_areas times --agents agents), then send the
   agents' first observations (with the brain parameters again, as Unity announces a behavior with
   its first agent infos);
3. answer every reply: STEP applies the actions of `agent_actions[behavior]` to the agents last sent
   as deciding, in that order; RESET restarts every agent; QUIT, or a reply whose header status is not
   200 (the trainer closes with 400), ends the process with status 0.

The task is `fake_ball.BallPlatforms` (3DBall in a lighter world). Side channels: engine configuration
messages are recorded and logged, environment parameters are logged, and at every episode end the
stats channel carries "Fake/Episode Reward" (AVERAGE) and "Fake/Time Scale" (MOST_RECENT, the last
time scale received, 1.0 before any). With --discrete the actions are two branches of 3 (turn -1, 0,
+1 per axis) and every decision carries an action mask: a turn that would tilt a platform beyond 10
degrees is masked; the player counts the masked decisions and the actions that chose a masked turn
(both in its closing log line).
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
try:
    import grpc
    import numpy as np
    from PIL import Image
except ImportError:  # started by a Python without the dependencies: hand over to one that has them, once
    if not os.environ.get("FAKE_PLAYER_HANDED_OVER"):
        os.environ["FAKE_PLAYER_HANDED_OVER"] = "1"
        for _candidate in (os.environ.get("FLEDGE_PLAYER_PYTHON", ""), str(REPO / ".venv" / "bin" / "python")):
            if _candidate and os.access(_candidate, os.X_OK):
                os.execv(_candidate, [_candidate, str(Path(__file__).resolve()), *sys.argv[1:]])
    raise SystemExit(
        "fake_player: needs numpy, grpcio and Pillow; put a Python that has them first on PATH "
        "or name one in FLEDGE_PLAYER_PYTHON."
    ) from None


for _folder in (str(REPO / "src"), str(Path(__file__).resolve().parent)):
    if _folder not in sys.path:
        sys.path.insert(0, _folder)
from fake_ball import BallPlatforms  # noqa: E402
from fake_wire import agent_info, agent_info_list, continuous_actions, vector_observations  # noqa: E402

MASK_TILT = np.deg2rad(10.0)  # --discrete: turns beyond this tilt are masked

from fledge.envs.unity.protocol import observation_pb2 as obs_pb  # noqa: E402
from fledge.envs.unity.protocol import unity_message_pb2 as msg_pb  # noqa: E402
from fledge.envs.unity.protocol import unity_message_pb2_grpc as msg_grpc  # noqa: E402

LOG = logging.getLogger("fake_player")
COMMUNICATION_VERSION = "1.5.0"
OLD_COMMUNICATION_VERSION = "0.9.0"
PACKAGE_VERSION = "2.0.0"
ENGINE_CONFIGURATION_ID = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
ENVIRONMENT_PARAMETERS_ID = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")
STATS_ID = uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")
AVERAGE, MOST_RECENT = 0, 1
WRONG_SHAPES_AFTER = 3  # --wrong-shapes: from this STEP on, the vector observation is one float short

# -- side channels: records of (16-byte UUID in little-endian order, int32 length, payload) ----------------


def split_side_channels(blob: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """The records of a side-channel blob; a truncated record raises ValueError."""
    records, offset = [], 0
    while offset < len(blob):
        if offset + 20 > len(blob):
            raise ValueError(f"side-channel blob truncated in a record header at byte {offset}")
        channel = uuid.UUID(bytes_le=bytes(blob[offset : offset + 16]))
        (length,) = struct.unpack_from("<i", blob, offset + 16)
        offset += 20
        if length < 0 or offset + length > len(blob):
            raise ValueError(f"side-channel record of channel {channel} claims {length} bytes past the end")
        records.append((channel, bytes(blob[offset : offset + length])))
        offset += length
    return records


def join_side_channels(records: Sequence[tuple[uuid.UUID, bytes]]) -> bytes:
    return b"".join(channel.bytes_le + struct.pack("<i", len(payload)) + payload for channel, payload in records)


class Reader:
    """Little-endian reads of one side-channel message; reading past the end gives the default."""

    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def _take(self, fmt: str, default: float) -> float:
        size = struct.calcsize(fmt)
        if self.offset + size > len(self.data):
            self.offset = len(self.data)
            return default
        (value,) = struct.unpack_from(fmt, self.data, self.offset)
        self.offset += size
        return value

    def int32(self) -> int:
        return int(self._take("<i", 0))

    def float32(self) -> float:
        return float(self._take("<f", 0.0))

    def string(self) -> str:
        length = self.int32()
        text = self.data[self.offset : self.offset + max(length, 0)]
        self.offset += len(text)
        return text.decode("ascii", errors="replace")


def stats_message(key: str, value: float, method: int) -> bytes:
    raw = key.encode("ascii")
    return struct.pack("<i", len(raw)) + raw + struct.pack("<fi", value, method)


SINGLE_SETTINGS = {1: "quality_level", 2: "time_scale", 3: "target_frame_rate", 4: "capture_frame_rate"}


@dataclass
class EngineSettings:
    """What the engine configuration channel set (Unity's defaults until then)."""

    width: int = 84
    height: int = 84
    quality_level: int = 5
    time_scale: float = 1.0
    target_frame_rate: int = -1
    capture_frame_rate: int = 60
    received: list[str] = field(default_factory=list)

    def apply(self, payload: bytes) -> None:
        """One message: int32 type, then 0 = width and height (int32), 1 = quality level, 2 = time scale
        (float32), 3 = target frame rate, 4 = capture frame rate (int32)."""
        r = Reader(payload)
        kind = r.int32()
        if kind == 0:
            self.width, self.height = r.int32(), r.int32()
            self.received.append(f"resolution={self.width}x{self.height}")
        elif kind in SINGLE_SETTINGS:
            name = SINGLE_SETTINGS[kind]
            setattr(self, name, r.float32() if name == "time_scale" else r.int32())
            self.received.append(f"{name}={getattr(self, name):g}")
        else:
            LOG.warning("engine configuration: unknown message type %d ignored", kind)
            return
        LOG.info("engine configuration: %s", self.received[-1])


# -- observations ------------------------------------------------------------------------------------------


def vector_observation(values: np.ndarray, *, name: str = "VectorSensor") -> obs_pb.ObservationProto:
    """An uncompressed observation (float_data) of any shape; dimension properties as Unity sends them."""
    proto = obs_pb.ObservationProto()
    fill_vector_observation(proto, values, name=name)
    return proto


def fill_vector_observation(proto: obs_pb.ObservationProto, values: np.ndarray, *, name: str = "VectorSensor") -> None:
    """Write an uncompressed observation into `proto` (an empty ObservationProto)."""
    values = np.asarray(values, dtype=np.float32)
    proto.shape.extend(values.shape)
    proto.dimension_properties.extend([1] if values.ndim == 1 else ([1, 2, 2] if values.ndim == 3 else []))
    proto.name = name
    proto.float_data.data.extend(values.ravel().tolist())


def png_pages(image_hwc: np.ndarray) -> tuple[bytes, list[int]]:
    """uint8 (H, W, C) -> concatenated RGB PNGs of 3 channels each, and the channel mapping (for each PNG
    channel, the observation channel it holds; the last page repeats its last channel). The mapping is
    empty for 1 or 3 channels, which Unity sends without one."""
    channels = image_hwc.shape[2]
    data, mapping = b"", []
    for start in range(0, channels, 3):
        picked = [min(start + k, channels - 1) for k in range(3)]
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image_hwc[:, :, picked]), mode="RGB").save(buffer, format="PNG")
        data += buffer.getvalue()
        mapping += picked
    return data, ([] if channels in (1, 3) else mapping)


def png_observation(
    image_chw: np.ndarray, *, layout: str = "chw", name: str = "CameraSensor"
) -> obs_pb.ObservationProto:
    """A PNG-compressed camera observation of a (C, H, W) image in [0, 1]; its shape is (C, H, W) as
    Unity 2.x sends it, or (H, W, C) with layout "hwc"."""
    hwc = np.round(np.moveaxis(np.asarray(image_chw, dtype=np.float32), 0, -1) * 255.0).clip(0, 255).astype(np.uint8)
    data, mapping = png_pages(hwc)
    c, h, w = image_chw.shape
    shape, props = ([c, h, w], [1, 2, 2]) if layout == "chw" else ([h, w, c], [2, 2, 1])
    return obs_pb.ObservationProto(
        shape=shape,
        compression_type=obs_pb.PNG,
        compressed_data=data,
        compressed_channel_mapping=mapping,
        dimension_properties=props,
        name=name,
    )


@dataclass
class Terminal:
    """Agents whose episode ended in a step: positions, interrupted flags, last rewards, observations."""

    idx: np.ndarray
    interrupted: np.ndarray
    reward: np.ndarray
    observations: list[list[bytes]]  # each agent's ObservationProto messages, serialized
    group: np.ndarray  # each agent's behavior when its episode ended (an index into Player.names)


# -- the player --------------------------------------------------------------------------------------------


class Player:
    """The state of the simulation and of the conversation with the trainer."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.behavior = args.behavior if "?" in args.behavior else f"{args.behavior}?team={args.team}"
        base, _, team = self.behavior.partition("?")
        self.names = [self.behavior, f"{base}Late?{team}"]  # --late-behavior: the upper half's behavior later
        self.group = np.zeros(args.agents, dtype=np.int64)  # each agent's behavior: an index into names
        self.engine = EngineSettings()
        self.env_parameters: dict[str, float] = {}
        self.rng = np.random.default_rng(0)
        self.task = BallPlatforms(args.agents)
        self.deciding: dict[str, list[int]] = {}  # per behavior, agent indexes of the last decisions sent, in order
        self.steps = 0  # STEP commands applied
        self.episode_steps = np.zeros(args.agents, dtype=np.int64)
        self.returns = np.zeros(args.agents, dtype=np.float64)
        self.episodes = 0
        self.announce = {0}  # the behaviors whose brain parameters the next output carries
        self.last_mask = np.zeros((args.agents, 6), dtype=bool)  # --discrete: the masks sent with the decisions
        self.masked_decisions = 0  # decisions sent with at least one masked turn
        self.mask_violations = 0  # actions that chose a masked turn

    # messages ---------------------------------------------------------------------------------------------
    def brain_parameters(self, group: int = 0) -> obs_pb.BrainParametersProto:
        return obs_pb.BrainParametersProto(
            brain_name=self.names[group],
            is_training=True,
            action_spec=obs_pb.ActionSpecProto(num_discrete_actions=2, discrete_branch_sizes=[3, 3])
            if self.args.discrete
            else obs_pb.ActionSpecProto(num_continuous_actions=2, action_descriptions=["tilt z", "tilt x"]),
        )

    def action_masks(self) -> np.ndarray:
        """(n, 6) bool, True = masked: per axis [turn -1, no turn, turn +1]; a turn past 10 degrees is masked."""
        tilt = self.task.tilt
        masks = np.zeros((self.task.n, 6), dtype=bool)
        masks[:, [0, 3]] = tilt <= -MASK_TILT
        masks[:, [2, 5]] = tilt >= MASK_TILT
        return masks

    def initialization(self) -> msg_pb.UnityMessageProto:
        version = OLD_COMMUNICATION_VERSION if self.args.old_version else COMMUNICATION_VERSION
        caps = msg_pb.UnityRLCapabilitiesProto(
            **{f.name: True for f in msg_pb.UnityRLCapabilitiesProto.DESCRIPTOR.fields}
        )
        init = msg_pb.UnityRLInitializationOutputProto(
            name="FakeBall3D",
            communication_version=version,
            log_path=self.args.logFile or "",
            brain_parameters=[self.brain_parameters()],
            package_version=PACKAGE_VERSION,
            capabilities=caps,
        )
        message = msg_pb.UnityMessageProto(header=msg_pb.HeaderProto(status=200))
        message.unity_output.rl_initialization_output.CopyFrom(init)
        return message

    def start(self, init_input: msg_pb.UnityRLInitializationInputProto) -> None:
        areas = max(int(init_input.num_areas), 1)
        n = areas * self.args.agents
        LOG.info(
            "initialization input: seed %d, %d area(s) -> %d agents, trainer communication version %s, package %s",
            init_input.seed,
            areas,
            n,
            init_input.communication_version,
            init_input.package_version,
        )
        offered = [
            f.name for f in init_input.capabilities.DESCRIPTOR.fields if getattr(init_input.capabilities, f.name)
        ]
        LOG.info("trainer capabilities: %s", " ".join(offered) or "none")
        self.rng = np.random.default_rng(int(init_input.seed))
        self.task = BallPlatforms(n)
        self.last_mask = np.zeros((n, 6), dtype=bool)
        self.episode_steps = np.zeros(n, dtype=np.int64)
        self.returns = np.zeros(n, dtype=np.float64)
        self.group = np.zeros(n, dtype=np.int64)
        self.task.reset(np.arange(n), self.rng)

    def reset(self) -> msg_pb.UnityMessageProto:
        self.task.reset(np.arange(self.task.n), self.rng)
        self.episode_steps[:] = 0
        self.returns[:] = 0.0
        self.announce = set(self.group.tolist())
        return self.output(np.zeros(self.task.n, np.float32))

    def step(self, rl_input: msg_pb.UnityRLInputProto) -> msg_pb.UnityMessageProto:
        actions = np.zeros((self.task.n, 2), dtype=np.float32)
        for name, deciding in self.deciding.items():
            if not self.args.discrete and name in rl_input.agent_actions:
                bulk = continuous_actions(rl_input.agent_actions[name].SerializeToString(), len(deciding), 2)
                if bulk is not None:  # every agent's action as fledge writes continuous actions: read at once
                    actions[deciding] = bulk
                    continue
            sent = list(rl_input.agent_actions[name].value) if name in rl_input.agent_actions else []
            if len(sent) != len(deciding):
                LOG.warning(
                    "step %d: %s: %d actions for %d deciding agents", self.steps + 1, name, len(sent), len(deciding)
                )
            self.apply_actions(actions, deciding, sent)
        self.steps += 1
        reward, fell = self.task.step(actions)
        self.returns += reward
        self.episode_steps += 1
        limit = self.args.max_steps
        interrupted = ~fell & (self.episode_steps >= limit) if limit > 0 else np.zeros_like(fell)
        moving = np.zeros_like(fell)
        if self.args.late_behavior and self.steps == self.args.late_behavior:  # the upper half changes behavior
            moving[self.task.n // 2 :] = True
            interrupted |= moving & ~fell
        ended = np.flatnonzero(fell | interrupted)
        terminal = Terminal(ended, interrupted[ended], reward[ended], self.observations(ended), self.group[ended])
        if moving.any():
            self.group[moving] = 1
            self.announce.add(1)
            LOG.info("step %d: agents %d.. now decide for %s", self.steps, self.task.n // 2, self.names[1])
        blob = b""
        if len(ended):
            stats = [(STATS_ID, stats_message("Fake/Episode Reward", float(self.returns[i]), AVERAGE)) for i in ended]
            stats.append((STATS_ID, stats_message("Fake/Time Scale", self.engine.time_scale, MOST_RECENT)))
            blob = join_side_channels(stats)
            self.episodes += len(ended)
            returns = " ".join(f"{self.returns[i]:.1f}" for i in ended)
            LOG.info("step %d: %d episode(s) ended, returns %s", self.steps, len(ended), returns)
            self.task.reset(ended, self.rng)
            self.episode_steps[ended] = 0
            self.returns[ended] = 0.0
        reward[ended] = 0.0  # the first decision of the next episode has no reward yet
        message = self.output(reward, terminal, blob=blob)
        if self.args.crash_after and self.steps >= self.args.crash_after:
            LOG.error("crashing after %d steps (--crash-after)", self.steps)
            logging.shutdown()
            os._exit(3)
        return message

    def apply_actions(self, actions: np.ndarray, deciding: list[int], sent: list[obs_pb.AgentActionProto]) -> None:
        """Write the actions sent for the agents at `deciding` (in that order) into `actions` (n, 2)."""
        for index, action in zip(deciding, sent):
            if self.args.discrete:
                choice = list(action.discrete_actions) or [int(v) for v in action.vector_actions_deprecated]
                choice = (choice + [1, 1])[:2]
                if self.last_mask[index, choice[0]] or self.last_mask[index, 3 + choice[1]]:
                    self.mask_violations += 1
                actions[index] = np.array(choice, dtype=np.float32) - 1.0
                continue
            values = list(action.continuous_actions) or list(action.vector_actions_deprecated)
            actions[index, : min(len(values), 2)] = values[:2]

    def observations(self, idx: np.ndarray) -> list[list[bytes]]:
        """The observations of the agents at idx, serialized, one list per agent (vector, then the camera)."""
        if len(idx) == 0:
            return []
        vectors = self.vectors(self.task.observe()[idx])
        if not self.args.visual:
            return [[vector] for vector in vectors]
        cameras = [camera.SerializeToString() for camera in self.cameras(idx)]
        return [[vector, camera] for vector, camera in zip(vectors, cameras)]

    def vectors(self, values: np.ndarray) -> list[bytes]:
        """The vector observations (ObservationProto bytes) of rows of `values` (n, 8); with --wrong-shapes the
        last float is left out from the STEP WRONG_SHAPES_AFTER on (shape [8], 7 floats)."""
        if self.args.wrong_shapes and self.steps >= WRONG_SHAPES_AFTER:
            return vector_observations(values[:, :-1], values.shape[1:])
        return vector_observations(values, values.shape[1:])

    def cameras(self, idx: np.ndarray) -> list[obs_pb.ObservationProto]:
        """The PNG camera observations of the agents at idx."""
        images = self.task.camera(self.args.visual_channels)[idx]
        return [png_observation(image, layout=self.args.visual_layout) for image in images]

    def output(
        self, reward: np.ndarray, terminal: Terminal | None = None, *, blob: bytes = b""
    ) -> msg_pb.UnityMessageProto:
        """Terminal infos (done, last observations) first, then one decision request per agent.

        The agent infos are written as wire bytes for all agents at once (fake_wire), as a compiled player
        builds them, and read into the message in one call per behavior."""
        message = msg_pb.UnityMessageProto(header=msg_pb.HeaderProto(status=200))
        rl_output = message.unity_output.rl_output
        rl_output.side_channel = blob
        lists: dict[int, list[bytes]] = {}  # per behavior (in the order of its first agent), its agent infos

        if terminal is not None:
            for k, index in enumerate(terminal.idx.tolist()):
                lists.setdefault(int(terminal.group[k]), []).append(
                    agent_info(
                        float(terminal.reward[k]),
                        index,
                        terminal.observations[k],
                        done=True,
                        max_step_reached=bool(terminal.interrupted[k]),
                    )
                )
        everyone = np.arange(self.task.n)
        if self.args.discrete:
            self.last_mask = self.action_masks()
            self.masked_decisions += int(self.last_mask.any(axis=1).sum())
        observations = self.observations(everyone)
        rewards, masks, groups = reward.tolist(), self.last_mask.tolist(), self.group.tolist()
        self.deciding = {name: [] for name in self.names}
        for index in range(self.task.n):
            mask = masks[index] if self.args.discrete else ()
            lists.setdefault(groups[index], []).append(
                agent_info(rewards[index], index, observations[index], action_mask=mask)
            )
            self.deciding[self.names[groups[index]]].append(index)
        for group, infos in lists.items():
            rl_output.agentInfos[self.names[group]].MergeFromString(agent_info_list(infos))
        self.deciding = {name: rows for name, rows in self.deciding.items() if rows}
        for group in sorted(self.announce):
            message.unity_output.rl_initialization_output.brain_parameters.append(self.brain_parameters(group))
        self.announce = set()
        return message

    def read_side_channels(self, blob: bytes) -> None:
        try:
            records = split_side_channels(blob)
        except ValueError as error:
            LOG.error("bad side-channel blob from the trainer: %s", error)
            return
        for channel, payload in records:
            if channel == ENGINE_CONFIGURATION_ID:
                self.engine.apply(payload)
            elif channel == ENVIRONMENT_PARAMETERS_ID:
                r = Reader(payload)
                key, kind = r.string(), r.int32()
                if kind == 0:
                    self.env_parameters[key] = r.float32()
                    LOG.info("environment parameter %s = %g", key, self.env_parameters[key])
                else:
                    LOG.info("environment parameter %s: sampler (type %d)", key, kind)
            else:
                LOG.warning("side channel %s: %d bytes ignored (unknown channel)", channel, len(payload))

    def answer(self, reply: msg_pb.UnityMessageProto) -> msg_pb.UnityMessageProto | None:
        """The next message to send, or None to quit."""
        if reply.header.status != 200:
            LOG.info("trainer closed the connection (status %d) %s", reply.header.status, reply.header.message)
            return None
        rl_input = reply.unity_input.rl_input
        self.read_side_channels(rl_input.side_channel)
        if rl_input.command == msg_pb.QUIT:
            LOG.info("QUIT received")
            return None
        if rl_input.command == msg_pb.RESET:
            LOG.info("RESET received")
            return self.reset()
        return self.step(rl_input)


# -- process -----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="fake_player.py", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--mlagents-port", type=int, required=True)
    parser.add_argument("-logFile", "-logfile", dest="logFile", default=None)
    parser.add_argument("-nographics", action="store_true")
    parser.add_argument("-batchmode", action="store_true")
    parser.add_argument("--agents", type=int, default=12, help="agents per area (default 12)")
    parser.add_argument("--behavior", default="Ball3DFake", help="brain name; sent as NAME?team=TEAM")
    parser.add_argument("--team", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=500, help="decisions per episode, 0 = no limit")
    parser.add_argument("--visual", action="store_true", help="add a PNG camera observation")
    parser.add_argument("--discrete", action="store_true", help="two branches of 3 turns, with action masks")
    parser.add_argument("--visual-channels", type=int, default=3)
    parser.add_argument("--visual-layout", choices=("chw", "hwc"), default="chw")
    parser.add_argument("--connect-timeout", type=float, default=10.0)
    parser.add_argument("--crash-after", type=int, default=0, metavar="STEPS")
    parser.add_argument(
        "--late-behavior",
        type=int,
        default=0,
        metavar="STEPS",
        help="after STEPS, the upper half of the agents "
        "end their episode (interrupted) and decide for a second behavior NAMELate, announced then",
    )
    parser.add_argument("--never-connect", action="store_true")
    parser.add_argument("--wrong-shapes", action="store_true")
    parser.add_argument("--garbage", action="store_true")
    parser.add_argument("--old-version", action="store_true")
    args, unknown = parser.parse_known_args(argv)
    args.ignored = unknown
    if args.agents < 1 or args.visual_channels < 1:
        parser.error("--agents and --visual-channels must be at least 1")
    return args


def watch_parent() -> None:
    """Exit when the process that started this one is gone (no player outlives a killed test)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def send_garbage(port: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("localhost", port), timeout=2.0) as sock:
                sock.sendall(b"\x00\xffnot gRPC at all\r\n\r\n" + bytes(range(256)) * 4)
                LOG.info("wrote garbage to port %d (--garbage)", port)
                return 0
        except OSError as error:
            if time.monotonic() > deadline:
                LOG.error("could not connect to port %d: %s", port, error)
                return 1
            time.sleep(0.1)


def run(args: argparse.Namespace) -> int:
    port = args.mlagents_port
    if args.never_connect:
        LOG.info("never connecting (--never-connect)")
        while True:
            time.sleep(3600)
    if args.garbage:
        return send_garbage(port, args.connect_timeout)
    player = Player(args)
    with grpc.insecure_channel(f"localhost:{port}") as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=args.connect_timeout)
        except grpc.FutureTimeoutError:
            LOG.error("no trainer listening on port %d after %.0f s", port, args.connect_timeout)
            return 1
        exchange = msg_grpc.UnityToExternalProtoStub(channel).Exchange
        try:
            reply = exchange(player.initialization(), wait_for_ready=True)
            if reply.header.status != 200:
                LOG.info("trainer refused the initialization (status %d)", reply.header.status)
                return 0
            player.read_side_channels(reply.unity_input.rl_input.side_channel)
            player.start(reply.unity_input.rl_initialization_input)
            message: msg_pb.UnityMessageProto | None = player.output(np.zeros(player.task.n, np.float32))
            while message is not None:
                message = player.answer(exchange(message))
        except grpc.RpcError as error:
            LOG.error("connection lost: %s", error.code() if hasattr(error, "code") else error)
            return 0
    LOG.info(
        "closed after %d steps, %d episodes, engine settings: %s; masked decisions %d, mask violations %d",
        player.steps,
        player.episodes,
        ", ".join(player.engine.received) or "none received",
        player.masked_decisions,
        player.mask_violations,
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.logFile:
        Path(args.logFile).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(args.logFile, mode="w"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s fake_player %(levelname)s %(message)s", handlers=handlers
    )
    LOG.info("started: %s", " ".join(sys.argv))
    if args.ignored:
        LOG.info("ignored arguments: %s", " ".join(args.ignored))
    watch_parent()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
