"""Environment parameters (Python to Unity): fixed values and samplers that the player draws from.

Message: string key, int32 data type; 0 = float (then float32 value), 1 = sampler (then int32 seed, int32
sampler type and its parameters). Sampler types: 0 uniform (float32 min, float32 max), 1 gaussian (float32
mean, float32 st_dev), 2 multirange uniform (float32 list of the flattened [min, max] pairs). Spec 1.4.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from enum import IntEnum

from fledge.config.environment_parameters import (
    ConstantParameters,
    EnvironmentParameterSettings,
    GaussianParameters,
    MultiRangeUniformParameters,
    SamplerSettings,
    UniformParameters,
)
from fledge.curriculum.samplers import lesson_seeds
from fledge.envs.unity.side_channels.channel import SendOnlyChannel
from fledge.envs.unity.side_channels.messages import OutgoingMessage

__all__ = [
    "ENVIRONMENT_PARAMETERS_CHANNEL_ID",
    "EnvironmentDataType",
    "EnvironmentParametersChannel",
    "SamplerKind",
    "sampler_seeds",
    "send_environment_parameters",
]

ENVIRONMENT_PARAMETERS_CHANNEL_ID = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")


class EnvironmentDataType(IntEnum):
    FLOAT = 0
    SAMPLER = 1


class SamplerKind(IntEnum):
    UNIFORM = 0
    GAUSSIAN = 1
    MULTIRANGEUNIFORM = 2


class EnvironmentParametersChannel(SendOnlyChannel):
    """Queues one message per parameter set; the player applies them with the next exchange."""

    def __init__(self) -> None:
        super().__init__(ENVIRONMENT_PARAMETERS_CHANNEL_ID)

    def _start(self, key: str, data_type: EnvironmentDataType) -> OutgoingMessage:
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_int32(data_type)
        return msg

    def _sampler(self, key: str, seed: int, kind: SamplerKind) -> OutgoingMessage:
        msg = self._start(key, EnvironmentDataType.SAMPLER)
        msg.write_int32(seed)
        msg.write_int32(kind)
        return msg

    def set_float_parameter(self, key: str, value: float) -> None:
        msg = self._start(key, EnvironmentDataType.FLOAT)
        msg.write_float32(value)
        self.queue_message_to_send(msg)

    def set_uniform_sampler_parameters(self, key: str, min_value: float, max_value: float, seed: int) -> None:
        msg = self._sampler(key, seed, SamplerKind.UNIFORM)
        msg.write_float32(min_value)
        msg.write_float32(max_value)
        self.queue_message_to_send(msg)

    def set_gaussian_sampler_parameters(self, key: str, mean: float, st_dev: float, seed: int) -> None:
        msg = self._sampler(key, seed, SamplerKind.GAUSSIAN)
        msg.write_float32(mean)
        msg.write_float32(st_dev)
        self.queue_message_to_send(msg)

    def set_multirangeuniform_sampler_parameters(
        self, key: str, intervals: Sequence[Sequence[float]], seed: int
    ) -> None:
        """`intervals`: [min, max] pairs, sent flattened."""
        flat: list[float] = []
        for interval in intervals:
            if len(interval) != 2:
                raise ValueError(f"parameter {key!r}: each interval is [min, max], got {list(interval)}")
            flat.extend(interval)
        msg = self._sampler(key, seed, SamplerKind.MULTIRANGEUNIFORM)
        msg.write_float32_list(flat)
        self.queue_message_to_send(msg)

    def send_sampler(self, key: str, sampler: SamplerSettings, seed: int) -> None:
        """One parameter from fledge's config form; a constant goes as a float parameter."""
        params = sampler.sampler_parameters
        if isinstance(params, ConstantParameters):
            self.set_float_parameter(key, params.value)
        elif isinstance(params, UniformParameters):
            self.set_uniform_sampler_parameters(key, params.min_value, params.max_value, seed)
        elif isinstance(params, GaussianParameters):
            self.set_gaussian_sampler_parameters(key, params.mean, params.st_dev, seed)
        elif isinstance(params, MultiRangeUniformParameters):
            self.set_multirangeuniform_sampler_parameters(key, params.intervals, seed)
        else:
            raise TypeError(f"parameter {key!r}: no side-channel form for {type(params).__name__}")


def sampler_seeds(
    environment_parameters: Mapping[str, EnvironmentParameterSettings], run_seed: int
) -> dict[tuple[str, int], int]:
    """The seed of every lesson, keyed by (parameter, lesson index) (fledge.curriculum.samplers.lesson_seeds)."""
    return lesson_seeds(environment_parameters, run_seed)


def send_environment_parameters(
    channel: EnvironmentParametersChannel,
    environment_parameters: Mapping[str, EnvironmentParameterSettings],
    *,
    run_seed: int = 0,
    lessons: Mapping[str, int] | None = None,
) -> None:
    """Queue one message per parameter: the value of its current lesson (`lessons`, default the first).

    `environment_parameters` is `RunOptions.environment_parameters` (every entry is a curriculum; a plain
    number or sampler is one lesson). Advancing lessons is the caller's job: call again with new numbers.
    """
    seeds = sampler_seeds(environment_parameters, run_seed)
    for name, settings in environment_parameters.items():
        index = 0 if lessons is None else lessons.get(name, 0)
        if not 0 <= index < len(settings.curriculum):
            raise ValueError(
                f"parameter {name!r} has {len(settings.curriculum)} lesson(s); lesson number {index} does not exist"
            )
        channel.send_sampler(name, settings.curriculum[index].value, seeds[name, index])
