"""Protocol messages to env API values: specs (also the legacy action fields), steps, masks, PNGs, actions."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.unity import convert
from fledge.envs.unity.protocol import observation_pb2 as pb
from fledge.envs.unity.protocol.unity_message_pb2 import UnityRLInputProto
from fledge.errors import EnvironmentFault


def vector(values: list[float]) -> pb.ObservationProto:
    return pb.ObservationProto(shape=[len(values)], float_data=pb.ObservationProto.FloatData(data=values))


def test_action_specs_from_the_action_spec_or_the_legacy_fields() -> None:
    hybrid = pb.BrainParametersProto(
        action_spec=pb.ActionSpecProto(num_continuous_actions=2, num_discrete_actions=2, discrete_branch_sizes=[3, 2])
    )
    assert convert.action_spec_from_proto(hybrid) == ActionSpec(2, (3, 2))
    legacy_continuous = pb.BrainParametersProto(
        vector_action_size_deprecated=[4], vector_action_space_type_deprecated=1
    )
    assert convert.action_spec_from_proto(legacy_continuous) == ActionSpec(4, ())
    legacy_discrete = pb.BrainParametersProto(
        vector_action_size_deprecated=[3, 5], vector_action_space_type_deprecated=0
    )
    assert convert.action_spec_from_proto(legacy_discrete) == ActionSpec(0, (3, 5))


def test_agents_split_into_decisions_and_terminals_with_masks_groups_and_interruptions() -> None:
    spec = BehaviorSpec([ObservationSpec.vector(2)], ActionSpec(0, (2, 3)))
    infos = [
        pb.AgentInfoProto(id=7, reward=0.5, observations=[vector([1, 2])], action_mask=[0, 1, 1, 0, 0], group_id=3),
        pb.AgentInfoProto(id=8, reward=1.0, done=True, max_step_reached=True, observations=[vector([3, 4])]),
        pb.AgentInfoProto(id=9, observations=[vector([5, 6])], action_mask=[True], group_reward=2.0),  # wrong length
    ]
    decision, terminal = convert.steps_from_infos("B", spec, infos, "Unity worker 0")
    assert decision.agent_id.tolist() == [7, 9] and terminal.agent_id.tolist() == [8]
    assert decision.obs[0].tolist() == [[1, 2], [5, 6]] and terminal.obs[0].tolist() == [[3, 4]]
    assert terminal.interrupted.tolist() == [True] and terminal.reward.tolist() == [1.0]
    assert decision.group_id.tolist() == [3, 0] and decision.group_reward.tolist() == [0.0, 2.0]
    assert decision.action_mask is not None
    assert decision.action_mask[0].tolist() == [[False, True], [False, False]]  # True = masked, as fledge's API
    assert decision.action_mask[1].tolist() == [[True, False, False], [False, False, False]]


def test_observations_of_the_wrong_size_name_the_agent() -> None:
    spec = BehaviorSpec([ObservationSpec.vector(3)], ActionSpec(1, ()))
    infos = [pb.AgentInfoProto(id=4, observations=[vector([1, 2])])]
    with pytest.raises(EnvironmentFault, match=r"behavior 'B', agent 4: observation 0 has 2 values .*\(3,\)"):
        convert.steps_from_infos("B", spec, infos, "Unity worker 1")


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def test_concatenated_pngs_with_a_channel_mapping() -> None:
    rng = np.random.default_rng(0)
    first = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    second = rng.integers(0, 256, (5, 4, 3), dtype=np.uint8)
    data = _png(first) + _png(second)
    # six stacked channels: the first image's three average into channel 0, the second's first one is channel 1
    decoded = convert.decode_png_observation(data, (2, 5, 4), [0, 0, 0, 1, -1, -1])
    assert decoded.shape == (2, 5, 4)
    np.testing.assert_allclose(decoded[0], first.mean(axis=2) / 255.0, atol=1e-6)
    np.testing.assert_allclose(decoded[1], second[:, :, 0] / 255.0, atol=1e-6)
    gray = convert.decode_png_observation(_png(first), (1, 5, 4), [])
    np.testing.assert_allclose(gray[0], first.mean(axis=2) / 255.0, atol=1e-6)
    with pytest.raises(ValueError, match="no PNG image"):
        convert.decode_png_observation(b"not a png", (3, 5, 4), [])


def test_actions_fill_the_new_and_the_deprecated_fields() -> None:
    action = ActionTuple(np.array([[0.5, -1.0]], np.float32), np.array([[2]], np.int32))
    target = UnityRLInputProto().agent_actions["b"].value
    convert.add_action_protos(target, action)
    (proto,) = target
    assert list(proto.continuous_actions) == [0.5, -1.0] and list(proto.discrete_actions) == [2]
    assert list(proto.vector_actions_deprecated) == [0.5, -1.0, 2.0]
