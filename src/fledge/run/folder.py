"""A run's folder: checked before anything is written (overwrite, resume, initialize-from), then prepared.

Preparing clears the old run with --force, reports on resume what changed in the configuration, and
writes configuration.yaml (with the resolved seed) atomically.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fledge.errors import RunFolderError
from fledge.files import atomic_write_text, write_error

if TYPE_CHECKING:
    from fledge.config import RunOptions

log = logging.getLogger("fledge")

EXISTS_MESSAGE = (
    "Previous data from this run ID was found at {path}. Either specify a new run ID, use --resume to resume "
    "this run, or use --force to overwrite existing data."
)
MISSING_MESSAGE = (
    "Previous data from this run ID was not found at {path}. Train a new run by removing the --resume flag."
)
INFERENCE_MISSING_MESSAGE = (
    "--inference: no run was found at {path}. --inference runs the policies of a trained run (its folder with "
    "at least one checkpoint): check --run-id and --results-dir, or train the run first (without --inference)."
)


def run_folder(options: RunOptions) -> Path:
    cp = options.checkpoint_settings
    return Path(cp.results_dir) / cp.run_id


def check_run_folder(options: RunOptions) -> Path:
    """Refuse to overwrite, resume or initialize a run by accident, before anything is written."""
    path = run_folder(options)
    cp = options.checkpoint_settings
    if not cp.inference:  # --inference writes nothing
        check_writable_folder(Path(cp.results_dir), "--results-dir")
    if path.exists() and not path.is_dir():
        raise RunFolderError(
            f"The run folder {path} is a file, not a folder; choose another --run-id or --results-dir."
        )
    if cp.resume or cp.inference:
        if not path.is_dir():
            raise RunFolderError((INFERENCE_MISSING_MESSAGE if cp.inference else MISSING_MESSAGE).format(path=path))
    elif path.exists() and not cp.force:
        raise RunFolderError(EXISTS_MESSAGE.format(path=path))
    if cp.initialize_from is not None:
        source = Path(cp.results_dir) / cp.initialize_from
        if not source.is_dir():
            raise RunFolderError(f"Could not initialize from {source}: no such run folder.")
    return path


def check_writable_folder(folder: Path, flag: str) -> None:
    """Refuse a results folder that cannot hold a run (a file on its path, no permission), before any write."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise RunFolderError(
            f"{flag} {folder}: {existing} is a file, not a folder; choose a folder for the results "
            "(it is created if it does not exist)."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunFolderError(f"{flag} {folder}: the folder {existing} is not writable; choose another one.")


def prepare_run_folder(options: RunOptions, path: Path, seed: int) -> None:
    """Clear the old run with --force, report config changes on resume, write configuration.yaml atomically."""
    from fledge.config import dump_run_options

    cp = options.checkpoint_settings
    try:
        if path.exists() and cp.force and not cp.resume:
            shutil.rmtree(path)
        (path / "run_logs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc.filename or path, exc) from None
    resolved = options.model_copy(deep=True)
    resolved.env_settings.seed = seed
    text = dump_run_options(resolved)
    config_path = path / "configuration.yaml"
    if cp.resume and config_path.is_file():
        try:
            previous = config_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("%s could not be read (%s); cannot report what changed. It is written again.", config_path, exc)
        else:
            report_config_changes(previous, text)
    atomic_write_text(config_path, text)
    log.info("Training with seed %d, results in %s", seed, path)


IGNORED_CHANGES = (
    "checkpoint_settings.resume",
    "checkpoint_settings.force",
    "checkpoint_settings.resume_from",
    "env_settings.seed",
)


def report_config_changes(old_text: str, new_text: str) -> list[str]:
    """Log every setting that differs between the configuration a run was started with and now."""

    def flat(value: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                out.update(flat(v, f"{prefix}{k}."))
            return out
        return {prefix[:-1]: value}

    try:
        old, new = flat(yaml.safe_load(old_text) or {}), flat(yaml.safe_load(new_text) or {})
    except yaml.YAMLError:
        log.warning("The previous configuration.yaml could not be read; cannot report what changed.")
        return []
    changes = [
        f"{key}: {old.get(key, '(absent)')!r} -> {new.get(key, '(absent)')!r}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key) and not key.startswith(IGNORED_CHANGES)
    ]
    if changes:
        log.warning("Resuming with a changed configuration:\n  %s", "\n  ".join(changes))
    return changes
