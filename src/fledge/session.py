"""The training loop of one run: environment -> processor -> trainer -> policy -> environment.

`TrainingSession` owns the trainers, processors, stats reporter, timers, training status and
checkpoint manager of a run. It restores trainers (resume, initialize-from) before anything is
written, checkpoints every `checkpoint_interval` steps, and ends with a final checkpoint on
completion, Ctrl-C or SIGTERM (signals only ask the loop to stop at the next step boundary, so the
state saved is always consistent; a second Ctrl-C stops at once). When anything raises inside the loop
(an environment, a trainer's update, a full disk), every behavior whose state is safe to keep gets a
final checkpoint and the run ends with one clear FledgeError (`TrainingError` for a trainer's failure).
"""

from __future__ import annotations

import json
import logging
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fledge import __version__
from fledge.checkpoints import run_fit
from fledge.checkpoints.manager import CheckpointManager
from fledge.checkpoints.status import TrainingStatus
from fledge.config.sections import DEFAULT_ENV
from fledge.envs.api import BaseEnv, validate_steps
from fledge.envs.behavior_id import parse_behavior_id
from fledge.errors import CheckpointError, EnvironmentFault, FledgeError, TrainingError
from fledge.files import DISK_ERRNOS, atomic_write_text, write_error
from fledge.preflight import effective_settings
from fledge.rollout.processor import AgentProcessor
from fledge.stats import HYPERPARAMETERS, Aggregation, ConsoleWriter, CSVWriter, StatsReporter, TensorboardWriter
from fledge.stats.progress import DisplayMode, ProgressDisplay
from fledge.stats.timers import Timers
from fledge.trainers.base import RUN_PREFIX, trainer_part

if TYPE_CHECKING:
    from fledge.config import RunOptions
    from fledge.trainers.base import Trainer

log = logging.getLogger("fledge")


KEPT_RETURNS = 100_000


@dataclass
class BehaviorResult:
    name: str
    steps: int  # the trainer's step count at the end; with --inference, the decisions run
    episode_returns: list[float] = field(default_factory=list)  # finished episodes in order (the newest 100,000)
    episodes: int = 0  # all finished episodes

    def add_returns(self, returns: np.ndarray) -> None:
        self.episodes += len(returns)
        self.episode_returns.extend(returns.tolist())
        if len(self.episode_returns) > 2 * KEPT_RETURNS:
            del self.episode_returns[:-KEPT_RETURNS]

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
    stop_signal: int | None = None  # the signal that stopped the run (SIGINT or SIGTERM), None otherwise


class TimedPolicy:
    """The trainer's acting interface with its forward passes timed (the processor calls it)."""

    def __init__(self, trainer: Trainer, timers: Timers) -> None:
        self.trainer = trainer
        self.timers = timers

    def act(self, obs: np.ndarray, allowed: np.ndarray | None) -> Any:
        with self.timers.block("policy_act"):
            return self.trainer.policy.act(obs, allowed)

    def values(self, obs: np.ndarray) -> np.ndarray:
        with self.timers.block("policy_act"):
            return self.trainer.policy.values(obs)


