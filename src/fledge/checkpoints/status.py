"""`run_logs/training_status.json`: ML-Agents' layout, rewritten atomically after every checkpoint.

{"<behavior>": {"checkpoints": [record, ...], "final_checkpoint": record},
 "<parameter>": {"lesson_num": n},
 "metadata": {"stats_format_version": "0.3.0", "mlagents_version": "1.1.0", "torch_version": ..., "fledge_version": ...}}
A record: steps, file_path (the .onnx), reward, creation_time, auxillary_file_paths (ML-Agents' spelling),
and fledge's addition "sha256": {file name: hex digest} of the record's .onnx and .pt, checked whenever
one of them is loaded (a record without it, from an older status, is checked by loading only).
"mlagents_version" names the ML-Agents release whose formats the file follows; fledge adds "seed", the
run's resolved seed, so that a resume finds it even when configuration.yaml is lost.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fledge import __version__
from fledge.errors import CheckpointError
from fledge.files import atomic_write_text

log = logging.getLogger("fledge")

STATS_FORMAT_VERSION = "0.3.0"
MLAGENTS_FORMAT_VERSION = "1.1.0"


@dataclass
class CheckpointRecord:
    steps: int
    file_path: str
    reward: float | None
    creation_time: float
    auxillary_file_paths: list[str] = field(default_factory=list)
    sha256: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if not self.sha256:
            del data["sha256"]
        return data

    def pt_path(self, folder: Path) -> Path | None:
        """The record's .pt file, looked up in `folder` (the behavior's folder)."""
        for aux in self.auxillary_file_paths:
            if aux.endswith(".pt"):
                return folder / Path(aux).name
        return None

    @property
    def unit(self) -> str:
        return Path(self.file_path).stem

    @staticmethod
    def from_dict(data: Any, where: str) -> CheckpointRecord:
        try:
            return CheckpointRecord(
                steps=int(data["steps"]),
                file_path=str(data["file_path"]),
                reward=None if data.get("reward") is None else float(data["reward"]),
                creation_time=float(data["creation_time"]),
                auxillary_file_paths=[str(p) for p in data.get("auxillary_file_paths", [])],
                sha256={str(k): str(v) for k, v in (data.get("sha256") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: malformed checkpoint record ({exc!r}).") from None


def recorded_sha256(path: Path) -> str | None:
    """The sha256 that the run's training_status.json records for a checkpoint file, if any.

    `path` is `<run>/<B>/<B>-<step>.pt|.onnx` or the final `<run>/<B>.onnx`."""
    path = Path(path)
    for run_dir, behavior in ((path.parent.parent, path.parent.name), (path.parent, path.stem)):
        status = TrainingStatus.read_quietly(run_dir / "run_logs" / "training_status.json")
        if status is not None and behavior in status.data:
            digest = status.checksum(behavior, path.name)
            if digest is not None:
                return digest
    log.debug("No checksum recorded for %s (a status without checksums): it is checked by loading only.", path)
    return None


def metadata() -> dict[str, str]:
    import torch

    return {
        "stats_format_version": STATS_FORMAT_VERSION,
        "mlagents_version": MLAGENTS_FORMAT_VERSION,
        "torch_version": torch.__version__,
        "fledge_version": __version__,
    }


class TrainingStatus:
    """The in-memory status of a run, owned by the run; `write()` persists it atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data: dict[str, dict[str, Any]] = {}
        self.seed: int | None = None

    @staticmethod
    def load(path: Path) -> TrainingStatus:
        status = TrainingStatus(path)
        if not path.is_file():
            log.warning("Training status file not found at %s. Not all functions will resume properly.", path)
            return status
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(
                f"Training status file {path} is unreadable: {exc}. Move it aside and resume again: the complete "
                "checkpoint units on disk are then adopted into a new one."
            ) from None
        if not isinstance(data, dict):
            raise CheckpointError(f"Training status file {path} is not a JSON object.")
        meta = data.get("metadata")
        if not isinstance(meta, dict):
            raise CheckpointError(
                f"Training status file {path} has no metadata block: it was not written by fledge or ML-Agents."
            )
        seed = meta.get("seed")
        status.seed = seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else None
        if meta.get("fledge_version") not in (None, __version__):
            log.warning("%s was written by fledge %s; this is %s.", path, meta.get("fledge_version"), __version__)
        for category, entry in data.items():
            if category == "metadata" or not isinstance(entry, dict):
                continue
            where = f"{path} [{category}]"
            for record in entry.get("checkpoints", []):
                CheckpointRecord.from_dict(record, where)
            if "final_checkpoint" in entry:
                CheckpointRecord.from_dict(entry["final_checkpoint"], where)
            status.data[category] = entry
        return status

    @staticmethod
    def read_quietly(path: Path) -> TrainingStatus | None:
        """The status at `path`, or None when it is missing or unreadable (for look-ups that can do without)."""
        if not path.is_file():
            return None
        try:
            return TrainingStatus.load(path)
        except CheckpointError as exc:
            log.debug("%s", exc)
            return None

    def records(self, behavior: str) -> list[CheckpointRecord]:
        """The behavior's checkpoint records and its final record."""
        records = self.checkpoints(behavior)
        final = self.data.get(behavior, {}).get("final_checkpoint")
        if final is not None:
            records.append(CheckpointRecord.from_dict(final, f"{self.path} [{behavior}]"))
        return records

    def checksum(self, behavior: str, name: str) -> str | None:
        """The sha256 recorded for the file `name` of a behavior's checkpoint records, if any."""
        for record in self.records(behavior):
            if name in record.sha256:
                return record.sha256[name]
        return None

    def checkpoints(self, behavior: str) -> list[CheckpointRecord]:
        entry = self.data.get(behavior, {})
        return [CheckpointRecord.from_dict(r, f"{self.path} [{behavior}]") for r in entry.get("checkpoints", [])]

    def set_checkpoints(self, behavior: str, records: list[CheckpointRecord]) -> None:
        self.data.setdefault(behavior, {})["checkpoints"] = [r.to_dict() for r in records]

    def set_final(self, behavior: str, record: CheckpointRecord) -> None:
        self.data.setdefault(behavior, {})["final_checkpoint"] = record.to_dict()

    def set_entry(self, behavior: str, key: str, value: Any) -> None:
        """A plain value of a behavior's entry (the self-play ELO: "elo", as ML-Agents writes it)."""
        self.data.setdefault(behavior, {})[key] = value

    def set_checksum(self, behavior: str, name: str, digest: str) -> bool:
        """Record a new digest for every record of `behavior` that names the file `name`; True if any did."""
        entry = self.data.get(behavior, {})
        changed = False
        for record in [*entry.get("checkpoints", []), entry.get("final_checkpoint")]:
            if isinstance(record, dict) and name in (record.get("sha256") or {}):
                record["sha256"][name] = digest
                changed = True
        return changed

    def to_dict(self) -> dict[str, Any]:
        meta: dict[str, Any] = dict(metadata())
        if self.seed is not None:
            meta["seed"] = self.seed
        return {**self.data, "metadata": meta}

    def write(self) -> None:
        atomic_write_text(self.path, json.dumps(self.to_dict(), indent=4))
