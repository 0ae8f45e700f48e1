"""Messages read and written in bulk (wire bytes for every agent at once) give what the protobuf library gives."""

from __future__ import annotations

import numpy as np
import pytest

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from fledge.envs.unity import convert
from fledge.envs.unity.protocol import observation_pb2 as pb
from fledge.envs.unity.protocol.unity_message_pb2 import UnityRLInputProto, UnityRLOutputProto
from fledge.errors import EnvironmentFault

ListAgentInfoProto = UnityRLOutputProto.ListAgentInfoProto
ListAgentActionProto = UnityRLInputProto.ListAgentActionProto


def _actions(rng: np.random.Generator, n: int, continuous: int, branches: tuple[int, ...]) -> ActionTuple:
    disc = [rng.integers(0, b, n) for b in branches]
    return ActionTuple(
        rng.normal(size=(n, continuous)).astype(np.float32),
        np.stack(disc, axis=1).astype(np.int32) if disc else np.zeros((n, 0), np.int32),
    )


@pytest.mark.parametrize(("continuous", "branches"), [(2, ()), (0, (3, 2)), (3, (2, 128)), (0, ()), (40, (5,))])
def test_action_bytes_are_the_librarys(continuous: int, branches: tuple[int, ...]) -> None:
    rng = np.random.default_rng(continuous)
    for n in (0, 1, 7):
        action = _actions(rng, n, continuous, branches)
        library = ListAgentActionProto()
        convert.add_action_protos(library.value, action)
        assert convert.action_list_bytes(action) == library.SerializeToString()
        written = ListAgentActionProto()
        convert.write_actions(written, action)
        assert written == library


def test_discrete_values_past_one_byte_are_added_message_by_message() -> None:
    action = ActionTuple(np.zeros((2, 0), np.float32), np.array([[200], [3]], np.int32))
    assert convert.action_list_bytes(action) is None
    written = ListAgentActionProto()
    convert.write_actions(written, action)
    assert [list(a.discrete_actions) for a in written.value] == [[200], [3]]


def _observation(rng: np.random.Generator, shape: tuple[int, ...]) -> pb.ObservationProto:
    values = rng.normal(size=shape).astype(np.float32).ravel().tolist()
    return pb.ObservationProto(
        shape=list(shape), float_data=pb.ObservationProto.FloatData(data=values), dimension_properties=[1], name="V"
    )


def _agents(rng: np.random.Generator, n: int, shapes: list[tuple[int, ...]], mask: int) -> ListAgentInfoProto:
    """Agents of a few layouts: rewards and ids that are 0 (left out), one byte or more, done or not, masks."""
    agents = ListAgentInfoProto()
    for i in range(n):
        info = agents.value.add(
            reward=float(rng.choice([0.0, 0.1, -1.0])),
            id=int(rng.choice([0, i, 300 + i, -5])),
            done=bool(rng.random() < 0.3),
            max_step_reached=bool(rng.random() < 0.3),
            group_id=int(rng.choice([0, 200])),
            group_reward=float(rng.choice([0.0, 0.5])),
        )
        info.observations.extend(_observation(rng, s) for s in shapes)
        if mask and rng.random() < 0.8:
            info.action_mask.extend((rng.random(mask) < 0.5).tolist())
    return agents


def _assert_same(bulk: tuple[DecisionSteps, TerminalSteps], library: tuple[DecisionSteps, TerminalSteps]) -> None:
    for a, b in zip(bulk, library):
        fields = ["reward", "agent_id", "group_id", "group_reward"] + (
            ["interrupted"] if hasattr(a, "interrupted") else []
        )
        for name in fields:
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and np.array_equal(x, y), name
        for x, y in zip(a.obs, b.obs, strict=True):
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)
        if isinstance(a, DecisionSteps):
            assert isinstance(b, DecisionSteps)
            assert (a.action_mask is None) == (b.action_mask is None)
            for x, y in zip(a.action_mask or [], b.action_mask or [], strict=True):
                assert np.array_equal(x, y)


@pytest.mark.parametrize(("shapes", "branches"), [([(8,)], ()), ([(8,), (2, 3, 4)], (3, 2)), ([(1,)], (4,))])
def test_agent_infos_read_in_bulk_are_the_librarys(shapes: list[tuple[int, ...]], branches: tuple[int, ...]) -> None:
    rng = np.random.default_rng(len(shapes) + len(branches))
    spec = BehaviorSpec(
        [convert.observation_spec_from_proto(_observation(rng, s)) for s in shapes], ActionSpec(1, branches)
    )
    reader = convert.agent_info_reader(spec)
    read = 0
    for _ in range(60):  # the reader keeps the layouts it has seen: later messages meet known ones
        agents = _agents(rng, int(rng.integers(0, 12)), shapes, sum(branches))
        read += reader.read(agents.SerializeToString()) is not None
        _assert_same(
            convert.steps_from_list("B", spec, agents, "w", reader),
            convert.steps_from_infos("B", spec, agents.value, "w"),
        )
    assert read >= 10  # most messages here mix too many layouts; enough are read in bulk


def test_messages_not_read_in_bulk() -> None:
    rng = np.random.default_rng(0)
    spec = BehaviorSpec([ObservationSpec.vector(8)], ActionSpec(1, ()))
    reader = convert.agent_info_reader(spec)
    same = ListAgentInfoProto()
    for i in range(4):
        same.value.add(reward=0.5, id=i + 1, observations=[_observation(rng, (8,))])
    assert reader.read(same.SerializeToString()) is not None
    png = ListAgentInfoProto()
    png.value.add(id=1, observations=[pb.ObservationProto(shape=[8], compression_type=pb.PNG, compressed_data=b"x")])
    assert reader.read(png.SerializeToString()) is None
    short = ListAgentInfoProto()
    short.value.add(id=4, observations=[_observation(rng, (7,))])
    assert reader.read(short.SerializeToString()) is None
    with pytest.raises(EnvironmentFault, match=r"agent 4: observation 0 has 7 values"):
        convert.steps_from_list("B", spec, short, "w", reader)  # read field by field, which names the fault
    assert reader.read(b"\x12\x00") is None  # not a list of agent infos
