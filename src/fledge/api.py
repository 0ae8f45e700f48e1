"""`run(options)`: one training run, importable (used by the CLI, the tests and notebooks).

`run` wires the parts of a run: its lifecycle (run/lifecycle.py: folder, seed, status, checkpoints), the
environment, one trainer per behavior, the session that loops (session.py), and the result. The run owns
everything it uses; nothing is global. Everything that can be wrong (run folder, environment name,
behaviors missing from the config, unsupported settings, checkpoints that do not fit) is checked before
the first file is written.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from threadpoolctl import threadpool_limits

from fledge.envs import registry
from fledge.envs.api import BaseEnv
from fledge.envs.behavior_id import spec_for_brain
from fledge.envs.layout import describe_layout
from fledge.errors import ConfigError
from fledge.preflight import check_environment
from fledge.run.folder import check_run_folder as check_run_folder  # (callers read it here)
from fledge.run.lifecycle import RunLifecycle
from fledge.run.seeds import resolve_seed as resolve_seed  # (callers read it here)
from fledge.run.seeds import stored_seed as stored_seed  # (callers read it here)
from fledge.trainers.registry import TRAINER_CLASSES as TRAINER_CLASSES  # (callers read it here)
from fledge.trainers.registry import trainer_class

if TYPE_CHECKING:
    import torch

    from fledge.config import RunOptions
    from fledge.curriculum.controller import CurriculumController
    from fledge.curriculum.samplers import Draw
    from fledge.session import RunResult
    from fledge.stats.progress import DisplayMode
    from fledge.stats.timers import Timers
    from fledge.trainers.base import Trainer

log = logging.getLogger("fledge")


def env_kwargs(options: RunOptions) -> dict[str, Any]:
    """`env_settings.env_args` / `--env-args k=v ...` as keyword arguments for the environment (values as YAML)."""
    return parse_env_args(options.env_settings.env_args or [])


def parse_env_args(items: Sequence[Any]) -> dict[str, Any]:
    """`k=v` items (env_settings.env_args) as keyword arguments, each value read as YAML."""
    kwargs: dict[str, Any] = {}
    for item in items:
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


def make_environment(
    options: RunOptions, seed: int, *, player_logs: bool = True, draws: Mapping[str, Draw] | None = None
) -> BaseEnv:
    """The run's environment: one instance, or `num_envs` copies stepped in lockstep (in workers or in-process).

    Built-in environments get `num_areas` areas per copy; other families have no areas (a warning says so).
    Unity players write their logs into the run's run_logs folder; with `player_logs=False` (fledge check,
    which writes nothing) they get no log file. `draws`: the environment parameters' current values
    (curriculum.controller), given to the environment before its first reset; a built-in environment
    that does not read one of them is a ConfigError before anything starts.
    """
    env = _make_environment(options, seed, player_logs=player_logs, draws=draws)
    if draws and not isinstance(env, _pool_type()):
        try:
            env.set_environment_parameters(draws)
        except Exception:
            env.close()
            raise
    return env


def _pool_type() -> type:
    from fledge.rollout.workers import EnvPool

    return EnvPool


def _make_environment(
    options: RunOptions, seed: int, *, player_logs: bool, draws: Mapping[str, Draw] | None
) -> BaseEnv:
    es = options.env_settings
    env_name = str(es.env_path or registry.DEFAULT_ENV)
    if draws and not registry.is_unity(env_name) and ":" not in env_name:
        registry.check_parameters(env_name, list(draws))  # before any copy or worker starts
    if registry.is_unity(env_name):
        return _make_unity(options, env_name, seed, player_logs=player_logs, draws=draws)
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
    from fledge.config.effects import uses_copy_pool, uses_ray_workers

    if es.num_envs <= 1 and not uses_ray_workers(es):
        return registry.make(env_name, seed=seed, **kwargs)

    if ":" not in env_name:
        registry.describe(env_name)  # an unknown name fails here, before any worker starts
    if not uses_copy_pool(es):
        return registry.make(env_name, seed=seed, num_agents=es.num_envs, **kwargs)  # one Gymnasium vector env
    return _copy_pool(options, env_name, seed, kwargs, worker_ids=False, draws=draws)


def _copy_pool(
    options: RunOptions,
    env_name: str,
    seed: int,
    kwargs: dict[str, Any],
    *,
    worker_ids: bool,
    draws: Mapping[str, Draw] | None = None,
) -> BaseEnv:
    """`num_envs` copies in an EnvPool that restarts failed copies within the run's restart budget: in this
    process, in worker processes, or in Ray actors (`workers: ray`, rollout/ray_workers.py)."""
    from fledge.config.effects import uses_ray_workers, uses_worker_processes
    from fledge.rollout.workers import EnvPool, RestartBudget

    es = options.env_settings
    budget = RestartBudget(
        max_lifetime_restarts=es.max_lifetime_restarts,
        rate_limit_n=es.restarts_rate_limit_n,
        rate_limit_period_s=float(es.restarts_rate_limit_period_s),
    )
    if uses_ray_workers(es):
        from fledge.rollout.ray_workers import make_ray_pool

        return make_ray_pool(
            env_name=env_name,
            copies=es.num_envs,
            seed=seed,
            env_kwargs=kwargs,
            address=es.ray_address,
            num_cpus=float(es.ray_num_cpus),
            envs_per_worker=int(es.ray_envs_per_worker),
            timeout=float(es.timeout_wait),
            budget=budget,
            worker_ids=worker_ids,
            draws=draws,
        )
    return EnvPool(
        env_name=env_name,
        copies=es.num_envs,
        seed=seed,
        processes=uses_worker_processes(es),
        env_kwargs=kwargs,
        timeout=float(es.timeout_wait),
        budget=budget,
        worker_ids=worker_ids,
        draws=draws,
    )


def unity_kwargs(options: RunOptions, *, player_logs: bool = True) -> dict[str, Any]:
    """Keyword arguments of `registry.make` for a Unity player (JSON-able: worker processes get them too).

    `--env-args` tokens go to the player's command line as given; players write their logs to
    `<results>/<run-id>/run_logs/Player-<worker>.log`.
    """
    es, cs = options.env_settings, options.checkpoint_settings
    return {
        "num_areas": int(es.num_areas),
        "base_port": int(es.base_port),
        "timeout_wait": float(es.timeout_wait),
        "additional_args": [str(a) for a in es.env_args or []],
        "log_folder": str(Path(cs.results_dir) / cs.run_id / "run_logs") if player_logs else None,
        "engine_settings": options.engine_settings.model_dump(mode="json"),
    }


def _make_unity(
    options: RunOptions, env_name: str, seed: int, *, player_logs: bool, draws: Mapping[str, Draw] | None
) -> BaseEnv:
    """A Unity player (or the Editor): one, or `num_envs` of them, worker i on port base_port + i."""
    from fledge.envs.unity.launcher import EDITOR_NAME

    es = options.env_settings
    kwargs = unity_kwargs(options, player_logs=player_logs)
    from fledge.config.effects import uses_ray_workers

    if es.num_envs <= 1 and not uses_ray_workers(es):
        return registry.make(env_name, seed=seed, **kwargs)
    if env_name == EDITOR_NAME:
        raise ConfigError(
            f"env_settings.num_envs: {es.num_envs} with the Unity Editor; the Editor is one environment. Build a "
            "player for more copies, or use --num-envs 1."
        )
    return _copy_pool(options, env_name, seed, kwargs, worker_ids=True, draws=draws)


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
    from fledge.config.effects import effect_warnings, uses_ray_workers, uses_worker_processes

    es = options.env_settings
    lines = effect_warnings(
        options,
        env_name=es.environment_name if own_env else None,
        worker_processes=own_env and (uses_worker_processes(es) or uses_ray_workers(es)),
        behaviors=list(env.behavior_specs) if env is not None else None,
    )
    for line in lines:
        log.warning("%s", line)
    return lines


def make_curriculum(options: RunOptions, life: RunLifecycle) -> CurriculumController | None:
    """The run's curriculum (None without environment_parameters); a resumed run takes its lesson numbers
    from its training status (without --resume every parameter starts at its first lesson)."""
    if not options.environment_parameters:
        return None
    from fledge.curriculum.controller import CurriculumController

    curriculum = CurriculumController(options.environment_parameters, run_seed=life.seed)
    cp = options.checkpoint_settings
    if cp.resume or cp.inference:
        curriculum.restore(life.status.data, where=str(life.status.path))
    return curriculum


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
    life = RunLifecycle.open(options)  # checks the folder and the configuration, resolves the seed
    device = configure_torch(options, torch_threads)  # an unusable device fails before anything starts
    curriculum = make_curriculum(options, life)
    draws = curriculum.draws() if curriculum is not None else None
    own_env = env is None
    env = env if env is not None else make_environment(options, life.seed, draws=draws)
    try:
        if draws and not own_env:
            env.set_environment_parameters(draws)
        env.reset()
        es = options.env_settings
        label = es.environment_name if own_env or es.env_path else type(env).__name__
        log.info("%s", describe_layout(env, label))
        brains = check_environment(options, env.behavior_specs)
        report_effects(options, env, own_env=own_env)
        if curriculum is not None:
            curriculum.check_behaviors(brains)
            curriculum.log_lessons()
        from fledge.session import TrainingSession

        session = TrainingSession(
            options=options,
            env=env,
            lifecycle=life,
            start=start,
            make_trainer=functools.partial(make_trainer, device=device),
            display=display,
            curriculum=curriculum,
        )
        session.add_new_behaviors()
        life.restore(session.trainers, env)  # --resume, --inference, --initialize-from, init_path
        life.prepare_folder()  # the first write of the run (none with --inference)
        # numpy's BLAS would spread each small batched forward over every core; like torch, it gets
        # `torch_threads` (one by default): 192 agents of 3DBall act 3x faster on one thread than on two.
        with threadpool_limits(limits=torch_threads, user_api="blas"):
            return session.train()
    finally:
        if own_env:
            env.close()


def __getattr__(name: str) -> Any:
    """RunResult and BehaviorResult live with the loop; imported lazily so that `fledge.api` stays light."""
    if name in ("RunResult", "BehaviorResult"):
        from fledge import session

        return getattr(session, name)
    raise AttributeError(name)
