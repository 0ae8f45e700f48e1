"""Protocol messages <-> fledge's env API values: specs, steps (vectorised with numpy) and actions.

Observations arrive per agent as float lists (reshaped to the spec's shape) or as one or more
concatenated PNG images (decoded with Pillow to float32 in [0, 1], channel-first). A player that
sends data of the wrong size gives an EnvironmentFault naming the behavior, the agent and the shapes.
Agent infos of uncompressed observations are read for all agents at once from the message's bytes
(wire.py) where their layout allows, and actions are written as the bytes of every agent's message at
once; both give exactly what the protobuf library's field-by-field reads and writes give.
"""

from __future__ import annotations

import io
import itertools
import struct
from collections.abc import Sequence
from operator import attrgetter
from typing import Any, Protocol

import numpy as np

from fledge.envs.api import (
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)
from fledge.envs.unity import wire
from fledge.envs.unity.protocol.observation_pb2 import (
    PNG,
    AgentActionProto,
    AgentInfoProto,
    BrainParametersProto,
    ObservationProto,
)
from fledge.errors import EnvironmentFault


class RepeatedActions(Protocol):
    """The repeated AgentActionProto field of a ListAgentActionProto (`value`)."""

    def add(self, **fields: Any) -> AgentActionProto: ...


class AgentInfoList(Protocol):
    """A ListAgentInfoProto: its `value` field, and its wire bytes."""

    @property
    def value(self) -> Sequence[AgentInfoProto]: ...

    def SerializeToString(self) -> bytes: ...


class ActionList(Protocol):
    """A ListAgentActionProto: its `value` field, and reading wire bytes into it."""

    @property
    def value(self) -> RepeatedActions: ...

    def MergeFromString(self, serialized: bytes) -> int: ...


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SCALARS = attrgetter("reward", "id", "max_step_reached", "group_id", "group_reward", "done")


def action_spec_from_proto(brain: BrainParametersProto) -> ActionSpec:
    """The action spec of a brain: `action_spec` when set, else the legacy fields (one space type)."""
    spec = brain.action_spec
    if spec.num_continuous_actions > 0 or len(spec.discrete_branch_sizes) > 0:
        return ActionSpec(int(spec.num_continuous_actions), tuple(int(b) for b in spec.discrete_branch_sizes))
    sizes = tuple(int(s) for s in brain.vector_action_size_deprecated)
    if brain.vector_action_space_type_deprecated == 1:  # continuous: one size
        return ActionSpec(sum(sizes), ())
    return ActionSpec(0, sizes)


def observation_spec_from_proto(obs: ObservationProto) -> ObservationSpec:
    shape = tuple(int(d) for d in obs.shape)
    props = tuple(DimensionProperty(int(p)) for p in obs.dimension_properties)
    if len(props) != len(shape):
        props = (DimensionProperty.UNSPECIFIED,) * len(shape)
    return ObservationSpec(shape, props, ObservationType(int(obs.observation_type)), obs.name)


def behavior_spec_from_proto(brain: BrainParametersProto, agent: AgentInfoProto) -> BehaviorSpec:
    """A behavior's spec from its brain parameters and the observations of one of its agents."""
    return BehaviorSpec([observation_spec_from_proto(o) for o in agent.observations], action_spec_from_proto(brain))


# -- observations ---------------------------------------------------------------------------------


def split_pngs(data: bytes) -> list[bytes]:
    """Concatenated PNG images, one by one (walking each image's chunks up to IEND)."""
    images, start = [], 0
    while start < len(data):
        if data[start : start + 8] != PNG_SIGNATURE:
            raise ValueError(f"no PNG image at byte {start}")
        pos = start + 8
        while True:
            if pos + 8 > len(data):
                raise ValueError("a PNG image is cut short")
            (length,) = struct.unpack(">I", data[pos : pos + 4])
            kind = data[pos + 4 : pos + 8]
            pos += 12 + length
            if kind == b"IEND":
                break
        images.append(data[start:pos])
        start = pos
    return images


def decode_png_observation(data: bytes, shape: tuple[int, ...], mapping: Sequence[int]) -> np.ndarray:
    """One agent's compressed observation as float32 of `shape` (channel-first, values in [0, 1])."""
    from PIL import Image

    layers = []
    for png in split_pngs(data):
        with Image.open(io.BytesIO(png)) as image:
            pixels = np.asarray(image, dtype=np.float32) / 255.0
        layers.append(pixels[:, :, None] if pixels.ndim == 2 else pixels)
    hwc = np.concatenate(layers, axis=2)
    channels = shape[0] if len(shape) == 3 else 1
    if mapping:
        index = np.asarray(mapping)
        out = np.zeros(hwc.shape[:2] + (channels,), np.float32)
        for c in range(channels):
            chosen = index[: hwc.shape[2]] == c
            if chosen.any():
                out[:, :, c] = hwc[:, :, np.flatnonzero(chosen)].mean(axis=2)
        hwc = out
    elif channels == 1:
        hwc = hwc[:, :, :3].mean(axis=2, keepdims=True)
    else:
        hwc = hwc[:, :, :channels]
    chw = np.ascontiguousarray(np.moveaxis(hwc, 2, 0))
    if chw.shape == shape:
        return chw
    if hwc.shape == shape:  # a player that describes its images height-first
        return hwc
    raise ValueError(f"the decoded image has shape {chw.shape} (channel-first), expected {shape}")


