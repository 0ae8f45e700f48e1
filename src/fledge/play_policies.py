"""What `fledge play` plays with: a run's policies (torch checkpoints or ONNX models), loaded per brain,
and the run folder's configuration. `fledge play` (play.py) and `fledge play --versus` (play_versus.py)
share them.

Each behavior id acts with its brain's policy (teams `B?team=N` of one brain share it): the newest
`<B>/<B>-<step>.pt` (or the one named by `--checkpoint B-<step>`), or with `--onnx` the ONNX model
(`<B>/<B>-<step>.onnx` with `--checkpoint`, else the final `<run>/<B>.onnx`, else the newest one).
Recurrent policies keep each agent's memory between its decisions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from fledge.envs.api import ActionTuple, BehaviorSpec, DecisionSteps
from fledge.errors import CheckpointError, RunFolderError

__all__ = ["AgentMemories", "Policies", "default_env", "find_onnx", "read_run_config", "run_folder"]


def _check_fit(
    what: str,
    behavior: str,
    spec: BehaviorSpec,
    obs_shapes: list[tuple[int, ...]],
    continuous: int,
    branches: tuple[int, ...],
) -> None:
    env_obs = [tuple(int(d) for d in o.shape) for o in spec.observation_specs]
    env_flat = sum(math.prod(s) for s in env_obs)
    flat = sum(math.prod(s) for s in obs_shapes)
    if (env_obs != obs_shapes and env_flat != flat) or (continuous, tuple(branches)) != (
        spec.action_spec.continuous_size,
        tuple(spec.action_spec.discrete_branches),
    ):
        raise CheckpointError(
            f"{what} does not fit behavior '{behavior}' of the environment: the policy has observations "
            f"{obs_shapes} and actions (continuous {continuous}, branches {tuple(branches)}); the environment "
            f"has observations {env_obs} and actions {spec.action_spec}."
        )


class AgentMemories:
    """Each agent's memory between its decisions, for recurrent policies: zero when its episode starts and
    dropped when it ends (`forget`)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.by_agent: dict[int, np.ndarray] = {}

    def get(self, agent_ids: np.ndarray) -> np.ndarray:
        zero = np.zeros(self.size, np.float32)
        rows = [self.by_agent.get(int(a), zero) for a in agent_ids.tolist()]
        return np.stack(rows) if rows else np.zeros((0, self.size), np.float32)

    def put(self, agent_ids: np.ndarray, memory: np.ndarray) -> None:
        for a, m in zip(agent_ids.tolist(), np.asarray(memory, np.float32)):
            self.by_agent[int(a)] = m.copy()

    def forget(self, agent_ids: np.ndarray) -> None:
        for a in agent_ids.tolist():
            self.by_agent.pop(int(a), None)


class _TorchPolicy:
    def __init__(self, run_dir: Path, behavior: str, path: Path, spec: BehaviorSpec, deterministic: bool, seed: int):
        from fledge.checkpoints.export import rebuild_policy

        self.label = f"torch checkpoint {path.name}"
        self.policy = rebuild_policy(run_dir, behavior, path, seed=seed)
        pspec = self.policy.spec
        _check_fit(
            str(path),
            behavior,
            spec,
            [tuple(o.shape) for o in pspec.observation_specs],
            pspec.action_spec.continuous_size,
            tuple(pspec.action_spec.discrete_branches),
        )
        if deterministic:
            self.policy.deterministic = True
        self.memories = AgentMemories(self.policy.memory_size)

    def decide(self, steps: DecisionSteps) -> ActionTuple:
        from fledge.rollout.processor import allowed_actions, flat_observations

        obs, allowed = flat_observations(steps.obs), allowed_actions(steps.action_mask)
        if not self.memories.size:
            return self.policy.env_actions(self.policy.act(obs, allowed))
        out = self.policy.act(obs, allowed, self.memories.get(steps.agent_id))
        assert out.memory is not None
        self.memories.put(steps.agent_id, out.memory)
        return self.policy.env_actions(out)


class _OnnxPolicy:
    def __init__(self, path: Path, behavior: str, spec: BehaviorSpec, deterministic: bool):
        from fledge.checkpoints.onnx import ExportError, load_onnx_policy

        self.label = f"ONNX model {path.name}"
        try:
            self.policy = load_onnx_policy(path)
        except ExportError as exc:
            raise CheckpointError(str(exc)) from exc
        p = self.policy
        _check_fit(str(path), behavior, spec, list(p.observation_shapes), p.continuous_size, p.discrete_branches)
        self.deterministic = deterministic
        self.spec = spec
        self.memories = AgentMemories(self.policy.memory_size)

    def decide(self, steps: DecisionSteps) -> ActionTuple:
        from fledge.rollout.processor import allowed_actions

        n = len(steps)
        allowed = allowed_actions(steps.action_mask)
        obs = [o.reshape((n, *shape)) for o, shape in zip(steps.obs, self.policy.observation_shapes)]
        masks = None if allowed is None else allowed.astype(np.float32)
        memory = self.memories.get(steps.agent_id) if self.memories.size else None
        cont, disc, new = self.policy.step(obs, masks, memory, deterministic=self.deterministic)
        if new is not None:
            self.memories.put(steps.agent_id, new)
        a = self.spec.action_spec
        return ActionTuple(
            cont if cont is not None else np.zeros((n, a.continuous_size), np.float32),
            disc if disc is not None else np.zeros((n, a.discrete_size), np.int32),
        )


def _behavior_folders(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.iterdir() if p.is_dir() and p.name != "run_logs")


