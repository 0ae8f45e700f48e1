"""Float properties (both directions, legacy): string key, float32 value (spec 1.4)."""

from __future__ import annotations

import uuid

from fledge.envs.unity.side_channels.channel import SideChannel
from fledge.envs.unity.side_channels.messages import IncomingMessage, OutgoingMessage

__all__ = ["FLOAT_PROPERTIES_CHANNEL_ID", "FloatPropertiesChannel"]

FLOAT_PROPERTIES_CHANNEL_ID = uuid.UUID("60ccf7d0-4f7e-11ea-b238-784f4387d1f7")


class FloatPropertiesChannel(SideChannel):
    """A key -> float table shared with the player: set here and sent, or received from the player."""

    def __init__(self, channel_id: uuid.UUID = FLOAT_PROPERTIES_CHANNEL_ID) -> None:
        super().__init__(channel_id)
        self._properties: dict[str, float] = {}

    def on_message_received(self, msg: IncomingMessage) -> None:
        key = msg.read_string()
        self._properties[key] = msg.read_float32()

    def set_property(self, key: str, value: float) -> None:
        """Record `value` here and queue it for the player."""
        self._properties[key] = float(value)
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_float32(value)
        self.queue_message_to_send(msg)

    def get_property(self, key: str) -> float | None:
        """The last value set or received for `key`, or None."""
        return self._properties.get(key)

    def list_properties(self) -> list[str]:
        return list(self._properties)

    def get_property_dict_copy(self) -> dict[str, float]:
        return dict(self._properties)
