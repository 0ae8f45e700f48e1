"""`run(options)`: one training run, importable (used by the CLI, the tests and notebooks).

The run owns everything it uses: the environment, one trainer and one agent processor per behavior,
the stats reporter and its writers, the training status and the checkpoints. Nothing is global.
Everything that can be wrong (run folder, environment name, behaviors missing from the config,
unsupported settings, checkpoints that do not fit) is checked before the first file is written.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import logging
import random
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from fledge.checkpoints.files import atomic_write_text
from fledge.envs import registry
from fledge.envs.api import BaseEnv
from fledge.errors import ConfigError, RunFolderError

if TYPE_CHECKING:
    import torch

    from fledge.config import RunOptions
    from fledge.session import RunResult
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

TRAINER_CLASSES = {
    "ppo": ("fledge.trainers.ppo.trainer", "PPOTrainer"),
    "sac": ("fledge.trainers.sac.trainer", "SACTrainer"),
}


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
    if cp.resume or cp.inference:
        if not path.is_dir():
            raise RunFolderError(MISSING_MESSAGE.format(path=path))
    elif path.exists() and not cp.force:
        raise RunFolderError(EXISTS_MESSAGE.format(path=path))
    if cp.initialize_from is not None:
        source = Path(cp.results_dir) / cp.initialize_from
        if not source.is_dir():
            raise RunFolderError(f"Could not initialize from {source}: no such run folder.")
    return path


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
    """The run's environment: one instance, or `num_envs` copies stepped in lockstep (in workers or in-process)."""
    es = options.env_settings
    env_name = str(es.env_path or registry.DEFAULT_ENV)
    kwargs = env_kwargs(options)
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
    """The trainer of one behavior, chosen by its trainer_type, on `device` (default: torch_settings.device)."""
    from fledge.networks.device import resolve_device
    from fledge.trainers.base import plain

    settings = options.behavior_settings(behavior)
    for key in ("self_play", "behavioral_cloning"):
        if getattr(settings, key, None) is not None:
            raise ConfigError(
                f"behaviors.{behavior}.{key}: not available in this version of fledge; remove it from the config."
            )
    trainer_type = str(plain(settings.trainer_type))
    entry = TRAINER_CLASSES.get(trainer_type)
    module = None
    if entry is not None:
        try:
            module = importlib.import_module(entry[0])
        except ModuleNotFoundError as exc:
            if exc.name != entry[0]:
                raise
    if entry is None or module is None:
        available = ", ".join(k for k, (m, _) in TRAINER_CLASSES.items() if importlib.util.find_spec(m) is not None)
        raise ConfigError(
            f"behaviors.{behavior}.trainer_type: '{trainer_type}' is not available in this version of fledge "
            f"(available: {available})."
        )
    trainer: Trainer = getattr(module, entry[1])(
        behavior_name=behavior,
        spec=env.behavior_specs[behavior],
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


def report_effects(options: RunOptions, env: BaseEnv, *, own_env: bool) -> list[str]:
    """Log (once, at start-up) every setting that is accepted but has no effect in this run."""
    from fledge.config.effects import effect_warnings, uses_worker_processes

    lines = effect_warnings(
        options,
        env_name=options.env_settings.environment_name if own_env else None,
        worker_processes=own_env and uses_worker_processes(options.env_settings),
        behaviors=list(env.behavior_specs),
    )
    for line in lines:
        log.warning("%s", line)
    return lines


def run(
    options: RunOptions, *, env: BaseEnv | None = None, torch_threads: int = 1, display: str = "auto"
) -> RunResult:
    """Train every behavior of the environment until each trainer reaches max_steps (or Ctrl-C/SIGTERM).

    With `checkpoint_settings.resume` the run continues from its checkpoints; with `inference` it runs
    the trained policies for max_steps steps without training or writing anything. Small networks
    train fastest on one torch thread (benchmarks/ppo_throughput.py measures 1 vs 2). `display`: "auto"
    (live progress on a terminal, a plain line every 30 s otherwise), "live", "plain" or "none".
    """
    start = time.time()
    path = check_run_folder(options)
    seed = resolve_seed(stored_seed(path) if resuming_without_seed(options) else options.env_settings.seed)
    device = configure_torch(options, torch_threads)  # an unusable device fails before anything starts
    own_env = env is None
    env = env if env is not None else make_environment(options, seed)
    try:
        if options.environment_parameters:
            raise ConfigError(
                "environment_parameters (samplers and curriculum) are not available in this version of fledge; "
                "remove the section from the config."
            )
        env.reset()
        for name in env.behavior_specs:
            options.behavior_settings(name)
        report_effects(options, env, own_env=own_env)
        from fledge.session import TrainingSession

        session = TrainingSession(
            options=options, env=env, path=path, seed=seed, start=start,
            make_trainer=functools.partial(make_trainer, device=device),
            display=display,  # type: ignore[arg-type]
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
        return session.train()
    finally:
        if own_env:
            env.close()


def resuming_without_seed(options: RunOptions) -> bool:
    cp = options.checkpoint_settings
    return bool(cp.resume or cp.inference) and options.env_settings.seed == -1


def stored_seed(path: Path) -> int:
    """The seed a run was started with (from its configuration.yaml), or -1 when unknown."""
    try:
        config = yaml.safe_load((path / "configuration.yaml").read_text(encoding="utf-8"))
        return int(config["env_settings"]["seed"])
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError):
        return -1


def prepare_run_folder(options: RunOptions, path: Path, seed: int) -> None:
    """Clear the old run with --force, report config changes on resume, write configuration.yaml atomically."""
    from fledge.config import dump_run_options

    cp = options.checkpoint_settings
    if path.exists() and cp.force and not cp.resume:
        shutil.rmtree(path)
    (path / "run_logs").mkdir(parents=True, exist_ok=True)
    resolved = options.model_copy(deep=True)
    resolved.env_settings.seed = seed
    text = dump_run_options(resolved)
    config_path = path / "configuration.yaml"
    if cp.resume and config_path.is_file():
        report_config_changes(config_path.read_text(encoding="utf-8"), text)
    atomic_write_text(config_path, text)
    log.info("Training with seed %d, results in %s", seed, path)


IGNORED_CHANGES = ("checkpoint_settings.resume", "checkpoint_settings.force", "checkpoint_settings.resume_from",
                   "env_settings.seed")


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
