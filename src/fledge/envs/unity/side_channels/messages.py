"""The payload of one side-channel message: little-endian primitives written and read in order (spec 1.4).

Primitives: bool (1 byte), int32, float32, float32 list (int32 count, then the floats) and string (int32
byte length, then the bytes). Strings are written as UTF-8, which is ASCII for ASCII text (ML-Agents writes
ASCII and fails on anything else). Reading past the end of a message returns the default value given
(false, 0, 0.0, an empty list, an empty string) and leaves the reader at the end.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = ["IncomingMessage", "OutgoingMessage"]

_BOOL = struct.Struct("<?")
_INT32 = struct.Struct("<i")
_FLOAT32 = struct.Struct("<f")
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


class OutgoingMessage:
    """A message under construction; `buffer` is its payload so far."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffer(self) -> bytes:
        return bytes(self._buffer)

    def write_bool(self, value: bool) -> None:
        self._buffer += _BOOL.pack(bool(value))

    def write_int32(self, value: int) -> None:
        value = int(value)
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise ValueError(f"{value} does not fit a side-channel int32 ({_INT32_MIN} to {_INT32_MAX})")
        self._buffer += _INT32.pack(value)

    def write_float32(self, value: float) -> None:
        self._buffer += _FLOAT32.pack(float(value))

    def write_float32_list(self, values: Iterable[float]) -> None:
        floats = [float(v) for v in values]
        self.write_int32(len(floats))
        self._buffer += struct.pack(f"<{len(floats)}f", *floats)

    def write_string(self, value: str) -> None:
        encoded = value.encode("utf-8")
        self.write_int32(len(encoded))
        self._buffer += encoded

    def set_raw_bytes(self, data: bytes) -> None:
        """Replace the whole payload with `data`."""
        self._buffer = bytearray(data)


class IncomingMessage:
    """A received payload, read front to back with the read_* methods."""

    def __init__(self, buffer: bytes, offset: int = 0) -> None:
        self._buffer = bytes(buffer)
        self._offset = offset

    @property
    def buffer(self) -> bytes:
        return self._buffer

    def at_end(self) -> bool:
        return self._offset >= len(self._buffer)

    def _take(self, size: int) -> bytes | None:
        """The next `size` bytes, or None (and the reader moved to the end) when fewer remain."""
        if size < 0 or self._offset + size > len(self._buffer):
            self._offset = len(self._buffer)
            return None
        chunk = self._buffer[self._offset : self._offset + size]
        self._offset += size
        return chunk

    def read_bool(self, default_value: bool = False) -> bool:
        chunk = self._take(_BOOL.size)
        return default_value if chunk is None else bool(chunk[0])

    def read_int32(self, default_value: int = 0) -> int:
        chunk = self._take(_INT32.size)
        return default_value if chunk is None else int(_INT32.unpack(chunk)[0])

    def read_float32(self, default_value: float = 0.0) -> float:
        chunk = self._take(_FLOAT32.size)
        return default_value if chunk is None else float(_FLOAT32.unpack(chunk)[0])

    def read_float32_list(self, default_value: list[float] | None = None) -> list[float]:
        """The list, or the default (an empty list) when the count or the floats run past the end."""
        count = self._take(_INT32.size)
        n = -1 if count is None else int(_INT32.unpack(count)[0])
        chunk = self._take(n * _FLOAT32.size)
        if chunk is None:
            return [] if default_value is None else list(default_value)
        return [float(v) for v in struct.unpack(f"<{n}f", chunk)]

    def read_string(self, default_value: str = "") -> str:
        """The string (bytes that are not UTF-8 become U+FFFD), or the default when it runs past the end."""
        length = self._take(_INT32.size)
        n = -1 if length is None else int(_INT32.unpack(length)[0])
        chunk = self._take(n)
        return default_value if chunk is None else chunk.decode("utf-8", errors="replace")

    def get_raw_bytes(self) -> bytes:
        """The whole payload, whatever has been read."""
        return self._buffer
