"""`registry.make(path, ...)` for Unity players: JSON-able keyword arguments -> a UnityEnvironment.

Worker processes rebuild environments from a name and JSON keyword arguments, so the side channels
are built here, in the process that owns the environment, from plain values (engine settings as a
dict of EngineSettings keys).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fledge.envs.unity.environment import UnityEnvironment
from fledge.envs.unity.launcher import EDITOR_NAME
from fledge.envs.unity.side_channels import SideChannel
from fledge.errors import ConfigError


def engine_channels(engine_settings: Mapping[str, Any] | None) -> list[SideChannel]:
    """The side channels a trainer sends with its first message: the engine configuration."""
    from fledge.config.sections import EngineSettings
    from fledge.envs.unity.side_channels import EngineConfigurationChannel, engine_config_from_settings

    settings = EngineSettings(**dict(engine_settings or {}))
    channel = EngineConfigurationChannel()
    channel.set_configuration(engine_config_from_settings(settings))
    return [channel]


def make_unity(
    name: str,
    *,
    seed: int = 0,
    num_agents: int | None = None,
    num_areas: int = 1,
    worker_id: int = 0,
    base_port: int | None = None,
    no_graphics: bool = False,
    timeout_wait: float = 60,
    additional_args: Sequence[str] | None = None,
    log_folder: str | None = None,
    engine_settings: Mapping[str, Any] | None = None,
) -> UnityEnvironment:
    """A Unity player (`name` is its path) or, for "unity-editor", the Editor on port 5004.

    `engine_settings` (EngineSettings keys) are sent through the engine configuration channel; its
    `no_graphics` and `no_graphics_monitor` (worker 0 keeps graphics) add to `no_graphics`.
    `base_port` applies to players only: the Editor always listens on 5004.
    """
    if num_agents is not None:
        raise ConfigError(
            f"Environment '{name}' is a Unity player: its scene decides the number of agents (num_agents cannot "
            "be set); use num_envs for more players or num_areas for more training areas."
        )
    engine = dict(engine_settings or {})
    graphics_off = (
        no_graphics or bool(engine.get("no_graphics")) or (bool(engine.get("no_graphics_monitor")) and worker_id > 0)
    )
    editor = name == EDITOR_NAME
    return UnityEnvironment(
        None if editor else name,
        worker_id=worker_id,
        base_port=None if editor else base_port,
        seed=seed,
        no_graphics=graphics_off,
        timeout_wait=timeout_wait,
        additional_args=additional_args,
        side_channels=engine_channels(engine),
        log_folder=log_folder,
        num_areas=num_areas,
    )
