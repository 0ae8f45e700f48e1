"""`run(options)`: one training run, importable (used by the CLI, the tests and notebooks).

The run owns everything it uses: the environment, one trainer and one agent processor per behavior,
the stats reporter and its writers, the training status and the checkpoints. Nothing is global.
Everything that can be wrong (run folder, environment name, behaviors missing from the config,
unsupported settings, checkpoints that do not fit) is checked before the first file is written.
"""

from __future__ import annotations

import functools
import logging
import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from threadpoolctl import threadpool_limits

from fledge.envs import registry
from fledge.envs.api import BaseEnv
from fledge.envs.behavior_id import spec_for_brain
from fledge.envs.layout import describe_layout
from fledge.errors import ConfigError, RunFolderError
from fledge.files import atomic_write_text, write_error
from fledge.preflight import check_environment, check_run, trainer_class
from fledge.trainers.registry import TRAINER_CLASSES as TRAINER_CLASSES  # (callers read it here)

if TYPE_CHECKING:
    import torch

    from fledge.config import RunOptions
    from fledge.session import RunResult
    from fledge.stats.progress import DisplayMode
    from fledge.stats.timers import Timers
    from fledge.trainers.base import Trainer

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


def resolve_seed(seed: int) -> int:
    """-1 means: draw a seed in [0, 10000) at start, as ML-Agents does."""
    return random.SystemRandom().randrange(10000) if seed == -1 else int(seed)


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


