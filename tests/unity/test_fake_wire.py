"""The fake player's wire bytes are the protobuf library's for the same messages."""

from __future__ import annotations

import numpy as np
from fake_player import vector_observation
from fake_wire import agent_info, agent_info_list, continuous_actions, vector_observations

from fledge.envs.api import ActionTuple
from fledge.envs.unity import convert
from fledge.envs.unity.protocol import observation_pb2 as pb
from fledge.envs.unity.protocol.unity_message_pb2 import UnityRLInputProto, UnityRLOutputProto


def test_observations_and_agent_infos_are_the_librarys_bytes() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(3, 8)).astype(np.float32)
    assert vector_observations(values, (8,)) == [vector_observation(v).SerializeToString() for v in values]
    image = rng.random((2, 3, 4)).astype(np.float32)
    assert vector_observations(image.reshape(1, -1), (2, 3, 4)) == [vector_observation(image).SerializeToString()]
    observation = vector_observation(values[0])
    cases = [
        {"reward": 0.0, "agent_id": 0},
        {"reward": 0.1, "agent_id": 5, "action_mask": [True, False, True]},
        {"reward": -1.0, "agent_id": 300, "done": True, "max_step_reached": True},
        {"reward": -0.0, "agent_id": 2**20, "done": True},
    ]
    expected, written = UnityRLOutputProto.ListAgentInfoProto(), []
    for case in cases:
        fields = dict(case)
        info = pb.AgentInfoProto(
            reward=fields.pop("reward"), id=fields.pop("agent_id"), observations=[observation, observation]
        )
        for name, value in fields.items():
            getattr(info, name).extend(value) if name == "action_mask" else setattr(info, name, value)
        expected.value.append(info)
        written.append(agent_info(observations=[observation.SerializeToString()] * 2, **case))  # type: ignore[arg-type]
        assert written[-1] == info.SerializeToString()
    assert agent_info_list(written) == expected.SerializeToString()


def test_continuous_actions_read_at_once_or_not_at_all() -> None:
    actions = np.array([[0.5, -1.0], [0.25, 1.0], [0.0, -0.0]], np.float32)
    sent = UnityRLInputProto.ListAgentActionProto()
    convert.add_action_protos(sent.value, ActionTuple(actions))
    read = continuous_actions(sent.SerializeToString(), 3, 2)
    assert read is not None and np.array_equal(read, actions)
    assert continuous_actions(sent.SerializeToString(), 2, 2) is None  # another count of agents
    assert continuous_actions(sent.SerializeToString(), 3, 1) is None  # another action size
    hybrid = UnityRLInputProto.ListAgentActionProto()
    convert.add_action_protos(hybrid.value, ActionTuple(actions, np.ones((3, 1), np.int32)))
    assert continuous_actions(hybrid.SerializeToString(), 3, 2) is None  # discrete values too: read per agent
    only_new = UnityRLInputProto.ListAgentActionProto()
    for row in actions:
        only_new.value.add(continuous_actions=row.tolist())
    assert continuous_actions(only_new.SerializeToString(), 3, 2) is None
