"""`run_logs/training_status.json`: ML-Agents' layout, rewritten atomically after every checkpoint.

{"<behavior>": {"checkpoints": [record, ...], "final_checkpoint": record},
 "<parameter>": {"lesson_num": n},
 "metadata": {"stats_format_version": "0.3.0", "mlagents_version": "1.1.0", "torch_version": ..., "fledge_version": ...}}
A record: steps, file_path (the .onnx), reward, creation_time, auxillary_file_paths (ML-Agents' spelling).
"mlagents_version" names the ML-Agents release whose formats the file follows.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fledge import __version__
from fledge.checkpoints.files import atomic_write_text
from fledge.errors import CheckpointError

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

    @staticmethod
    def from_dict(data: Any, where: str) -> CheckpointRecord:
        try:
            return CheckpointRecord(
                steps=int(data["steps"]),
                file_path=str(data["file_path"]),
                reward=None if data.get("reward") is None else float(data["reward"]),
                creation_time=float(data["creation_time"]),
                auxillary_file_paths=[str(p) for p in data.get("auxillary_file_paths", [])],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: malformed checkpoint record ({exc!r}).") from None


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

    @staticmethod
    def load(path: Path) -> TrainingStatus:
        status = TrainingStatus(path)
        if not path.is_file():
            log.warning("Training status file not found at %s. Not all functions will resume properly.", path)
            return status
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"Training status file {path} is unreadable: {exc}") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"Training status file {path} is not a JSON object.")
        meta = data.get("metadata")
        if not isinstance(meta, dict):
            raise CheckpointError(
                f"Training status file {path} has no metadata block: it was not written by fledge or ML-Agents."
            )
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

    def checkpoints(self, behavior: str) -> list[CheckpointRecord]:
        entry = self.data.get(behavior, {})
        return [CheckpointRecord.from_dict(r, f"{self.path} [{behavior}]") for r in entry.get("checkpoints", [])]

    def set_checkpoints(self, behavior: str, records: list[CheckpointRecord]) -> None:
        self.data.setdefault(behavior, {})["checkpoints"] = [asdict(r) for r in records]

    def set_final(self, behavior: str, record: CheckpointRecord) -> None:
        self.data.setdefault(behavior, {})["final_checkpoint"] = asdict(record)

    def set_value(self, category: str, key: str, value: Any) -> None:
        self.data.setdefault(category, {})[key] = value

    def to_dict(self) -> dict[str, Any]:
        return {**self.data, "metadata": metadata()}

    def write(self) -> None:
        atomic_write_text(self.path, json.dumps(self.to_dict(), indent=4))
