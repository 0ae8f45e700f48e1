"""ML-Agents' `.demo` file, record by record: read it, write it, byte for byte.

Layout (spec 1.5 and 8.7): every record is a protobuf message preceded by its length as a base-128
varint. The file starts with a `DemonstrationMetaProto` at byte 0; the bytes after it up to byte 33
are zero (Unity writes the header last, into the room it kept at the start); the body starts at byte
33 with the behavior's `BrainParametersProto`, then one `AgentInfoActionPairProto` per recorded
agent step.

This module knows the framing only; `demo_reader` turns records into arrays (`ExpertData`) and
`demo_writer` turns environment steps into records. Sizes are bounded (a record over
`MAX_RECORD_BYTES`, or a file over `MAX_FILE_BYTES`, is refused) so a damaged file cannot exhaust memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import DecodeError, Message  # type: ignore[import-untyped]

from fledge.envs.unity.protocol.demonstration_pb2 import AgentInfoActionPairProto, DemonstrationMetaProto
from fledge.envs.unity.protocol.observation_pb2 import BrainParametersProto
from fledge.errors import ConfigError
from fledge.files import atomic_write_bytes

__all__ = [
    "BODY_OFFSET",
    "DEMO_API_VERSION",
    "DemoFile",
    "DemoFileError",
    "decode_demo",
    "encode_demo",
    "encode_varint",
    "read_demo_file",
    "write_demo_file",
]

BODY_OFFSET = 33  # where the brain parameters start; the meta header must fit before it
DEMO_API_VERSION = 1
MAX_RECORD_BYTES = 64 * 1024 * 1024
MAX_FILE_BYTES = 2 * 1024 * 1024 * 1024


class DemoFileError(ConfigError):
    """A `.demo` file that cannot be used: not a demo, cut short, or recorded for another behavior."""


@dataclass
class DemoFile:
    """The records of one `.demo` file: header, brain parameters and the (agent info, action) pairs."""

    meta: DemonstrationMetaProto
    brain: BrainParametersProto
    pairs: list[AgentInfoActionPairProto] = field(default_factory=list)


# -- varints --------------------------------------------------------------------------------------


def encode_varint(value: int) -> bytes:
    """`value` (>= 0) as a protobuf base-128 varint: 7 bits a byte, low bits first, high bit = more."""
    if value < 0:
        raise ValueError(f"a record length cannot be negative ({value})")
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _read_varint(data: bytes, pos: int, where: str) -> tuple[int, int]:
    value, shift = 0, 0
    start = pos
    while True:
        if pos >= len(data):
            raise DemoFileError(
                f"{where}: the file ends inside a record length at byte {start} (the file is truncated); "
                "record the demonstration again or use a complete copy."
            )
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise DemoFileError(
                f"{where}: byte {start} does not start a valid record length; this is not a .demo file."
            )


def _read_record(data: bytes, pos: int, message: Message, what: str, where: str) -> int:
    length, body = _read_varint(data, pos, where)
    if length > MAX_RECORD_BYTES:
        raise DemoFileError(
            f"{where}: the {what} at byte {pos} claims {length} bytes (more than {MAX_RECORD_BYTES}); "
            "this is not a .demo file or it is damaged."
        )
    end = body + length
    if end > len(data):
        raise DemoFileError(
            f"{where}: the {what} at byte {pos} needs {length} bytes but only {len(data) - body} remain "
            "(the file is truncated); record the demonstration again or use a complete copy."
        )
    try:
        message.ParseFromString(data[body:end])
    except DecodeError as exc:
        raise DemoFileError(
            f"{where}: the {what} at byte {pos} is not a valid protobuf message ({exc}); this is not a "
            ".demo file or it is damaged."
        ) from None
    return end


def _delimited(message: Message) -> bytes:
    body = message.SerializeToString()
    return encode_varint(len(body)) + body


# -- whole files ----------------------------------------------------------------------------------


def encode_demo(demo: DemoFile) -> bytes:
    """The bytes of a `.demo` file: meta header, zeros up to byte 33, brain parameters, pairs."""
    head = _delimited(demo.meta)
    if len(head) > BODY_OFFSET:
        raise ValueError(
            f"the demonstration header takes {len(head)} bytes, more than the {BODY_OFFSET} the format keeps; "
            "use a shorter demonstration name"
        )
    parts = [head, bytes(BODY_OFFSET - len(head)), _delimited(demo.brain)]
    parts.extend(_delimited(p) for p in demo.pairs)
    return b"".join(parts)


def decode_demo(data: bytes, where: str) -> DemoFile:
    """The records of a `.demo` file's bytes; `where` names the file in errors."""
    if len(data) <= BODY_OFFSET:
        raise DemoFileError(
            f"{where}: {len(data)} bytes is too short for a .demo file (its header alone takes {BODY_OFFSET}); "
            "this is not a demonstration or it is truncated."
        )
    meta = DemonstrationMetaProto()
    head_end = _read_record(data, 0, meta, "demonstration header", where)
    if head_end > BODY_OFFSET or meta.api_version not in (0, 1) or meta.number_steps < 0:
        raise DemoFileError(
            f"{where}: no DemonstrationMetaProto header at byte 0 (api_version {meta.api_version}, header ends "
            f"at byte {head_end}); this is not an ML-Agents .demo file."
        )
    brain = BrainParametersProto()
    pos = _read_record(data, BODY_OFFSET, brain, "brain parameters", where)
    pairs: list[AgentInfoActionPairProto] = []
    while pos < len(data):
        pair = AgentInfoActionPairProto()
        pos = _read_record(data, pos, pair, f"step record {len(pairs)}", where)
        pairs.append(pair)
    return DemoFile(meta, brain, pairs)


def read_demo_file(path: str | Path, where: str | None = None) -> DemoFile:
    """Read and decode one `.demo` file."""
    path = Path(path)
    label = where or str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise DemoFileError(f"{label}: {size} bytes is more than the {MAX_FILE_BYTES} a .demo file may have.")
        data = path.read_bytes()
    except OSError as exc:
        raise DemoFileError(f"{label}: cannot read the demonstration file ({exc.strerror or exc}).") from None
    return decode_demo(data, label)


def write_demo_file(path: str | Path, demo: DemoFile) -> Path:
    """Write `demo` to `path` atomically (a reader never sees half a file)."""
    return atomic_write_bytes(path, encode_demo(demo))


def make_meta(name: str, steps: int, episodes: int, mean_reward: float) -> DemonstrationMetaProto:
    """A header; the name is shortened (on a character boundary) until the header fits its 33 bytes."""
    meta = DemonstrationMetaProto(
        api_version=DEMO_API_VERSION,
        demonstration_name=name,
        number_steps=int(steps),
        number_episodes=int(episodes),
        mean_reward=float(mean_reward),
    )
    while len(_delimited(meta)) > BODY_OFFSET and meta.demonstration_name:
        meta.demonstration_name = meta.demonstration_name[:-1]
    return meta


def demo_paths(path: str | Path, where: str) -> Sequence[Path]:
    """The `.demo` files of `path`: the file itself, or every `.demo` in a folder (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".demo" and p.is_file())
        if not files:
            raise DemoFileError(
                f"{where}: the folder {path} holds no .demo file; put demonstrations there or point demo_path at a "
                ".demo file."
            )
        return files
    if not path.exists():
        raise DemoFileError(f"{where}: no demonstration at {path}; record one with `fledge play ... --record-demo`.")
    return [path]
