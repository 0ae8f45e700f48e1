"""PettingZoo environments as a fledge `BaseEnv` ("pettingzoo:<module>" in the registry).

`PettingZooEnv` drives a `pettingzoo.ParallelEnv`. An `AECEnv` is converted with
`pettingzoo.utils.conversions.aec_to_parallel`, which only works for AEC environments marked
`metadata["is_parallelizable"] = True` (turn-based games are refused with a ConfigError).

Agents and ids: each agent name gets an integer id the first time it is seen (in the order of
`env.agents`); the id is kept for the whole run, also across episodes.

Behaviors: agents are grouped by name prefix, the part before a final "_<digits>"
("adversary_0" -> "adversary", "agent_3" -> "agent"); a name without such a suffix is its own
behavior ("prey" -> "prey"), a purely numeric name goes to "agent". The behavior name is sanitized
like gymnasium ids (characters outside [A-Za-z0-9._-] become "_"). All agents of one behavior must
have equal observation and action spaces, else ConfigError naming the agents and the spaces. Spaces
map as in `fledge.envs.gymnasium`. Behaviors are known from `possible_agents` when the environment
has it; otherwise `behavior_specs` grows as new kinds of agents appear.

Groups (for POCA): the agents of one behavior form one group, id 1 + the behavior's index in the order
behaviors were first seen (so teams named by prefix, "adversary_*" and "agent_*", are separate groups);
an agent's `infos[agent]["group_id"]` (an int, 0 = no group) puts it in another group, and
`infos[agent]["group_reward"]` (a float) is its group reward for that step. Without these keys no group
reward is given, and PPO and SAC ignore group ids.

Action masks: an observation space `Dict` with the keys "observation" and "action_mask" (the
PettingZoo convention) uses "observation" as the observation and turns the mask (1 = allowed)
into DecisionSteps.action_mask (True = unavailable), split over the discrete branches. A mask given
as `infos[agent]["action_mask"]` is used the same way. Agents that received no action get the zero
action, or on masked branches the first allowed action.

Episodes: agents that terminate or truncate go to TerminalSteps (interrupted = truncated and not
terminated) with the observation and reward of that step, and leave the DecisionSteps; an agent
that disappears from `env.agents` without a termination or truncation flag is reported as
interrupted. New agents appear in DecisionSteps. When no agent is left, the environment is reset
with seed + (number of episodes since the seed was set) and its agents are reported in the
DecisionSteps of the same step with reward 0.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from fledge.errors import ActionError, ConfigError, EnvironmentFault, UnknownEnvironmentError

try:
    import pettingzoo
    from pettingzoo.utils.conversions import aec_to_parallel
except ImportError as _exc:  # pragma: no cover - depends on the installation
    raise ConfigError(
        "PettingZoo environments need the 'pettingzoo' package, which is not installed. "
        "Install it with: pip install 'fledge[pettingzoo]'"
    ) from _exc

from gymnasium import spaces

from fledge.envs.api import (
    ActionTuple,
    AgentId,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    TerminalSteps,
    require_behavior,
    validate_actions,
)
from fledge.envs.gymnasium import ActionDecoder, ObservationConverter, behavior_name_for

__all__ = ["PettingZooEnv", "behavior_group", "make_pettingzoo"]

_SUFFIX = re.compile(r"(.+)_\d+")


def behavior_group(agent: Any) -> str:
    """The behavior name of an agent name: its prefix before a final "_<digits>" (sanitized)."""
    text = str(agent)
    m = _SUFFIX.fullmatch(text)
    if m:
        text = m.group(1)
    elif text.isdigit():
        text = "agent"
    return behavior_name_for(text)


@dataclass
class _Behavior:
    name: str
    first_agent: str
    obs_space: spaces.Space
    act_space: spaces.Space
    obs: ObservationConverter
    act: ActionDecoder
    spec: BehaviorSpec
    masked: bool  # observation is Dict(observation=..., action_mask=...)
    agents: list[Any] = field(default_factory=list)


@dataclass
class _Row:
    """One agent's report in a step."""

    name: Any
    obs: list[np.ndarray]
    reward: float
    interrupted: bool = False
    mask: np.ndarray | None = None  # flat, True = unavailable
    group: int = 0  # group id (see the module text)
    group_reward: float = 0.0


