"""What every side channel is: an id, a handler for messages from Unity and a queue of messages to send."""

from __future__ import annotations

import abc
import logging
import uuid

from fledge.envs.unity.side_channels.messages import IncomingMessage, OutgoingMessage
from fledge.errors import EnvironmentFault

__all__ = ["SendOnlyChannel", "SideChannel", "SideChannelError"]

logger = logging.getLogger("fledge")


class SideChannelError(EnvironmentFault):
    """A side-channel blob or message from a Unity player could not be read."""


class SideChannel(abc.ABC):
    """A channel of the side-channel blob, known to both sides by `channel_id`.

    `on_message_received` is called for every message Unity sends on this id; messages given to
    `queue_message_to_send` go out with the next exchange, in order.
    """

    def __init__(self, channel_id: uuid.UUID) -> None:
        self._channel_id = channel_id
        self._queue: list[bytes] = []

    @property
    def channel_id(self) -> uuid.UUID:
        return self._channel_id

    @abc.abstractmethod
    def on_message_received(self, msg: IncomingMessage) -> None:
        """Handle one message that Unity sent on this channel."""

    def queue_message_to_send(self, msg: OutgoingMessage) -> None:
        self._queue.append(msg.buffer)

    def take_queued_messages(self) -> list[bytes]:
        """The queued payloads, oldest first; the queue is emptied."""
        queued, self._queue = self._queue, []
        return queued


class SendOnlyChannel(SideChannel):
    """A channel that only Python writes; a message from Unity on it is ignored with one warning."""

    _warned = False

    def on_message_received(self, msg: IncomingMessage) -> None:
        if not self._warned:
            self._warned = True
            logger.warning(
                "%s (%s) received %d bytes from the Unity player, but this channel only sends; ignored.",
                type(self).__name__,
                self.channel_id,
                len(msg.get_raw_bytes()),
            )
