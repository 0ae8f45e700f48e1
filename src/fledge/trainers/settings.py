"""Readers of a behavior's trainer settings that every trainer and the preflight checks share (no torch)."""

from __future__ import annotations

import logging
from enum import Enum
from typing import Any

from fledge.envs.api import BehaviorSpec
from fledge.errors import ConfigError
from fledge.networks.encoders.layout import ObservationLayout

log = logging.getLogger("fledge")

# Stat names of reward signals keep the provider's own spelling.
SIGNAL_STAT_NAMES = {"extrinsic": "Extrinsic", "curiosity": "Curiosity", "gail": "GAIL", "rnd": "RND"}
SUPPORTED_SIGNALS = ("extrinsic", "curiosity", "gail", "rnd")


def plain(value: Any) -> Any:
    """An enum member as its plain value; anything else unchanged."""
    return value.value if isinstance(value, Enum) else value


def memory_settings(settings: Any) -> tuple[int, int]:
    """(memory_size, sequence_length) of a behavior's network settings; (0, 1) without memory."""
    memory = settings.network_settings.memory
    if memory is None:
        return 0, 1
    return int(memory.memory_size), int(memory.sequence_length)


def reward_signals(settings: Any, where: str) -> list[tuple[str, float, float]]:
    """(name, gamma, strength) of every configured reward signal, refusing the ones not built yet; `where` names
    the settings in the error ("behaviors.3DBall", "default_settings")."""
    signals = []
    for key, sig in settings.reward_signals.items():
        name = str(plain(key))
        if sig is None:
            continue
        if name not in SUPPORTED_SIGNALS:
            raise ConfigError(
                f"{where}.reward_signals.{name}: this reward signal is not available in this "
                f"version of fledge (available: {', '.join(SUPPORTED_SIGNALS)}). Remove it from the config."
            )
        signals.append((name, float(sig.gamma), float(sig.strength)))
    if not signals:
        raise ConfigError(
            f"{where}.reward_signals: no reward signal is configured; add at least "
            "'extrinsic: {gamma: 0.99, strength: 1.0}'."
        )
    return signals


def observation_size(spec: BehaviorSpec, behavior_name: str) -> int:
    """Width of the behavior's flat observation row (every observation flattened, in BehaviorSpec order);
    an observation no encoder reads (spec 1.1's selection table) is refused with a clear error."""
    try:
        return ObservationLayout.of(spec.observation_specs).size
    except ConfigError as err:
        raise ConfigError(f"Behavior '{behavior_name}': {err}") from None


def encoder_settings(settings: Any) -> tuple[str, str]:
    """(vis_encode_type, goal_conditioning_type) of a behavior's network settings, as plain strings."""
    net = settings.network_settings
    return str(plain(net.vis_encode_type)), str(plain(net.goal_conditioning_type))


def warn_unused_encoders(behavior_name: str, spec: BehaviorSpec, settings: Any) -> None:
    """One warning per encoder setting given a value other than its default that this behavior's observations
    never reach: vis_encode_type without a visual observation, goal_conditioning_type without a goal signal."""
    vis_encode_type, goal_conditioning_type = encoder_settings(settings)
    layout = ObservationLayout.of(spec.observation_specs)
    if vis_encode_type != "simple" and not layout.of_kind("visual"):
        log.warning(
            "Behavior '%s': network_settings.vis_encode_type: '%s' has no effect here; the behavior has no visual "
            "observations.",
            behavior_name,
            vis_encode_type,
        )
    if goal_conditioning_type != "hyper" and not any(slot.goal for slot in layout.slots):
        log.warning(
            "Behavior '%s': network_settings.goal_conditioning_type: '%s' has no effect here; the behavior has no "
            "goal-signal observations.",
            behavior_name,
            goal_conditioning_type,
        )
