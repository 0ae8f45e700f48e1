"""`run(options)`: one training run, importable (used by the CLI, the tests and notebooks).

The run owns everything it uses: the environment, one trainer and one agent processor per behavior,
the stats reporter and its writers. Nothing is global. Data flows one way:
environment -> processor -> trainer -> policy -> environment.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fledge import __version__
from fledge.checkpoints.files import atomic_write_text
from fledge.envs import registry
from fledge.envs.api import BaseEnv, validate_steps
from fledge.errors import ConfigError, RunFolderError
from fledge.stats.timers import Timers

if TYPE_CHECKING:
    from fledge.config import RunOptions
    from fledge.rollout.processor import AgentProcessor
    from fledge.trainers.base import Trainer

log = logging.getLogger("fledge")

EXISTS_MESSAGE = (
    "Previous data from this run ID was found at {path}. Either specify a new run ID, use --resume to resume "
    "this run, or use --force to overwrite existing data."
)
MISSING_MESSAGE = (
    "Previous data from this run ID was not found at {path}. Train a new run by removing the --resume flag."
)


@dataclass
class BehaviorResult:
    name: str
    steps: int
    episode_returns: list[float] = field(default_factory=list)  # every finished episode, in order

    def mean_return(self, last: int = 100) -> float | None:
        tail = self.episode_returns[-last:]
        return float(np.mean(tail)) if tail else None


@dataclass
class RunResult:
    run_dir: Path
    seed: int
    elapsed_s: float
    behaviors: dict[str, BehaviorResult]
    interrupted: bool = False
    timers: dict[str, Any] = field(default_factory=dict)


def resolve_seed(seed: int) -> int:
    """-1 means: draw a seed in [0, 10000) at start, as ML-Agents does."""
    return random.SystemRandom().randrange(10000) if seed == -1 else int(seed)


def run_folder(options: RunOptions) -> Path:
    cp = options.checkpoint_settings
    return Path(cp.results_dir) / cp.run_id


def check_run_folder(options: RunOptions) -> Path:
    """Refuse to overwrite or resume a run by accident, before anything is written."""
    path = run_folder(options)
    cp = options.checkpoint_settings
    if cp.resume:
        if not path.is_dir():
            raise RunFolderError(MISSING_MESSAGE.format(path=path))
        raise RunFolderError("--resume is not available in this version of fledge yet.")
    if path.exists() and not cp.force:
        raise RunFolderError(EXISTS_MESSAGE.format(path=path))
    return path


def make_environment(options: RunOptions, seed: int) -> BaseEnv:
    env_name = options.env_settings.env_path or registry.DEFAULT_ENV
    return registry.make(str(env_name), seed=seed)


TRAINER_CLASSES = {
    "ppo": ("fledge.trainers.ppo.trainer", "PPOTrainer"),
    "sac": ("fledge.trainers.sac.trainer", "SACTrainer"),
}


def make_trainer(options: RunOptions, behavior: str, env: BaseEnv, stats: Any, seed: int, timers: Timers) -> Trainer:
    """The trainer of one behavior, chosen by its trainer_type."""
    import importlib

    from fledge.trainers.base import plain

    settings = options.behavior_settings(behavior)
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
    cls = getattr(module, entry[1])
    trainer: Trainer = cls(
        behavior_name=behavior,
        spec=env.behavior_specs[behavior],
        settings=settings,
        stats=stats,
        seed=seed,
        timers=timers,
    )
    return trainer


def configure_torch(options: RunOptions, threads: int) -> None:
    import torch

    device = options.torch_settings.device
    if device not in (None, "cpu"):
        raise ConfigError(
            f"torch_settings.device: '{device}' is not supported yet; fledge trains its small networks on the CPU. "
            "Use 'cpu' or leave it unset."
        )
    torch.set_num_threads(threads)


def run(options: RunOptions, *, env: BaseEnv | None = None, torch_threads: int = 1) -> RunResult:
    """Train every behavior of the environment until each trainer reaches max_steps (or Ctrl-C).

    Everything that can be wrong (run folder, environment name, behaviors missing from the config,
    unsupported settings) is checked before the first file is written. Small networks train
    fastest on one torch thread (benchmarks/ppo_throughput.py measures 1 vs 2).
    """
    start = time.time()
    path = check_run_folder(options)
    seed = resolve_seed(options.env_settings.seed)
    own_env = env is None
    env = env if env is not None else make_environment(options, seed)
    try:
        env.reset()
        for name in env.behavior_specs:
            options.behavior_settings(name)
        configure_torch(options, torch_threads)
        session = _Session(options=options, env=env, path=path, seed=seed, start=start)
        session.add_new_behaviors()
        prepare_run_folder(options, path, seed)
        return session.train()
    finally:
        if own_env:
            env.close()


def prepare_run_folder(options: RunOptions, path: Path, seed: int) -> None:
    """Clear the old run with --force, create the folders and write configuration.yaml (atomically)."""
    from fledge.config import dump_run_options

    if path.exists() and options.checkpoint_settings.force:
        shutil.rmtree(path)
    (path / "run_logs").mkdir(parents=True, exist_ok=True)
    resolved = options.model_copy(deep=True)
    resolved.env_settings.seed = seed
    atomic_write_text(path / "configuration.yaml", dump_run_options(resolved))
    log.info("Training with seed %d, results in %s", seed, path)


class _Session:
    """The state of one run's training loop: trainers, processors and what they report."""

    def __init__(self, *, options: RunOptions, env: BaseEnv, path: Path, seed: int, start: float) -> None:
        import torch

        from fledge.stats import ConsoleWriter, CSVWriter, StatsReporter, TensorboardWriter

        torch.manual_seed(seed)
        self.options, self.env, self.path, self.seed, self.start = options, env, path, seed, start
        self.stats = StatsReporter([TensorboardWriter(path), CSVWriter(path), ConsoleWriter(start_time=start)])
        self.timers = Timers()
        self.timers.metadata.update(
            fledge_version=__version__, pytorch_version=torch.__version__, numpy_version=np.__version__
        )
        self.trainers: dict[str, Trainer] = {}
        self.policies: dict[str, TimedPolicy] = {}
        self.processors: dict[str, AgentProcessor] = {}
        self.results: dict[str, BehaviorResult] = {}

    def add_new_behaviors(self) -> None:
        from fledge.rollout.processor import AgentProcessor

        for name, spec in self.env.behavior_specs.items():
            if name in self.trainers:
                continue
            trainer = make_trainer(self.options, name, self.env, self.stats, self.seed + len(self.trainers), self.timers)
            self.trainers[name] = trainer
            self.policies[name] = TimedPolicy(trainer, self.timers)
            self.processors[name] = AgentProcessor(
                spec=spec,
                time_horizon=self.options.behavior_settings(name).time_horizon,
                n_values=len(trainer.signal_names),
            )
            self.results[name] = BehaviorResult(name=name, steps=0)
            log.info("Connected new behavior: %s (%s)", name, spec.action_spec)

    def train(self) -> RunResult:
        env, timers = self.env, self.timers
        trainers, policies, processors, results = self.trainers, self.policies, self.processors, self.results
        env_block, process_block, observe_block = (
            timers.block("env_step"),
            timers.block("process_steps"),
            timers.block("trainer_observe"),
        )
        interrupted = False
        try:
            while True:
                if len(env.behavior_specs) != len(trainers):
                    self.add_new_behaviors()
                if not any(t.should_train for t in trainers.values()):
                    break
                for name, trainer in trainers.items():
                    with process_block:
                        decision, terminal = env.get_steps(name)
                        validate_steps(name, env.behavior_specs[name], decision, terminal)
                        outcome = processors[name].process(decision, terminal, policies[name])
                        if outcome.actions is not None:
                            env.set_actions(name, trainer.env_actions(outcome.actions))
                        if len(outcome.episode_returns):
                            results[name].episode_returns.extend(outcome.episode_returns.tolist())
                    with observe_block:
                        trainer.observe(outcome)
                with env_block:
                    env.step()
        except KeyboardInterrupt:
            interrupted = True
            log.info("Learning was interrupted. Please wait while the run is saved.")
        finally:
            for name, trainer in trainers.items():
                trainer.finish()
                results[name].steps = trainer.step
            self.stats.close()
            atomic_write_text(self.path / "run_logs" / "timers.json", json.dumps(timers.to_dict(), indent=4))
        return RunResult(
            run_dir=self.path,
            seed=self.seed,
            elapsed_s=time.time() - self.start,
            behaviors=results,
            interrupted=interrupted,
            timers=timers.to_dict(),
        )


class TimedPolicy:
    """The trainer's acting interface with its forward passes timed (the processor calls it)."""

    def __init__(self, trainer: Trainer, timers: Timers) -> None:
        self.trainer = trainer
        self.timers = timers

    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> Any:
        with self.timers.block("policy_act"):
            return self.trainer.act(obs, allowed)

    def values(self, obs: np.ndarray) -> np.ndarray:
        with self.timers.block("policy_act"):
            return self.trainer.values(obs)
