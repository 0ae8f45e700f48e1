"""Shared machinery of the built-in environments: one behavior, many agents, simulated with numpy.

A built-in task only describes its physics for all agents at once (`VectorTask`); `VectorTaskEnv`
turns it into a `BaseEnv` with DecisionSteps/TerminalSteps, automatic resets, episode length limits
(interruptions) and seeding. Agent ids are stable: agent i keeps id i across episodes.

Areas: as a Unity scene holds several copies of its training area, a task built for
`num_areas * agents_per_area` agents is `num_areas` areas stepped as one numpy batch; area a holds the
agents (and ids) a * agents_per_area up to (a + 1) * agents_per_area - 1.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from fledge.envs.api import (
    ActionTuple,
    AgentId,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    EnvironmentStats,
    StatsAggregationMethod,
    TerminalSteps,
    require_behavior,
    validate_actions,
)
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.parameters import TaskParameters
from fledge.errors import ActionError, ConfigError


class VectorTask(abc.ABC):
    """The physics of one single-behavior task for `num_agents` agents, vectorised over agents."""

    behavior_name: str
    spec: BehaviorSpec
    num_agents: int
    max_episode_steps: int  # decisions per episode before it is interrupted; 0 means no limit

    @abc.abstractmethod
    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        """Start a new episode for the agents at positions idx (int array)."""

    @abc.abstractmethod
    def observe(self) -> list[np.ndarray]:
        """Observations of all agents, one float32 array per observation spec, shape (num_agents, ...)."""

    @abc.abstractmethod
    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Advance one decision for all agents. Returns (reward float32 (n,), done bool (n,))."""

    stats: EnvironmentStats | None = None  # set by VectorTaskEnv: tasks may record custom stats here
    #: environment parameters the task reads (name -> default); see envs/builtin/parameters.py
    parameter_defaults: Mapping[str, float] = MappingProxyType({})

    @property
    def parameters(self) -> TaskParameters:
        """The task's environment parameters, one value per agent (made on first use)."""
        found = self.__dict__.get("_parameters")
        if found is None:
            found = TaskParameters(self.parameter_defaults, self.num_agents, owner=self.behavior_name)
            self.__dict__["_parameters"] = found
        return found

    def action_mask(self) -> list[np.ndarray] | None:
        """Masks per discrete branch, bool (num_agents, branch_size), True = not available; None = all allowed."""
        return None

    def group_ids(self) -> np.ndarray | None:
        """Group id of each agent, int32 (num_agents,) (0 = no group), or None when no agent has a group."""
        return None

    def group_rewards(self) -> np.ndarray | None:
        """Group reward of each agent from the last `apply`, float32 (num_agents,), or None (all zero)."""
        return None

    def optimal_return(self) -> float | None:
        """The best achievable mean episode return, where it is known (for tests and docs)."""
        return None


