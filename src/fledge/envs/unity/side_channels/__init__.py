"""Side channels: the blob of extra messages carried by every exchange with a Unity player (spec 1.4).

`SideChannelManager` frames and routes the blob; each channel reads and writes its own messages.
"""

from fledge.envs.unity.side_channels.channel import SideChannel, SideChannelError
from fledge.envs.unity.side_channels.engine import (
    ENGINE_CONFIGURATION_CHANNEL_ID,
    EngineConfig,
    EngineConfigurationChannel,
    engine_config_from_settings,
)
from fledge.envs.unity.side_channels.float_properties import FLOAT_PROPERTIES_CHANNEL_ID, FloatPropertiesChannel
from fledge.envs.unity.side_channels.manager import SideChannelManager
from fledge.envs.unity.side_channels.messages import IncomingMessage, OutgoingMessage
from fledge.envs.unity.side_channels.parameters import (
    ENVIRONMENT_PARAMETERS_CHANNEL_ID,
    EnvironmentParametersChannel,
    send_environment_parameters,
)
from fledge.envs.unity.side_channels.raw import RawBytesChannel
from fledge.envs.unity.side_channels.stats import STATS_CHANNEL_ID, StatsSideChannel

__all__ = [
    "ENGINE_CONFIGURATION_CHANNEL_ID",
    "ENVIRONMENT_PARAMETERS_CHANNEL_ID",
    "FLOAT_PROPERTIES_CHANNEL_ID",
    "STATS_CHANNEL_ID",
    "EngineConfig",
    "EngineConfigurationChannel",
    "EnvironmentParametersChannel",
    "FloatPropertiesChannel",
    "IncomingMessage",
    "OutgoingMessage",
    "RawBytesChannel",
    "SideChannel",
    "SideChannelError",
    "SideChannelManager",
    "StatsSideChannel",
    "engine_config_from_settings",
    "send_environment_parameters",
]
