"""Steps the environment and asks the policies: what turns an environment step into StepOutcomes.

For each behavior the collector reads the DecisionSteps/TerminalSteps, asks the behavior's policy for
the values that bootstrap interrupted episodes and for the decisions of the deciding agents, sends those
decisions to the environment as actions, and hands the processor plain arrays, from which it builds the
trajectories. The run loop passes each StepOutcome to the behavior's trainer, then steps the environment
through `step()`. Policy calls are timed under `policy_act` inside `process_steps`, the environment step
under `env_step` (the progress display and the benchmarks read these names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from fledge.envs.api import ActionTuple, BaseEnv, DecisionSteps, TerminalSteps, validate_steps
from fledge.networks.numpy_actor import ActOutput
from fledge.rollout.processor import AgentProcessor, StepOutcome, allowed_actions, flat_observations
from fledge.stats.timers import Timers


class ValuePolicy(Protocol):
    """What a processor step needs from a policy: decisions and state values for flat observations."""

    @property
    def memory_size(self) -> int: ...

    def act(self, obs: np.ndarray, allowed: np.ndarray | None, memory: np.ndarray | None = None) -> ActOutput: ...

    def values(self, obs: np.ndarray) -> np.ndarray: ...


class ActingPolicy(ValuePolicy, Protocol):
    """A behavior's policy as the collector drives it: decide, value, and turn decisions into env actions."""

    def env_actions(self, out: ActOutput) -> ActionTuple: ...


class TimedPolicy:
    """A policy with its forward passes timed under `policy_act`."""

    def __init__(self, policy: ActingPolicy, timers: Timers) -> None:
        self.policy = policy
        self.timers = timers

    @property
    def memory_size(self) -> int:
        return self.policy.memory_size

    def act(self, obs: np.ndarray, allowed: np.ndarray | None, memory: np.ndarray | None = None) -> ActOutput:
        with self.timers.block("policy_act"):
            return self.policy.act(obs, allowed, memory)

    def values(self, obs: np.ndarray) -> np.ndarray:
        with self.timers.block("policy_act"):
            return self.policy.values(obs)

    def env_actions(self, out: ActOutput) -> ActionTuple:
        return self.policy.env_actions(out)


def collect_step(
    processor: AgentProcessor, decision: DecisionSteps, terminal: TerminalSteps, policy: ValuePolicy
) -> StepOutcome:
    """One step of one behavior: the policy values the interrupted terminal observations (their bootstrap)
    and decides for the deciding agents, then the processor builds trajectories from the arrays."""
    terminal_obs = bootstrap = None
    if len(terminal.agent_id):
        terminal_obs = flat_observations(terminal.obs)
        bootstrap = np.zeros((len(terminal.agent_id), processor.n_values), dtype=np.float32)
        # only agents with a pending experience emit a trajectory: only theirs are valued
        interrupted = terminal.interrupted & processor.has_pending(terminal.agent_id)
        if interrupted.any():
            bootstrap[interrupted] = policy.values(terminal_obs[interrupted])
    obs = allowed = out = memory = None
    if len(decision.agent_id):
        obs = flat_observations(decision.obs)
        allowed = allowed_actions(decision.action_mask)
        if processor.memory_size:  # each agent's memory, zero when its episode starts
            memory = processor.memories(decision.agent_id, terminal.agent_id)
            out = policy.act(obs, allowed, memory)
        else:
            out = policy.act(obs, allowed)
    return processor.process(
        decision,
        terminal,
        obs=obs,
        allowed=allowed,
        out=out,
        terminal_obs=terminal_obs,
        bootstrap=bootstrap,
        memory=memory,
    )


class Collector:
    """Drives one environment for every connected behavior id: one processor and one policy each."""

    def __init__(self, env: BaseEnv, timers: Timers) -> None:
        self.env = env
        self.processors: dict[str, AgentProcessor] = {}  # per behavior id
        self.policies: dict[str, ActingPolicy] = {}  # per behavior id
        self._env_block = timers.block("env_step")
        self._process_block = timers.block("process_steps")
        # environments that restart failed worker copies name the agents lost with them
        self._take_dropped: Callable[[], dict[str, np.ndarray]] | None = getattr(env, "take_dropped_agents", None)

    def add(self, behavior_id: str, *, processor: AgentProcessor, policy: ActingPolicy) -> None:
        self.processors[behavior_id] = processor
        self.policies[behavior_id] = policy

    def collect(self, behavior_id: str) -> StepOutcome:
        """Read the behavior's steps, ask its policy, send its actions, and return what the processor built."""
        env, policy = self.env, self.policies[behavior_id]
        with self._process_block:
            decision, terminal = env.get_steps(behavior_id)
            validate_steps(behavior_id, env.behavior_specs[behavior_id], decision, terminal)
            outcome = collect_step(self.processors[behavior_id], decision, terminal, policy)
            if outcome.actions is not None:
                env.set_actions(behavior_id, policy.env_actions(outcome.actions))
        return outcome

    def reset(self) -> None:
        """Reset the environment and forget every agent's partial trajectory (self-play team changes)."""
        with self._env_block:
            self.env.reset()
        for processor in self.processors.values():
            processor.reset()

    def step(self) -> dict[str, list[tuple[float, Any]]]:
        """Step the environment; forget the agents of restarted workers; return the environment's custom stats."""
        with self._env_block:
            self.env.step()
        custom = self.env.get_stats()
        if self._take_dropped is not None:
            for behavior_id, ids in self._take_dropped().items():
                if behavior_id in self.processors:
                    self.processors[behavior_id].forget(ids)
        return custom
