"""The run's curriculum: the lesson of every environment parameter and when it moves on.

Owned by the run (api.run builds it, the training session asks it after every environment step);
nothing global. For each behavior named by a completion criterion it keeps the newest finished
episode returns (newest last), as many as the largest `min_lesson_length` of the lessons naming it
(at least 1). `advance(progress)` applies the rule of `lessons.judge` to every parameter whose current
lesson has criteria; on any change every buffer is cleared, each change is logged ("Parameter 'X' is
in lesson 'L' and has value 'V'."), and the caller sends the new draws to the environments (resetting
them when a completed lesson says `require_reset`).

The lesson numbers are stored in the run's training status (`<parameter>: {"lesson_num": n}`, spec 5),
written with each checkpoint, and read back on --resume; without --resume lessons start at 0.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fledge.config.environment_parameters import EnvironmentParameterSettings, Lesson, SamplerType
from fledge.curriculum.lessons import judge
from fledge.curriculum.samplers import Draw, draw_of, lesson_seeds
from fledge.errors import CheckpointError, ConfigError

__all__ = ["LESSON_STAT", "Change", "CurriculumController", "describe_value"]

log = logging.getLogger("fledge")

LESSON_STAT = "Environment/Lesson Number/{}"


@dataclass(frozen=True)
class Change:
    """What `advance` changed: the parameters that moved on, and whether the environments must reset."""

    parameters: tuple[str, ...]
    require_reset: bool


def describe_value(lesson: Lesson) -> str:
    """A lesson's value as the console shows it: the number of a constant, else the sampler and its parameters."""
    sampler = lesson.value
    params = sampler.sampler_parameters.model_dump(mode="json")
    if sampler.sampler_type is SamplerType.CONSTANT:
        return f"{params['value']:g}"
    params.pop("seed", None)
    inner = ", ".join(f"{k}: {v}" for k, v in params.items())
    return f"{sampler.sampler_type} sampler ({inner})"


class CurriculumController:
    def __init__(self, parameters: Mapping[str, EnvironmentParameterSettings], *, run_seed: int) -> None:
        self.parameters = dict(parameters)
        self.seeds = lesson_seeds(self.parameters, run_seed)
        self.lessons: dict[str, int] = dict.fromkeys(self.parameters, 0)
        self.smoothed: dict[str, float] = dict.fromkeys(self.parameters, 0.0)
        capacity: dict[str, int] = {}
        for settings in self.parameters.values():
            for lesson in settings.curriculum:
                criteria = lesson.completion_criteria
                if criteria is not None:
                    capacity[criteria.behavior] = max(capacity.get(criteria.behavior, 1), criteria.min_lesson_length)
        self.returns: dict[str, deque[float]] = {b: deque(maxlen=n) for b, n in capacity.items()}

    # -- what the configuration asks of the run -------------------------------------------------
    @property
    def measured_behaviors(self) -> list[str]:
        """The behaviors named by completion criteria."""
        return list(self.returns)

    def check_behaviors(self, brains: Iterable[str]) -> None:
        """Every behavior a completion criterion names is one the run trains (a ConfigError otherwise)."""
        known = set(brains)
        for name, settings in self.parameters.items():
            for index, lesson in enumerate(settings.curriculum):
                criteria = lesson.completion_criteria
                if criteria is not None and criteria.behavior not in known:
                    raise ConfigError(
                        f"environment_parameters.{name}.curriculum[{index}] ('{lesson.name}'): completion_criteria "
                        f"names the behavior '{criteria.behavior}', which this run does not have (behaviors: "
                        f"{', '.join(sorted(known)) or 'none'}); name one of them."
                    )

    # -- values ---------------------------------------------------------------------------------
    def lesson(self, name: str) -> Lesson:
        return self.parameters[name].curriculum[self.lessons[name]]

    def draws(self) -> dict[str, Draw]:
        """The current lesson value of every parameter, as environments receive it."""
        return {
            name: draw_of(self.lesson(name).value, self.seeds[name, self.lessons[name]]) for name in self.parameters
        }

    def log_lessons(self) -> None:
        for name in self.parameters:
            self._log(name)

    def _log(self, name: str) -> None:
        lesson = self.lesson(name)
        log.info("Parameter '%s' is in lesson '%s' and has value '%s'.", name, lesson.name, describe_value(lesson))

    # -- measuring and moving on ----------------------------------------------------------------
    def record_returns(self, behavior: str, returns: Iterable[float]) -> None:
        buffer = self.returns.get(behavior)
        if buffer is not None:
            buffer.extend(float(r) for r in returns)

    def advance(self, progress: Callable[[str], float]) -> Change | None:
        """Move every parameter whose current lesson is complete to its next lesson.

        `progress(behavior)`: that behavior's trainer step / max_steps. Returns None when nothing moved."""
        moved: list[str] = []
        reset = False
        for name, settings in self.parameters.items():
            index = self.lessons[name]
            criteria = settings.curriculum[index].completion_criteria
            if criteria is None or index + 1 >= len(settings.curriculum):
                continue
            buffer = self.returns[criteria.behavior]
            verdict = judge(
                criteria, returns=buffer, progress=progress(criteria.behavior), smoothed=self.smoothed[name]
            )
            self.smoothed[name] = verdict.smoothed
            if verdict.complete:
                self.lessons[name] = index + 1
                moved.append(name)
                reset = reset or criteria.require_reset
        if not moved:
            return None
        for buffer in self.returns.values():
            buffer.clear()
        for name in moved:
            self._log(name)
        return Change(tuple(moved), reset)

    # -- the run's status -----------------------------------------------------------------------
    def store(self, status_data: dict[str, dict[str, Any]]) -> None:
        """Write each parameter's lesson number into the status categories (`<parameter>.lesson_num`)."""
        for name, index in self.lessons.items():
            status_data.setdefault(name, {})["lesson_num"] = index

    def restore(self, status_data: Mapping[str, Mapping[str, Any]], where: str) -> None:
        """Take the lesson numbers of a resumed run; a parameter without one starts at lesson 0."""
        for name, settings in self.parameters.items():
            entry = status_data.get(name)
            if not isinstance(entry, Mapping) or "lesson_num" not in entry:
                continue
            value = entry["lesson_num"]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise CheckpointError(f"{where}: '{name}.lesson_num' is {value!r}, not a lesson number.")
            if value >= len(settings.curriculum):
                raise CheckpointError(
                    f"{where}: '{name}.lesson_num' is {value}, but the configuration's curriculum of '{name}' has "
                    f"{len(settings.curriculum)} lesson(s). Resume with the configuration the run started with."
                )
            self.lessons[name] = value
