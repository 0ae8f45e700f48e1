"""The training loop of one run: environment -> collector (policy, processor) -> trainer -> environment.

`TrainingSession` owns the trainers, the collector, the stats reporter and the timers of a run; the run's
lifecycle (run/lifecycle.py: seed, folder, status, checkpoints) restores its trainers before the loop and
saves their checkpoints when it asks. The loop checkpoints every `checkpoint_interval` steps, and ends
with a final checkpoint on completion, Ctrl-C or SIGTERM (signals only ask the loop to stop at the next step boundary, so the
state saved is always consistent; a second Ctrl-C stops at once). When anything raises inside the loop
(an environment, a trainer's update, a full disk), every behavior whose state is safe to keep gets a
final checkpoint and the run ends with one clear FledgeError (`TrainingError` for a trainer's failure).
"""

from __future__ import annotations

import json
import logging
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
from fledge.curriculum.controller import LESSON_STAT
from fledge.envs.api import BaseEnv
from fledge.envs.behavior_id import parse_behavior_id
from fledge.errors import EnvironmentFault, FledgeError, TrainingError
from fledge.files import DISK_ERRNOS, atomic_write_text, write_error
from fledge.preflight import effective_settings
from fledge.rollout.collector import Collector, TimedPolicy
from fledge.rollout.processor import AgentProcessor, StepOutcome
from fledge.stats import HYPERPARAMETERS, Aggregation, ConsoleWriter, CSVWriter, StatsReporter, TensorboardWriter
from fledge.stats.progress import DisplayMode, ProgressDisplay
from fledge.stats.timers import Timers
from fledge.trainers.ghost import TeamController, with_self_play
from fledge.trainers.seats import seat_of

