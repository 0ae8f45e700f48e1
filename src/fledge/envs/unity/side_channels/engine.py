"""Engine configuration (Python to Unity): screen resolution, quality level, time scale and frame rates.

One message per setting: int32 type, then the value (spec 1.4). Types: 0 screen resolution (int32 width,
int32 height), 1 quality level (int32), 2 time scale (float32), 3 target frame rate (int32), 4 capture
frame rate (int32).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, fields
from enum import IntEnum
from typing import TYPE_CHECKING

from fledge.envs.unity.side_channels.channel import SendOnlyChannel
from fledge.envs.unity.side_channels.messages import OutgoingMessage

if TYPE_CHECKING:
    from fledge.config.sections import EngineSettings

__all__ = [
    "ENGINE_CONFIGURATION_CHANNEL_ID",
    "EngineConfig",
    "EngineConfigurationChannel",
    "EngineConfigType",
    "engine_config_from_settings",
]

ENGINE_CONFIGURATION_CHANNEL_ID = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")


class EngineConfigType(IntEnum):
    SCREEN_RESOLUTION = 0
    QUALITY_LEVEL = 1
    TIME_SCALE = 2
    TARGET_FRAME_RATE = 3
    CAPTURE_FRAME_RATE = 4


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings to send; None leaves Unity's value as it is. Width and height go together."""

    width: int | None = None
    height: int | None = None
    quality_level: int | None = None
    time_scale: float | None = None
    target_frame_rate: int | None = None
    capture_frame_rate: int | None = None


def engine_config_from_settings(engine_settings: EngineSettings) -> EngineConfig:
    """The configuration a run sends: every value of `engine_settings` (YAML with the typed flags over it)."""
    return EngineConfig(**{field.name: getattr(engine_settings, field.name) for field in fields(EngineConfig)})


def _setting(kind: EngineConfigType, *ints: int) -> OutgoingMessage:
    msg = OutgoingMessage()
    msg.write_int32(kind)
    for value in ints:
        msg.write_int32(value)
    return msg


class EngineConfigurationChannel(SendOnlyChannel):
    """Queues one message per given setting; they reach the player with the next exchange."""

    def __init__(self) -> None:
        super().__init__(ENGINE_CONFIGURATION_CHANNEL_ID)

    def set_configuration_parameters(
        self,
        width: int | None = None,
        height: int | None = None,
        quality_level: int | None = None,
        time_scale: float | None = None,
        target_frame_rate: int | None = None,
        capture_frame_rate: int | None = None,
    ) -> None:
        if (width is None) != (height is None):
            raise ValueError(f"The screen resolution needs both width and height (got width={width}, height={height}).")
        messages: dict[EngineConfigType, OutgoingMessage] = {}
        if width is not None and height is not None:
            messages[EngineConfigType.SCREEN_RESOLUTION] = _setting(EngineConfigType.SCREEN_RESOLUTION, width, height)
        for kind, value in (
            (EngineConfigType.QUALITY_LEVEL, quality_level),
            (EngineConfigType.TARGET_FRAME_RATE, target_frame_rate),
            (EngineConfigType.CAPTURE_FRAME_RATE, capture_frame_rate),
        ):
            if value is not None:
                messages[kind] = _setting(kind, value)
        if time_scale is not None:
            messages[EngineConfigType.TIME_SCALE] = _setting(EngineConfigType.TIME_SCALE)
            messages[EngineConfigType.TIME_SCALE].write_float32(time_scale)
        for kind in sorted(messages):  # in the order of the types
            self.queue_message_to_send(messages[kind])

    def set_configuration(self, config: EngineConfig) -> None:
        self.set_configuration_parameters(**asdict(config))