class StopRequest:
    """Set by SIGINT/SIGTERM; the loop stops at the next step boundary. A second SIGINT interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self.reason = ""
        self.signum: int | None = None

    def handle(self, signum: int, _frame: object) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signum = signum
        self.reason = signal.Signals(signum).name
        log.info(
            "%s received: finishing the step and saving the run (press Ctrl-C again to stop at once).", self.reason
        )

    @contextmanager
    def installed(self) -> Iterator[StopRequest]:
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.signal(sig, self.handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def trainer_max(options: RunOptions, name: str) -> int:
    return int(options.behavior_settings(name).max_steps)


class TrainingSession:
    def __init__(
        self,
        *,
        options: RunOptions,
        env: BaseEnv,
        path: Path,
        seed: int,
        start: float,
        make_trainer: Any,
        display: DisplayMode = "auto",
    ) -> None:
        torch.manual_seed(seed)
        random.seed(seed)
        self.options, self.env, self.path, self.seed, self.start = options, env, path, seed, start
        self.make_trainer = make_trainer
        self.inference = bool(options.checkpoint_settings.inference)
        self.stats = StatsReporter(
            [ConsoleWriter(start_time=start)]
            if self.inference
            else [TensorboardWriter(path), CSVWriter(path), ConsoleWriter(start_time=start)]
        )
        self.progress = ProgressDisplay(mode=display)
        self.timers = Timers()
        self.timers.metadata.update(
            fledge_version=__version__, pytorch_version=torch.__version__, numpy_version=np.__version__
        )
        status_path = path / "run_logs" / "training_status.json"
        resuming = bool(options.checkpoint_settings.resume or self.inference)
        self.status = TrainingStatus.load(status_path) if resuming else TrainingStatus(status_path)
        self.status.seed = seed
        self.checkpoints = CheckpointManager(
            run_dir=path, status=self.status, opset=int(options.checkpoint_settings.onnx_opset)
        )
        self.trainers: dict[str, Trainer] = {}  # one per brain name (a behavior id without '?team=N')
        self.brain_of: dict[str, str] = {}  # behavior id -> brain name
        self.policies: dict[str, TimedPolicy] = {}  # per behavior id
        self.processors: dict[str, AgentProcessor] = {}  # per behavior id
        self.results: dict[str, BehaviorResult] = {}  # per brain name
        self.next_checkpoint: dict[str, int] = {}  # per brain name
        self._group_reward_warned: set[str] = set()
        self.reporting = False  # hyperparameters of new behaviors are reported from train() on

    # -- behaviors and their trainers ---------------------------------------------------------------
    def add_new_behaviors(self) -> list[str]:
        """Connect the behavior ids seen for the first time: a trainer per new brain name, a policy and an
        agent processor per behavior id (teams of one brain act with and feed its trainer). Returns the new brains."""
        added = []
        for behavior_id, spec in self.env.behavior_specs.items():
            if behavior_id in self.processors:
                continue
            brain = parse_behavior_id(behavior_id).brain_name
            trainer = self.trainers.get(brain)
            if trainer is None:
                trainer = self.make_trainer(
                    self.options, brain, self.env, self.stats, self.seed + len(self.trainers), self.timers
                )
                self.trainers[brain] = trainer
                self.results[brain] = BehaviorResult(name=brain, steps=0)
                self._schedule_checkpoint(brain)
                added.append(brain)
                if self.reporting:
                    self._report_hyperparameters(brain)
            else:
                self._join_team(behavior_id, brain, spec, trainer)
            self.brain_of[behavior_id] = brain
            self.policies[behavior_id] = TimedPolicy(trainer, self.timers)
            self.processors[behavior_id] = AgentProcessor(
                spec=spec,
                time_horizon=self.options.behavior_settings(brain).time_horizon,
                n_values=len(trainer.signal_names),
                on_group_reward=partial(self._warn_group_reward, brain),
            )
            log.info("Connected new behavior: %s (%s)", behavior_id, spec.action_spec)
        return added

    def _join_team(self, behavior_id: str, brain: str, spec: Any, trainer: Trainer) -> None:
        """Another team of a brain that has a trainer: same spec required; one warning per brain (no self-play)."""
        teams = [b for b, owner in self.brain_of.items() if owner == brain]
        if spec != self.env.behavior_specs[teams[0]]:
            raise EnvironmentFault(
                f"Behaviors '{teams[0]}' and '{behavior_id}' are teams of the brain '{brain}' but have different "
                "observation or action specs; teams of one brain share one trainer and need the same spec."
            )
        if len(teams) == 1:
            log.warning(
                "The environment has several teams of '%s' (%s, %s): without self-play, one %s trainer acts for all "
                "teams and learns from all of them, which does not train adversarial games (self-play is not "
                "available in this version of fledge).",
                brain,
                teams[0],
                behavior_id,
                str(trainer.trainer_type).upper(),
            )

    def _warn_group_reward(self, brain: str) -> None:
        if brain in self._group_reward_warned:
            return
        self._group_reward_warned.add(brain)
        trainer_type = str(self.trainers[brain].trainer_type).upper()
        log.warning(
            "Behavior '%s' receives group rewards. The %s trainer adds them to each agent's own reward but does not "
            "learn as a group; group rewards are meant for the POCA trainer, which this version of fledge does not "
            "have.",
            brain,
            trainer_type,
        )

    def _report_hyperparameters(self, name: str) -> None:
        """The behavior's effective settings (what `fledge check` prints): console dump and TensorBoard text.

        Reported when training starts (the run folder is ready then), and for a behavior that joins later
        when it joins; never with --inference, which writes nothing."""
        settings = effective_settings(self.options.behavior_settings(name))
        self.stats.add_property(name, HYPERPARAMETERS, settings)

    def _schedule_checkpoint(self, name: str) -> None:
        interval = max(1, int(self.options.behavior_settings(name).checkpoint_interval))
        self.next_checkpoint[name] = (self.trainers[name].step // interval + 1) * interval

    def restore(self) -> None:
        """--resume: every behavior continues from its newest (or the named) checkpoint."""
        resume_from = self.options.checkpoint_settings.resume_from
        if resume_from and not any(resume_from.startswith(f"{b}-") for b in self.trainers):
            raise CheckpointError(
                f"--resume-from {resume_from}: no behavior of this run is called that way "
                f"(behaviors: {', '.join(self.trainers)}); use <behavior>-<step>."
            )
        flag = "--inference" if self.inference else "--resume"
        env_name = str(self.options.env_settings.env_path or DEFAULT_ENV)
        for name, trainer in self.trainers.items():
            chosen = resume_from if resume_from and resume_from.startswith(f"{name}-") else None
            path = self.checkpoints.resume_path(name, chosen)
            if path is None:
                raise CheckpointError(
                    run_fit.missing_checkpoint_message(
                        checkpoints=self.checkpoints,
                        behavior=name,
                        specs=self.env.behavior_specs,
                        flag=flag,
                        env_name=env_name,
                    )
                )
            state, run_meta = self.checkpoints.load(path)
            try:
                trainer.set_state(trainer_part(state))
            except CheckpointError as exc:
                advice = run_fit.how_to_go_on(self.path, flag, env_name)
                raise CheckpointError(f"{path}: {exc}\n{advice}") from None
            self._restore_random_state(state.tensors, run_meta)
            trainer.load_auxiliary(self.checkpoints.folder(name))
            self._schedule_checkpoint(name)
            if self.inference:
                log.info("Running the policy of %s from step %d (%s) without training.", name, trainer.step, path)
            else:
                log.info("Resuming training of %s from step %d (%s).", name, trainer.step, path)

    def initialize_from(self, source_dir: Path | None) -> None:
        """--initialize-from / init_path: copy network weights (and normaliser) from another run; start at step 0."""
        for name, trainer in self.trainers.items():
            init_path = self.options.behavior_settings(name).init_path
            if init_path:
                path = Path(init_path)
                if source_dir is not None and not path.is_absolute() and not path.exists():
                    path = source_dir / name / init_path
            elif source_dir is not None:
                path = source_dir / name / "checkpoint.pt"
            else:
                continue
            if not path.is_file():
                raise CheckpointError(
                    f"Could not initialize '{name}' from {path}: the file does not exist. "
                    f"Check --initialize-from / init_path (run folder: {source_dir})."
                )
            state, _ = self.checkpoints.load(path)
            try:
                trainer.set_state(trainer_part(state), weights_only=True)
            except CheckpointError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
            log.info("Initializing %s from %s.", name, path)

    def _restore_random_state(self, tensors: dict[str, torch.Tensor], run_meta: dict[str, Any]) -> None:
        if f"{RUN_PREFIX}torch_rng" in tensors:
            torch.set_rng_state(tensors[f"{RUN_PREFIX}torch_rng"].to(torch.uint8))
        if "python_random" in run_meta:
            version, internal, gauss = run_meta["python_random"]
            random.setstate((version, tuple(internal), gauss))
        env_state = run_meta.get("environment_random")
        if env_state is not None and hasattr(self.env, "set_random_state"):
            self.env.set_random_state(env_state)

    def _run_meta(self) -> dict[str, Any]:
        env_state = self.env.random_state() if hasattr(self.env, "random_state") else None
        return {
            "fledge_version": __version__,
            "torch_version": torch.__version__,
            "run_id": self.options.checkpoint_settings.run_id,
            "seed": self.seed,
            "python_random": list(random.getstate()),
            "environment_random": env_state,
        }

    def save_checkpoint(self, trainer: Trainer, *, final: bool = False) -> None:
        with self.timers.block("save_checkpoint"):
            self.checkpoints.save(
                trainer,
                keep_checkpoints=int(self.options.behavior_settings(trainer.name).keep_checkpoints),
                run_meta=self._run_meta(),
                extra_tensors={f"{RUN_PREFIX}torch_rng": torch.get_rng_state()},
                final=final,
            )

    # -- the loop ---------------------------------------------------------------------------------
    def train(self) -> RunResult:
        env, timers, trainers = self.env, self.timers, self.trainers
        policies, processors, results, brain_of = self.policies, self.processors, self.results, self.brain_of
        env_block, process_block, observe_block = (
            timers.block("env_step"),
            timers.block("process_steps"),
            timers.block("trainer_observe"),
        )
        stop = StopRequest()
        limits = {name: trainer_max(self.options, name) for name in trainers}  # max_steps per behavior
        ran = dict.fromkeys(trainers, 0)  # --inference: decisions run per behavior
        interrupted = False
        if not self.inference:
            for name in trainers:
                self.checkpoints.clean_orphans(name)
                self._report_hyperparameters(name)
            self.status.write()
            self.reporting = True
        for name, trainer in trainers.items():
            self.progress.add(
                name,
                max_steps=limits[name],
                step=0 if self.inference else trainer.step,
            )
        progress = self.progress
        consistent = True
        # environments that restart failed worker copies name the agents lost with them
        take_dropped: Callable[[], dict[str, np.ndarray]] | None = getattr(env, "take_dropped_agents", None)
        try:
            with stop.installed():
                while not stop.requested:
                    if len(env.behavior_specs) != len(processors):
                        for name in self.add_new_behaviors():
                            limits[name], ran[name] = trainer_max(self.options, name), 0
                            progress.add(
                                name, max_steps=limits[name], step=0 if self.inference else trainers[name].step
                            )
                    if self.inference:
                        if all(ran[name] >= limit for name, limit in limits.items()):
                            break
                    elif not any(t.should_train for t in trainers.values()):
                        break
                    for behavior_id, name in brain_of.items():  # name: the brain, whose trainer acts and learns
                        trainer = trainers[name]
                        with process_block:
                            decision, terminal = env.get_steps(behavior_id)
                            validate_steps(behavior_id, env.behavior_specs[behavior_id], decision, terminal)
                            outcome = processors[behavior_id].process(decision, terminal, policies[behavior_id])
                            if outcome.actions is not None:
                                env.set_actions(behavior_id, trainer.policy.env_actions(outcome.actions))
                            if len(outcome.episode_returns):
                                results[name].add_returns(outcome.episode_returns)
                        if self.inference:
                            ran[name] += len(decision)
                            progress.update(name, ran[name], outcome.episode_returns)
                            continue
                        consistent = False
                        with observe_block:
                            trainer.observe(outcome)
                        consistent = True
                        progress.update(name, trainer.step, outcome.episode_returns)
                        if trainer.step >= self.next_checkpoint[name] and trainer.should_train:
                            self.save_checkpoint(trainer)
                            self._schedule_checkpoint(name)
                    with env_block:
                        env.step()
                    custom = env.get_stats()
                    if custom:
                        self._record_environment_stats(custom)
                    if take_dropped is not None:
                        for name, ids in take_dropped().items():
                            if name in processors:
                                processors[name].forget(ids)
        except KeyboardInterrupt:
            interrupted = True
            stop.signum = signal.SIGINT
            consistent = False
            log.warning("Stopped at once: the run keeps its last checkpoint; no final checkpoint was written.")
        except Exception as exc:
            failing = None if consistent else name  # the behavior whose trainer raised inside observe/update
            error = self._error_of(exc, failing)
            self._finish(final=True, failing=failing)  # the error that stopped the run is the one raised
            if error is exc:
                raise
            raise error from exc
        interrupted = interrupted or stop.requested
        if stop.requested:
            log.info("Learning was interrupted (%s). Saving the run.", stop.reason)
        problem = self._finish(final=consistent)
        if problem is not None:
            error = self._error_of(problem, None)
            if error is problem:
                raise problem
            raise error from problem
        if self.inference:
            for name, count in ran.items():
                results[name].steps = count
        return RunResult(
            run_dir=self.path,
            seed=self.seed,
            elapsed_s=time.time() - self.start,
            behaviors=results,
            interrupted=interrupted,
            timers=timers.to_dict(),
            stop_signal=int(stop.signum) if stop.signum is not None else None,
        )

    def _record_environment_stats(self, custom: dict[str, list[tuple[float, Any]]]) -> None:
        """Custom stats of the environment go to every behavior's category, with their aggregation."""
        for key, values in custom.items():
            for value, method in values:
                aggregation = Aggregation(int(method))
                for name in self.trainers:
                    if aggregation == Aggregation.MOST_RECENT:
                        self.stats.set_stat(name, key, value)
                    else:
                        self.stats.add_stat(name, key, value, aggregation)

    def _error_of(self, exc: Exception, failing: str | None) -> Exception:
        """The one clear error a user sees for an exception that stopped the loop."""
        if isinstance(exc, FledgeError):
            return exc
        if isinstance(exc, OSError) and exc.errno in DISK_ERRNOS:
            return write_error(exc.filename or self.path, exc)
        where = "the training loop"
        if failing is not None:
            trainer = self.trainers[failing]
            where = f"the {trainer.trainer_type} trainer of '{failing}' at step {trainer.step}"
        return TrainingError(
            f"Training stopped: {where} raised {type(exc).__name__}: {exc}. A final checkpoint was written for every "
            "behavior whose state could be kept (see the lines above); fix the cause, then continue with --resume "
            "(add --debug to see where it was raised)."
        )

    def _finish(self, *, final: bool, failing: str | None = None) -> Exception | None:
        """Close the run: with `final` a final checkpoint of every behavior, then statistics and timers.

        Each behavior is saved on its own, so one that cannot be saved (NaN or inf tensors, which the
        checkpoint manager refuses; a full disk) does not cost the others theirs; the first such error
        is returned, not raised. `failing`: the behavior whose trainer raised inside observe/update. An
        update is a sequence of whole optimiser steps (each one fused in-place kernel call), so that
        trainer holds the weights and optimiser moments of its last whole step, which fit each other and
        its step count: it is saved like the others (its unused buffer is not part of a checkpoint)."""
        self.progress.close()
        first: Exception | None = None
        for name, trainer in self.trainers.items():
            try:
                if name != failing:
                    trainer.finish()
                self.results[name].steps = trainer.step
                if final and not self.inference:
                    self.save_checkpoint(trainer, final=True)
                    if failing is not None:
                        log.info("Saved a final checkpoint of '%s' at step %d.", name, trainer.step)
            except Exception as exc:
                log.warning("No final checkpoint of '%s' was written: %s", name, exc)
                first = first or exc
        try:
            self.stats.close()
            if not self.inference:
                atomic_write_text(self.path / "run_logs" / "timers.json", json.dumps(self.timers.to_dict(), indent=4))
        except Exception as exc:
            log.warning("Could not close the run's statistics: %s", exc)
            first = first or exc
        return first