def _is_masked_space(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Dict) and "observation" in space.spaces and "action_mask" in space.spaces


class PettingZooEnv(BaseEnv):
    """A PettingZoo Parallel (or parallelizable AEC) environment as a multi-behavior BaseEnv."""

    def __init__(self, env: Any, *, seed: int = 0, name: str | None = None) -> None:
        if callable(env) and not isinstance(env, (pettingzoo.ParallelEnv, pettingzoo.AECEnv)):
            env = env()
        if isinstance(env, pettingzoo.AECEnv):
            if not env.metadata.get("is_parallelizable", False):
                raise ConfigError(
                    f"PettingZoo environment '{name or _env_name(env)}' is an AEC environment that is not "
                    "parallelizable (metadata['is_parallelizable'] is not True), e.g. a turn-based game; "
                    "fledge drives PettingZoo environments through the Parallel API and cannot convert it."
                )
            env = aec_to_parallel(env)
        if not all(hasattr(env, a) for a in ("reset", "step", "observation_space", "action_space")):
            raise ConfigError(
                "PettingZooEnv needs a pettingzoo ParallelEnv or AECEnv (or a factory of one), "
                f"got {type(env).__name__}."
            )
        self.env = env
        self.name = name or _env_name(env)
        self._seed = int(seed)
        self._episode = 0
        self._behaviors: dict[str, _Behavior] = {}
        self._agent_behavior: dict[Any, _Behavior] = {}
        self._masks: dict[Any, np.ndarray] = {}  # flat masks (True = unavailable) of the last decisions
        self._specs: dict[str, BehaviorSpec] = {}
        self._ids: dict[Any, int] = {}
        self._names: dict[int, Any] = {}
        self._live: list[Any] = []  # agents in the last DecisionSteps
        self._last_obs: dict[Any, Any] = {}
        self._pending: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
        self._decision: dict[str, DecisionSteps] = {}
        self._decision_names: dict[str, list[Any]] = {}
        self._terminal: dict[str, TerminalSteps] = {}
        self._started = False
        try:
            possible = list(env.possible_agents)
        except AttributeError:
            possible = []
        for agent in possible:
            self._behavior_of(agent)

    # -- identity ------------------------------------------------------------------------------------
    def agent_id(self, agent: Any) -> int:
        """The fledge id of an agent name (assigned now if the name is new)."""
        if agent not in self._ids:
            i = len(self._ids)
            self._ids[agent] = i
            self._names[i] = agent
        return self._ids[agent]

    def agent_name(self, agent_id: int) -> Any:
        return self._names[int(agent_id)]

    def _behavior_of(self, agent: Any) -> _Behavior:
        known = self._agent_behavior.get(agent)
        if known is not None:
            return known
        b = self._new_agent_behavior(agent)
        self._agent_behavior[agent] = b
        return b

    def _new_agent_behavior(self, agent: Any) -> _Behavior:
        group = behavior_group(agent)
        obs_space = self.env.observation_space(agent)
        act_space = self.env.action_space(agent)
        b = self._behaviors.get(group)
        if b is not None:
            if agent not in b.agents:
                if obs_space != b.obs_space or act_space != b.act_space:
                    raise ConfigError(
                        f"PettingZoo environment '{self.name}': agents {b.first_agent!r} and {agent!r} both belong "
                        f"to behavior '{group}' (agents are grouped by name prefix) but have different spaces: "
                        f"observation {b.obs_space} vs {obs_space}, action {b.act_space} vs {act_space}. "
                        "Agents of one behavior must share observation and action spaces."
                    )
                b.agents.append(agent)
            return b
        masked = _is_masked_space(obs_space)
        where = f"{self.name}' agent '{agent}"
        obs = ObservationConverter(obs_space["observation"] if masked else obs_space, env_id=where)
        act = ActionDecoder(act_space, env_id=where)
        if masked:
            size = int(np.prod(obs_space["action_mask"].shape))
            if size != sum(act.spec.discrete_branches):
                raise ConfigError(
                    f"PettingZoo environment '{self.name}': agent {agent!r} has an action_mask of size {size}, "
                    f"but its action space {act_space} has discrete branches {act.spec.discrete_branches} "
                    f"(sum {sum(act.spec.discrete_branches)})."
                )
        b = _Behavior(group, agent, obs_space, act_space, obs, act, BehaviorSpec(obs.specs, act.spec), masked, [agent])
        self._behaviors[group] = b
        self._specs[group] = b.spec
        return b

    # -- BaseEnv -------------------------------------------------------------------------------------
    @property
    def behavior_specs(self) -> Mapping[str, BehaviorSpec]:
        if not self._specs and not self._started:
            self.reset()
        return MappingProxyType(self._specs)

    def seed(self, seed: int) -> None:
        self._seed = int(seed)
        self._episode = 0

    def reset(self) -> None:
        self._pending.clear()
        rows = self._reset_env()
        self._publish(rows, [])

    def step(self) -> None:
        if not self._started:
            self.reset()
            return
        actions = {agent: self._action_for(agent) for agent in self._acting_agents()}
        self._pending.clear()
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        infos = infos or {}
        still = list(self.env.agents)
        still_set = set(still)
        terminal: list[_Row] = []
        reported: set[Any] = set()
        live = set(self._live)
        for agent in dict.fromkeys([*self._live, *terminations, *truncations]):
            term = bool(terminations.get(agent, False))
            trunc = bool(truncations.get(agent, False))
            vanished = agent in live and agent not in still_set
            if not (term or trunc or vanished):
                continue
            reported.add(agent)
            raw = obs.get(agent, self._last_obs.get(agent))
            if raw is None:
                raise EnvironmentFault(
                    f"PettingZoo environment '{self.name}': agent {agent!r} ended without any observation."
                )
            # truncated, or gone without a flag: interrupted (the trainer bootstraps); terminated wins.
            interrupted = not term
            terminal.append(self._row(agent, raw, rewards.get(agent, 0.0), infos.get(agent), interrupted))
        if still:
            decision = []
            for agent in still:
                if agent in reported:
                    continue
                raw = obs.get(agent, self._last_obs.get(agent))
                if raw is None:
                    raise EnvironmentFault(
                        f"PettingZoo environment '{self.name}': agent {agent!r} is alive but has no observation."
                    )
                decision.append(self._row(agent, raw, rewards.get(agent, 0.0), infos.get(agent), False))
        else:
            self._episode += 1
            decision = self._reset_env()
        self._publish(decision, terminal)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        if not self._started:
            self.reset()
        spec = require_behavior(self._specs, behavior_name)
        d = self._decision.get(behavior_name)
        t = self._terminal.get(behavior_name)
        return (
            d if d is not None else DecisionSteps.empty(spec),
            t if t is not None else TerminalSteps.empty(spec),
        )

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        names = self._decision_names.get(behavior_name, [])
        action = validate_actions(behavior_name, spec.action_spec, action, len(names))
        for i, agent in enumerate(names):
            self._pending[agent] = (action.continuous[i], action.discrete[i])

    def set_action_for_agent(self, behavior_name: str, agent_id: AgentId, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        agent = self._names.get(int(agent_id))
        if agent is None or agent not in self._decision_names.get(behavior_name, []):
            raise ActionError(
                f"Behavior '{behavior_name}': agent {agent_id} did not request a decision in the last step."
            )
        action = validate_actions(behavior_name, spec.action_spec, action, 1)
        self._pending[agent] = (action.continuous[0], action.discrete[0])

    def close(self) -> None:
        self.env.close()

    # -- helpers -------------------------------------------------------------------------------------
    def _reset_env(self) -> list[_Row]:
        out = self.env.reset(seed=self._seed + self._episode)
        if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], dict):
            obs, infos = out
        else:  # old API: observations only
            obs, infos = out, {}
        infos = infos or {}
        self._started = True
        rows = []
        for agent in self.env.agents:
            if agent not in obs:
                raise EnvironmentFault(
                    f"PettingZoo environment '{self.name}': reset() gave no observation for agent {agent!r}."
                )
            rows.append(self._row(agent, obs[agent], 0.0, infos.get(agent), False))
        return rows

    def _row(self, agent: Any, raw: Any, reward: Any, info: Any, interrupted: bool) -> _Row:
        self.agent_id(agent)
        b = self._behavior_of(agent)
        self._last_obs[agent] = raw
        mask = None
        if b.masked:
            mask = np.asarray(raw["action_mask"]).reshape(-1) == 0
            raw = raw["observation"]
        if isinstance(info, dict) and "action_mask" in info:
            mask = np.asarray(info["action_mask"]).reshape(-1) == 0
        branches = b.spec.action_spec.discrete_branches
        if mask is not None and mask.size != sum(branches):
            raise EnvironmentFault(
                f"PettingZoo environment '{self.name}': agent {agent!r} gave an action_mask of size {mask.size}, "
                f"expected {sum(branches)} (branches {branches})."
            )
        group, group_reward = self._group_of(b.name, agent, info)
        return _Row(agent, b.obs.convert_one(raw), float(reward), interrupted, mask, group, group_reward)

    def _group_of(self, behavior: str, agent: Any, info: Any) -> tuple[int, float]:
        """The agent's group id and group reward: `infos[agent]["group_id"]` / `["group_reward"]` when given,
        else the group of its behavior (1 + the behavior's index) and no group reward."""
        group = 1 + list(self._behaviors).index(behavior)
        reward = 0.0
        if isinstance(info, dict):
            if "group_id" in info:
                given = info["group_id"]
                if not isinstance(given, (int, np.integer)) or isinstance(given, bool) or int(given) < 0:
                    raise EnvironmentFault(
                        f"PettingZoo environment '{self.name}': infos[{agent!r}]['group_id'] is {given!r}; a group id "
                        "is an int >= 0 (0 = no group)."
                    )
                group = int(given)
            if "group_reward" in info:
                reward = float(info["group_reward"])
        return group, reward

    def _acting_agents(self) -> list[Any]:
        agents = list(self._live)
        seen = set(agents)
        agents.extend(a for a in self.env.agents if a not in seen)
        return agents

    def _action_for(self, agent: Any) -> Any:
        b = self._behavior_of(agent)
        spec = b.spec.action_spec
        if agent in self._pending:
            cont, disc = self._pending[agent]
        else:
            cont = np.zeros(spec.continuous_size, np.float32)
            disc = np.zeros(spec.discrete_size, np.int32)
            mask = self._masks.get(agent)
            if mask is not None:
                offset = 0
                for j, size in enumerate(spec.discrete_branches):
                    allowed = np.flatnonzero(~mask[offset : offset + size])
                    disc[j] = allowed[0] if allowed.size else 0
                    offset += size
        return b.act.decode_one(ActionTuple(cont[None], disc[None]), 0)

    def _publish(self, decision: list[_Row], terminal: list[_Row]) -> None:
        self._live = [r.name for r in decision]
        self._masks = {r.name: r.mask for r in decision if r.mask is not None}
        self._decision, self._decision_names, self._terminal = {}, {}, {}
        for group, rows in _by_behavior(decision, self).items():
            b = self._behaviors[group]
            ids = np.array([self._ids[r.name] for r in rows], dtype=np.int32)
            masks = None
            if any(r.mask is not None for r in rows):
                branches = b.spec.action_spec.discrete_branches
                flat = np.stack([r.mask if r.mask is not None else np.zeros(sum(branches), bool) for r in rows])
                offsets = np.cumsum((0,) + branches)
                masks = [flat[:, offsets[j] : offsets[j + 1]].copy() for j in range(len(offsets) - 1)]
            self._decision[group] = DecisionSteps(
                obs=[np.concatenate(parts) for parts in zip(*(r.obs for r in rows))],
                reward=np.array([r.reward for r in rows], dtype=np.float32),
                agent_id=ids,
                action_mask=masks,
                group_id=np.array([r.group for r in rows], dtype=np.int32),
                group_reward=np.array([r.group_reward for r in rows], dtype=np.float32),
            )
            self._decision_names[group] = [r.name for r in rows]
        for group, rows in _by_behavior(terminal, self).items():
            self._terminal[group] = TerminalSteps(
                obs=[np.concatenate(parts) for parts in zip(*(r.obs for r in rows))],
                reward=np.array([r.reward for r in rows], dtype=np.float32),
                interrupted=np.array([r.interrupted for r in rows], dtype=bool),
                agent_id=np.array([self._ids[r.name] for r in rows], dtype=np.int32),
                group_id=np.array([r.group for r in rows], dtype=np.int32),
                group_reward=np.array([r.group_reward for r in rows], dtype=np.float32),
            )


