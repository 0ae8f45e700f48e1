"""Gymnasium environments as a fledge `BaseEnv` ("gym:<env id>" in the registry).

`GymnasiumEnv` wraps a `gymnasium.Env` (one agent, id 0) or a `gymnasium.vector.VectorEnv`
(sub-environment i is agent i; ids 0..n-1 are stable for the whole run). There is one behavior,
named after the environment id with every character outside ``[A-Za-z0-9._-]`` replaced by "_"
(so it is a safe folder name): "CartPole-v1" stays "CartPole-v1", "ALE/Pong-v5" becomes
"ALE_Pong-v5". An environment without an id is named after its class.

Spaces (see `space_to_specs`):
- actions: `Box` -> continuous (flattened). A bounded Box receives the trainer's [-1, 1] actions
  (clipped to [-1, 1]) rescaled linearly to [low, high]; unbounded dimensions pass through.
  `Discrete(n, start)` -> one branch of n (start is added back), `MultiDiscrete` -> one branch per
  entry, `MultiBinary(n)` -> n branches of 2; `Tuple`/`Dict` of these -> hybrid (continuous parts
  concatenated, branches appended, Dict keys in sorted order).
- observations: `Box` -> a vector (flattened to rank 1), except images (uint8 (H, W, C), (C, H, W) or
  (H, W); float ones bounded [0, 1] or [0, 255]; see `fledge.envs.gym_images`) that become visual
  (C, H, W) float32 in [0, 1]; `Discrete` -> one-hot; `MultiDiscrete` -> concatenated
  one-hots; `MultiBinary` -> 0/1 vector; `Dict`/`Tuple` -> one ObservationSpec per entry (Dict
  keys sorted, nested entries flattened, named by their path "key.subkey"). Everything is float32.
- anything else (Text, Graph, Sequence, OneOf, ...) raises ConfigError naming the space, the
  environment and the part (action or observation path).

Episodes: `terminated` -> TerminalSteps with interrupted=False, `truncated` (and not terminated)
-> interrupted=True. The TerminalSteps observation is the real final observation; the agent is
reset at once and is in the DecisionSteps of the same step with reward 0.
Vector environments are driven according to their autoreset mode (`metadata["autoreset_mode"]`):
- SAME_STEP (what `make_gymnasium` creates): the final observation is read from
  `infos["final_obs"]`, the reset observation is the one returned by step.
- DISABLED: ended sub-environments are reset with `reset(options={"reset_mask": ended})`.
- NEXT_STEP (gymnasium's default): the sub-environment only resets on the following `step()`, where
  it ignores its action. An ended agent is therefore reported in TerminalSteps and then leaves the
  DecisionSteps for one step; it comes back, with reward 0, in the DecisionSteps of the next step.
  No transition is ever made up from the ignored action.

Environment parameters (`environment_parameters` of a run): a single environment receives them in the
`options` of every reset fledge makes, as ``options={"environment_parameters": {"name": value, ...}}``,
each value freshly drawn from the parameter's current lesson (read them in your env's `reset`). A
vector environment resets its sub-environments itself, without options, so it cannot receive them:
with environment parameters use one environment, or `env_settings.worker_processes: true` for copies
(each copy is then a single environment in its own worker).

Seeding: the first reset after construction or `seed(s)` calls `env.reset(seed=s)` (a vector env
then seeds sub-environment i with s + i) and seeds the action space; later (automatic) resets do not
re-seed, so the episodes follow from the run seed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from fledge.errors import ActionError, ConfigError, EnvironmentFault, UnknownEnvironmentError

try:
    import gymnasium
    from gymnasium import spaces
except ImportError as _exc:  # pragma: no cover - depends on the installation
    raise ConfigError(
        "Gymnasium environments need the 'gymnasium' package, which is not installed. "
        "Install it with: pip install 'fledge[gym]'"
    ) from _exc

from fledge.curriculum.samplers import Sampler
from fledge.envs.api import (
    ActionSpec,
    ActionTuple,
    AgentId,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
    require_behavior,
    validate_actions,
)
from fledge.envs.gym_images import ImageLayout, image_layout

__all__ = [
    "ActionDecoder",
    "GymnasiumEnv",
    "ObservationConverter",
    "behavior_name_for",
    "make_gymnasium",
    "space_to_specs",
]

_VISUAL_PROPS = (
    DimensionProperty.NONE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
)


def behavior_name_for(env_id: str) -> str:
    """A behavior name (and folder name) for an environment id: unsafe characters become "_"."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", env_id).strip("._")
    return name or "gym"


