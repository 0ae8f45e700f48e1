"""Environment steps -> a `.demo` file: what `fledge play --record-demo` writes.

One record per agent step of the recorded behavior, as a Unity recorder writes them: a decision gives
the agent's info (observations, reward since its last decision, not done) with the action it takes; an
episode end gives the final info (done, `max_step_reached` when interrupted) with the agent's last
action. Records of several agents interleave; each carries the agent's id, which is how the reader
pairs them. The file is written atomically on `close`, with a header that counts the decisions, the
finished episodes and their mean return.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fledge.envs.api import ActionTuple, BehaviorSpec, DecisionSteps, TerminalSteps
from fledge.envs.unity.protocol.demonstration_pb2 import AgentInfoActionPairProto
from fledge.envs.unity.protocol.observation_pb2 import (
    ActionSpecProto,
    AgentActionProto,
    AgentInfoProto,
    BrainParametersProto,
    ObservationProto,
)
from fledge.imitation.demo_file import DemoFile, make_meta, write_demo_file

__all__ = ["DemoWriter", "brain_proto", "observation_proto"]


def brain_proto(behavior: str, spec: BehaviorSpec) -> BrainParametersProto:
    action = spec.action_spec
    return BrainParametersProto(
        brain_name=behavior,
        is_training=False,
        action_spec=ActionSpecProto(
            num_continuous_actions=int(action.continuous_size),
            num_discrete_actions=len(action.discrete_branches),
            discrete_branch_sizes=[int(b) for b in action.discrete_branches],
        ),
    )


def observation_proto(spec_index: int, spec: BehaviorSpec, value: np.ndarray) -> ObservationProto:
    ospec = spec.observation_specs[spec_index]
    proto = ObservationProto(
        shape=[int(d) for d in ospec.shape],
        dimension_properties=[int(p) for p in ospec.dimension_property],
        observation_type=int(ospec.observation_type),  # type: ignore[arg-type]  # the enum's number
        name=ospec.name,
    )
    proto.float_data.data.extend(np.asarray(value, np.float32).ravel().tolist())
    return proto


class DemoWriter:
    """Collects one behavior's agent steps and writes them as a `.demo` file on `close`."""

    def __init__(self, path: str | Path, behavior: str, spec: BehaviorSpec, *, name: str | None = None) -> None:
        self.path = Path(path)
        self.behavior = behavior
        self.spec = spec
        self.name = name if name is not None else self.path.stem
        self.brain = brain_proto(behavior, spec)
        self.pairs: list[AgentInfoActionPairProto] = []
        self.decisions = 0  # recorded decisions (rows a reader gets, once each has a successor)
        self.episode_returns: list[float] = []
        self._returns: dict[int, float] = {}
        self._last_action: dict[int, AgentActionProto] = {}

    def _info(self, steps: DecisionSteps | TerminalSteps, row: int, done: bool) -> AgentInfoProto:
        info = AgentInfoProto(
            reward=float(steps.reward[row]),
            done=done,
            id=int(steps.agent_id[row]),
            group_id=int(steps.group_id[row]),
            group_reward=float(steps.group_reward[row]),
        )
        if isinstance(steps, TerminalSteps):
            info.max_step_reached = bool(steps.interrupted[row])
        elif steps.action_mask is not None:
            info.action_mask.extend(np.concatenate([m[row] for m in steps.action_mask]).astype(bool).tolist())
        info.observations.extend(observation_proto(k, self.spec, o[row]) for k, o in enumerate(steps.obs))
        return info

    def terminal(self, steps: TerminalSteps) -> None:
        """Record the episode ends of `steps` (call before `decided` of the same environment step)."""
        for row, agent in enumerate(steps.agent_id.tolist()):
            if agent not in self._last_action:
                continue  # an agent never recorded deciding: nothing of its episode is in the file
            action = self._last_action.pop(agent)
            self.pairs.append(AgentInfoActionPairProto(agent_info=self._info(steps, row, True), action_info=action))
            self.episode_returns.append(self._returns.pop(agent, 0.0) + float(steps.reward[row]))

    def decided(self, steps: DecisionSteps, actions: ActionTuple) -> None:
        """Record the decisions of `steps` with the `actions` taken (one row per agent, same order)."""
        cont = np.asarray(actions.continuous, np.float32)
        disc = np.asarray(actions.discrete, np.int64)
        for row, agent in enumerate(steps.agent_id.tolist()):
            c, d = cont[row].tolist(), [int(v) for v in disc[row]]
            action = AgentActionProto(
                continuous_actions=c, discrete_actions=d, vector_actions_deprecated=c + [float(v) for v in d]
            )
            self.pairs.append(AgentInfoActionPairProto(agent_info=self._info(steps, row, False), action_info=action))
            self._last_action[agent] = action
            self._returns[agent] = self._returns.get(agent, 0.0) + float(steps.reward[row])
            self.decisions += 1

    @property
    def episodes(self) -> int:
        return len(self.episode_returns)

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.episode_returns)) if self.episode_returns else 0.0

    def demo(self) -> DemoFile:
        meta = make_meta(self.name, self.decisions, self.episodes, self.mean_return)
        return DemoFile(meta=meta, brain=self.brain, pairs=list(self.pairs))

    def close(self) -> Path:
        """Write the file (atomically) and return its path."""
        return write_demo_file(self.path, self.demo())