def _by_behavior(rows: list[_Row], env: PettingZooEnv) -> dict[str, list[_Row]]:
    out: dict[str, list[_Row]] = {}
    for r in sorted(rows, key=lambda r: env._ids[r.name]):
        out.setdefault(env._agent_behavior[r.name].name, []).append(r)
    return out


def _env_name(env: Any) -> str:
    meta = getattr(env, "metadata", None) or {}
    return str(meta.get("name") or type(getattr(env, "unwrapped", env)).__name__)


def _from_pettingzoo_registry(env_id: str, kwargs: dict[str, Any]) -> Any | None:
    """An env from PettingZoo's own registry (pettingzoo >= 1.27, ids like "classic/rps-v2"), or None."""
    make = getattr(pettingzoo, "make", None)
    for kind in ("parallel", "aec"):
        reg = getattr(pettingzoo, f"{kind}_registry", None)
        if make is None or reg is None or env_id not in reg:
            continue
        try:
            return make(kind, env_id, **kwargs)
        except ImportError as exc:
            raise ConfigError(
                f"PettingZoo environment '{env_id}' needs packages that are not installed: {exc}"
            ) from exc
        except TypeError as exc:
            raise ConfigError(
                f"PettingZoo environment '{env_id}' does not accept the arguments {sorted(kwargs)}: {exc}"
            ) from exc
    return None


