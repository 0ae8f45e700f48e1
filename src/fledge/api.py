"""`run(options)`: one training run, importable (used by the CLI, the tests and notebooks).

The run owns everything it uses: the environment, one trainer and one agent processor per behavior,
the stats reporter and its writers. Nothing is global. Data flows one way:
environment -> processor -> trainer -> policy -> environment.
"""

from __future__ import annotations

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


def make_trainer(options: RunOptions, behavior: str, env: BaseEnv, stats: Any, seed: int, timers: Timers) -> Trainer:
    from fledge.trainers.base import plain
    from fledge.trainers.ppo.trainer import PPOTrainer

    settings = options.behavior_settings(behavior)
    trainer_type = str(plain(settings.trainer_type))
    if trainer_type != "ppo":
        raise ConfigError(
            f"behaviors.{behavior}.trainer_type: '{trainer_type}' is not available in this version of fledge "
            "(available: ppo)."
        )
    return PPOTrainer(
        behavior_name=behavior,
        spec=env.behavior_specs[behavior],
        settings=settings,
        stats=stats,
        seed=seed,
        timers=timers,
    )


def configure_torch(options: RunOptions) -> None:
    import torch

    device = options.torch_settings.device
    if device not in (None, "cpu"):
        raise ConfigError(
            f"torch_settings.device: '{device}' is not supported yet; fledge trains its small networks on the CPU. "
            "Use 'cpu' or leave it unset."
        )
    # Small networks run fastest single-threaded here (benchmarks/ppo_throughput.py measures 1 vs 2).
    torch.set_num_threads(1)


def run(options: RunOptions, *, env: BaseEnv | None = None) -> RunResult:
    """Train every behavior of the environment until each trainer reaches max_steps (or Ctrl-C)."""
    from fledge.config import dump_run_options

    start = time.time()
    path = check_run_folder(options)
    seed = resolve_seed(options.env_settings.seed)
    own_env = env is None
    env = env if env is not None else make_environment(options, seed)
    configure_torch(options)
    import torch

    from fledge.rollout.processor import AgentProcessor
    from fledge.stats import ConsoleWriter, CSVWriter, StatsReporter, TensorboardWriter

    if path.exists() and options.checkpoint_settings.force:
        shutil.rmtree(path)
    (path / "run_logs").mkdir(parents=True, exist_ok=True)
    resolved = options.model_copy(deep=True)
    resolved.env_settings.seed = seed
    atomic_write_text(path / "configuration.yaml", dump_run_options(resolved))
    log.info("Training with seed %d, results in %s", seed, path)

    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    stats = StatsReporter([TensorboardWriter(path), CSVWriter(path), ConsoleWriter(start_time=start)])
    timers = Timers()
    timers.metadata.update(fledge_version=__version__, pytorch_version=torch.__version__, numpy_version=np.__version__)
    trainers: dict[str, Trainer] = {}
    policies: dict[str, TimedPolicy] = {}
    processors: dict[str, AgentProcessor] = {}
    results: dict[str, BehaviorResult] = {}
    interrupted = False
    env_block, process_block, observe_block = (
        timers.block("env_step"),
        timers.block("process_steps"),
        timers.block("trainer_observe"),
    )
    try:
        env.reset()
        while True:
            if len(env.behavior_specs) != len(trainers):
                for name, spec in env.behavior_specs.items():
                    if name in trainers:
                        continue
                    trainer = make_trainer(options, name, env, stats, seed + len(trainers), timers)
                    trainers[name] = trainer
                    policies[name] = TimedPolicy(trainer, timers.block("policy_act"))
                    processors[name] = AgentProcessor(
                        spec=spec,
                        time_horizon=options.behavior_settings(name).time_horizon,
                        n_values=len(trainer.signal_names),
                    )
                    results[name] = BehaviorResult(name=name, steps=0)
                    log.info("Connected new behavior: %s (%s)", name, spec.action_spec)
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
        stats.close()
        atomic_write_text(path / "run_logs" / "timers.json", json.dumps(timers.to_dict(), indent=4))
        if own_env:
            env.close()
    return RunResult(
        run_dir=path,
        seed=seed,
        elapsed_s=time.time() - start,
        behaviors=results,
        interrupted=interrupted,
        timers=timers.to_dict(),
    )


class TimedPolicy:
    """The trainer's acting interface with its forward passes timed (the processor calls it)."""

    def __init__(self, trainer: Trainer, block: Any) -> None:
        self.trainer = trainer
        self.block = block

    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> Any:
        with self.block:
            return self.trainer.act(obs, allowed)

    def values(self, obs: np.ndarray) -> np.ndarray:
        with self.block:
            return self.trainer.values(obs)
