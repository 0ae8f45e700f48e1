"""The `.pt` checkpoint file: tensors plus versioned JSON metadata, readable with weights_only=True.

Layout (a torch.save'd dict of plain types only): {"format": "fledge-trainer-state", "version": 1,
"meta": <JSON text>, "run": <JSON text>, "tensors": {name: tensor}}. Loading uses
torch.load(weights_only=True), which refuses anything that would run code: a crafted file cannot
execute, it is reported as not a fledge checkpoint. When the run's training_status.json records the
file's sha256, the bytes read are checked against it before anything is decoded.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from fledge.checkpoints.files import file_problem
from fledge.errors import CheckpointError
from fledge.trainers.base import TrainerState

FORMAT = "fledge-trainer-state"
VERSION = 1


def encode_state(state: TrainerState, run_meta: dict[str, Any]) -> bytes:
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "meta": json.dumps(state.meta),
        "run": json.dumps(run_meta),
        "tensors": {k: v.detach().cpu().contiguous() for k, v in state.tensors.items()},
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def load_state(path: Path, expected_sha256: str | None = None) -> tuple[TrainerState, dict[str, Any]]:
    """Read a checkpoint; every way it can be wrong is one CheckpointError naming the file.

    `expected_sha256`: the digest recorded for the file; a file that does not match is refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"Checkpoint {path} cannot be read: {exc.strerror}.") from None
    problem = file_problem(path, expected_sha256, data)
    if problem is not None:
        raise CheckpointError(f"Checkpoint {problem}.")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"Checkpoint {path} was refused: it holds objects other than tensors and plain values ({exc}). "
            "fledge never loads code from a checkpoint; use a file written by fledge."
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CheckpointError(
            f"Checkpoint {path} is unreadable (truncated or not a fledge checkpoint): {exc}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"Checkpoint {path} is not a fledge checkpoint (no '{FORMAT}' marker).")
    if payload.get("version") != VERSION:
        raise CheckpointError(
            f"Checkpoint {path} has format version {payload.get('version')}; this fledge reads version {VERSION}."
        )
    tensors = payload.get("tensors")
    if not isinstance(tensors, dict) or not all(isinstance(v, torch.Tensor) for v in tensors.values()):
        raise CheckpointError(f"Checkpoint {path} has no valid tensor table.")
    try:
        meta = json.loads(payload["meta"])
        run_meta = json.loads(payload.get("run", "{}"))
    except (KeyError, TypeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"Checkpoint {path} has unreadable metadata: {exc}") from None
    return TrainerState(tensors=tensors, meta=meta), run_meta
