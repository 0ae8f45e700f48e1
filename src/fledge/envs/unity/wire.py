"""Agent infos read from protobuf wire bytes for every agent at once, instead of field by field per agent.

A player's agents mostly send messages of a few layouts: the same fields, observations of the same
sizes, varints of the same byte counts; they differ only in values. `AgentInfoReader.read` takes the
bytes of a behavior's ListAgentInfoProto (as the protobuf library writes them: fields in field-number
order, packed repeated scalars, fields at their default value left out), splits them into agents,
groups the agents by the byte length of their message, finds each group's layout (one seen before, or
the first message walked field by field), checks that every message of the group has the layout's bytes
outside the values, and reads each value for the whole group with numpy. Anything else (an observation
sent as PNG, a field this reader does not know, messages of one length but different layouts, too many
layouts) gives None, and the caller reads the message field by field (convert.steps_from_infos), which
also names any fault.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_LAYOUTS = 8  # more groups of agents than this: not worth reading in bulk

# AgentInfoProto fields
REWARD, DONE, MAX_STEP, AGENT_ID, ACTION_MASK, OBSERVATION, GROUP_ID, GROUP_REWARD = 7, 8, 9, 10, 11, 13, 14, 15
# ObservationProto fields (3, compressed_data, is never read here)
COMPRESSION, FLOAT_DATA = 2, 4
STRUCTURE_ONLY = {1, 5, 6, 7, 8}  # shape, channel mapping, dimension properties, type, name: the same for all agents
VARINT, LENGTH, FIXED32 = 0, 2, 5  # wire types


@dataclass
class AgentTable:
    """The agents of one behavior, in message order."""

    reward: np.ndarray  # float32 (n,)
    done: np.ndarray  # bool (n,)
    max_step_reached: np.ndarray  # bool (n,)
    agent_id: np.ndarray  # int32 (n,)
    group_id: np.ndarray  # int32 (n,)
    group_reward: np.ndarray  # float32 (n,)
    action_mask: np.ndarray  # bool (n, mask length), all False (everything allowed) where has_mask is False
    has_mask: np.ndarray  # bool (n,): the agent sent a mask of the behavior's length
    observations: list[np.ndarray]  # per observation, float32 (n, values)


class _Unreadable(Exception):
    """The bytes are not of a layout read here."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Unreadable
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


@dataclass
class _Layout:
    """Where the values of a message of one layout lie: (field, byte offset, byte count) for scalars; the float
    observations as (offset, count of floats) in message order; every other byte must match across agents."""

    scalars: list[tuple[int, int, int]]
    observations: list[tuple[int, int]]
    mask: tuple[int, int] | None  # offset, length
    structure: np.ndarray  # bool (message length,): True where the byte must be the same for every agent


def _layout(body: bytes) -> _Layout:
    structure = np.ones(len(body), bool)
    scalars: list[tuple[int, int, int]] = []
    observations: list[tuple[int, int]] = []
    mask: tuple[int, int] | None = None
    pos = 0
    while pos < len(body):
        key, pos = _varint(body, pos)
        field, wire = key >> 3, key & 7
        if field in (DONE, MAX_STEP, AGENT_ID, GROUP_ID) and wire == VARINT:
            _, end = _varint(body, pos)
            scalars.append((field, pos, end - pos))
        elif field in (REWARD, GROUP_REWARD) and wire == FIXED32:
            end = pos + 4
            scalars.append((field, pos, 4))
        elif field == ACTION_MASK and wire == LENGTH:
            length, pos = _varint(body, pos)
            end = pos + length
            mask = (pos, length)
        elif field == OBSERVATION and wire == LENGTH:
            length, pos = _varint(body, pos)
            end = pos + length
            start, count = _observation(body, pos, end)
            observations.append((start, count))
            structure[start : start + 4 * count] = False
            pos = end
            continue
        else:
            raise _Unreadable
        if end > len(body):
            raise _Unreadable
        structure[pos:end] = False
        pos = end
    return _Layout(scalars, observations, mask, structure)


