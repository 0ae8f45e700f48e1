"""Built-in tasks whose agents belong to several behavior ids (teams `Name?team=N`, or several brains).

A `TeamTask` is a `VectorTask` (one numpy batch for every agent) that also says which behavior id each
agent belongs to (`agent_behavior`, an index into `behavior_ids`). `TeamTaskEnv` steps it as
`VectorTaskEnv` does and hands each behavior id the rows of its own agents; agent ids stay unique over
the whole environment (as in a Unity scene). The actions of all behavior ids are gathered and applied
in one step.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from fledge.envs.api import (
    ActionTuple,
    AgentId,
    BehaviorSpec,
    DecisionSteps,
    TerminalSteps,
    require_behavior,
    validate_actions,
)
from fledge.envs.builtin.base import VectorTask, VectorTaskEnv
from fledge.errors import ActionError


class TeamTask(VectorTask):
    """A VectorTask whose agents belong to several behavior ids; `spec` is shared by all of them unless
    `specs` says otherwise."""

    behavior_ids: tuple[str, ...]
    agent_behavior: np.ndarray  # (num_agents,) int: index into behavior_ids

    @property
    def specs(self) -> dict[str, BehaviorSpec]:
        return dict.fromkeys(self.behavior_ids, self.spec)


def _rows(steps: DecisionSteps | TerminalSteps, mask: np.ndarray) -> np.ndarray:
    return np.flatnonzero(mask[steps.agent_id]) if len(steps.agent_id) else np.zeros(0, dtype=np.int64)


class TeamTaskEnv(VectorTaskEnv):
    """A BaseEnv over a TeamTask: one behavior id per team, stepped together."""

    def __init__(self, task: TeamTask, *, seed: int = 0, num_areas: int = 1) -> None:
        super().__init__(task, seed=seed, num_areas=num_areas)
        self.team_task = task
        self._specs: Mapping[str, BehaviorSpec] = MappingProxyType(task.specs)
        self._members = {b: task.agent_behavior == i for i, b in enumerate(task.behavior_ids)}
        self._full: ActionTuple | None = None

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        require_behavior(self._specs, behavior_name)
        if self._decision is None:
            self.reset()
        assert self._decision is not None
        decision, terminal = self._decision, self._terminal
        mask = self._members[behavior_name]
        d, t = _rows(decision, mask), _rows(terminal, mask)
        return (
            DecisionSteps(
                obs=[o[d] for o in decision.obs],
                reward=decision.reward[d],
                agent_id=decision.agent_id[d],
                action_mask=None if decision.action_mask is None else [m[d] for m in decision.action_mask],
                group_id=decision.group_id[d],
                group_reward=decision.group_reward[d],
            ),
            TerminalSteps(
                obs=[o[t] for o in terminal.obs],
                reward=terminal.reward[t],
                interrupted=terminal.interrupted[t],
                agent_id=terminal.agent_id[t],
                group_id=terminal.group_id[t],
                group_reward=terminal.group_reward[t],
            ),
        )

    def _all_actions(self) -> ActionTuple:
        if self._full is None or self._pending is None:
            self._full = self.task.spec.action_spec.empty_action(self.task.num_agents)
        return self._full

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        rows = np.flatnonzero(self._members[behavior_name])  # decisions cover every agent, in id order
        action = validate_actions(behavior_name, spec.action_spec, action, len(rows))
        full = self._all_actions()
        full.continuous[rows] = action.continuous
        full.discrete[rows] = action.discrete
        self._pending = full

    def set_action_for_agent(self, behavior_name: str, agent_id: AgentId, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        if not self._members[behavior_name][int(agent_id)]:
            raise ActionError(f"Behavior '{behavior_name}': agent {agent_id} is not one of its agents.")
        action = validate_actions(behavior_name, spec.action_spec, action, 1)
        full = self._all_actions()
        full.continuous[int(agent_id)] = action.continuous[0]
        full.discrete[int(agent_id)] = action.discrete[0]
        self._pending = full

    def step(self) -> None:
        super().step()
        self._full = None
