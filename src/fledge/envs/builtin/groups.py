"""Built-in tasks whose agents play in groups (cooperative games for POCA).

A `GroupTask` is a `VectorTask` that also says, for every agent, its group id (`agent_groups`, 0 = no
group), which agents decide now (`deciding`: an agent that left its group's episode early waits off
the board), the group reward and interruption of each agent after `apply`, and which agents wait for
their group's restart (`waiting`). `GroupTaskEnv` steps it:
- agents whose episode ended in a step appear in TerminalSteps with their group id and group reward;
- an agent that ended while its group plays on does not decide until the group restarts;
- a group whose members have all ended restarts in the next step (its agents decide again from then).
The task handles its own episode limits (interruptions), per group.
"""

from __future__ import annotations

import abc

import numpy as np

from fledge.envs.api import DecisionSteps, TerminalSteps
from fledge.envs.builtin.base import VectorTask, VectorTaskEnv


class GroupTask(VectorTask):
    agent_groups: np.ndarray  # (num_agents,) int32, 0 = no group
    group_reward: np.ndarray  # (num_agents,) float32, set by apply
    interrupted: np.ndarray  # (num_agents,) bool, set by apply: the agent's episode was cut by a limit

    def group_ids(self) -> np.ndarray:
        return self.agent_groups

    def group_rewards(self) -> np.ndarray:
        return self.group_reward

    @abc.abstractmethod
    def deciding(self) -> np.ndarray:
        """(num_agents,) bool: the agents that decide now."""

    @abc.abstractmethod
    def waiting(self) -> np.ndarray:
        """(num_agents,) bool: the agents whose whole group ended (they restart at the next step)."""


class GroupTaskEnv(VectorTaskEnv):
    def __init__(self, task: GroupTask, *, seed: int = 0, num_areas: int = 1) -> None:
        super().__init__(task, seed=seed, num_areas=num_areas)
        self.group_task = task

    def reset(self) -> None:
        super().reset()
        self._decision = self._decisions()

    def step(self) -> None:
        if self._decision is None:
            self.reset()
            return
        task = self.group_task
        full = task.spec.action_spec.empty_action(task.num_agents)
        if self._pending is not None:
            full.continuous[self._decision.agent_id] = self._pending.continuous
            full.discrete[self._decision.agent_id] = self._pending.discrete
        self._pending = None
        restart = np.flatnonzero(task.waiting())
        reward, ended = task.apply(full, self._rng)
        idx = np.flatnonzero(ended)
        if len(idx):
            obs = task.observe()
            self._terminal = TerminalSteps(
                obs=[o[idx] for o in obs],
                reward=reward[idx].astype(np.float32, copy=False),
                interrupted=task.interrupted[idx],
                agent_id=self._agent_ids[idx],
                group_id=task.agent_groups[idx],
                group_reward=task.group_reward[idx].astype(np.float32, copy=False),
            )
        else:
            self._terminal = self._no_terminal
        if len(restart):
            task.reset_agents(restart, self._rng)
        self._decision = self._decisions(np.where(ended, 0.0, reward).astype(np.float32))

    def _decisions(self, reward: np.ndarray | None = None) -> DecisionSteps:
        task = self.group_task
        rows = np.flatnonzero(task.deciding())
        obs = task.observe()
        mask = task.action_mask()
        return DecisionSteps(
            obs=[o[rows] for o in obs],
            reward=np.zeros(len(rows), np.float32) if reward is None else reward[rows],
            agent_id=self._agent_ids[rows],
            action_mask=None if mask is None else [m[rows] for m in mask],
            group_id=task.agent_groups[rows],
            group_reward=np.zeros(len(rows), np.float32),
        )
