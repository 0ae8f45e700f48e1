"""Helpers of the Unity tests: the fake player's path and free ports."""

from __future__ import annotations

import socket
from pathlib import Path

PLAYER = Path(__file__).resolve().with_name("fake_player.py")


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("localhost", port))
        except OSError:
            return False
    return True


def free_base_port(count: int = 1) -> int:
    """A port p such that p .. p + count - 1 are free now (tests of other helpers run at the same time)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("localhost", 0))
            base = int(s.getsockname()[1])
        if base + count < 65535 and all(_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no free ports")
