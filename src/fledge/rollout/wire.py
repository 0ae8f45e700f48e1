"""The worker wire format: a JSON header plus raw array bytes, so nothing is unpickled after start-up.

One message = 4-byte little-endian header length, the UTF-8 JSON header, then the arrays' bytes back
to back. The header holds the command, small JSON values, and for each array its key, dtype and
shape. Only plain numeric dtypes are accepted when decoding; anything else is a protocol error.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

from fledge.envs.api import (
    ActionSpec,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from fledge.errors import EnvironmentFault

ALLOWED_DTYPES = {"float32", "float64", "int32", "int64", "bool", "uint8"}
_DTYPES = {name: np.dtype(name) for name in ALLOWED_DTYPES}  # looked up once: a message has a dozen arrays
_LEN = struct.Struct("<I")


class ProtocolError(EnvironmentFault):
    """A worker sent something that is not a valid message."""


def encode(command: str, values: dict[str, Any] | None = None, arrays: dict[str, np.ndarray] | None = None) -> bytes:
    arrays = arrays or {}
    specs = []
    chunks = []
    for key, arr in arrays.items():
        arr = np.ascontiguousarray(arr)
        specs.append([key, str(arr.dtype), list(arr.shape)])
        chunks.append(arr.tobytes())
    header = json.dumps({"command": command, "values": values or {}, "arrays": specs}).encode("utf-8")
    return b"".join([_LEN.pack(len(header)), header, *chunks])


def decode(message: bytes) -> tuple[str, dict[str, Any], dict[str, np.ndarray]]:
    try:
        (size,) = _LEN.unpack_from(message, 0)
        header = json.loads(message[4 : 4 + size].decode("utf-8"))
        offset = 4 + size
        arrays = {}
        for key, dtype, shape in header["arrays"]:
            dt = _DTYPES.get(dtype)
            if dt is None:
                raise ProtocolError(f"worker message: array '{key}' has dtype {dtype}, which is not allowed")
            count = math.prod(int(d) for d in shape)
            if count < 0:
                raise ProtocolError(f"worker message: array '{key}' has a negative shape {shape}")
            nbytes = count * dt.itemsize
            if offset + nbytes > len(message):
                raise ProtocolError(f"worker message: array '{key}' is truncated")
            arrays[key] = np.frombuffer(message, dtype=dt, count=count, offset=offset).reshape(shape)
            offset += nbytes
        return str(header["command"]), dict(header["values"]), arrays
    except ProtocolError:
        raise
    except (struct.error, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"worker message could not be decoded: {exc}") from None


# -- specs and steps as plain values ---------------------------------------------------------------


def specs_to_json(specs: dict[str, BehaviorSpec]) -> dict[str, Any]:
    return {
        name: {
            "observations": [
                {
                    "shape": list(o.shape),
                    "dimension_property": [int(d) for d in o.dimension_property],
                    "observation_type": int(o.observation_type),
                    "name": o.name,
                }
                for o in spec.observation_specs
            ],
            "continuous": spec.action_spec.continuous_size,
            "discrete": list(spec.action_spec.discrete_branches),
        }
        for name, spec in specs.items()
    }


def specs_from_json(data: dict[str, Any]) -> dict[str, BehaviorSpec]:
    return {
        name: BehaviorSpec(
            [
                ObservationSpec(
                    tuple(o["shape"]),
                    tuple(DimensionProperty(d) for d in o["dimension_property"]),
                    ObservationType(o["observation_type"]),
                    o["name"],
                )
                for o in entry["observations"]
            ],
            ActionSpec(int(entry["continuous"]), tuple(int(b) for b in entry["discrete"])),
        )
        for name, entry in data.items()
    }


def steps_to_arrays(index: int, decision: DecisionSteps, terminal: TerminalSteps) -> dict[str, np.ndarray]:
    """The arrays of one behavior's steps, keyed '<index>.<d|t>.<field>'."""
    out: dict[str, np.ndarray] = {}
    for i, o in enumerate(decision.obs):
        out[f"{index}.d.obs{i}"] = o
    for field in ("reward", "agent_id", "group_id", "group_reward"):
        out[f"{index}.d.{field}"] = getattr(decision, field)
    if decision.action_mask is not None:
        for b, m in enumerate(decision.action_mask):
            out[f"{index}.d.mask{b}"] = m
    for i, o in enumerate(terminal.obs):
        out[f"{index}.t.obs{i}"] = o
    for field in ("reward", "interrupted", "agent_id", "group_id", "group_reward"):
        out[f"{index}.t.{field}"] = getattr(terminal, field)
    return out


def steps_from_arrays(
    index: int, spec: BehaviorSpec, arrays: dict[str, np.ndarray]
) -> tuple[DecisionSteps, TerminalSteps]:
    n_obs = len(spec.observation_specs)
    try:
        masks = None
        if f"{index}.d.mask0" in arrays:
            masks = [arrays[f"{index}.d.mask{b}"] for b in range(len(spec.action_spec.discrete_branches))]
        decision = DecisionSteps(
            obs=[arrays[f"{index}.d.obs{i}"] for i in range(n_obs)],
            reward=arrays[f"{index}.d.reward"],
            agent_id=arrays[f"{index}.d.agent_id"],
            action_mask=masks,
            group_id=arrays[f"{index}.d.group_id"],
            group_reward=arrays[f"{index}.d.group_reward"],
        )
        terminal = TerminalSteps(
            obs=[arrays[f"{index}.t.obs{i}"] for i in range(n_obs)],
            reward=arrays[f"{index}.t.reward"],
            interrupted=arrays[f"{index}.t.interrupted"],
            agent_id=arrays[f"{index}.t.agent_id"],
            group_id=arrays[f"{index}.t.group_id"],
            group_reward=arrays[f"{index}.t.group_reward"],
        )
    except KeyError as exc:
        raise ProtocolError(f"worker message is missing {exc}") from None
    return decision, terminal