def make_pettingzoo(rest: str, *, seed: int = 0, num_agents: int | None = None, **kwargs: Any) -> PettingZooEnv:
    """A PettingZooEnv by name; kwargs go to the environment's constructor.

    - "package.module" (e.g. "pettingzoo.butterfly.pistonball_v6"): imports it and calls
      `parallel_env(**kwargs)`, or `env(**kwargs)` (AEC) when there is no parallel_env;
    - "package.module:factory": calls that factory;
    - an id of PettingZoo's own registry (pettingzoo >= 1.27, e.g. "classic/rps-v2"): `pettingzoo.make`.
    """
    if num_agents is not None:
        raise ConfigError(
            f"PettingZoo environment '{rest}': num_agents cannot be set; the environment decides its agents "
            "(pass the environment's own arguments instead, e.g. N=3)."
        )
    registered = _from_pettingzoo_registry(rest, kwargs)
    if registered is not None:
        return PettingZooEnv(registered, seed=seed, name=rest)
    module_name, _, attr = rest.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise UnknownEnvironmentError(
                f"Unknown PettingZoo environment 'pettingzoo:{rest}': no module named {exc.name!r}. "
                "Give an importable module path, e.g. 'pettingzoo:pettingzoo.butterfly.pistonball_v6'."
            ) from exc
        raise ConfigError(
            f"PettingZoo environment '{rest}' needs the package {exc.name!r}, which is not installed ({exc})."
        ) from exc
    except ImportError as exc:
        raise ConfigError(f"PettingZoo environment '{rest}' could not be imported: {exc}") from exc
    names = [attr] if attr else ["parallel_env", "env"]
    factory: Callable[..., Any] | None = next((getattr(module, n) for n in names if hasattr(module, n)), None)
    if factory is None:
        raise UnknownEnvironmentError(
            f"PettingZoo environment module '{module_name}' has no {' or '.join(repr(n) for n in names)}."
        )
    try:
        env = factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"PettingZoo environment '{rest}' does not accept the arguments {sorted(kwargs)}: {exc}"
        ) from exc
    return PettingZooEnv(env, seed=seed, name=rest)
