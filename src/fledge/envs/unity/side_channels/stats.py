"""Custom stats (Unity to Python): string key, float32 value, int32 aggregation method (spec 1.4)."""

from __future__ import annotations

import uuid

from fledge.envs.api import EnvironmentStats, StatsAggregationMethod
from fledge.envs.unity.side_channels.channel import SideChannel, SideChannelError
from fledge.envs.unity.side_channels.messages import IncomingMessage

__all__ = ["STATS_CHANNEL_ID", "StatsSideChannel"]

STATS_CHANNEL_ID = uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")

_METHODS = {method.value: method for method in StatsAggregationMethod}


class StatsSideChannel(SideChannel):
    """Keeps every stat the player sends, per key as (value, method), until `get_and_reset_stats`."""

    def __init__(self) -> None:
        super().__init__(STATS_CHANNEL_ID)
        self._stats = EnvironmentStats()

    def on_message_received(self, msg: IncomingMessage) -> None:
        key = msg.read_string()
        value = msg.read_float32()
        code = msg.read_int32()
        method = _METHODS.get(code)
        if method is None:
            known = ", ".join(f"{m.value} ({m.name})" for m in StatsAggregationMethod)
            raise SideChannelError(
                f"The Unity player sent stat {key!r} with aggregation method {code}, which is not one of {known}. "
                "Check the StatsRecorder.Add calls of the player."
            )
        self._stats.record(key, value, method)

    def get_and_reset_stats(self) -> dict[str, list[tuple[float, StatsAggregationMethod]]]:
        """Every stat received since the last call, by key, in order of arrival."""
        return self._stats.get_and_reset()
