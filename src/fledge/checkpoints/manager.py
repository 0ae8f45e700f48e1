"""The checkpoint unit: `B-<step>.pt`, `B-<step>.onnx` and its status entry, together or not at all.

Order of writing (each file atomically: temporary name in the same folder, fsync, rename):
1. `B-<step>.onnx`, exported from the policy and checked in onnxruntime (a failed check raises and
   nothing of the unit is recorded);
2. `B-<step>.pt`, the full trainer state (refused, with nothing written, when a tensor is NaN or inf);
3. `run_logs/training_status.json`, now listing the unit with the sha256 of both files: the commit point;
4. auxiliary files (SAC's replay buffer) and `checkpoint.pt` (the newest state, for ML-Agents users);
5. rotation: units beyond `keep_checkpoints` leave the status first, then their files are deleted
   (the .pt first, so that an interrupted rotation leaves at most a lone .onnx).

A crash leaves at most temporary files, a lone `.onnx`, or a complete unit that the status does not name
yet. When a run starts or resumes, complete units on disk that the status does not name and that load
are adopted into it (so a lost or emptied training_status.json loses nothing), temporary files and lone
`.onnx` files are removed, and anything else the status does not explain (a lone `.pt`, a unit whose
`.pt` does not load) is kept and reported: a file that may hold a run's work is never deleted because
the status does not list it.

Resuming takes the newest unit (the last recorded) whose `.pt` is intact (present, not empty, matching
its recorded sha256, loadable); a unit that is not is reported, left on disk, and the next one is tried
(its intact twin `checkpoint.pt` first, then the older units, then `checkpoint.pt`).
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from fledge.checkpoints.files import file_problem
from fledge.checkpoints.state_io import encode_state, load_state
from fledge.checkpoints.status import CheckpointRecord, TrainingStatus
from fledge.errors import CheckpointError
from fledge.files import atomic_write, atomic_write_bytes, sha256_bytes, sha256_file
from fledge.trainers.base import Trainer, TrainerState

log = logging.getLogger("fledge")

LATEST = "checkpoint.pt"


def unit_name(behavior: str, step: int) -> str:
    return f"{behavior}-{step}"


def non_finite_tensor(tensors: dict[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or inf, or None."""
    for key, value in tensors.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return key
    return None


def onnx_problem(path: Path, expected_sha256: str | None) -> str | None:
    """Why a unit's .onnx cannot be trusted, or None (without a recorded digest: it must parse)."""
    problem = file_problem(path, expected_sha256)
    if problem is not None or expected_sha256 is not None:
        return problem
    import onnx

    try:
        onnx.load_model(str(path))
    except Exception as exc:
        return f"{path} is not a readable ONNX model ({type(exc).__name__})"
    return None