def _stack_observations(
    behavior: str, index: int, spec: ObservationSpec, infos: Sequence[AgentInfoProto], worker: str
) -> np.ndarray:
    shape = tuple(spec.shape)
    size = int(np.prod(shape)) if shape else 1
    out = np.empty((len(infos),) + shape, np.float32)
    floats: list[Sequence[float]] = []
    rows: list[int] = []
    for row, info in enumerate(infos):
        if len(info.observations) <= index:
            raise EnvironmentFault(
                f"{worker}: behavior '{behavior}', agent {info.id} sent {len(info.observations)} observations; the "
                f"behavior's spec has {index + 1} or more."
            )
        obs = info.observations[index]
        if obs.compression_type == PNG:
            try:
                out[row] = decode_png_observation(obs.compressed_data, shape, obs.compressed_channel_mapping)
            except (ValueError, OSError) as exc:
                raise EnvironmentFault(
                    f"{worker}: behavior '{behavior}', agent {info.id}: observation {index} is not a readable PNG "
                    f"observation of shape {shape}: {exc}."
                ) from None
            continue
        data = obs.float_data.data
        if len(data) != size:
            raise EnvironmentFault(
                f"{worker}: behavior '{behavior}', agent {info.id}: observation {index} has {len(data)} values for "
                f"its shape {tuple(obs.shape)}, and the behavior's spec has shape {shape} ({size} values). The "
                "player sent observations of the wrong size."
            )
        floats.append(data)
        rows.append(row)
    if rows:
        # one pass over every float of every agent (much faster than numpy reading a list of containers)
        flat = np.fromiter(itertools.chain.from_iterable(floats), np.float32, count=len(rows) * size)
        values = flat.reshape((len(rows),) + shape)
        if len(rows) == len(infos):
            out = values
        else:
            out[rows] = values
    return out


def _masks(spec: ActionSpec, infos: Sequence[AgentInfoProto]) -> list[np.ndarray] | None:
    branches = spec.discrete_branches
    total = sum(branches)
    if total == 0:
        return None
    flat = np.zeros((len(infos), total), bool)
    any_mask = False
    for row, info in enumerate(infos):
        if len(info.action_mask) == total:  # a mask of another length is ignored: everything allowed
            flat[row] = info.action_mask
            any_mask = True
    if not any_mask:
        return None
    return np.split(flat, np.cumsum(branches)[:-1], axis=1)


def _scalars(infos: Sequence[AgentInfoProto]) -> np.ndarray:
    """(n, 6) float64 columns read in one pass: reward, id, max_step_reached, group_id, group_reward, done."""
    rows = list(map(_SCALARS, infos))  # attrgetter: one C call per agent rather than six attribute reads in Python
    return np.array(rows, np.float64).reshape(len(infos), 6)


def steps_from_infos(
    behavior: str, spec: BehaviorSpec, infos: Sequence[AgentInfoProto], worker: str
) -> tuple[DecisionSteps, TerminalSteps]:
    """Split one behavior's agent infos into DecisionSteps (not done) and TerminalSteps (done)."""
    table = _scalars(infos)
    done = table[:, 5] != 0
    if done.any():
        decided = [info for info, d in zip(infos, done) if not d]
        ended = [info for info, d in zip(infos, done) if d]
    else:
        decided, ended = list(infos), []
    d_rows, t_rows = table[~done], table[done]
    obs_d = [_stack_observations(behavior, k, s, decided, worker) for k, s in enumerate(spec.observation_specs)]
    obs_t = [_stack_observations(behavior, k, s, ended, worker) for k, s in enumerate(spec.observation_specs)]
    decision = DecisionSteps(
        obs=obs_d,
        reward=d_rows[:, 0].astype(np.float32),
        agent_id=d_rows[:, 1].astype(np.int32),
        action_mask=_masks(spec.action_spec, decided),
        group_id=d_rows[:, 3].astype(np.int32),
        group_reward=d_rows[:, 4].astype(np.float32),
    )
    terminal = TerminalSteps(
        obs=obs_t,
        reward=t_rows[:, 0].astype(np.float32),
        interrupted=t_rows[:, 2] != 0,
        agent_id=t_rows[:, 1].astype(np.int32),
        group_id=t_rows[:, 3].astype(np.int32),
        group_reward=t_rows[:, 4].astype(np.float32),
    )
    return decision, terminal


