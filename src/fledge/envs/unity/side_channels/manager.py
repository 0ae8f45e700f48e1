"""The side-channel blob carried by every exchange: records of (16-byte channel UUID in little-endian byte
order, int32 little-endian payload length, payload), spec 1.4."""

from __future__ import annotations

import logging
import struct
import uuid
from collections.abc import Sequence

from fledge.envs.unity.side_channels.channel import SideChannel, SideChannelError
from fledge.envs.unity.side_channels.messages import IncomingMessage

__all__ = ["SideChannelManager", "frame_record"]

logger = logging.getLogger("fledge")

_UUID_SIZE = 16
_LENGTH = struct.Struct("<i")
_HEADER_SIZE = _UUID_SIZE + _LENGTH.size


def frame_record(channel_id: uuid.UUID, payload: bytes) -> bytes:
    """One record of the blob: the id's bytes_le, the payload's length as int32 LE, the payload."""
    return channel_id.bytes_le + _LENGTH.pack(len(payload)) + payload


class SideChannelManager:
    """Routes the records of incoming blobs to their channels and frames the channels' queued messages.

    `source` names the other side in error messages (e.g. "the Unity player of worker 2").
    """

    def __init__(self, channels: Sequence[SideChannel], *, source: str = "the Unity player") -> None:
        self._channels: dict[uuid.UUID, SideChannel] = {}
        for channel in channels:
            if channel.channel_id in self._channels:
                raise ValueError(
                    f"Two side channels have the id {channel.channel_id} "
                    f"({type(self._channels[channel.channel_id]).__name__} and {type(channel).__name__}); "
                    "each channel id may be registered once."
                )
            self._channels[channel.channel_id] = channel
        self._source = source
        self._warned_unknown: set[uuid.UUID] = set()

    @property
    def channels(self) -> dict[uuid.UUID, SideChannel]:
        return dict(self._channels)

    def process_incoming(self, data: bytes) -> None:
        """Hand every record of `data` to its channel, in order; unknown ids are warned once each and skipped.

        A blob cut short (a header or payload running past its end) raises `SideChannelError`; the
        records before the bad one have been delivered.
        """
        offset = 0
        while offset < len(data):
            if offset + _HEADER_SIZE > len(data):
                raise SideChannelError(
                    f"The side-channel data from {self._source} is cut short: a record starts at byte {offset} "
                    f"but only {len(data) - offset} of its {_HEADER_SIZE} header bytes are there "
                    f"(blob of {len(data)} bytes). The player and fledge disagree on the side-channel format; "
                    "check that the player's ML-Agents package speaks communication version 1.5.0."
                )
            channel_id = uuid.UUID(bytes_le=data[offset : offset + _UUID_SIZE])
            (length,) = _LENGTH.unpack_from(data, offset + _UUID_SIZE)
            start = offset + _HEADER_SIZE
            if length < 0 or start + length > len(data):
                raise SideChannelError(
                    f"The side-channel data from {self._source} is cut short: the message for channel "
                    f"{channel_id} declares {length} bytes, but {len(data) - start} remain after its header "
                    f"(record at byte {offset} of a {len(data)}-byte blob). The player and fledge disagree on "
                    "the side-channel format; check that the player's ML-Agents package speaks communication "
                    "version 1.5.0."
                )
            payload = data[start : start + length]
            offset = start + length
            channel = self._channels.get(channel_id)
            if channel is not None:
                channel.on_message_received(IncomingMessage(payload))
            elif channel_id not in self._warned_unknown:
                self._warned_unknown.add(channel_id)
                logger.warning(
                    "%s sent a side-channel message on channel %s, which no channel of fledge handles; "
                    "messages on it are ignored. Register a side channel with that id to receive them.",
                    self._source[:1].upper() + self._source[1:],
                    channel_id,
                )

    def outgoing(self) -> bytes:
        """Every queued message of every channel as one blob (empty when nothing is queued); queues are emptied."""
        records = [
            frame_record(channel_id, payload)
            for channel_id, channel in self._channels.items()
            for payload in channel.take_queued_messages()
        ]
        return b"".join(records)
