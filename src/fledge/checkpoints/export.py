"""`fledge export RUN`: write the ONNX model of any checkpoint again, without the environment.

The policy alone (no trainer) is rebuilt from the run's configuration.yaml (network settings) and the
checkpoint's fingerprint (observation shapes, action spec, trainer type), loaded with its policy
tensors, and exported.
The .pt is checked against the sha256 the run's training_status.json records for it; when the export
replaces a unit's .onnx, the status records the new file's sha256.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from fledge.checkpoints.state_io import load_state
from fledge.checkpoints.status import TrainingStatus, recorded_sha256
from fledge.envs.api import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from fledge.errors import CheckpointError, RunFolderError
from fledge.files import sha256_file
from fledge.trainers.base import trainer_part
from fledge.trainers.policy import Policy

log = logging.getLogger("fledge")


def find_checkpoint(run_dir: Path, checkpoint: str | None) -> list[tuple[str, Path]]:
    """(behavior, .pt path) pairs: the named unit, or the newest unit of every behavior."""
    if not run_dir.is_dir():
        raise RunFolderError(f"No run folder at {run_dir}.")
    behaviors = sorted(p.name for p in run_dir.iterdir() if p.is_dir() and p.name != "run_logs")
    if checkpoint is not None:
        for behavior in behaviors:
            path = run_dir / behavior / f"{checkpoint}.pt"
            if checkpoint.startswith(f"{behavior}-") and path.is_file():
                return [(behavior, path)]
        raise CheckpointError(f"No checkpoint '{checkpoint}' in {run_dir} (behaviors: {', '.join(behaviors)}).")
    found = []
    for behavior in behaviors:
        units = sorted(
            (p for p in (run_dir / behavior).glob(f"{behavior}-*.pt")),
            key=lambda p: int(p.stem.rsplit("-", 1)[1]) if p.stem.rsplit("-", 1)[1].isdigit() else -1,
        )
        if units:
            found.append((behavior, units[-1]))
    if not found:
        raise CheckpointError(f"No checkpoints in {run_dir}.")
    return found


def observation_specs_of(fp: dict[str, Any]) -> list[ObservationSpec]:
    """The observation specs a fingerprint records: shapes, and (since the encoders) dimension properties
    and observation types; older fingerprints, of vector observations only, have shapes alone."""
    shapes = [tuple(int(d) for d in shape) for shape in fp["observation_shapes"]]
    kinds = fp.get("observation_kinds")
    if not isinstance(kinds, list) or len(kinds) != len(shapes):
        return [ObservationSpec.vector(shape[0]) if len(shape) == 1 else ObservationSpec(shape, ()) for shape in shapes]
    return [
        ObservationSpec(
            shape, tuple(DimensionProperty(int(p)) for p in props), ObservationType(int(kind)), f"observation_{i}"
        )
        for i, (shape, (props, kind)) in enumerate(zip(shapes, kinds))
    ]


def rebuild_policy(run_dir: Path, behavior: str, path: Path, *, seed: int = 0) -> Policy:
    """The policy of the checkpoint's trainer type and shapes (no trainer), with the checkpoint's policy
    tensors loaded; it samples with a generator seeded by `seed`."""
    from fledge.config import build_run_options
    from fledge.trainers.registry import policy_class_of

    state, _ = load_state(path, recorded_sha256(path))
    fp = state.meta.get("fingerprint")
    if not isinstance(fp, dict):
        raise CheckpointError(f"{path} has no fingerprint (observation and action shapes); cannot rebuild the policy.")
    try:
        config = yaml.safe_load((run_dir / "configuration.yaml").read_text(encoding="utf-8"))
    except OSError as exc:
        raise RunFolderError(f"{run_dir}/configuration.yaml is missing: {exc}") from None
    options = build_run_options(config, source=str(run_dir / "configuration.yaml"))
    settings = options.behavior_settings(behavior)
    spec = BehaviorSpec(
        observation_specs_of(fp),
        ActionSpec(int(fp["action_spec"][0]), tuple(int(b) for b in fp["action_spec"][1])),
    )
    policy: Policy = policy_class_of(str(fp["trainer_type"]), where=str(path)).from_settings(
        behavior_name=behavior, spec=spec, settings=settings, seed=seed
    )
    policy.load_policy_state(trainer_part(state).tensors)
    return policy


def export_checkpoints(
    run_dir: Path, *, checkpoint: str | None = None, opset: int = 9, output: Path | None = None
) -> list[Path]:
    from fledge.checkpoints.onnx import export_onnx

    written = []
    pairs = find_checkpoint(run_dir, checkpoint)
    if output is not None and len(pairs) > 1:
        raise RunFolderError("--output names one file; this run has several behaviors: add --checkpoint B-<step>.")
    for behavior, path in pairs:
        policy = rebuild_policy(run_dir, behavior, path)
        target = output if output is not None else path.with_suffix(".onnx")
        export_onnx(policy.actor_graph(), target, opset=opset)
        log.info("Exported %s from %s (opset %d).", target, path, opset)
        written.append(target)
        record_new_checksum(run_dir, behavior, target)
    return written


def record_new_checksum(run_dir: Path, behavior: str, target: Path) -> None:
    """Keep the status's sha256 of a unit's .onnx true after the file was written again."""
    if target.parent.resolve() != (run_dir / behavior).resolve():
        return
    status = TrainingStatus.read_quietly(run_dir / "run_logs" / "training_status.json")
    if status is not None and status.set_checksum(behavior, target.name, sha256_file(target)):
        status.write()
