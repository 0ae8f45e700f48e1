"""Builds golden.demo by hand from the spec's field layout (1.5, 8.7), independently of fledge's writer:
raw protobuf messages, a varint written bit by bit here, the header padded with zeros to byte 33.

    PYTHONPATH=src python tests/contract/golden/make_golden_demo.py   # rewrites golden.demo

Content: behavior "Golden", one observation of shape (3,) named "VectorSensor", actions = 1 continuous
and one discrete branch of 3. One agent (id 5) decides twice (rewards 0 then 0.5, the second decision
with action 2 masked) and ends its episode with reward 1.0; header: 2 steps, 1 episode, mean reward 1.5.
"""

from __future__ import annotations

from pathlib import Path

from fledge.envs.unity.protocol.demonstration_pb2 import AgentInfoActionPairProto, DemonstrationMetaProto
from fledge.envs.unity.protocol.observation_pb2 import (
    ActionSpecProto,
    AgentActionProto,
    AgentInfoProto,
    BrainParametersProto,
    ObservationProto,
)

PATH = Path(__file__).with_name("golden.demo")


def varint(n: int) -> bytes:
    out = b""
    while n >= 128:
        out += bytes([(n % 128) + 128])
        n //= 128
    return out + bytes([n])


def obs(values: list[float]) -> ObservationProto:
    o = ObservationProto(shape=[3], dimension_properties=[1], observation_type=0, name="VectorSensor")
    o.float_data.data.extend(values)
    return o


def pair(
    reward: float, done: bool, values: list[float], cont: float, disc: int, mask: list[bool]
) -> AgentInfoActionPairProto:
    info = AgentInfoProto(reward=reward, done=done, id=5, action_mask=mask, observations=[obs(values)])
    action = AgentActionProto(
        continuous_actions=[cont], discrete_actions=[disc], vector_actions_deprecated=[cont, disc]
    )
    return AgentInfoActionPairProto(agent_info=info, action_info=action)


def golden_bytes() -> bytes:
    meta = DemonstrationMetaProto(
        api_version=1, demonstration_name="golden", number_steps=2, number_episodes=1, mean_reward=1.5
    )
    brain = BrainParametersProto(
        brain_name="Golden",
        action_spec=ActionSpecProto(num_continuous_actions=1, num_discrete_actions=1, discrete_branch_sizes=[3]),
    )
    records = [
        pair(0.0, False, [1.0, 0.0, -1.0], 0.5, 1, [False, False, False]),
        pair(0.5, False, [0.25, 2.0, 0.0], -0.75, 0, [False, False, True]),
        pair(1.0, True, [0.0, 0.0, 4.0], -0.75, 0, []),
    ]
    head = meta.SerializeToString()
    out = varint(len(head)) + head
    out += b"\x00" * (33 - len(out))
    for message in [brain, *records]:
        body = message.SerializeToString()
        out += varint(len(body)) + body
    return out


if __name__ == "__main__":
    PATH.write_bytes(golden_bytes())
    print(f"wrote {PATH} ({PATH.stat().st_size} bytes)")
