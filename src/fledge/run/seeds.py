"""The seed of a run: drawn when -1, or, for a resume without --seed, the one the run was started with."""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from fledge.config import RunOptions

log = logging.getLogger("fledge")


def resolve_seed(seed: int) -> int:
    """-1 means: draw a seed in [0, 10000) at start, as ML-Agents does."""
    return random.SystemRandom().randrange(10000) if seed == -1 else int(seed)


def resuming_without_seed(options: RunOptions) -> bool:
    cp = options.checkpoint_settings
    return bool(cp.resume or cp.inference) and options.env_settings.seed == -1


def run_seed(options: RunOptions, path: Path) -> int:
    """The seed this run trains with: the stored one when resuming without --seed, else the configured one."""
    return resolve_seed(stored_seed(path) if resuming_without_seed(options) else options.env_settings.seed)


def stored_seed(path: Path) -> int:
    """The seed a run was started with, for a resume without --seed: from its configuration.yaml, else from
    its training_status.json, else from a checkpoint; -1 (a new seed is drawn) when none has it. Every
    source but configuration.yaml is named in a warning."""
    config_path = path / "configuration.yaml"
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        seed = config["env_settings"]["seed"]
        if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0:
            return seed
        why = f"it holds no usable env_settings.seed ({seed!r})"
    except FileNotFoundError:
        why = "it is missing"
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as exc:
        why = f"it is damaged ({type(exc).__name__})"
    for source, seed in seed_sources(path):
        if seed is not None:
            log.warning("%s: %s; resuming with the run's seed %d from %s.", config_path, why, seed, source)
            return seed
    log.warning(
        "%s: %s, and neither training_status.json nor a checkpoint records the seed: a new seed is drawn, so "
        "the resumed run does not repeat the original one. Pass --seed to choose it.",
        config_path,
        why,
    )
    return -1


def seed_sources(path: Path) -> Iterator[tuple[str, int | None]]:
    """(source, seed) from the run's status, then from each behavior's newest checkpoint (lazily)."""
    from fledge.checkpoints.state_io import load_state
    from fledge.checkpoints.status import TrainingStatus
    from fledge.errors import CheckpointError

    status_path = path / "run_logs" / "training_status.json"
    status = TrainingStatus.read_quietly(status_path)
    yield str(status_path), status.seed if status is not None else None
    for folder in sorted(p for p in path.iterdir() if p.is_dir() and p.name != "run_logs"):
        candidates = [folder / "checkpoint.pt"] + sorted(
            folder.glob(f"{folder.name}-*.pt"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        for candidate in candidates:
            try:
                _, run_meta = load_state(candidate)
            except CheckpointError:
                continue
            seed = run_meta.get("seed")
            yield str(candidate), seed if isinstance(seed, int) and seed >= 0 else None
            break