def find_onnx(run_dir: Path, behavior: str, checkpoint: str | None = None) -> Path:
    """The ONNX model to play for `behavior`: `B/<checkpoint>.onnx` when the checkpoint is this behavior's,
    else `<run>/B.onnx` (the final model), else the newest `B/B-<step>.onnx`."""
    if checkpoint is not None and checkpoint.startswith(f"{behavior}-"):
        path = run_dir / behavior / f"{checkpoint}.onnx"
        if path.is_file():
            return path
        raise CheckpointError(f"No ONNX model '{checkpoint}.onnx' in {run_dir / behavior}.")
    final = run_dir / f"{behavior}.onnx"
    if final.is_file():
        return final

    def step_of(p: Path) -> int:
        tail = p.stem.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else -1

    units = sorted((run_dir / behavior).glob(f"{behavior}-*.onnx"), key=step_of)
    if units:
        return units[-1]
    raise CheckpointError(
        f"No ONNX model of behavior '{behavior}' in {run_dir} (looked for {behavior}.onnx and "
        f"{behavior}/{behavior}-<step>.onnx); play the torch checkpoint without --onnx, or run fledge export."
    )


class Policies:
    """Loads each behavior's policy the first time it is needed."""

    def __init__(self, run_dir: Path, *, checkpoint: str | None, use_onnx: bool, deterministic: bool, seed: int):
        self.run_dir, self.checkpoint, self.use_onnx = run_dir, checkpoint, use_onnx
        self.deterministic, self.seed = deterministic, seed
        self._loaded: dict[str, _TorchPolicy | _OnnxPolicy] = {}
        self._named: tuple[str, Path] | None = None
        if checkpoint is not None:  # refuse an unknown checkpoint before building anything
            behaviors = _behavior_folders(run_dir)
            if use_onnx:
                owners = [b for b in behaviors if checkpoint.startswith(f"{b}-")]
                if not owners or not (run_dir / owners[0] / f"{checkpoint}.onnx").is_file():
                    available = sorted(p.stem for b in behaviors for p in (run_dir / b).glob(f"{b}-*.onnx"))
                    raise CheckpointError(
                        f"No ONNX model for checkpoint '{checkpoint}' in {run_dir} "
                        f"(available: {', '.join(available) or 'none'})."
                    )
            else:
                from fledge.checkpoints.export import find_checkpoint

                (self._named,) = find_checkpoint(run_dir, checkpoint)

    def get(self, behavior: str, spec: BehaviorSpec) -> _TorchPolicy | _OnnxPolicy:
        """The policy of a behavior id: its brain's (teams `B?team=N` of a self-play run share one)."""
        from fledge.envs.behavior_id import parse_behavior_id

        brain = parse_behavior_id(behavior).brain_name
        policy = self._loaded.get(brain)
        if policy is None:
            policy = self._load(brain, spec)
            self._loaded[brain] = policy
        return policy

    def labels(self) -> str:
        return "; ".join(f"{b}: {p.label}" for b, p in sorted(self._loaded.items()))

    def end_episodes(self, behavior: str, agent_ids: np.ndarray) -> None:
        """These agents' episodes ended: their next decisions start from a zero memory."""
        from fledge.envs.behavior_id import parse_behavior_id

        policy = self._loaded.get(parse_behavior_id(behavior).brain_name)
        if policy is not None:
            policy.memories.forget(agent_ids)

    def _load(self, behavior: str, spec: BehaviorSpec) -> _TorchPolicy | _OnnxPolicy:
        if self.use_onnx:
            from fledge.checkpoints.files import file_problem
            from fledge.checkpoints.status import recorded_sha256

            path = find_onnx(self.run_dir, behavior, self.checkpoint)
            problem = file_problem(path, recorded_sha256(path))
            if problem is not None:
                raise CheckpointError(
                    f"ONNX model {problem}; play another --checkpoint, or write it again with fledge export."
                )
            return _OnnxPolicy(path, behavior, spec, self.deterministic)
        if self._named is not None and self._named[0] == behavior:
            path = self._named[1]
        else:
            from fledge.checkpoints.export import find_checkpoint

            try:
                pairs = dict(find_checkpoint(self.run_dir, None))
            except CheckpointError:
                pairs = {}
            if behavior not in pairs:
                raise CheckpointError(
                    f"No checkpoint of behavior '{behavior}' in {self.run_dir} (no {behavior}/{behavior}-<step>.pt); "
                    "train longer or with a smaller checkpoint_interval."
                )
            path = pairs[behavior]
        return _TorchPolicy(self.run_dir, behavior, path, spec, self.deterministic, self.seed)


def read_run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "configuration.yaml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunFolderError(f"{path} is missing or unreadable: {exc}") from None
    except yaml.YAMLError as exc:
        raise RunFolderError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(config, dict):
        raise RunFolderError(f"{path} does not hold a run configuration.")
    return config


def run_folder(results_dir: str | Path, run_id: str) -> Path:
    """The folder of a run, or a RunFolderError listing the runs that exist."""
    base = Path(results_dir)
    run_dir = base / run_id
    if not run_dir.is_dir():
        runs = sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
        known = f"runs there: {', '.join(runs)}" if runs else "no runs there" if base.is_dir() else "no such folder"
        raise RunFolderError(f"No run '{run_id}' in {base} ({known}).")
    return run_dir


def default_env() -> str:
    from fledge.envs.registry import DEFAULT_ENV

    return DEFAULT_ENV


def run_env(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The environment a run trained on, from its configuration.yaml: its name and the keyword arguments its
    `env_args` gave it (a built-in's camera size, episode length, ...), so that play sees the observations the
    policy was trained on. A Unity player's `env_args` are command-line tokens for the executable: none here."""
    from fledge.api import parse_env_args
    from fledge.envs.registry import is_unity

    settings = config.get("env_settings") or {}
    name = str(settings.get("env_path") or default_env())
    return name, {} if is_unity(name) else parse_env_args(settings.get("env_args") or [])
