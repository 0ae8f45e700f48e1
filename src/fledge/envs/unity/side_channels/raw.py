"""Raw bytes on a channel id of the user's choosing (both directions)."""

from __future__ import annotations

import uuid

from fledge.envs.unity.side_channels.channel import SideChannel
from fledge.envs.unity.side_channels.messages import IncomingMessage, OutgoingMessage

__all__ = ["RawBytesChannel"]


class RawBytesChannel(SideChannel):
    """Sends payloads as given and keeps every received payload until it is collected."""

    def __init__(self, channel_id: uuid.UUID) -> None:
        super().__init__(channel_id)
        self._received: list[bytes] = []

    def on_message_received(self, msg: IncomingMessage) -> None:
        self._received.append(msg.get_raw_bytes())

    def send_raw_data(self, data: bytes) -> None:
        msg = OutgoingMessage()
        msg.set_raw_bytes(data)
        self.queue_message_to_send(msg)

    def get_and_clear_received_messages(self) -> list[bytes]:
        """The payloads received since the last call, oldest first."""
        received, self._received = self._received, []
        return received