def agent_info_reader(spec: BehaviorSpec) -> wire.AgentInfoReader:
    """A bulk reader of the agent infos of a behavior of this spec (for steps_from_list)."""
    sizes = [int(np.prod(s.shape)) for s in spec.observation_specs]
    return wire.AgentInfoReader(sizes, sum(spec.action_spec.discrete_branches))


def steps_from_list(
    behavior: str, spec: BehaviorSpec, agents: AgentInfoList, worker: str, reader: wire.AgentInfoReader
) -> tuple[DecisionSteps, TerminalSteps]:
    """steps_from_infos for a ListAgentInfoProto: read from its wire bytes for every agent at once where
    `reader` can, else field by field (the same values either way)."""
    shapes = [tuple(s.shape) for s in spec.observation_specs]
    table = reader.read(agents.SerializeToString())
    if table is None:
        return steps_from_infos(behavior, spec, agents.value, worker)
    done = table.done
    ended = done.any()
    decided = ~done

    def rows(values: np.ndarray, chosen: np.ndarray | None) -> np.ndarray:
        return values if chosen is None else values[chosen]

    pick_d, pick_t = (decided, done) if ended else (None, np.zeros(0, np.intp))
    masks = None
    if sum(spec.action_spec.discrete_branches) and rows(table.has_mask, pick_d).any():
        masks = np.split(rows(table.action_mask, pick_d), np.cumsum(spec.action_spec.discrete_branches)[:-1], axis=1)
    decision = DecisionSteps(
        obs=[rows(o, pick_d).reshape((-1,) + shape) for o, shape in zip(table.observations, shapes)],
        reward=rows(table.reward, pick_d),
        agent_id=rows(table.agent_id, pick_d),
        action_mask=masks,
        group_id=rows(table.group_id, pick_d),
        group_reward=rows(table.group_reward, pick_d),
    )
    terminal = TerminalSteps(
        obs=[o[pick_t].reshape((-1,) + shape) for o, shape in zip(table.observations, shapes)],
        reward=table.reward[pick_t],
        interrupted=table.max_step_reached[pick_t],
        agent_id=table.agent_id[pick_t],
        group_id=table.group_id[pick_t],
        group_reward=table.group_reward[pick_t],
    )
    return decision, terminal


# -- actions --------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _packed(tag: int, values: np.ndarray, width: int) -> list[np.ndarray]:
    """Columns (n, ...) uint8 of one packed repeated field whose values take `width` bytes each (4 for floats, 1
    for varints below 128): its key and length, then the values' bytes; nothing for an empty field."""
    n, count = values.shape
    if count == 0:
        return []
    head = np.frombuffer(bytes([tag]) + _varint(count * width), np.uint8)
    return [np.broadcast_to(head, (n, len(head))), values.view(np.uint8).reshape(n, count * width)]


def action_list_bytes(action: ActionTuple) -> bytes | None:
    """A ListAgentActionProto of one AgentActionProto per row, as wire bytes written for all rows at once: the
    bytes the protobuf library writes for add_action_protos' messages (fields in field-number order: the
    deprecated vector of continuous then discrete values, continuous_actions, discrete_actions). None when a
    discrete value is outside 0..127 (its varint is not one byte): add_action_protos writes those."""
    cont = np.ascontiguousarray(action.continuous, dtype="<f4")
    disc = np.asarray(action.discrete, np.int32)
    n = cont.shape[0]
    if disc.size and (disc.min() < 0 or disc.max() > 127):
        return None
    both = np.ascontiguousarray(np.concatenate([cont, disc.astype("<f4")], axis=1))
    columns = _packed(0x0A, both, 4) + _packed(0x32, cont, 4) + _packed(0x3A, np.ascontiguousarray(disc, np.uint8), 1)
    size = sum(c.shape[1] for c in columns)
    record = np.frombuffer(b"\x0a" + _varint(size), np.uint8)
    return np.concatenate([np.broadcast_to(record, (n, len(record))), *columns], axis=1).tobytes()


def add_action_protos(target: RepeatedActions, action: ActionTuple) -> None:
    """Append one AgentActionProto per row to `target`; the deprecated field holds continuous then discrete values."""
    cont = np.asarray(action.continuous, np.float32)
    disc = np.asarray(action.discrete, np.int32)
    both = np.concatenate([cont, disc.astype(np.float32)], axis=1).tolist()
    for c, d, v in zip(cont.tolist(), disc.tolist(), both):
        target.add(continuous_actions=c, discrete_actions=d, vector_actions_deprecated=v)


def write_actions(target: ActionList, action: ActionTuple) -> None:
    """One AgentActionProto per row appended to `target`: read from the bytes of action_list_bytes (one call for
    every agent) where it can write them, else added message by message."""
    data = action_list_bytes(action)
    if data is None:
        add_action_protos(target.value, action)
    else:
        target.MergeFromString(data)