# ----------------------------------------------------------------------------------------------
# Observations
# ----------------------------------------------------------------------------------------------

Path = tuple[Any, ...]


@dataclass(frozen=True)
class _ObsLeaf:
    path: Path  # keys / indices from the top-level observation to this entry
    kind: str  # "vector", "image", "discrete", "multidiscrete", "multibinary"
    spec: ObservationSpec
    start: np.ndarray | None = None  # Discrete/MultiDiscrete start (flattened)
    nvec: np.ndarray | None = None  # Discrete/MultiDiscrete sizes (flattened)
    image: ImageLayout | None = None  # images: how to bring them to (C, H, W) in [0, 1]


def _unsupported(space: Any, where: str, env_id: str, what: str) -> ConfigError:
    return ConfigError(
        f"Environment '{env_id}': the {what} space {space!r} at {where} cannot be mapped to fledge. "
        f"Supported {what} spaces: Box, Discrete, MultiDiscrete, MultiBinary, and Dict/Tuple of those."
    )


def _path_text(path: Path, root: str) -> str:
    return root if not path else root + "".join(f"[{p!r}]" for p in path)


def _sorted_keys(space: spaces.Dict) -> list[Any]:
    return sorted(space.spaces.keys(), key=str)


class ObservationConverter:
    """Turns a gymnasium observation (single or batched) into fledge's float32 arrays."""

    def __init__(self, space: spaces.Space, *, env_id: str = "env", root_name: str = "observation") -> None:
        self.space = space
        self.env_id = env_id
        self.leaves: list[_ObsLeaf] = []
        self._root_name = root_name
        self._collect(space, ())
        if not self.leaves:
            raise ConfigError(f"Environment '{env_id}': the observation space {space!r} has no entries.")
        self.specs: list[ObservationSpec] = [leaf.spec for leaf in self.leaves]

    def _name(self, path: Path) -> str:
        return ".".join(str(p) for p in path) if path else self._root_name

    def _collect(self, space: spaces.Space, path: Path) -> None:
        name = self._name(path)
        if isinstance(space, spaces.Dict):
            for key in _sorted_keys(space):
                self._collect(space.spaces[key], path + (key,))
        elif isinstance(space, spaces.Tuple):
            for i, sub in enumerate(space.spaces):
                self._collect(sub, path + (i,))
        elif isinstance(space, spaces.Box):
            layout = image_layout(tuple(space.shape), space.dtype, space.low, space.high)
            if layout is not None:
                spec = ObservationSpec(layout.chw, _VISUAL_PROPS, ObservationType.DEFAULT, name)
                self.leaves.append(_ObsLeaf(path, "image", spec, image=layout))
            else:
                self.leaves.append(_ObsLeaf(path, "vector", ObservationSpec.vector(int(np.prod(space.shape)), name)))
        elif isinstance(space, spaces.Discrete):
            n = int(space.n)
            self.leaves.append(
                _ObsLeaf(path, "discrete", ObservationSpec.vector(n, name), np.array([int(space.start)]), np.array([n]))
            )
        elif isinstance(space, spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec, dtype=np.int64).reshape(-1)
            start = np.asarray(getattr(space, "start", np.zeros_like(nvec)), dtype=np.int64).reshape(-1)
            spec = ObservationSpec.vector(int(nvec.sum()), name)
            self.leaves.append(_ObsLeaf(path, "multidiscrete", spec, start, nvec))
        elif isinstance(space, spaces.MultiBinary):
            self.leaves.append(_ObsLeaf(path, "multibinary", ObservationSpec.vector(int(np.prod(space.shape)), name)))
        else:
            raise _unsupported(space, _path_text(path, "observation"), self.env_id, "observation")

    @staticmethod
    def _get(obs: Any, path: Path) -> Any:
        for p in path:
            obs = obs[p]
        return obs

    def convert_batch(self, obs: Any, n: int) -> list[np.ndarray]:
        """Batched observations (leading axis n, as a vector env returns them) -> fledge arrays."""
        return [self._leaf(leaf, np.asarray(self._get(obs, leaf.path)), n) for leaf in self.leaves]

    def convert_one(self, obs: Any) -> list[np.ndarray]:
        """One agent's observation -> fledge arrays with a leading axis of 1."""
        return [self._leaf(leaf, np.asarray(self._get(obs, leaf.path))[None], 1) for leaf in self.leaves]

    @staticmethod
    def _leaf(leaf: _ObsLeaf, arr: np.ndarray, n: int) -> np.ndarray:
        if leaf.kind == "vector" or leaf.kind == "multibinary":
            return arr.reshape(n, -1).astype(np.float32)
        if leaf.image is not None:
            return leaf.image.convert(arr)
        assert leaf.nvec is not None and leaf.start is not None
        idx = arr.reshape(n, -1).astype(np.int64) - leaf.start[None, :]
        out = np.zeros((n, int(leaf.nvec.sum())), dtype=np.float32)
        offsets = np.concatenate([[0], np.cumsum(leaf.nvec)[:-1]])
        rows = np.repeat(np.arange(n), len(leaf.nvec))
        cols = (offsets[None, :] + np.clip(idx, 0, leaf.nvec[None, :] - 1)).reshape(-1)
        out[rows, cols] = 1.0
        return out


