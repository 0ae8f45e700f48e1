"""The environment API: the same value types and meaning as ML-Agents' low-level API.

Agents are keyed by integer id. Each step, an environment reports for each behavior the agents that
need a decision (DecisionSteps) and the agents whose episode ended since the last step
(TerminalSteps). An agent may be in both at once: it ended one episode and asks for the first
decision of the next. In action masks, True means the action is NOT available.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any, NamedTuple

import numpy as np

from fledge.errors import ActionError, ConfigError, ObservationError, UnknownBehaviorError

AgentId = int
BehaviorName = str


class DimensionProperty(IntFlag):
    UNSPECIFIED = 0
    NONE = 1
    TRANSLATIONAL_EQUIVARIANCE = 2
    VARIABLE_SIZE = 4


class ObservationType(IntEnum):
    DEFAULT = 0
    GOAL_SIGNAL = 1


class ObservationSpec(NamedTuple):
    """Shape of one agent's observation: rank 1 vector, rank 2 entities, rank 3 visual (C, H, W)."""

    shape: tuple[int, ...]
    dimension_property: tuple[DimensionProperty, ...]
    observation_type: ObservationType = ObservationType.DEFAULT
    name: str = ""

    @staticmethod
    def vector(size: int, name: str = "vector") -> ObservationSpec:
        return ObservationSpec((size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, name)


class ActionSpec(NamedTuple):
    continuous_size: int
    discrete_branches: tuple[int, ...]

    @property
    def discrete_size(self) -> int:
        return len(self.discrete_branches)

    def is_continuous(self) -> bool:
        return self.continuous_size > 0 and self.discrete_size == 0

    def is_discrete(self) -> bool:
        return self.discrete_size > 0 and self.continuous_size == 0

    def is_hybrid(self) -> bool:
        return self.discrete_size > 0 and self.continuous_size > 0

    @staticmethod
    def create_continuous(continuous_size: int) -> ActionSpec:
        return ActionSpec(int(continuous_size), ())

    @staticmethod
    def create_discrete(discrete_branches: tuple[int, ...]) -> ActionSpec:
        return ActionSpec(0, tuple(int(b) for b in discrete_branches))

    @staticmethod
    def create_hybrid(continuous_size: int, discrete_branches: tuple[int, ...]) -> ActionSpec:
        return ActionSpec(int(continuous_size), tuple(int(b) for b in discrete_branches))

    def empty_action(self, n_agents: int) -> ActionTuple:
        return ActionTuple(
            np.zeros((n_agents, self.continuous_size), dtype=np.float32),
            np.zeros((n_agents, self.discrete_size), dtype=np.int32),
        )

    def random_action(self, n_agents: int, rng: np.random.Generator | None = None) -> ActionTuple:
        rng = rng if rng is not None else np.random.default_rng()
        cont = rng.uniform(-1.0, 1.0, size=(n_agents, self.continuous_size)).astype(np.float32)
        disc = np.zeros((n_agents, self.discrete_size), dtype=np.int32)
        for i, size in enumerate(self.discrete_branches):
            disc[:, i] = rng.integers(0, size, size=n_agents)
        return ActionTuple(cont, disc)

    def __str__(self) -> str:
        return f"Continuous: {self.continuous_size}, Discrete: {self.discrete_branches}"


class ActionTuple:
    """Actions for a batch of agents: continuous (n, c) floats and discrete (n, d) integers.

    The arrays are kept as given; `validate_actions` refuses wrong dtypes and shapes and returns a
    float32/int32 copy, which is what environments receive.
    """

    __slots__ = ("continuous", "discrete")

    def __init__(self, continuous: np.ndarray | None = None, discrete: np.ndarray | None = None) -> None:
        n = 0
        if continuous is not None:
            n = len(continuous)
        elif discrete is not None:
            n = len(discrete)
        self.continuous = np.asarray(continuous) if continuous is not None else np.zeros((n, 0), np.float32)
        self.discrete = np.asarray(discrete) if discrete is not None else np.zeros((n, 0), np.int32)


class BehaviorSpec(NamedTuple):
    observation_specs: list[ObservationSpec]
    action_spec: ActionSpec


@dataclass(frozen=True)
class DecisionStep:
    obs: list[np.ndarray]
    reward: float
    agent_id: AgentId
    action_mask: list[np.ndarray] | None
    group_id: int
    group_reward: float


@dataclass(frozen=True)
class TerminalStep:
    obs: list[np.ndarray]
    reward: float
    interrupted: bool
    agent_id: AgentId
    group_id: int
    group_reward: float


class _StepsBase(Mapping[AgentId, object]):
    """Read-only mapping from agent id to one agent's step; rows of the batched arrays."""

    obs: list[np.ndarray]
    agent_id: np.ndarray
    _index: dict[int, int] | None

    @property
    def agent_id_to_index(self) -> dict[int, int]:
        if self._index is None:
            self._index = {int(a): i for i, a in enumerate(self.agent_id)}
        return self._index

    def __len__(self) -> int:
        return len(self.agent_id)

    def __iter__(self) -> Iterator[AgentId]:
        return (int(a) for a in self.agent_id)


@dataclass(eq=False)
class DecisionSteps(_StepsBase):
    obs: list[np.ndarray]
    reward: np.ndarray
    agent_id: np.ndarray
    action_mask: list[np.ndarray] | None
    group_id: np.ndarray
    group_reward: np.ndarray
    _index: dict[int, int] | None = field(default=None, repr=False)

    def __getitem__(self, agent_id: AgentId) -> DecisionStep:
        if agent_id not in self.agent_id_to_index:
            raise KeyError(f"agent_id {agent_id} is not present in the DecisionSteps")
        i = self.agent_id_to_index[agent_id]
        mask = None if self.action_mask is None else [m[i] for m in self.action_mask]
        return DecisionStep(
            obs=[o[i] for o in self.obs],
            reward=float(self.reward[i]),
            agent_id=int(agent_id),
            action_mask=mask,
            group_id=int(self.group_id[i]),
            group_reward=float(self.group_reward[i]),
        )

    @staticmethod
    def empty(spec: BehaviorSpec) -> DecisionSteps:
        return DecisionSteps(
            obs=[np.zeros((0,) + tuple(s.shape), np.float32) for s in spec.observation_specs],
            reward=np.zeros(0, np.float32),
            agent_id=np.zeros(0, np.int32),
            action_mask=None,
            group_id=np.zeros(0, np.int32),
            group_reward=np.zeros(0, np.float32),
        )


@dataclass(eq=False)
class TerminalSteps(_StepsBase):
    obs: list[np.ndarray]
    reward: np.ndarray
    interrupted: np.ndarray
    agent_id: np.ndarray
    group_id: np.ndarray
    group_reward: np.ndarray
    _index: dict[int, int] | None = field(default=None, repr=False)

    def __getitem__(self, agent_id: AgentId) -> TerminalStep:
        if agent_id not in self.agent_id_to_index:
            raise KeyError(f"agent_id {agent_id} is not present in the TerminalSteps")
        i = self.agent_id_to_index[agent_id]
        return TerminalStep(
            obs=[o[i] for o in self.obs],
            reward=float(self.reward[i]),
            interrupted=bool(self.interrupted[i]),
            agent_id=int(agent_id),
            group_id=int(self.group_id[i]),
            group_reward=float(self.group_reward[i]),
        )

    @staticmethod
    def empty(spec: BehaviorSpec) -> TerminalSteps:
        return TerminalSteps(
            obs=[np.zeros((0,) + tuple(s.shape), np.float32) for s in spec.observation_specs],
            reward=np.zeros(0, np.float32),
            interrupted=np.zeros(0, bool),
            agent_id=np.zeros(0, np.int32),
            group_id=np.zeros(0, np.int32),
            group_reward=np.zeros(0, np.float32),
        )


class StatsAggregationMethod(IntEnum):
    """How a custom environment stat is summarised over a summary period (ML-Agents' StatsSideChannel)."""

    AVERAGE = 0
    MOST_RECENT = 1
    SUM = 2
    HISTOGRAM = 3


class EnvironmentStats:
    """Custom stats an environment reports (like ML-Agents' StatsSideChannel); the run forwards them to
    TensorBoard, CSV and the console of every behavior. `record` from the environment, the run calls
    `get_and_reset` after every step."""

    def __init__(self) -> None:
        self._values: dict[str, list[tuple[float, StatsAggregationMethod]]] = {}

    def record(
        self, key: str, value: float, aggregation: StatsAggregationMethod = StatsAggregationMethod.AVERAGE
    ) -> None:
        value = float(value)
        if not np.isfinite(value):
            raise ObservationError(f"custom stat '{key}': value {value} is not finite")
        self._values.setdefault(key, []).append((value, StatsAggregationMethod(aggregation)))

    def get_and_reset(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        values, self._values = self._values, {}
        return values


class BaseEnv(abc.ABC):
    """What every environment offers: reset, step, specs, steps per behavior, actions per behavior."""

    @abc.abstractmethod
    def reset(self) -> None: ...

    @abc.abstractmethod
    def step(self) -> None: ...

    @property
    @abc.abstractmethod
    def behavior_specs(self) -> Mapping[BehaviorName, BehaviorSpec]: ...

    @abc.abstractmethod
    def get_steps(self, behavior_name: BehaviorName) -> tuple[DecisionSteps, TerminalSteps]: ...

    @abc.abstractmethod
    def set_actions(self, behavior_name: BehaviorName, action: ActionTuple) -> None: ...

    @abc.abstractmethod
    def set_action_for_agent(self, behavior_name: BehaviorName, agent_id: AgentId, action: ActionTuple) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources. The default does nothing."""

    def seed(self, seed: int) -> None:  # noqa: B027 - optional hook
        """Seed the environment's random generators before the next reset. The default does nothing."""

    def get_stats(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        """Custom stats recorded since the last call (see EnvironmentStats). The default has none."""
        return {}

    def environment_parameter_names(self) -> frozenset[str] | None:
        """The environment parameters this environment reads; None when it takes any name (a Unity player
        or a Gymnasium environment, which read what they know). The default reads none."""
        return frozenset()

    def set_environment_parameters(self, draws: Mapping[str, Mapping[str, Any]]) -> None:
        """New values of environment parameters (`environment_parameters` of the config): one draw per
        name, `{"sampler_type", "sampler_parameters", "seed"}` (fledge.curriculum.samplers); the environment
        draws a value from it at every episode start. The default refuses every name."""
        if draws:
            raise ConfigError(
                f"environment_parameters: the environment {type(self).__name__} reads no environment parameters "
                f"(given: {', '.join(sorted(draws))}); remove the section, or use an environment that reads them."
            )


# ----------------------------------------------------------------------------------------------
# Validation helpers shared by every environment implementation and by the rollout.
# ----------------------------------------------------------------------------------------------


def require_behavior(specs: Mapping[BehaviorName, BehaviorSpec], behavior_name: BehaviorName) -> BehaviorSpec:
    """The spec of a behavior, or a clear error listing the behaviors that exist."""
    spec = specs.get(behavior_name)
    if spec is None:
        known = ", ".join(sorted(specs)) or "(none)"
        raise UnknownBehaviorError(f"Unknown behavior '{behavior_name}'. This environment has the behaviors: {known}.")
    return spec


def validate_actions(behavior_name: BehaviorName, spec: ActionSpec, action: ActionTuple, n_agents: int) -> ActionTuple:
    """Check dtype, shape and values of actions for n agents; return a float32/int32 copy."""
    if not isinstance(action, ActionTuple):
        raise ActionError(f"Behavior '{behavior_name}': actions must be an ActionTuple, got {type(action).__name__}.")
    cont, disc = action.continuous, action.discrete
    if cont.size and not np.issubdtype(cont.dtype, np.floating):
        raise ActionError(
            f"Behavior '{behavior_name}': continuous actions have dtype {cont.dtype}, expected a float type."
        )
    if disc.size and not np.issubdtype(disc.dtype, np.integer):
        raise ActionError(
            f"Behavior '{behavior_name}': discrete actions have dtype {disc.dtype}, expected an integer type "
            "(branch indices)."
        )
    expected_c = (n_agents, spec.continuous_size)
    expected_d = (n_agents, spec.discrete_size)
    if cont.shape != expected_c and not (spec.continuous_size == 0 and cont.size == 0):
        raise ActionError(
            f"Behavior '{behavior_name}': continuous actions have shape {cont.shape}, expected {expected_c} "
            f"({n_agents} agents requested a decision, {spec})."
        )
    if disc.shape != expected_d and not (spec.discrete_size == 0 and disc.size == 0):
        raise ActionError(
            f"Behavior '{behavior_name}': discrete actions have shape {disc.shape}, expected {expected_d} "
            f"({n_agents} agents requested a decision, {spec})."
        )
    if cont.size and not np.isfinite(cont).all():
        raise ActionError(f"Behavior '{behavior_name}': continuous actions contain NaN or infinite values.")
    if disc.size:
        branches = np.asarray(spec.discrete_branches)
        if (disc < 0).any() or (disc >= branches[None, :]).any():
            raise ActionError(
                f"Behavior '{behavior_name}': discrete actions out of range; branch sizes are {spec.discrete_branches}."
            )
    return ActionTuple(
        cont.astype(np.float32) if cont.size else np.zeros(expected_c, np.float32),
        disc.astype(np.int32) if disc.size else np.zeros(expected_d, np.int32),
    )


def validate_steps(
    behavior_name: BehaviorName,
    spec: BehaviorSpec,
    decision: DecisionSteps,
    terminal: TerminalSteps,
) -> None:
    """Check what an environment reported: shapes, dtypes and finiteness, naming behavior and field."""
    for kind, steps in (("DecisionSteps", decision), ("TerminalSteps", terminal)):
        n = len(steps.agent_id)
        if len(steps.obs) != len(spec.observation_specs):
            raise ObservationError(
                f"Behavior '{behavior_name}' {kind}: {len(steps.obs)} observation arrays, the spec has "
                f"{len(spec.observation_specs)}."
            )
        for i, (o, ospec) in enumerate(zip(steps.obs, spec.observation_specs)):
            expected = (n,) + tuple(ospec.shape)
            if o.shape != expected:
                raise ObservationError(
                    f"Behavior '{behavior_name}' {kind}: obs[{i}] has shape {o.shape}, expected {expected}."
                )
            if o.dtype != np.float32:
                raise ObservationError(
                    f"Behavior '{behavior_name}' {kind}: obs[{i}] has dtype {o.dtype}, expected float32."
                )
            if not np.isfinite(o).all():
                raise ObservationError(
                    f"Behavior '{behavior_name}' {kind}: obs[{i}] contains NaN or infinite values "
                    f"(agents {steps.agent_id[~np.isfinite(o).reshape(n, -1).all(axis=1)].tolist()})."
                )
        for name in ("reward", "group_reward"):
            arr = getattr(steps, name)
            if arr.shape != (n,):
                raise ObservationError(
                    f"Behavior '{behavior_name}' {kind}: {name} has shape {arr.shape}, expected ({n},)."
                )
            if not np.isfinite(arr).all():
                raise ObservationError(
                    f"Behavior '{behavior_name}' {kind}: {name} contains NaN or infinite values "
                    f"(agents {steps.agent_id[~np.isfinite(arr)].tolist()})."
                )
    mask = decision.action_mask
    if mask is not None:
        branches = spec.action_spec.discrete_branches
        if len(mask) != len(branches):
            raise ObservationError(
                f"Behavior '{behavior_name}' DecisionSteps: action_mask has {len(mask)} branches, expected {len(branches)}."
            )
        for b, (m, size) in enumerate(zip(mask, branches)):
            if m.shape != (len(decision.agent_id), size) or m.dtype != np.bool_:
                raise ObservationError(
                    f"Behavior '{behavior_name}' DecisionSteps: action_mask[{b}] has shape {m.shape} and dtype "
                    f"{m.dtype}, expected ({len(decision.agent_id)}, {size}) bool."
                )
            if m.all(axis=1).any():
                raise ObservationError(
                    f"Behavior '{behavior_name}' DecisionSteps: action_mask[{b}] masks every action of some agents."
                )
