"""The fake player's per-agent messages as protobuf wire bytes, built for all agents at once (numpy).

A Unity player builds its messages in compiled code; building them here field by field through Python
protobuf objects would make the fake player's own Python time, not the protocol, dominate a round trip.
The bytes are those the protobuf library writes for the same messages: fields in field-number order,
packed repeated scalars, fields at their default value left out (tests/unity/test_fake_player.py
compares the two). Part of the fake Unity player (fake_player.py); it imports nothing but numpy.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

# keys ((field number << 3) | wire type) of the fields written here
OBS_SHAPE, OBS_FLOAT_DATA, OBS_DIMENSIONS, OBS_NAME = b"\x0a", b"\x22", b"\x32", b"\x42"  # ObservationProto
FLOAT_DATA = b"\x0a"  # FloatData.data
INFO_REWARD, INFO_DONE, INFO_MAX_STEP, INFO_ID = b"\x3d", b"\x40", b"\x48", b"\x50"  # AgentInfoProto
INFO_MASK, INFO_OBSERVATION = b"\x5a", b"\x6a"
LIST_VALUE = b"\x0a"  # ListAgentInfoProto.value and ListAgentActionProto.value
ACTION_VECTOR, ACTION_CONTINUOUS = b"\x0a", b"\x32"  # AgentActionProto
ZERO_FLOAT = b"\x00\x00\x00\x00"


@lru_cache(maxsize=65536)
def varint(value: int) -> bytes:
    """A non-negative int as a protobuf varint (negative int32 values are 10 bytes; none are written here)."""
    if value < 0:
        raise ValueError(f"varint of a negative value {value}")
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _packed_ints(values: Sequence[int]) -> bytes:
    return b"".join(varint(int(v)) for v in values)


def vector_observations(values: np.ndarray, shape: Sequence[int], *, name: str = "VectorSensor") -> list[bytes]:
    """One ObservationProto (uncompressed) per row of `values` (n, k): shape, float_data, dimension properties
    as Unity sends them (1 for a vector, [1, 2, 2] for 3 dimensions), name."""
    n, k = values.shape
    dims = [1] if len(shape) == 1 else ([1, 2, 2] if len(shape) == 3 else [])
    shape_bytes, dim_bytes = _packed_ints(shape), _packed_ints(dims)
    floats = FLOAT_DATA + varint(4 * k) if k else b""
    head = (OBS_SHAPE + varint(len(shape_bytes)) + shape_bytes if shape else b"") + OBS_FLOAT_DATA
    head += varint(len(floats) + 4 * k) + floats
    tail = (OBS_DIMENSIONS + varint(len(dim_bytes)) + dim_bytes if dims else b"") + OBS_NAME
    tail += varint(len(name)) + name.encode()
    size = len(head) + 4 * k + len(tail)
    rows = np.empty((n, size), np.uint8)
    rows[:, : len(head)] = np.frombuffer(head, np.uint8)
    rows[:, len(head) : len(head) + 4 * k] = np.ascontiguousarray(values, dtype="<f4").view(np.uint8).reshape(n, 4 * k)
    rows[:, len(head) + 4 * k :] = np.frombuffer(tail, np.uint8)
    blob = rows.tobytes()
    return [blob[i * size : (i + 1) * size] for i in range(n)]


def agent_info(
    reward: float,
    agent_id: int,
    observations: Sequence[bytes],
    *,
    done: bool = False,
    max_step_reached: bool = False,
    action_mask: Sequence[bool] = (),
) -> bytes:
    """One AgentInfoProto (group id and group reward 0) from its observations' bytes."""
    parts = []
    packed = struct.pack("<f", reward)
    if packed != ZERO_FLOAT:
        parts.append(INFO_REWARD + packed)
    if done:
        parts.append(INFO_DONE + b"\x01")
    if max_step_reached:
        parts.append(INFO_MAX_STEP + b"\x01")
    if agent_id:
        parts.append(INFO_ID + varint(agent_id))
    if len(action_mask):
        parts.append(INFO_MASK + varint(len(action_mask)) + bytes(bool(m) for m in action_mask))
    for observation in observations:
        parts += (INFO_OBSERVATION, varint(len(observation)), observation)
    return b"".join(parts)


def agent_info_list(infos: Sequence[bytes]) -> bytes:
    """A ListAgentInfoProto of the given AgentInfoProto bytes."""
    parts = []
    for info in infos:
        parts += (LIST_VALUE, varint(len(info)), info)
    return b"".join(parts)


def continuous_actions(data: bytes, n: int, size: int) -> np.ndarray | None:
    """(n, size) float32 continuous actions from a ListAgentActionProto's bytes when every agent's action is
    `size` continuous values written as fledge writes them (vector_actions_deprecated, then
    continuous_actions, both the same values); None for anything else (read it field by field)."""
    if size < 1:
        return None
    field = varint(4 * size)
    body = 2 * (1 + len(field) + 4 * size)
    prefix = LIST_VALUE + varint(body)
    record = len(prefix) + body
    if n < 1 or len(data) != n * record:
        return None
    rows = np.frombuffer(data, np.uint8).reshape(n, record)
    first = len(prefix) + 1 + len(field)
    second = first + 4 * size + 1 + len(field)
    expected = {0: prefix + ACTION_VECTOR + field, first + 4 * size: ACTION_CONTINUOUS + field}
    for start, marker in expected.items():
        if not (rows[:, start : start + len(marker)] == np.frombuffer(marker, np.uint8)).all():
            return None
    deprecated = rows[:, first : first + 4 * size]
    continuous = rows[:, second : second + 4 * size]
    if not (deprecated == continuous).all():
        return None
    return np.ascontiguousarray(continuous).view("<f4").reshape(n, size).astype(np.float32)
