"""Scripted policies of the built-in tasks behind one interface, for `fledge play --heuristic`.

Each task module keeps its heuristic as a plain function of observations; this table wraps them as
`ScriptedPolicy` objects that act on DecisionSteps like a trained policy does (`decide`), and that keep
per-agent state where the heuristic needs it (`end_episodes`; Hallway's remembered colour). A new task
adds one entry to `HEURISTICS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

import numpy as np

from fledge.envs.api import ActionTuple, BaseEnv, DecisionSteps
from fledge.envs.builtin import ball3d, basic, gridworld, hallway, pyramids, toys
from fledge.envs.builtin.base import VectorTask, VectorTaskEnv
from fledge.errors import ConfigError

__all__ = ["HEURISTICS", "ScriptedPolicy", "heuristic_names", "make_heuristic"]


class ScriptedPolicy(Protocol):
    label: str

    def decide(self, steps: DecisionSteps) -> ActionTuple: ...

    def end_episodes(self, agent_ids: np.ndarray) -> None: ...


class _Stateless:
    """A heuristic that needs only the current observations: `act(obs list) -> (continuous, discrete)`."""

    def __init__(self, label: str, act: Callable[[list[np.ndarray]], tuple[np.ndarray | None, np.ndarray | None]]):
        self.label = label
        self._act = act

    def decide(self, steps: DecisionSteps) -> ActionTuple:
        cont, disc = self._act(steps.obs)
        return ActionTuple(cont, disc)

    def end_episodes(self, agent_ids: np.ndarray) -> None:
        return None


class _HallwayHeuristic:
    """Hallway's heuristic with memory: the symbol's colour, seen at an episode's first decision, is kept
    per agent until its episode ends."""

    label = "Hallway heuristic (walk forward, enter the goal of the remembered colour)"

    def __init__(self) -> None:
        self._colour: dict[int, int] = {}

    def decide(self, steps: DecisionSteps) -> ActionTuple:
        obs = steps.obs[0]
        seen = obs[:, -2:]
        colours = np.empty(len(obs), np.int64)
        for row, agent in enumerate(steps.agent_id.tolist()):
            if seen[row].max() > 0.5:
                self._colour[agent] = int(seen[row].argmax())
            colours[row] = self._colour.get(agent, hallway.GREEN)
        return ActionTuple(discrete=hallway.heuristic(obs, colours))

    def end_episodes(self, agent_ids: np.ndarray) -> None:
        for agent in agent_ids.tolist():
            self._colour.pop(int(agent), None)


def _continuous(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[list[np.ndarray]], tuple[np.ndarray, None]]:
    return lambda obs: (fn(obs[0]), None)


def _discrete(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[list[np.ndarray]], tuple[None, np.ndarray]]:
    return lambda obs: (None, fn(obs[0]))


def _pyramids(task: VectorTask) -> ScriptedPolicy:
    rng = np.random.default_rng(0)  # its wander turns at random; seeded, so a recording is repeatable
    return _Stateless(
        "Pyramids heuristic (find the switch, then the gold brick; wander when neither is seen)",
        lambda obs: (None, pyramids.heuristic(obs[0], rng)),
    )


def _gridworld(task: VectorTask) -> ScriptedPolicy:
    scale = int(getattr(task, "scale", 1))
    return _Stateless(
        "GridWorld heuristic (shortest path to the signalled goal)",
        lambda obs: (None, gridworld.heuristic(obs[0], obs[1], scale)),
    )


HEURISTICS: Mapping[str, Callable[[VectorTask], ScriptedPolicy]] = MappingProxyType(
    {
        "3DBall": lambda task: _Stateless("3DBall heuristic (PD controller)", _continuous(ball3d.heuristic)),
        "Basic": lambda task: _Stateless("Basic heuristic (always walk right)", _discrete(basic.heuristic)),
        "Hallway": lambda task: _HallwayHeuristic(),
        "GridWorld": _gridworld,
        "Pyramids": _pyramids,
        "MoveToGoal1D-Continuous": lambda task: _Stateless(
            "MoveToGoal1D-Continuous heuristic", _continuous(toys.move_to_goal_continuous_heuristic)
        ),
        "MoveToGoal1D-Discrete": lambda task: _Stateless(
            "MoveToGoal1D-Discrete heuristic", _discrete(toys.move_to_goal_discrete_heuristic)
        ),
        "MoveToGoal2D-Hybrid": lambda task: _Stateless(
            "MoveToGoal2D-Hybrid heuristic", lambda obs: toys.move_to_goal_hybrid_heuristic(obs[0])
        ),
        "MaskedChoice": lambda task: _Stateless("MaskedChoice heuristic", _discrete(toys.masked_choice_heuristic)),
    }
)


def heuristic_names() -> list[str]:
    return sorted(HEURISTICS)


def make_heuristic(env_name: str, env: BaseEnv) -> ScriptedPolicy:
    """The scripted policy of built-in environment `env_name` (already built as `env`)."""
    if env_name not in HEURISTICS or not isinstance(env, VectorTaskEnv):
        raise ConfigError(
            f"--heuristic {env_name}: no scripted policy for this environment; the built-in tasks with one are "
            f"{', '.join(heuristic_names())}."
        )
    return HEURISTICS[env_name](env.task)