# ----------------------------------------------------------------------------------------------
# Actions
# ----------------------------------------------------------------------------------------------


class ActionDecoder:
    """Maps a gymnasium action space to an ActionSpec and ActionTuples back to gymnasium actions."""

    def __init__(self, space: spaces.Space, *, env_id: str = "env") -> None:
        self.space = space
        self.env_id = env_id
        self._cont = 0
        self._branches: list[int] = []
        self._check(space, ())
        if self._cont == 0 and not self._branches:
            raise ConfigError(f"Environment '{env_id}': the action space {space!r} has no actions.")
        self.spec = ActionSpec(self._cont, tuple(self._branches))

    def _check(self, space: spaces.Space, path: Path) -> None:
        if isinstance(space, spaces.Dict):
            for key in _sorted_keys(space):
                self._check(space.spaces[key], path + (key,))
        elif isinstance(space, spaces.Tuple):
            for i, sub in enumerate(space.spaces):
                self._check(sub, path + (i,))
        elif isinstance(space, spaces.Box):
            self._cont += int(np.prod(space.shape))
        elif isinstance(space, spaces.Discrete):
            self._branches.append(int(space.n))
        elif isinstance(space, spaces.MultiDiscrete):
            self._branches.extend(int(v) for v in np.asarray(space.nvec).reshape(-1))
        elif isinstance(space, spaces.MultiBinary):
            self._branches.extend([2] * int(np.prod(space.shape)))
        else:
            raise _unsupported(space, _path_text(path, "action"), self.env_id, "action")

    def decode_batch(self, action: ActionTuple) -> Any:
        """Actions of n agents (validated ActionTuple) -> a batched gymnasium action (leading axis n)."""
        cont = np.asarray(action.continuous, dtype=np.float64)
        disc = np.asarray(action.discrete, dtype=np.int64)
        value, c, d = self._decode(self.space, cont, disc, 0, 0)
        assert c == self._cont and d == len(self._branches)
        return value

    def decode_one(self, action: ActionTuple, row: int = 0) -> Any:
        """The gymnasium action of one agent (row of the ActionTuple)."""
        return unbatch(self.decode_batch(action), row)

    def _decode(self, space: spaces.Space, cont: np.ndarray, disc: np.ndarray, c: int, d: int) -> tuple[Any, int, int]:
        n = cont.shape[0]
        if isinstance(space, spaces.Dict):
            out: dict[Any, Any] = {}
            for key in _sorted_keys(space):
                out[key], c, d = self._decode(space.spaces[key], cont, disc, c, d)
            return out, c, d
        if isinstance(space, spaces.Tuple):
            items = []
            for sub in space.spaces:
                value, c, d = self._decode(sub, cont, disc, c, d)
                items.append(value)
            return tuple(items), c, d
        if isinstance(space, spaces.Box):
            k = int(np.prod(space.shape))
            a = cont[:, c : c + k]
            low = np.asarray(space.low, dtype=np.float64).reshape(-1)
            high = np.asarray(space.high, dtype=np.float64).reshape(-1)
            bounded = np.isfinite(low) & np.isfinite(high)
            if bounded.any():
                lo, hi = np.where(bounded, low, -1.0), np.where(bounded, high, 1.0)
                scaled = lo + (np.clip(a, -1.0, 1.0) + 1.0) * 0.5 * (hi - lo)
                a = np.where(bounded[None, :], scaled, a)
            if np.issubdtype(space.dtype, np.integer):
                a = np.round(a)
                a = np.where(bounded[None, :], np.clip(a, low, high), a)
            return a.reshape((n,) + tuple(space.shape)).astype(space.dtype), c + k, d
        if isinstance(space, spaces.Discrete):
            return (disc[:, d] + int(space.start)).astype(space.dtype), c, d + 1
        if isinstance(space, spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec)
            k = int(nvec.size)
            start = np.asarray(getattr(space, "start", np.zeros_like(nvec)), dtype=np.int64)
            a = disc[:, d : d + k].reshape((n,) + nvec.shape) + start[None]
            return a.astype(space.dtype), c, d + k
        if isinstance(space, spaces.MultiBinary):
            k = int(np.prod(space.shape))
            return disc[:, d : d + k].reshape((n,) + tuple(space.shape)).astype(space.dtype), c, d + k
        raise AssertionError(space)  # refused in __init__


