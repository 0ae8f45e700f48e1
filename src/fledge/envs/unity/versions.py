"""Version and capability checks of the handshake with a Unity player (protocol 1.5.0)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fledge import __version__
from fledge.envs.api import BehaviorSpec
from fledge.envs.unity.protocol.unity_message_pb2 import UnityRLInitializationOutputProto
from fledge.errors import EnvironmentFault

log = logging.getLogger("fledge")

COMMUNICATION_VERSION = "1.5.0"
"""The version of ML-Agents' wire protocol that fledge speaks (as ML-Agents 1.1.0 / Unity package 2.x/3.x)."""


class UnityVersionError(EnvironmentFault):
    """The player speaks a communication version that fledge cannot talk to."""


def _parts(version: str) -> tuple[int, int] | None:
    pieces = version.strip().split(".")
    try:
        return int(pieces[0]), int(pieces[1]) if len(pieces) > 1 else 0
    except ValueError:
        return None


def versions_compatible(unity: str, ours: str = COMMUNICATION_VERSION) -> bool:
    """Same major version; with major 0 the minor versions must match too."""
    a, b = _parts(unity), _parts(ours)
    if a is None or b is None or a[0] != b[0]:
        return False
    return a[0] != 0 or a[1] == b[1]


def check_versions(init: UnityRLInitializationOutputProto, *, worker: str) -> None:
    """Refuse an incompatible communication version; warn when it differs but is compatible."""
    unity = init.communication_version
    package = init.package_version or "unknown"
    if not versions_compatible(unity):
        raise UnityVersionError(
            f"{worker}: the Unity player speaks communication version {unity or '(none)'} (ML-Agents package "
            f"{package}), and fledge {__version__} speaks {COMMUNICATION_VERSION}; they cannot talk to each other. "
            "Build the player with an ML-Agents Unity package whose communication version is 1.x (package 2.0 "
            "or newer)."
        )
    if unity != COMMUNICATION_VERSION:
        log.warning(
            "%s: the Unity player speaks communication version %s (ML-Agents package %s), fledge %s speaks %s. "
            "They are compatible, but features of the newer side may not be available; a player built with a "
            "matching package is safest.",
            worker,
            unity,
            package,
            __version__,
            COMMUNICATION_VERSION,
        )


def check_capabilities(
    init: UnityRLInitializationOutputProto, specs: Mapping[str, BehaviorSpec], *, worker: str
) -> None:
    """Warn when a behavior uses something the player does not announce (hybrid actions, multi-agent groups)."""
    caps = init.capabilities
    if not init.HasField("capabilities"):
        return
    for name, spec in specs.items():
        if spec.action_spec.is_hybrid() and not caps.hybridActions:
            log.warning(
                "%s: behavior '%s' has both continuous and discrete actions, but the Unity player does not "
                "announce support for hybrid actions; upgrade its ML-Agents package if actions go missing.",
                worker,
                name,
            )
