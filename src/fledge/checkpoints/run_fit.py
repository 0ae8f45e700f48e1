"""Why a run's checkpoints do not fit this environment: the message for --resume and --inference.

It lists what differs (behavior names, and each behavior's observation shapes and action spec as its
newest checkpoint records them next to this environment's) and says how to go on: the environment
the run was trained on (from its configuration.yaml), or a new run id. It never suggests --force,
which would delete the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from fledge.checkpoints.manager import CheckpointManager
from fledge.config.sections import DEFAULT_ENV
from fledge.envs.api import BehaviorSpec
from fledge.envs.behavior_id import brain_name
from fledge.errors import CheckpointError


def spec_fingerprint(spec: BehaviorSpec) -> dict[str, Any]:
    """The part of a trainer's fingerprint that the environment decides."""
    return {
        "observation_shapes": [list(o.shape) for o in spec.observation_specs],
        "action_spec": [spec.action_spec.continuous_size, list(spec.action_spec.discrete_branches)],
    }


def describe(fingerprint: Mapping[str, Any] | None) -> str:
    if not fingerprint or "observation_shapes" not in fingerprint or "action_spec" not in fingerprint:
        return "(its checkpoint does not say)"
    continuous, branches = fingerprint["action_spec"]
    shapes = ", ".join(str(tuple(s)) for s in fingerprint["observation_shapes"])
    return f"observations {shapes}; actions: {continuous} continuous, discrete branches {tuple(branches)}"


def trained_environment(run_dir: Path) -> str | None:
    """The environment a run was trained on, from its configuration.yaml (None when unreadable)."""
    try:
        config = yaml.safe_load((run_dir / "configuration.yaml").read_text(encoding="utf-8"))
        env = config.get("env_settings", {}).get("env_path")
    except (OSError, yaml.YAMLError, AttributeError):
        return None
    return str(env) if env else DEFAULT_ENV


def run_behaviors(checkpoints: CheckpointManager) -> dict[str, dict[str, Any] | None]:
    """Each behavior the run has a checkpoint of, with the fingerprint of its newest one (None: unreadable)."""
    names = [n for n in checkpoints.status.data if n != "metadata"]
    if checkpoints.run_dir.is_dir():
        names += sorted(p.name for p in checkpoints.run_dir.iterdir() if p.is_dir() and p.name not in names)
    found: dict[str, dict[str, Any] | None] = {}
    for name in names:
        try:
            path = checkpoints.resume_path(name)
            if path is None:
                continue
            state, _ = checkpoints.load(path)
            found[name] = dict(state.meta.get("fingerprint", {}))
        except CheckpointError:
            found[name] = None
    return found


def how_to_go_on(run_dir: Path, flag: str, env_name: str) -> str:
    trained = trained_environment(run_dir)
    if trained is not None and trained != env_name:
        return (
            f"The run was trained on '{trained}' (its configuration.yaml): use --env {trained} with {flag} to "
            f"{'continue it' if flag == '--resume' else 'run its policies'}, or start a new run id to train on "
            f"'{env_name}'."
        )
    return "Use the environment and settings the run was trained with (its configuration.yaml), or start a new run id."


def missing_checkpoint_message(
    *, checkpoints: CheckpointManager, behavior: str, specs: Mapping[str, BehaviorSpec], flag: str, env_name: str
) -> str:
    """The message when `behavior` of this environment has no checkpoint in the run."""
    run_dir = checkpoints.run_dir
    stored = run_behaviors(checkpoints)
    if not stored:
        return (
            f"{flag}: the run at {run_dir} has no checkpoint yet (it stopped before its first one), so there is "
            f"nothing to {'resume' if flag == '--resume' else 'run'}. Train under a new run id "
            "(or delete the folder to reuse this one)."
        )
    lines = [
        f"{flag}: the checkpoints of the run at {run_dir} do not fit environment '{env_name}': behavior "
        f"'{behavior}' has no checkpoint there.",
        f"  behaviors of the run: {', '.join(stored)}; of this environment: {', '.join(specs)}",
    ]
    for name, fingerprint in stored.items():
        lines.append(f"  {name} (the run): {describe(fingerprint)}")
    for name, spec in specs.items():
        if brain_name(name) not in stored:  # teams `B?team=N` of a stored brain fit it
            lines.append(f"  {name} (this environment): {describe(spec_fingerprint(spec))}")
    lines.append(how_to_go_on(run_dir, flag, env_name))
    return "\n".join(lines)