if TYPE_CHECKING:
    from fledge.config import RunOptions
    from fledge.curriculum.controller import CurriculumController
    from fledge.run.lifecycle import RunLifecycle
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
        lifecycle: RunLifecycle,
        start: float,
        make_trainer: Any,
        display: DisplayMode = "auto",
        curriculum: CurriculumController | None = None,
    ) -> None:
        lifecycle.seed_generators()  # before the first trainer is built
        self.options, self.env, self.life, self.start = options, env, lifecycle, start
        self.path, self.seed = lifecycle.path, lifecycle.seed
        self.make_trainer = make_trainer
        self.inference = lifecycle.inference
        self.stats = StatsReporter(
            [ConsoleWriter(start_time=start)]
            if self.inference
            else [TensorboardWriter(self.path), CSVWriter(self.path), ConsoleWriter(start_time=start)]
        )
        self.progress = ProgressDisplay(mode=display)
        self.timers = Timers()
        self.timers.metadata.update(
            fledge_version=__version__, pytorch_version=torch.__version__, numpy_version=np.__version__
        )
        self.collector = Collector(env, self.timers)  # one processor and one policy per behavior id
        self.trainers: dict[str, Trainer] = {}  # one per brain name (a behavior id without '?team=N')
        self.brain_of: dict[str, str] = {}  # behavior id -> brain name
        self.observers: dict[str, Callable[[StepOutcome], None]] = {}  # behavior id -> what learns from its outcomes
        self.teams = TeamController()  # which team learns, for the self-play trainers of every brain
        self.results: dict[str, BehaviorResult] = {}  # per brain name
        self._group_reward_warned: set[str] = set()
        self.reporting = False  # hyperparameters of new behaviors are reported from train() on
        self.curriculum = curriculum  # environment parameters' lessons (None without environment_parameters)

    # -- behaviors and their trainers ---------------------------------------------------------------
    def add_new_behaviors(self) -> list[str]:
        """Connect the behavior ids seen for the first time: a trainer per new brain name, a policy and an
        agent processor per behavior id (teams of one brain act with and feed its trainer). Returns the new brains."""
        added = []
        for behavior_id, spec in self.env.behavior_specs.items():
            if behavior_id in self.collector.processors:
                continue
            brain = parse_behavior_id(behavior_id).brain_name
            trainer = self.trainers.get(brain)
            if trainer is None:
                seed = self.seed + len(self.trainers)
                trainer = self.make_trainer(self.options, brain, self.env, self.stats, seed, self.timers)
                trainer = with_self_play(
                    trainer,
                    settings=self.options.behavior_settings(brain),
                    controller=self.teams,
                    stats=self.stats,
                    seed=seed,
                )
                self.trainers[brain] = trainer
                self.results[brain] = BehaviorResult(name=brain, steps=0)
                self.life.schedule_checkpoint(trainer)
                added.append(brain)
                if self.reporting:
                    self._report_hyperparameters(brain)
            else:
                self._join_team(behavior_id, brain, spec, trainer)
            self.brain_of[behavior_id] = brain
            groups = bool(getattr(trainer, "uses_groups", False))  # POCA: group rows for its critic
            processor = AgentProcessor(
                spec=spec,
                time_horizon=self.options.behavior_settings(brain).time_horizon,
                n_values=len(trainer.signal_names),
                on_group_reward=None if groups else partial(self._warn_group_reward, brain),
                memory_size=trainer.policy.memory_size,
                source=behavior_id,
                groups=groups,
            )
            seat = seat_of(trainer, behavior_id)  # self-play seats teams with the learner or a frozen opponent
            self.observers[behavior_id] = seat.observe
            self.collector.add(behavior_id, processor=processor, policy=TimedPolicy(seat.policy, self.timers))
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
        if len(teams) == 1 and self.options.behavior_settings(brain).self_play is None:
            log.warning(
                "The environment has several teams of '%s' (%s, %s): without self-play, one %s trainer acts for all "
                "teams and learns from all of them, which does not train adversarial games (add a self_play "
                "section to its settings for self-play).",
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
            "learn as a group; group rewards are meant for the POCA trainer (trainer_type: poca).",
            brain,
            trainer_type,
        )

    def _report_hyperparameters(self, name: str) -> None:
        """The behavior's effective settings (what `fledge check` prints): console dump and TensorBoard text.

        Reported when training starts (the run folder is ready then), and for a behavior that joins later
        when it joins; never with --inference, which writes nothing."""
        settings = effective_settings(self.options.behavior_settings(name))
        self.stats.add_property(name, HYPERPARAMETERS, settings)

    def save_checkpoint(self, trainer: Trainer, *, final: bool = False) -> None:
        with self.timers.block("save_checkpoint"):
            self.life.save_checkpoint(trainer, self.env, final=final)

    # -- the loop ---------------------------------------------------------------------------------
    def train(self) -> RunResult:
        env, timers, trainers, life = self.env, self.timers, self.trainers, self.life
        collector, results, brain_of = self.collector, self.results, self.brain_of
        observe_block = timers.block("trainer_observe")
        stop = StopRequest()
        limits = {name: trainer_max(self.options, name) for name in trainers}  # max_steps per behavior
        ran = dict.fromkeys(trainers, 0)  # --inference: decisions run per behavior
        interrupted = False
        curriculum = self.curriculum
        if curriculum is not None and not self.inference:
            curriculum.store(life.status.data)
        if not self.inference:
            life.begin(list(trainers))
            for name in trainers:
                self._report_hyperparameters(name)
            self.reporting = True
        for name, trainer in trainers.items():
            self.progress.add(
                name,
                max_steps=limits[name],
                step=0 if self.inference else trainer.step,
            )
        progress = self.progress
        consistent = True
        try:
            with stop.installed():
                while not stop.requested:
                    if len(env.behavior_specs) != len(collector.processors):
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
                        outcome = collector.collect(behavior_id)
                        if len(outcome.episode_returns):
                            results[name].add_returns(outcome.episode_returns)
                            if curriculum is not None:
                                curriculum.record_returns(name, outcome.episode_returns)
                        if self.inference:
                            ran[name] += outcome.decisions
                            progress.update(name, ran[name], outcome.episode_returns)
                            continue
                        consistent = False
                        with observe_block:
                            self.observers[behavior_id](outcome)
                        consistent = True
                        progress.update(name, trainer.step, outcome.episode_returns)
                        if life.checkpoint_due(trainer):
                            self.save_checkpoint(trainer)
                            life.schedule_checkpoint(trainer)
                    if curriculum is not None and self._curriculum_step(curriculum, limits):
                        collector.reset()  # a completed lesson with require_reset: every agent starts anew
                        continue
                    if self.teams.take_reset_request():  # a self-play team change: fresh games for the new roles
                        collector.reset()
                        continue
                    custom = collector.step()
                    if custom:
                        self._record_environment_stats(custom)
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

    def _curriculum_step(self, curriculum: CurriculumController, limits: dict[str, int]) -> bool:
        """Move lessons on where complete, send the new values, set the lesson stats; True: reset the envs."""
        change = None
        if not self.inference:

            def progress(behavior: str) -> float:
                trainer = self.trainers.get(behavior)
                return 0.0 if trainer is None else trainer.step / max(1, limits.get(behavior, 1))

            change = curriculum.advance(progress)
            if change is not None:
                self.env.set_environment_parameters(curriculum.draws())
                curriculum.store(self.life.status.data)  # written with the next checkpoint
        for name in self.trainers:
            for parameter, index in curriculum.lessons.items():
                self.stats.set_stat(name, LESSON_STAT.format(parameter), index)
        return change is not None and change.require_reset

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