class VectorTaskEnv(BaseEnv):
    """A BaseEnv over a VectorTask: the first step() resets; ended agents restart at once.

    `num_areas` says how many areas the task's agents form (equal shares, in id order).
    """

    def __init__(self, task: VectorTask, *, seed: int = 0, num_areas: int = 1) -> None:
        num_areas = check_count(task.behavior_name, "num_areas", num_areas)
        if task.num_agents % num_areas:
            raise ConfigError(
                f"Environment '{task.behavior_name}': {task.num_agents} agents cannot form {num_areas} equal areas."
            )
        self.task = task
        self.num_areas = int(num_areas)
        self.agents_per_area = task.num_agents // self.num_areas
        self.stats = EnvironmentStats()
        task.stats = self.stats
        self._rng = np.random.default_rng(seed)
        self._specs: Mapping[str, BehaviorSpec] = MappingProxyType({task.behavior_name: task.spec})
        n = task.num_agents
        self._agent_ids = np.arange(n, dtype=np.int32)
        self._episode_steps = np.zeros(n, dtype=np.int64)
        self._zeros_i = np.zeros(n, dtype=np.int32)
        self._zeros_f = np.zeros(n, dtype=np.float32)
        self._pending: ActionTuple | None = None
        self._decision: DecisionSteps | None = None
        self._no_terminal = TerminalSteps.empty(task.spec)  # shared: read-only, nobody ended
        self._terminal: TerminalSteps = self._no_terminal

    # -- BaseEnv -----------------------------------------------------------------------------------
    @property
    def behavior_specs(self) -> Mapping[str, BehaviorSpec]:
        return self._specs

    def seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

    def get_stats(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        return self.stats.get_and_reset()

    def random_state(self) -> dict[str, object]:
        """The environment's random generator state (JSON-serialisable), saved with checkpoints."""
        return dict(self._rng.bit_generator.state)

    def set_random_state(self, state: dict[str, object]) -> None:
        self._rng.bit_generator.state = state

    def environment_parameter_names(self) -> frozenset[str] | None:
        return self.task.parameters.names

    def set_environment_parameters(self, draws: Mapping[str, Mapping[str, Any]]) -> None:
        self.task.parameters.set(draws)

    def reset(self) -> None:
        n = self.task.num_agents
        everyone = np.arange(n)
        self.task.parameters.draw(everyone)
        self.task.reset_agents(everyone, self._rng)
        self._episode_steps[:] = 0
        self._pending = None
        self._terminal = self._no_terminal
        self._decision = self._decision_steps(self._zeros_f, self._zeros_f)

    def step(self) -> None:
        if self._decision is None:
            self.reset()
            return
        task = self.task
        actions = self._pending if self._pending is not None else task.spec.action_spec.empty_action(task.num_agents)
        self._pending = None
        reward, done = task.apply(actions, self._rng)
        group_reward = task.group_rewards()
        group_reward = self._zeros_f if group_reward is None else group_reward.astype(np.float32, copy=False)
        group_id = self._group_id()
        self._episode_steps += 1
        limit = task.max_episode_steps
        interrupted = (~done & (self._episode_steps >= limit)) if limit > 0 else np.zeros_like(done)
        ended = done | interrupted
        if ended.any():
            idx = np.flatnonzero(ended)
            obs = task.observe()
            self._terminal = TerminalSteps(
                obs=[o[idx] for o in obs],
                reward=reward[idx].astype(np.float32, copy=False),
                interrupted=interrupted[idx],
                agent_id=self._agent_ids[idx],
                group_id=group_id[idx],
                group_reward=group_reward[idx],
            )
            task.parameters.draw(idx)
            task.reset_agents(idx, self._rng)
            self._episode_steps[idx] = 0
            reward = np.where(ended, np.float32(0.0), reward).astype(np.float32, copy=False)
            group_reward = np.where(ended, np.float32(0.0), group_reward).astype(np.float32, copy=False)
        else:
            self._terminal = self._no_terminal
        self._decision = self._decision_steps(reward.astype(np.float32, copy=False), group_reward)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        require_behavior(self._specs, behavior_name)
        if self._decision is None:
            self.reset()
        assert self._decision is not None
        return self._decision, self._terminal

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        n = 0 if self._decision is None else len(self._decision.agent_id)
        self._pending = validate_actions(behavior_name, spec.action_spec, action, n)

    def set_action_for_agent(self, behavior_name: str, agent_id: AgentId, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        if self._decision is None or int(agent_id) not in self._decision.agent_id_to_index:
            raise ActionError(
                f"Behavior '{behavior_name}': agent {agent_id} did not request a decision in the last step."
            )
        action = validate_actions(behavior_name, spec.action_spec, action, 1)
        if self._pending is None:
            self._pending = spec.action_spec.empty_action(len(self._decision.agent_id))
        row = self._decision.agent_id_to_index[int(agent_id)]
        self._pending.continuous[row] = action.continuous[0]
        self._pending.discrete[row] = action.discrete[0]

    # -- helpers -----------------------------------------------------------------------------------
    def _group_id(self) -> np.ndarray:
        ids = self.task.group_ids()
        return self._zeros_i if ids is None else ids.astype(np.int32, copy=False)

    def _decision_steps(self, reward: np.ndarray, group_reward: np.ndarray) -> DecisionSteps:
        return DecisionSteps(
            obs=self.task.observe(),
            reward=reward,
            agent_id=self._agent_ids,
            action_mask=self.task.action_mask(),
            group_id=self._group_id(),
            group_reward=group_reward,
        )