def _observation(body: bytes, pos: int, end: int) -> tuple[int, int]:
    """(offset, count) of an uncompressed observation's floats within `body`."""
    floats: tuple[int, int] | None = None
    while pos < end:
        key, pos = _varint(body, pos)
        field, wire = key >> 3, key & 7
        if field == FLOAT_DATA and wire == LENGTH:
            length, pos = _varint(body, pos)
            stop = pos + length
            floats = (pos, 0)
            if length:  # FloatData: its one field, packed floats
                inner_key, inner = _varint(body, pos)
                if inner_key != (1 << 3 | LENGTH):
                    raise _Unreadable
                size, inner = _varint(body, inner)
                if size % 4 or inner + size != stop:
                    raise _Unreadable
                floats = (inner, size // 4)
            pos = stop
        elif field in STRUCTURE_ONLY or field == COMPRESSION:
            if field == COMPRESSION:  # present only when not NONE: a PNG observation
                raise _Unreadable
            if wire == VARINT:
                _, pos = _varint(body, pos)
            elif wire == LENGTH:
                length, pos = _varint(body, pos)
                pos += length
            else:
                raise _Unreadable
        else:  # compressed data, or a field this reader does not know
            raise _Unreadable
    if floats is None or pos != end:
        raise _Unreadable
    return floats


def _split(data: bytes) -> tuple[list[int], list[int]]:
    """Start and length of every AgentInfoProto in a ListAgentInfoProto's bytes."""
    starts: list[int] = []
    lengths: list[int] = []
    pos, end = 0, len(data)
    while pos < end:
        if data[pos] != 0x0A:  # field 1 (value), length-delimited
            raise _Unreadable
        if pos + 1 < end and data[pos + 1] < 0x80:  # a length below 128 (read inline: this loop runs per agent)
            length, pos = data[pos + 1], pos + 2
        else:
            length, pos = _varint(data, pos + 1)
        starts.append(pos)
        lengths.append(length)
        pos += length
    if pos != end:
        raise _Unreadable
    return starts, lengths


def _varint_column(rows: np.ndarray, offset: int, size: int) -> np.ndarray:
    """int64 values of varints of `size` bytes at `offset` of every row (int32 values, negative ones in 10 bytes)."""
    if size == 1:
        part1 = rows[:, offset]
        if (part1 >= 0x80).any():
            raise _Unreadable
        return part1.astype(np.int64)
    part = rows[:, offset : offset + size].astype(np.uint64)
    continued = (part[:, :-1] >= 0x80).all() if size > 1 else True
    if not continued or (part[:, -1] >= 0x80).any():  # a varint of another byte count in some row
        raise _Unreadable
    value = np.zeros(len(rows), np.uint64)
    for k in range(size):
        value |= (part[:, k] & np.uint64(0x7F)) << np.uint64(7 * k)
    return value.astype(np.int64)


class AgentInfoReader:
    """Reads the agent infos of one behavior whose agents have one uncompressed observation of each size in
    `observation_sizes`; it keeps the layouts it has walked (a few per message length), so that a message of a
    layout seen before is only compared with it."""

    def __init__(self, observation_sizes: list[int], mask_length: int) -> None:
        self.observation_sizes = list(observation_sizes)
        self.mask_length = mask_length
        # per message length, the layouts seen: (layout, the positions of its structure bytes, their values)
        self._layouts: dict[int, list[tuple[_Layout, np.ndarray, np.ndarray]]] = {}

    def read(self, data: bytes) -> AgentTable | None:
        """The agents of a ListAgentInfoProto's bytes, or None when they are not of layouts read here."""
        try:
            starts, lengths = _split(data)
        except _Unreadable:
            return None
        n = len(starts)
        groups: dict[int, list[int]] = {}
        for index, length in enumerate(lengths):
            groups.setdefault(length, []).append(index)
        if len(groups) > MAX_LAYOUTS:
            return None
        table = AgentTable(
            reward=np.zeros(n, np.float32),
            done=np.zeros(n, bool),
            max_step_reached=np.zeros(n, bool),
            agent_id=np.zeros(n, np.int32),
            group_id=np.zeros(n, np.int32),
            group_reward=np.zeros(n, np.float32),
            action_mask=np.zeros((n, self.mask_length), bool),
            has_mask=np.zeros(n, bool),
            observations=[np.empty((n, size), np.float32) for size in self.observation_sizes],
        )
        buffer = np.frombuffer(data, np.uint8)
        at = np.asarray(starts)
        try:
            for length, members in groups.items():
                rows = buffer[np.add.outer(at[members], np.arange(length))]  # (agents, length)
                _fill(table, np.asarray(members), rows, self._layout(data, starts[members[0]], rows), self.mask_length)
        except _Unreadable:
            return None
        return table

    def _layout(self, data: bytes, first: int, rows: np.ndarray) -> _Layout:
        """The layout of every row of `rows` (messages of one length): one seen before whose structure bytes every
        row has, or the first row's (then every row must have its structure bytes)."""
        known = self._layouts.setdefault(rows.shape[1], [])
        for layout, positions, values in known:
            if (rows[:, positions] == values).all():
                return layout
        layout = _layout(data[first : first + rows.shape[1]])
        if [count for _, count in layout.observations] != self.observation_sizes:
            raise _Unreadable
        positions = np.flatnonzero(layout.structure)
        values = rows[0, positions]
        if not (rows[:, positions] == values).all():
            raise _Unreadable
        if len(known) >= MAX_LAYOUTS:
            known.pop(0)
        known.append((layout, positions, values))
        return layout


def _fill(table: AgentTable, members: np.ndarray, rows: np.ndarray, layout: _Layout, mask_length: int) -> None:
    """Write one group's values into `table`."""
    for field, offset, size in layout.scalars:
        if field in (REWARD, GROUP_REWARD):
            values = np.ascontiguousarray(rows[:, offset : offset + 4]).view("<f4")[:, 0]
            (table.reward if field == REWARD else table.group_reward)[members] = values
            continue
        number = _varint_column(rows, offset, size)
        if field == DONE:
            table.done[members] = number != 0
        elif field == MAX_STEP:
            table.max_step_reached[members] = number != 0
        else:
            (table.agent_id if field == AGENT_ID else table.group_id)[members] = number.astype(np.int32)
    for index, (offset, count) in enumerate(layout.observations):
        floats = np.ascontiguousarray(rows[:, offset : offset + 4 * count]).view("<f4")
        table.observations[index][members] = floats
    if layout.mask is None or mask_length == 0 or layout.mask[1] != mask_length:
        return  # a mask of another length is ignored: everything allowed
    offset, length = layout.mask
    table.action_mask[members] = rows[:, offset : offset + length] != 0
    table.has_mask[members] = True