def unbatch(value: Any, row: int) -> Any:
    """Row `row` of a batched (nested dict/tuple of arrays) value."""
    if isinstance(value, dict):
        return {k: unbatch(v, row) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(unbatch(v, row) for v in value)
    return value[row]


def space_to_specs(observation_space: spaces.Space, action_space: spaces.Space, *, env_id: str = "env") -> BehaviorSpec:
    """The fledge BehaviorSpec of a gymnasium observation and action space (ConfigError if unmappable)."""
    obs = ObservationConverter(observation_space, env_id=env_id)
    act = ActionDecoder(action_space, env_id=env_id)
    return BehaviorSpec(obs.specs, act.spec)


# ----------------------------------------------------------------------------------------------
# The environment
# ----------------------------------------------------------------------------------------------


def _autoreset_mode(env: Any) -> str:
    """ "same", "next" or "disabled": how a vector env resets its ended sub-environments."""
    mode = getattr(env, "metadata", {}).get("autoreset_mode", None)
    if mode is None:
        mode = getattr(getattr(env, "unwrapped", env), "autoreset_mode", None)
    text = str(getattr(mode, "value", mode)).replace("_", "").lower() if mode is not None else "nextstep"
    if "same" in text:
        return "same"
    if "disabled" in text:
        return "disabled"
    return "next"


class GymnasiumEnv(BaseEnv):
    """A gymnasium Env (one agent) or VectorEnv (one agent per sub-environment) as a BaseEnv."""

    def __init__(
        self,
        env: Any,
        *,
        seed: int = 0,
        env_id: str | None = None,
        behavior_name: str | None = None,
    ) -> None:
        if isinstance(env, gymnasium.vector.VectorEnv):
            self._vector = True
            self._n = int(env.num_envs)
            obs_space, act_space = env.single_observation_space, env.single_action_space
            self._mode = _autoreset_mode(env)
        elif isinstance(env, gymnasium.Env):
            self._vector = False
            self._n = 1
            obs_space, act_space = env.observation_space, env.action_space
            self._mode = "single"
        else:
            raise ConfigError(
                f"GymnasiumEnv needs a gymnasium.Env or gymnasium.vector.VectorEnv, got {type(env).__name__}."
            )
        if env_id is None:
            spec = getattr(env, "spec", None)
            env_id = getattr(spec, "id", None) or type(getattr(env, "unwrapped", env)).__name__
        self.env = env
        self.env_id = env_id
        self.autoreset_mode = self._mode
        self.behavior_name = behavior_name or behavior_name_for(env_id)
        self._obs = ObservationConverter(obs_space, env_id=env_id)
        self._act = ActionDecoder(act_space, env_id=env_id)
        self._spec = BehaviorSpec(self._obs.specs, self._act.spec)
        self._specs: Mapping[str, BehaviorSpec] = MappingProxyType({self.behavior_name: self._spec})
        self._next_seed: int | None = int(seed)
        self._all_ids = np.arange(self._n, dtype=np.int32)
        self._zeros_i = np.zeros(self._n, dtype=np.int32)
        self._zeros_f = np.zeros(self._n, dtype=np.float32)
        self._waiting = np.zeros(self._n, dtype=bool)  # NEXT_STEP: reset happens on the coming step
        self._pending: ActionTuple | None = None
        self._decision: DecisionSteps | None = None
        self._no_terminal = TerminalSteps.empty(self._spec)
        self._terminal = self._no_terminal
        self._samplers: dict[str, Sampler] = {}

    @property
    def num_agents(self) -> int:
        return self._n

    # -- BaseEnv -----------------------------------------------------------------------------------
    @property
    def behavior_specs(self) -> Mapping[str, BehaviorSpec]:
        return self._specs

    def seed(self, seed: int) -> None:
        self._next_seed = int(seed)

    def environment_parameter_names(self) -> frozenset[str] | None:
        return None  # the environment reads what it knows from the reset options

    def set_environment_parameters(self, draws: Mapping[str, Mapping[str, Any]]) -> None:
        if self._vector and draws:
            raise ConfigError(
                f"environment_parameters: '{self.env_id}' runs as a Gymnasium vector environment, whose "
                "sub-environments reset themselves without options, so they cannot receive environment parameters. "
                "Use --num-envs 1, or env_settings.worker_processes: true (each copy a single environment)."
            )
        self._samplers = {name: Sampler(draw, stream=int(draw.get("stream", 0))) for name, draw in draws.items()}

    def _reset_options(self) -> dict[str, Any] | None:
        """The options of a reset: the environment parameters' values for the coming episode, if any."""
        if not self._samplers:
            return None
        return {"environment_parameters": {name: s.one() for name, s in self._samplers.items()}}

    def reset(self) -> None:
        seed, self._next_seed = self._next_seed, None
        if seed is not None:
            self.env.action_space.seed(seed)
        raw, _ = self.env.reset(seed=seed, options=self._reset_options())
        obs = self._obs.convert_batch(raw, self._n) if self._vector else self._obs.convert_one(raw)
        self._waiting[:] = False
        self._pending = None
        self._terminal = self._no_terminal
        self._decision = self._decision_steps(obs, self._zeros_f, np.ones(self._n, dtype=bool))

    def step(self) -> None:
        if self._decision is None:
            self.reset()
            return
        actions = self._pending if self._pending is not None else self._act.spec.empty_action(self._n)
        self._pending = None
        if self._vector:
            self._step_vector(actions)
        else:
            self._step_single(actions)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        require_behavior(self._specs, behavior_name)
        if self._decision is None:
            self.reset()
        assert self._decision is not None
        return self._decision, self._terminal

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        rows = self._decision.agent_id if self._decision is not None else self._all_ids[:0]
        action = validate_actions(behavior_name, spec.action_spec, action, len(rows))
        if self._decision is None:
            return  # nobody asked for a decision yet; the first step() resets
        full = self._act.spec.empty_action(self._n)
        full.continuous[rows] = action.continuous
        full.discrete[rows] = action.discrete
        self._pending = full

    def set_action_for_agent(self, behavior_name: str, agent_id: AgentId, action: ActionTuple) -> None:
        spec = require_behavior(self._specs, behavior_name)
        if self._decision is None or int(agent_id) not in self._decision.agent_id_to_index:
            raise ActionError(
                f"Behavior '{behavior_name}': agent {agent_id} did not request a decision in the last step."
            )
        action = validate_actions(behavior_name, spec.action_spec, action, 1)
        if self._pending is None:
            self._pending = self._act.spec.empty_action(self._n)
        self._pending.continuous[int(agent_id)] = action.continuous[0]
        self._pending.discrete[int(agent_id)] = action.discrete[0]

    def close(self) -> None:
        self.env.close()

    # -- stepping ------------------------------------------------------------------------------------
    def _step_single(self, actions: ActionTuple) -> None:
        raw, reward, terminated, truncated, _ = self.env.step(self._act.decode_one(actions, 0))
        obs = self._obs.convert_one(raw)
        reward_arr = np.array([reward], dtype=np.float32)
        done = np.array([bool(terminated) or bool(truncated)])
        if done[0]:
            self._terminal = self._terminal_steps(obs, reward_arr, np.array([bool(truncated) and not terminated]), done)
            raw, _ = self.env.reset(options=self._reset_options())
            obs = self._obs.convert_one(raw)
            reward_arr = self._zeros_f
        else:
            self._terminal = self._no_terminal
        self._decision = self._decision_steps(obs, reward_arr, np.ones(1, dtype=bool))

    def _step_vector(self, actions: ActionTuple) -> None:
        n = self._n
        raw, reward, terminated, truncated, infos = self.env.step(self._act.decode_batch(actions))
        reward = np.asarray(reward, dtype=np.float32).reshape(n)
        terminated = np.asarray(terminated, dtype=bool).reshape(n)
        truncated = np.asarray(truncated, dtype=bool).reshape(n)
        obs = self._obs.convert_batch(raw, n)
        if self._mode == "next":
            # Sub-environments that ended last step were reset by this step (their action ignored).
            done = (terminated | truncated) & ~self._waiting
            requesting = ~done
            final = obs
            self._waiting = done
        else:
            done = terminated | truncated
            requesting = np.ones(n, dtype=bool)
            if self._mode == "same":
                final = [o.copy() for o in obs]
                if done.any():
                    final_obs = infos.get("final_obs", infos.get("final_observation"))
                    if final_obs is None:
                        raise EnvironmentFault(
                            f"Environment '{self.env_id}': a SAME_STEP vector env ended sub-environments "
                            f"{np.flatnonzero(done).tolist()} without infos['final_obs']."
                        )
                    for i in np.flatnonzero(done):
                        for f, o in zip(final, self._obs.convert_one(final_obs[i])):
                            f[i] = o[0]
            else:  # disabled: reset the ended sub-environments ourselves
                final = obs
                if done.any():
                    raw, _ = self.env.reset(options={"reset_mask": done.copy()})
                    obs = self._obs.convert_batch(raw, n)
        if done.any():
            idx = np.flatnonzero(done)
            self._terminal = self._terminal_steps(
                [f[idx] for f in final], reward[idx], (truncated & ~terminated)[idx], done
            )
            reward = np.where(done, np.float32(0.0), reward).astype(np.float32)
        else:
            self._terminal = self._no_terminal
        self._decision = self._decision_steps(obs, reward, requesting)

    def _terminal_steps(
        self, obs: list[np.ndarray], reward: np.ndarray, interrupted: np.ndarray, done: np.ndarray
    ) -> TerminalSteps:
        idx = np.flatnonzero(done)
        return TerminalSteps(
            obs=obs,
            reward=reward.astype(np.float32),
            interrupted=np.asarray(interrupted, dtype=bool),
            agent_id=self._all_ids[idx],
            group_id=self._zeros_i[idx],
            group_reward=self._zeros_f[idx],
        )

    def _decision_steps(self, obs: list[np.ndarray], reward: np.ndarray, requesting: np.ndarray) -> DecisionSteps:
        if requesting.all():
            return DecisionSteps(obs, reward.astype(np.float32), self._all_ids, None, self._zeros_i, self._zeros_f)
        idx = np.flatnonzero(requesting)
        return DecisionSteps(
            obs=[o[idx] for o in obs],
            reward=reward[idx].astype(np.float32),
            agent_id=self._all_ids[idx],
            action_mask=None,
            group_id=self._zeros_i[idx],
            group_reward=self._zeros_f[idx],
        )


# ----------------------------------------------------------------------------------------------
# Construction by id
# ----------------------------------------------------------------------------------------------


def _close_ids(env_id: str) -> list[str]:
    ids = list(gymnasium.registry.keys())
    lowered = {i.lower(): i for i in ids}
    return [lowered[m] for m in difflib.get_close_matches(env_id.lower(), list(lowered), n=3, cutoff=0.6)]


def _sentence(exc: Exception, close: list[str]) -> str:
    """Gymnasium's message as one sentence, its own suggestion dropped where fledge lists close ids."""
    text = str(exc).strip()
    if close:
        text = re.sub(r"\s*Did you mean:?\s.*\?$", "", text)
    return text if text.endswith((".", "?", "!")) else f"{text}."


def _make_one(env_id: str, env_args: dict[str, Any]) -> Any:
    try:
        return gymnasium.make(env_id, **env_args)
    except (gymnasium.error.UnregisteredEnv, gymnasium.error.DeprecatedEnv) as exc:
        close = _close_ids(env_id)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        message = f"Unknown gymnasium environment '{env_id}': {_sentence(exc, close)}{hint}"
        raise UnknownEnvironmentError(message) from exc
    except gymnasium.error.DependencyNotInstalled as exc:
        raise ConfigError(f"Gymnasium environment '{env_id}' needs extra packages: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise UnknownEnvironmentError(
            f"Gymnasium environment '{env_id}' could not be created: module {exc.name!r} is not installed "
            f"or cannot be imported ({exc})."
        ) from exc
    except TypeError as exc:
        raise ConfigError(
            f"Gymnasium environment '{env_id}' does not accept the arguments {sorted(env_args)}: {exc}"
        ) from exc


def make_gymnasium(env_id: str, *, seed: int = 0, num_agents: int | None = None, **env_args: Any) -> GymnasiumEnv:
    """A GymnasiumEnv for a registered gymnasium id; env_args go to `gymnasium.make`.

    num_agents None or 1: one environment, one agent. num_agents > 1: an in-process
    `gymnasium.vector.SyncVectorEnv` of that many copies (SAME_STEP autoreset where gymnasium
    supports it), sub-environment i seeded with seed + i.
    """
    if num_agents is not None and (not isinstance(num_agents, int) or num_agents < 1):
        raise ConfigError(
            f"Gymnasium environment '{env_id}': num_agents must be a positive integer, got {num_agents!r}."
        )
    first = _make_one(env_id, env_args)
    if num_agents is None or num_agents == 1:
        return GymnasiumEnv(first, seed=seed, env_id=env_id)
    fns: list[Callable[[], Any]] = [lambda: first] + [
        (lambda: gymnasium.make(env_id, **env_args)) for _ in range(num_agents - 1)
    ]
    vec = _sync_vector_env(fns)
    return GymnasiumEnv(vec, seed=seed, env_id=env_id)


def _sync_vector_env(fns: Sequence[Callable[[], Any]]) -> Any:
    try:
        from gymnasium.vector import AutoresetMode
    except ImportError:  # gymnasium 1.0: NEXT_STEP only (handled by GymnasiumEnv)
        return gymnasium.vector.SyncVectorEnv(list(fns))
    return gymnasium.vector.SyncVectorEnv(list(fns), autoreset_mode=AutoresetMode.SAME_STEP)
