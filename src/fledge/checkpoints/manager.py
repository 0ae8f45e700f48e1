"""The checkpoint unit: `B-<step>.pt`, `B-<step>.onnx` and its status entry, together or not at all.

Order of writing (each file atomically: temporary name in the same folder, fsync, rename):
1. `B-<step>.onnx`, exported from the policy and checked in onnxruntime (a failed check raises and
   nothing of the unit is recorded);
2. `B-<step>.pt`, the full trainer state;
3. `run_logs/training_status.json`, now listing the unit: this is the commit point;
4. auxiliary files (SAC's replay buffer) and `checkpoint.pt` (the newest state, for ML-Agents users);
5. rotation: units beyond `keep_checkpoints` leave the status first, then their files are deleted.
A crash at any moment leaves at most files that no status entry names; `clean_orphans` removes them
when the run starts or resumes, so every entry names existing files and no stray file remains.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

from fledge.checkpoints.files import atomic_write, atomic_write_bytes
from fledge.checkpoints.state_io import encode_state, load_state
from fledge.checkpoints.status import CheckpointRecord, TrainingStatus
from fledge.errors import CheckpointError
from fledge.trainers.base import Trainer, TrainerState

log = logging.getLogger("fledge")

LATEST = "checkpoint.pt"


def unit_name(behavior: str, step: int) -> str:
    return f"{behavior}-{step}"


class CheckpointManager:
    """Writes, rotates, finds and cleans checkpoint units of one run (owned by the run)."""

    def __init__(self, *, run_dir: Path, status: TrainingStatus, opset: int = 9) -> None:
        self.run_dir = Path(run_dir)
        self.status = status
        self.opset = opset

    def folder(self, behavior: str) -> Path:
        return self.run_dir / behavior

    # -- writing ----------------------------------------------------------------------------------
    def save(
        self,
        trainer: Trainer,
        *,
        keep_checkpoints: int,
        run_meta: dict[str, Any],
        extra_tensors: dict[str, Any] | None = None,
        final: bool = False,
    ) -> CheckpointRecord:
        from fledge.checkpoints.onnx import export_onnx

        behavior, step = trainer.name, int(trainer.step)
        folder = self.folder(behavior)
        folder.mkdir(parents=True, exist_ok=True)
        name = unit_name(behavior, step)
        onnx_path, pt_path = folder / f"{name}.onnx", folder / f"{name}.pt"

        state = trainer.get_state()
        if extra_tensors:
            state = TrainerState(tensors={**state.tensors, **extra_tensors}, meta=state.meta)
        data = encode_state(state, run_meta)
        export_onnx(trainer.actor_graph(), onnx_path, opset=self.opset)
        log.info("Exported %s", onnx_path)
        atomic_write_bytes(pt_path, data)

        record = CheckpointRecord(
            steps=step,
            file_path=str(onnx_path),
            reward=trainer.mean_reward_since_update,
            creation_time=time.time(),
            auxillary_file_paths=[str(pt_path)],
        )
        records = [r for r in self.status.checkpoints(behavior) if r.steps != step] + [record]
        removed: list[CheckpointRecord] = []
        while keep_checkpoints > 0 and len(records) > keep_checkpoints:
            removed.append(records.pop(0))
        self.status.set_checkpoints(behavior, records)
        if final:
            final_path = self.run_dir / f"{behavior}.onnx"
            copy_file_atomic(onnx_path, final_path)
            log.info("Copied %s to %s.", onnx_path, final_path)
            self.status.set_final(
                behavior,
                CheckpointRecord(
                    steps=step,
                    file_path=str(final_path),
                    reward=record.reward,
                    creation_time=record.creation_time,
                    auxillary_file_paths=[str(pt_path)],
                ),
            )
        self.status.write()  # the commit point of the unit

        trainer.save_auxiliary(folder)
        atomic_write_bytes(folder / LATEST, data)
        keep_names = {Path(r.file_path).name for r in records} | {Path(p).name for r in records for p in r.auxillary_file_paths}
        for old in removed:
            for path in [old.file_path, *old.auxillary_file_paths]:
                target = folder / Path(path).name
                if target.name not in keep_names:
                    target.unlink(missing_ok=True)
        return record

    # -- finding ----------------------------------------------------------------------------------
    def resume_path(self, behavior: str, resume_from: str | None = None) -> Path | None:
        """The state file to resume a behavior from: a named unit, the newest unit, or checkpoint.pt."""
        folder = self.folder(behavior)
        if resume_from:
            path = folder / f"{resume_from}.pt"
            if not path.is_file():
                units = sorted(p.stem for p in folder.glob(f"{behavior}-*.pt"))
                raise CheckpointError(
                    f"--resume-from {resume_from}: {path} does not exist. Checkpoints of '{behavior}': "
                    f"{', '.join(units) or 'none'}."
                )
            return path
        records = self.status.checkpoints(behavior)
        for record in sorted(records, key=lambda r: r.steps, reverse=True):
            for aux in record.auxillary_file_paths:
                candidate = folder / Path(aux).name
                if candidate.suffix == ".pt" and candidate.is_file():
                    return candidate
        latest = folder / LATEST
        return latest if latest.is_file() else None

    def load(self, path: Path) -> tuple[TrainerState, dict[str, Any]]:
        return load_state(path)

    # -- cleaning ---------------------------------------------------------------------------------
    def clean_orphans(self, behavior: str) -> list[Path]:
        """Delete unit files and temporary files that no status entry names (left by a crash)."""
        folder = self.folder(behavior)
        if not folder.is_dir():
            return []
        referenced = set()
        for record in self.status.checkpoints(behavior):
            referenced.add(Path(record.file_path).name)
            referenced.update(Path(p).name for p in record.auxillary_file_paths)
        final = self.status.data.get(behavior, {}).get("final_checkpoint")
        if final:
            referenced.update(Path(p).name for p in final.get("auxillary_file_paths", []))
        pattern = re.compile(rf"^{re.escape(behavior)}-\d+\.(pt|onnx)$")
        removed = []
        for path in folder.iterdir():
            orphan = pattern.match(path.name) and path.name not in referenced
            temporary = path.name.startswith(".") and path.name.endswith(".tmp")
            if orphan or temporary:
                path.unlink(missing_ok=True)
                removed.append(path)
        for folder_ in (self.run_dir, self.run_dir / "run_logs"):
            for path in folder_.glob(".*.tmp"):
                path.unlink(missing_ok=True)
                removed.append(path)
        if removed:
            log.info("Removed %d files of an interrupted checkpoint of '%s'.", len(removed), behavior)
        return removed


def copy_file_atomic(src: Path, dst: Path) -> None:
    with src.open("rb") as source:
        atomic_write(dst, lambda f: shutil.copyfileobj(source, f))