def env_kwargs(options: RunOptions) -> dict[str, Any]:
    """`env_settings.env_args` / `--env-args k=v ...` as keyword arguments for the environment (values as YAML)."""
    kwargs: dict[str, Any] = {}
    for item in options.env_settings.env_args or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(
                f"env_settings.env_args: '{item}' is not of the form name=value (e.g. --env-args max_episode_steps=200)."
            )
        try:
            kwargs[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            kwargs[key.strip()] = value
    return kwargs


def make_environment(options: RunOptions, seed: int) -> BaseEnv:
    """The run's environment: one instance, or `num_envs` copies stepped in lockstep (in workers or in-process).

    Built-in environments get `num_areas` areas per copy; other families have no areas (a warning says so).
    """
    es = options.env_settings
    env_name = str(es.env_path or registry.DEFAULT_ENV)
    kwargs = env_kwargs(options)
    reserved = {"seed": "env_settings.seed (--seed)", "num_areas": "env_settings.num_areas (--num-areas)"}
    if ":" in env_name:  # Gymnasium and PettingZoo: fledge sets the number of copies itself
        reserved["num_agents"] = "env_settings.num_envs (--num-envs)"
    for key, instead in reserved.items():
        if key in kwargs:
            raise ConfigError(
                f"env_settings.env_args: {key} is not an argument for {env_name}: the run sets it; "
                f"set {instead} instead."
            )
    if ":" not in env_name:
        kwargs["num_areas"] = int(es.num_areas)  # other environments have no areas: config.effects warns
    if es.num_envs <= 1:
        return registry.make(env_name, seed=seed, **kwargs)
    from fledge.config.effects import uses_copy_pool, uses_worker_processes
    from fledge.rollout.workers import EnvPool, RestartBudget

    if ":" not in env_name:
        registry.describe(env_name)  # an unknown name fails here, before any worker starts
    if not uses_copy_pool(es):
        return registry.make(env_name, seed=seed, num_agents=es.num_envs, **kwargs)  # one Gymnasium vector env
    return EnvPool(
        env_name=env_name,
        copies=es.num_envs,
        seed=seed,
        processes=uses_worker_processes(es),
        env_kwargs=kwargs,
        timeout=float(es.timeout_wait),
        budget=RestartBudget(
            max_lifetime_restarts=es.max_lifetime_restarts,
            rate_limit_n=es.restarts_rate_limit_n,
            rate_limit_period_s=float(es.restarts_rate_limit_period_s),
        ),
    )


def make_trainer(
    options: RunOptions,
    behavior: str,
    env: BaseEnv,
    stats: Any,
    seed: int,
    timers: Timers,
    *,
    device: torch.device | None = None,
) -> Trainer:
    """The trainer of one behavior (a brain name: its teams `behavior?team=N` share it), chosen by its
    trainer_type (its settings passed preflight.check_run), on `device` (default: torch_settings.device)."""
    from fledge.networks.device import resolve_device

    settings = options.behavior_settings(behavior)
    trainer: Trainer = trainer_class(f"behaviors.{behavior}", settings)(
        behavior_name=behavior,
        spec=spec_for_brain(env.behavior_specs, behavior),
        settings=settings,
        stats=stats,
        seed=seed,
        timers=timers,
        device=device if device is not None else resolve_device(options.torch_settings.device),
    )
    return trainer


def configure_torch(options: RunOptions, threads: int) -> torch.device:
    """Set torch's CPU threads and resolve `torch_settings.device` (a ConfigError when it cannot be used)."""
    import torch

    from fledge.networks.device import resolve_device

    device = resolve_device(options.torch_settings.device)
    if options.torch_settings.device is None and device.type != "cpu":
        log.info(
            "torch_settings.device is not set and CUDA is available: training on %s. fledge's small networks "
            "are often faster on the CPU; --torch-device cpu keeps them there.",
            device,
        )
    torch.set_num_threads(threads)
    return device


def report_effects(options: RunOptions, env: BaseEnv | None, *, own_env: bool) -> list[str]:
    """Log (once, at start-up) every setting that is accepted but has no effect in this run; without `env`
    (fledge check with no environment), the behaviors listed in the configuration are checked."""
    from fledge.config.effects import effect_warnings, uses_worker_processes

    lines = effect_warnings(
        options,
        env_name=options.env_settings.environment_name if own_env else None,
        worker_processes=own_env and uses_worker_processes(options.env_settings),
        behaviors=list(env.behavior_specs) if env is not None else None,
    )
    for line in lines:
        log.warning("%s", line)
    return lines


def run(
    options: RunOptions, *, env: BaseEnv | None = None, torch_threads: int = 1, display: DisplayMode = "auto"
) -> RunResult:
    """Train every behavior of the environment until each trainer reaches max_steps (or Ctrl-C/SIGTERM).

    With `checkpoint_settings.resume` the run continues from its checkpoints; with `inference` it runs
    the trained policies for max_steps steps without training or writing anything. Small networks
    train fastest on one torch thread (`benchmarks/ppo_throughput.py --threads 1 2` compares). `display`: "auto"
    (live progress on a terminal, a plain line every 30 s otherwise), "live", "plain" or "none".
    """
    start = time.time()
    path = check_run_folder(options)
    check_run(options)
    seed = resolve_seed(stored_seed(path) if resuming_without_seed(options) else options.env_settings.seed)
    device = configure_torch(options, torch_threads)  # an unusable device fails before anything starts
    own_env = env is None
    env = env if env is not None else make_environment(options, seed)
    try:
        env.reset()
        es = options.env_settings
        label = es.environment_name if own_env or es.env_path else type(env).__name__
        log.info("%s", describe_layout(env, label))
        check_environment(options, env.behavior_specs)
        report_effects(options, env, own_env=own_env)
        from fledge.session import TrainingSession

        session = TrainingSession(
            options=options,
            env=env,
            path=path,
            seed=seed,
            start=start,
            make_trainer=functools.partial(make_trainer, device=device),
            display=display,
        )
        session.add_new_behaviors()
        cp = options.checkpoint_settings
        if cp.resume or cp.inference:
            session.restore()
        elif cp.initialize_from is not None or any(
            options.behavior_settings(name).init_path for name in session.trainers
        ):
            session.initialize_from(Path(cp.results_dir) / cp.initialize_from if cp.initialize_from else None)
        if not cp.inference:
            prepare_run_folder(options, path, seed)
        # numpy's BLAS would spread each small batched forward over every core; like torch, it gets
        # `torch_threads` (one by default): 192 agents of 3DBall act 3x faster on one thread than on two.
        with threadpool_limits(limits=torch_threads, user_api="blas"):
            return session.train()
    finally:
        if own_env:
            env.close()


def resuming_without_seed(options: RunOptions) -> bool:
    cp = options.checkpoint_settings
    return bool(cp.resume or cp.inference) and options.env_settings.seed == -1


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


def __getattr__(name: str) -> Any:
    """RunResult and BehaviorResult live with the loop; imported lazily so that `fledge.api` stays light."""
    if name in ("RunResult", "BehaviorResult"):
        from fledge import session

        return getattr(session, name)
    raise AttributeError(name)
