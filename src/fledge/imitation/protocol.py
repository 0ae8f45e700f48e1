"""The protobuf runtime that `.demo` files need, checked where a run or `fledge play` first needs it."""

from __future__ import annotations

from fledge.errors import ConfigError

__all__ = ["require_protocol"]


def require_protocol(where: str) -> None:
    """Raise a ConfigError naming `where` when the generated protocol messages cannot load."""
    try:
        import fledge.envs.unity.protocol.demonstration_pb2  # noqa: F401
    except Exception as exc:  # a missing protobuf, or a runtime older than the generated code
        raise ConfigError(
            f"{where}: .demo files are protobuf records, and the protobuf runtime cannot load ({exc}). Install it "
            "with: pip install 'fledge[unity]' (protobuf>=7.35.1)."
        ) from None
