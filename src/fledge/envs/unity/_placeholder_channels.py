"""Stand-in for fledge.envs.unity.side_channels until that package is merged: no channels, an empty blob."""

from __future__ import annotations

from collections.abc import Sequence

from fledge.envs.api import StatsAggregationMethod


class SideChannel:
    """Placeholder: a side channel (none is sent or read yet)."""


class StatsSideChannel(SideChannel):
    def get_and_reset_stats(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        return {}


class SideChannelManager:
    def __init__(self, channels: Sequence[SideChannel]) -> None:
        self.channels = list(channels)

    def process_incoming(self, data: bytes) -> None:
        return None

    def outgoing(self) -> bytes:
        return b""


class EngineConfigurationChannel(SideChannel):
    def set_configuration(self, config: object) -> None:
        self.config = config


def engine_config_from_settings(engine_settings: object) -> object:
    return engine_settings