class CheckpointManager:
    """Writes, rotates, finds, checks and cleans checkpoint units of one run (owned by the run)."""

    def __init__(self, *, run_dir: Path, status: TrainingStatus, opset: int = 9) -> None:
        self.run_dir = Path(run_dir)
        self.status = status
        self.opset = opset
        self._loaded: dict[Path, tuple[TrainerState, dict[str, Any]]] = {}
        self._adopted: set[str] = set()

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
        name = unit_name(behavior, step)
        onnx_path, pt_path = folder / f"{name}.onnx", folder / f"{name}.pt"

        state = trainer.get_state()
        bad = non_finite_tensor(state.tensors)
        if bad is not None:
            raise CheckpointError(
                f"Checkpoint {name} was not written: '{bad}' holds NaN or infinite values, so training of "
                f"'{behavior}' has diverged. Checkpoints written before this one are intact: lower the learning_rate "
                "(or look for huge rewards or observations), then continue from the last good one with --resume."
            )
        if extra_tensors:
            state = TrainerState(tensors={**state.tensors, **extra_tensors}, meta=state.meta)
        data = encode_state(state, run_meta)
        export_onnx(trainer.policy.actor_graph(), onnx_path, opset=self.opset)
        log.info("Exported %s", onnx_path)
        onnx_sha = sha256_file(onnx_path)
        atomic_write_bytes(pt_path, data)
        pt_sha = sha256_bytes(data)

        record = CheckpointRecord(
            steps=step,
            file_path=str(onnx_path),
            reward=trainer.mean_reward_since_update,
            creation_time=time.time(),
            auxillary_file_paths=[str(pt_path)],
            sha256={onnx_path.name: onnx_sha, pt_path.name: pt_sha},
        )
        records = [r for r in self.status.checkpoints(behavior) if r.steps != step] + [record]
        removed: list[CheckpointRecord] = []
        while keep_checkpoints > 0 and len(records) > keep_checkpoints:
            removed.append(records.pop(0))
        self.status.set_checkpoints(behavior, records)
        for key, value in state.meta.get("status_entries", {}).items():  # e.g. the self-play ELO ("elo")
            self.status.set_entry(behavior, key, value)
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
                    sha256={final_path.name: onnx_sha, pt_path.name: pt_sha},
                ),
            )
        self.status.write()  # the commit point of the unit

        trainer.save_auxiliary(folder)
        atomic_write_bytes(folder / LATEST, data)
        keep_names = {Path(r.file_path).name for r in records} | {
            Path(p).name for r in records for p in r.auxillary_file_paths
        }
        for old in removed:
            for path in [*old.auxillary_file_paths, old.file_path]:  # .pt first: a lone .onnx is an orphan
                target = folder / Path(path).name
                if target.name not in keep_names:
                    target.unlink(missing_ok=True)
        return record

    # -- adopting ---------------------------------------------------------------------------------
    def _unlisted_units(self, behavior: str) -> dict[int, tuple[Path | None, Path | None]]:
        """step -> (.pt, .onnx), either possibly None, of the units on disk that no checkpoint record lists."""
        folder = self.folder(behavior)
        if not folder.is_dir():
            return {}
        records = self.status.checkpoints(behavior)
        listed = {Path(p).name for r in records for p in [r.file_path, *r.auxillary_file_paths]}
        pattern = re.compile(rf"^{re.escape(behavior)}-(\d+)\.(pt|onnx)$")
        found: dict[int, dict[str, Path]] = {}
        for path in folder.iterdir():
            match = pattern.match(path.name)
            if match and path.is_file():
                found.setdefault(int(match.group(1)), {})[match.group(2)] = path
        return {
            step: (files.get("pt"), files.get("onnx"))
            for step, files in found.items()
            if not any(p.name in listed for p in files.values())
        }

    def adopt_units(self, behavior: str) -> list[CheckpointRecord]:
        """Add complete, loadable units on disk that the status does not name to the status (once per run)."""
        if behavior in self._adopted:
            return []
        self._adopted.add(behavior)
        adopted = []
        for step, (pt, onnx_path) in sorted(self._unlisted_units(behavior).items()):
            if pt is None or onnx_path is None:
                continue
            problem = self._problem(pt, self.status.checksum(behavior, pt.name), keep=False) or onnx_problem(
                onnx_path, self.status.checksum(behavior, onnx_path.name)
            )
            if problem is not None:
                log.warning("Checkpoint unit %s is not adopted: %s.", pt.stem, problem)
                continue
            adopted.append(
                CheckpointRecord(
                    steps=step,
                    file_path=str(onnx_path),
                    reward=None,
                    creation_time=pt.stat().st_mtime,
                    auxillary_file_paths=[str(pt)],
                    sha256={onnx_path.name: sha256_file(onnx_path), pt.name: sha256_file(pt)},
                )
            )
        if adopted:
            listed = self.status.checkpoints(behavior)
            # with no records: by step; else by time of writing, which is the order records are kept in
            order = (lambda r: (r.creation_time, r.steps)) if listed else (lambda r: (r.steps, r.creation_time))
            records = sorted(listed + adopted, key=order)
            self.status.set_checkpoints(behavior, records)
            log.info(
                "Adopted %d checkpoint unit(s) of '%s' that training_status.json did not list (reward unknown): %s.",
                len(adopted),
                behavior,
                ", ".join(r.unit for r in adopted),
            )
        return adopted

    # -- finding ----------------------------------------------------------------------------------
    def _problem(self, path: Path, expected: str | None, *, keep: bool = True) -> str | None:
        """Load `path` (kept for `load` when `keep`) and say why it cannot be used, or None."""
        if expected is None:
            log.debug("No checksum recorded for %s (a status without checksums): it is checked by loading only.", path)
        try:
            loaded = load_state(path, expected)
        except CheckpointError as exc:
            return str(exc).removeprefix("Checkpoint ").rstrip(".")
        if keep:
            self._loaded[path] = loaded
        return None

    def intact_units(self, behavior: str) -> list[str]:
        """Names of the recorded units whose .pt is intact, oldest first."""
        folder = self.folder(behavior)
        names = []
        for record in self.status.checkpoints(behavior):
            pt = record.pt_path(folder)
            if pt is not None and self._problem(pt, record.sha256.get(pt.name), keep=False) is None:
                names.append(record.unit)
        return names

    def resume_path(self, behavior: str, resume_from: str | None = None) -> Path | None:
        """The state file to resume a behavior from: the named unit, else the newest intact unit, else
        checkpoint.pt. Units that are not intact are reported and skipped, never deleted."""
        folder = self.folder(behavior)
        self.adopt_units(behavior)
        if resume_from:
            path = folder / f"{resume_from}.pt"
            if not path.is_file():
                units = sorted(p.stem for p in folder.glob(f"{behavior}-*.pt"))
                raise CheckpointError(
                    f"--resume-from {resume_from}: {path} does not exist. Checkpoints of '{behavior}': "
                    f"{', '.join(units) or 'none'}."
                )
            problem = self._problem(path, self.status.checksum(behavior, path.name))
            if problem is not None:
                intact = [u for u in self.intact_units(behavior) if u != resume_from]
                raise CheckpointError(
                    f"--resume-from {resume_from}: {problem}. Intact checkpoints of '{behavior}': "
                    f"{', '.join(intact) or 'none'}; name one of them, or use --resume alone for the newest intact one."
                )
            return path
        latest = folder / LATEST
        bad: list[str] = []
        chosen: Path | None = None
        for record in reversed(self.status.checkpoints(behavior)):
            pt = record.pt_path(folder)
            if pt is None:
                continue
            expected = record.sha256.get(pt.name)
            problem = self._problem(pt, expected)
            if problem is None:
                chosen = pt
                self._report_onnx(record)
                break
            bad.append(f"{problem}")
            if expected is not None and latest.is_file() and sha256_file(latest) == expected:
                if self._problem(latest, expected) is None:
                    chosen = latest  # checkpoint.pt holds the same state, intact
                    break
        else:
            if latest.is_file():
                problem = self._problem(latest, None)
                if problem is None:
                    chosen = latest
                else:
                    bad.append(problem)
        for problem in bad:
            log.warning("Checkpoint of '%s' cannot be used: %s.", behavior, problem)
        if bad and chosen is not None:
            log.warning(
                "Resuming '%s' from %s instead; the unusable files are left on disk as they are.", behavior, chosen
            )
        if bad and chosen is None:
            raise CheckpointError(
                f"No intact checkpoint of '{behavior}' to resume from: {'; '.join(bad)}. The files are left as they "
                "are; start a new run id, or restore them from a backup."
            )
        return chosen

    def _report_onnx(self, record: CheckpointRecord) -> None:
        onnx_path = self.folder(Path(record.file_path).parent.name) / Path(record.file_path).name
        problem = file_problem(onnx_path, record.sha256.get(onnx_path.name))
        if problem is not None:
            log.warning(
                "%s; the trainer state %s is intact and is used. `fledge export <run> --checkpoint %s` writes "
                "the model again.",
                problem,
                record.unit + ".pt",
                record.unit,
            )

    def load(self, path: Path) -> tuple[TrainerState, dict[str, Any]]:
        """A checkpoint's state, checked against its recorded sha256 when the status has one."""
        path = Path(path)
        cached = self._loaded.pop(path, None)
        if cached is not None:
            return cached
        from fledge.checkpoints.status import recorded_sha256

        return load_state(path, recorded_sha256(path))

    # -- cleaning ---------------------------------------------------------------------------------
    def _final_names(self, behavior: str) -> set[str]:
        """File names that the behavior's final_checkpoint record names."""
        final = self.status.data.get(behavior, {}).get("final_checkpoint") or {}
        return {Path(p).name for p in [final.get("file_path", ""), *final.get("auxillary_file_paths", [])] if p}

    def clean_orphans(self, behavior: str) -> list[Path]:
        """Adopt complete unlisted units, then delete temporary files and lone .onnx files (left by a crash).

        A lone .pt, or an unlisted unit that does not load, is kept and reported, never deleted."""
        self.adopt_units(behavior)
        folder = self.folder(behavior)
        if not folder.is_dir():
            return []
        final = self._final_names(behavior)
        removed = []
        for pt, onnx_path in self._unlisted_units(behavior).values():
            if pt is None and onnx_path is not None:
                onnx_path.unlink(missing_ok=True)
                removed.append(onnx_path)
            elif pt is not None and pt.name not in final:
                what = "without its .onnx" if onnx_path is None else "whose files do not load"
                log.warning(
                    "Kept %s: a checkpoint %s that training_status.json does not list; it is not used by --resume. "
                    "Delete it yourself if it is not needed.",
                    pt,
                    what,
                )
        for folder_ in (folder, self.run_dir, self.run_dir / "run_logs"):
            for path in folder_.glob(".*.tmp"):
                path.unlink(missing_ok=True)
                removed.append(path)
        if removed:
            log.info("Removed %d files of an interrupted checkpoint of '%s'.", len(removed), behavior)
        return removed


def copy_file_atomic(src: Path, dst: Path) -> None:
    with src.open("rb") as source:
        atomic_write(dst, lambda f: shutil.copyfileobj(source, f))
