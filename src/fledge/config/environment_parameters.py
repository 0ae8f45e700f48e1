"""`environment_parameters`: constants, samplers and curricula (spec 2.10).

Every entry is normalised to the curriculum form ML-Agents uses internally: a number or a sampler
becomes a curriculum of one lesson named after the parameter, whose value is a sampler (a number
becomes a `constant` sampler). Consumers therefore handle one shape only:
``EnvironmentParameterSettings.curriculum[i].value`` is always a `SamplerSettings`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import Field, SerializeAsAny, ValidationInfo, field_validator, model_validator
from pydantic_core import InitErrorDetails, ValidationError

from fledge.config._base import (
    ConfigEnum,
    Float,
    Int,
    StrictModel,
    error_detail,
    fail,
    line_errors,
    to_float,
    unknown_key_error,
)

__all__ = [
    "CompletionCriteriaSettings",
    "ConstantParameters",
    "EnvironmentParameterSettings",
    "GaussianParameters",
    "Lesson",
    "MeasureType",
    "MultiRangeUniformParameters",
    "SamplerParameters",
    "SamplerSettings",
    "SamplerType",
    "UniformParameters",
    "normalize_environment_parameters",
]

logger = logging.getLogger(__name__)


class SamplerType(ConfigEnum):
    UNIFORM = "uniform"
    GAUSSIAN = "gaussian"
    MULTIRANGEUNIFORM = "multirangeuniform"
    CONSTANT = "constant"


class MeasureType(ConfigEnum):
    PROGRESS = "progress"
    REWARD = "reward"


class SamplerParameters(StrictModel):
    """Common to every sampler. A seed of -1 is replaced at run time by run seed + offset."""

    seed: Int = -1


class UniformParameters(SamplerParameters):
    yaml_name = "uniform sampler_parameters"
    min_value: Float = 0.0
    max_value: Float = 1.0

    @model_validator(mode="after")
    def _ordered(self) -> UniformParameters:
        if self.min_value > self.max_value:
            raise fail(
                type(self).__name__,
                ("min_value",),
                f"min_value ({self.min_value}) must be less than or equal to max_value ({self.max_value})",
                self.min_value,
            )
        return self


class GaussianParameters(SamplerParameters):
    yaml_name = "gaussian sampler_parameters"
    mean: Float = 1.0
    st_dev: Float = Field(default=1.0, ge=0.0)


class MultiRangeUniformParameters(SamplerParameters):
    yaml_name = "multirangeuniform sampler_parameters"
    intervals: list[list[Float]] = Field(default_factory=lambda: [[0.0, 1.0]], min_length=1)

    @field_validator("intervals")
    @classmethod
    def _pairs(cls, intervals: list[list[float]]) -> list[list[float]]:
        errors: list[InitErrorDetails] = []
        for index, interval in enumerate(intervals):
            if len(interval) != 2:
                message = f"each interval must have exactly 2 values [min, max], got {len(interval)}"
                errors.append(error_detail((index,), message, interval))
            elif interval[0] > interval[1]:
                message = f"interval minimum ({interval[0]}) must be less than or equal to its maximum ({interval[1]})"
                errors.append(error_detail((index,), message, interval))
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return intervals


class ConstantParameters(SamplerParameters):
    yaml_name = "constant sampler_parameters"
    value: Float = 0.0


SAMPLER_PARAMETER_CLASSES: Mapping[SamplerType, type[SamplerParameters]] = MappingProxyType(
    {
        SamplerType.UNIFORM: UniformParameters,
        SamplerType.GAUSSIAN: GaussianParameters,
        SamplerType.MULTIRANGEUNIFORM: MultiRangeUniformParameters,
        SamplerType.CONSTANT: ConstantParameters,
    }
)


class SamplerSettings(StrictModel):
    """``{sampler_type: T, sampler_parameters: {...}}``; both keys are required."""

    sampler_type: SamplerType
    sampler_parameters: SerializeAsAny[SamplerParameters]

    @classmethod
    def constant(cls, value: float) -> SamplerSettings:
        return cls(sampler_type=SamplerType.CONSTANT, sampler_parameters=ConstantParameters(value=value))

    @field_validator("sampler_parameters", mode="wrap")
    @classmethod
    def _by_type(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        sampler_type = info.data.get("sampler_type")
        if sampler_type is None:
            return value  # sampler_type is missing or wrong and is reported on its own
        expected = SAMPLER_PARAMETER_CLASSES[sampler_type]
        if value is None:
            value = {}
        if isinstance(value, dict):
            return expected.model_validate(value)
        result = handler(value)
        if type(result) is not expected:
            raise fail(cls.__name__, (), f"expected {expected.__name__} for sampler_type {sampler_type}", value)
        return result


def _lesson_value(value: Any) -> Any:
    """A lesson value is a number (a constant) or a sampler mapping."""
    if isinstance(value, (dict, SamplerSettings)):
        return value
    return SamplerSettings.constant(to_float(value))


class CompletionCriteriaSettings(StrictModel):
    behavior: str
    measure: MeasureType = MeasureType.REWARD
    threshold: Float = 0.0
    min_lesson_length: Int = Field(default=0, ge=0)
    signal_smoothing: bool = True
    require_reset: bool = False

    @model_validator(mode="after")
    def _progress_range(self) -> CompletionCriteriaSettings:
        if self.measure is MeasureType.PROGRESS and not 0.0 <= self.threshold <= 1.0:
            raise fail(
                type(self).__name__,
                ("threshold",),
                f"with measure 'progress' the threshold is a fraction of max_steps and must be "
                f"between 0 and 1, got {self.threshold}",
                self.threshold,
            )
        return self


class Lesson(StrictModel):
    name: str
    value: SamplerSettings
    completion_criteria: CompletionCriteriaSettings | None = None

    @field_validator("value", mode="before")
    @classmethod
    def _number_is_constant(cls, value: Any) -> Any:
        return _lesson_value(value)


class EnvironmentParameterSettings(StrictModel):
    """One environment parameter, as a curriculum of one or more lessons."""

    curriculum: list[Lesson] = Field(min_length=1)

    @model_validator(mode="after")
    def _criteria(self) -> EnvironmentParameterSettings:
        last = len(self.curriculum) - 1
        errors: list[InitErrorDetails] = []
        for index, lesson in enumerate(self.curriculum):
            if index < last and lesson.completion_criteria is None:
                message = (
                    f"lesson {lesson.name!r} is not the last lesson, so it needs completion_criteria "
                    "(only the last lesson may omit them)"
                )
                errors.append(error_detail(("curriculum", index, "completion_criteria"), message, None))
            elif index == last and lesson.completion_criteria is not None:
                logger.warning(
                    "Lesson %r is the last lesson of its curriculum; its completion_criteria are ignored.",
                    lesson.name,
                )
                lesson.completion_criteria = None
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)
        return self

    @classmethod
    def from_entry(cls, name: str, entry: Any) -> EnvironmentParameterSettings:
        """Read one entry of `environment_parameters` in any of its three forms."""
        if isinstance(entry, EnvironmentParameterSettings):
            return entry
        if isinstance(entry, SamplerSettings):
            return cls(curriculum=[Lesson(name=name, value=entry)])
        if not isinstance(entry, dict):
            return cls(curriculum=[Lesson(name=name, value=SamplerSettings.constant(_entry_number(entry)))])
        if "curriculum" in entry:
            return cls.model_validate(entry)
        if "sampler_type" in entry or "sampler_parameters" in entry:
            return cls(curriculum=[Lesson(name=name, value=SamplerSettings.model_validate(entry))])
        allowed = ["curriculum", "sampler_type", "sampler_parameters"]
        errors = [
            unknown_key_error(key, value, allowed, owner="an environment parameter") for key, value in entry.items()
        ]
        if not errors:
            message = "expected a number, a sampler {sampler_type, sampler_parameters} or a curriculum list"
            errors = [error_detail((), message, entry)]
        raise ValidationError.from_exception_data(cls.__name__, errors)


def _entry_number(entry: Any) -> float:
    try:
        return to_float(entry)
    except Exception:
        message = "expected a number, a sampler {sampler_type, sampler_parameters} or a curriculum list"
        raise fail("EnvironmentParameterSettings", (), message, entry) from None


def normalize_environment_parameters(value: dict[Any, Any]) -> dict[str, EnvironmentParameterSettings]:
    """Validate every entry (reporting all errors, each under its parameter name)."""
    result: dict[str, EnvironmentParameterSettings] = {}
    errors: list[InitErrorDetails] = []
    for name, entry in value.items():
        try:
            result[str(name)] = EnvironmentParameterSettings.from_entry(str(name), entry)
        except ValidationError as exc:
            errors.extend(line_errors(exc, (name,)))
    if errors:
        raise ValidationError.from_exception_data("environment_parameters", errors)
    return result
