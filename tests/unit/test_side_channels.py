"""Side channels (spec 1.4): the blob framing, the message primitives and every channel, checked byte for
byte against messages written out by hand from the spec."""

from __future__ import annotations

import logging
import math
import struct
import uuid
from pathlib import Path

import pytest

from fledge.config import build_run_options, parse_learn_args, resolve_run_options
from fledge.envs.api import StatsAggregationMethod
from fledge.envs.unity.side_channels import (
    ENGINE_CONFIGURATION_CHANNEL_ID,
    ENVIRONMENT_PARAMETERS_CHANNEL_ID,
    FLOAT_PROPERTIES_CHANNEL_ID,
    STATS_CHANNEL_ID,
    EngineConfig,
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    FloatPropertiesChannel,
    IncomingMessage,
    OutgoingMessage,
    RawBytesChannel,
    SideChannel,
    SideChannelError,
    SideChannelManager,
    StatsSideChannel,
    engine_config_from_settings,
    send_environment_parameters,
)
from fledge.errors import EnvironmentFault, FledgeError

# The channel ids of the spec's table, and the bytes of the first two in little-endian order written out by
# hand: the first three groups of the UUID byte-reversed, the last two as they are.
ENGINE_ID_LE = bytes.fromhex("2c3451e97e4fea11b238784f4387d1f7")
STATS_ID_LE = bytes.fromhex("b7f7d8a1c8cef950b78bd3e165a78520")

# little-endian words used below
I0, I1, I2, I3, I4 = (bytes([n, 0, 0, 0]) for n in range(5))
F_HALF, F_ONE, F_TWO, F_THREE, F_TEN, F_TWENTY = (
    bytes.fromhex(h) for h in ("0000003f", "0000803f", "00000040", "00004040", "00002041", "0000a041")
)


def payloads(channel: SideChannel) -> list[bytes]:
    return channel.take_queued_messages()


# ---- channel ids -----------------------------------------------------------------------------------------


def test_channel_ids_are_the_spec_table() -> None:
    assert str(ENGINE_CONFIGURATION_CHANNEL_ID) == "e951342c-4f7e-11ea-b238-784f4387d1f7"
    assert str(ENVIRONMENT_PARAMETERS_CHANNEL_ID) == "534c891e-810f-11ea-a9d0-822485860400"
    assert str(STATS_CHANNEL_ID) == "a1d8f7b7-cec8-50f9-b78b-d3e165a78520"
    assert str(FLOAT_PROPERTIES_CHANNEL_ID) == "60ccf7d0-4f7e-11ea-b238-784f4387d1f7"
    assert ENGINE_CONFIGURATION_CHANNEL_ID.bytes_le == ENGINE_ID_LE
    assert STATS_CHANNEL_ID.bytes_le == STATS_ID_LE
    assert EngineConfigurationChannel().channel_id == ENGINE_CONFIGURATION_CHANNEL_ID
    assert EnvironmentParametersChannel().channel_id == ENVIRONMENT_PARAMETERS_CHANNEL_ID
    assert StatsSideChannel().channel_id == STATS_CHANNEL_ID
    assert FloatPropertiesChannel().channel_id == FLOAT_PROPERTIES_CHANNEL_ID


# ---- message primitives ----------------------------------------------------------------------------------


def test_primitives_golden_bytes() -> None:
    msg = OutgoingMessage()
    msg.write_bool(True)
    msg.write_bool(False)
    msg.write_int32(-2)
    msg.write_float32(1.0)
    msg.write_float32_list([2.0, 3.0])
    msg.write_string("ab")
    expected = b"\x01\x00" + b"\xfe\xff\xff\xff" + F_ONE + I2 + F_TWO + F_THREE + I2 + b"ab"
    assert msg.buffer == expected


def test_round_trip_of_every_primitive() -> None:
    out = OutgoingMessage()
    out.write_bool(True)
    out.write_int32(2**31 - 1)
    out.write_int32(-(2**31))
    out.write_float32(-0.25)
    out.write_float32_list([])
    out.write_float32_list([1.5, -2.5, 1e30])
    out.write_string("")
    out.write_string("Höhe/ß")
    out.write_bool(False)
    msg = IncomingMessage(out.buffer)
    assert msg.read_bool() is True
    assert msg.read_int32() == 2**31 - 1
    assert msg.read_int32() == -(2**31)
    assert msg.read_float32() == -0.25
    assert msg.read_float32_list() == []
    assert msg.read_float32_list() == [1.5, -2.5, pytest.approx(1e30, rel=1e-7)]
    assert msg.read_string() == ""
    assert msg.read_string() == "Höhe/ß"
    assert msg.read_bool(default_value=True) is False
    assert msg.at_end()
    assert msg.get_raw_bytes() == out.buffer


def test_float32_rounds_like_the_wire() -> None:
    out = OutgoingMessage()
    out.write_float32(0.1)
    assert IncomingMessage(out.buffer).read_float32() == struct.unpack("<f", struct.pack("<f", 0.1))[0]


def test_int32_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="int32"):
        OutgoingMessage().write_int32(2**31)


def test_reading_past_the_end_gives_defaults() -> None:
    empty = IncomingMessage(b"")
    assert empty.read_bool() is False
    assert empty.read_int32() == 0
    assert empty.read_float32() == 0.0
    assert empty.read_float32_list() == []
    assert empty.read_string() == ""
    assert empty.read_int32(default_value=7) == 7
    assert empty.read_string(default_value="x") == "x"
    # a partial int32, a list whose count runs past the floats, a string longer than the bytes
    assert IncomingMessage(b"\x01\x02").read_int32() == 0
    assert IncomingMessage(I3 + F_ONE).read_float32_list() == []
    assert IncomingMessage(b"\x05\x00\x00\x00ab").read_string() == ""
    assert IncomingMessage(b"\xff\xff\xff\xff").read_string() == ""  # negative length
    short = IncomingMessage(I1 + b"\x00")
    assert short.read_int32() == 1
    assert short.read_float32(default_value=-1.0) == -1.0
    assert short.at_end()


# ---- the blob --------------------------------------------------------------------------------------------


def test_outgoing_blob_framing_golden() -> None:
    engine = EngineConfigurationChannel()
    manager = SideChannelManager([engine])
    assert manager.outgoing() == b""
    engine.set_configuration_parameters(time_scale=20)
    assert manager.outgoing() == ENGINE_ID_LE + b"\x08\x00\x00\x00" + I2 + F_TWENTY
    assert manager.outgoing() == b""  # the queue was emptied


def test_incoming_blob_routes_records_in_order() -> None:
    stats = StatsSideChannel()
    raw_id = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    raw = RawBytesChannel(raw_id)
    manager = SideChannelManager([stats, raw])
    stat = I1 + b"a" + F_HALF + I0
    raw_le = bytes.fromhex("33221100554477668899aabbccddeeff")
    blob = STATS_ID_LE + bytes([len(stat), 0, 0, 0]) + stat + raw_le + I3 + b"xyz" + raw_le + I0
    manager.process_incoming(blob)
    assert stats.get_and_reset_stats() == {"a": [(0.5, StatsAggregationMethod.AVERAGE)]}
    assert raw.get_and_clear_received_messages() == [b"xyz", b""]
    assert raw.get_and_clear_received_messages() == []


def test_unknown_channel_warned_once_and_the_rest_processed(caplog: pytest.LogCaptureFixture) -> None:
    stats = StatsSideChannel()
    manager = SideChannelManager([stats])
    unknown = uuid.UUID("12345678-1234-5678-1234-567812345678")
    stat = I1 + b"k" + F_ONE + I1
    blob = unknown.bytes_le + I2 + b"zz" + STATS_ID_LE + bytes([len(stat), 0, 0, 0]) + stat
    with caplog.at_level(logging.WARNING, logger="fledge"):
        manager.process_incoming(blob)
        manager.process_incoming(blob)
    warnings = [r for r in caplog.records if str(unknown) in r.getMessage()]
    assert len(warnings) == 1
    assert warnings[0].name == "fledge"
    assert stats.get_and_reset_stats() == {"k": [(1.0, StatsAggregationMethod.MOST_RECENT)] * 2}


def test_duplicate_channel_ids_are_refused() -> None:
    with pytest.raises(ValueError, match=str(STATS_CHANNEL_ID)):
        SideChannelManager([StatsSideChannel(), RawBytesChannel(STATS_CHANNEL_ID)])


def test_truncated_blob_names_channel_and_lengths() -> None:
    manager = SideChannelManager([StatsSideChannel()], source="the Unity player of worker 3")
    blob = STATS_ID_LE + b"\x10\x00\x00\x00" + b"abc"
    with pytest.raises(SideChannelError) as info:
        manager.process_incoming(blob)
    text = str(info.value)
    assert str(STATS_CHANNEL_ID) in text and "16 bytes" in text and "3 remain" in text and "worker 3" in text
    assert isinstance(info.value, EnvironmentFault) and isinstance(info.value, FledgeError)
    with pytest.raises(SideChannelError, match="header"):
        manager.process_incoming(STATS_ID_LE[:10])
    with pytest.raises(SideChannelError, match="-1 bytes"):
        manager.process_incoming(STATS_ID_LE + b"\xff\xff\xff\xff")


# ---- engine configuration --------------------------------------------------------------------------------


def test_engine_time_scale_message_golden() -> None:
    engine = EngineConfigurationChannel()
    engine.set_configuration_parameters(time_scale=20.0)
    assert payloads(engine) == [I2 + F_TWENTY]


def test_engine_full_configuration_golden() -> None:
    engine = EngineConfigurationChannel()
    engine.set_configuration(
        EngineConfig(width=84, height=84, quality_level=5, time_scale=20, target_frame_rate=-1, capture_frame_rate=60)
    )
    assert payloads(engine) == [
        I0 + b"\x54\x00\x00\x00" + b"\x54\x00\x00\x00",
        I1 + b"\x05\x00\x00\x00",
        I2 + F_TWENTY,
        I3 + b"\xff\xff\xff\xff",
        I4 + b"\x3c\x00\x00\x00",
    ]


def test_engine_resolution_needs_both_sides() -> None:
    with pytest.raises(ValueError, match="both width and height"):
        EngineConfigurationChannel().set_configuration_parameters(width=84)
    engine = EngineConfigurationChannel()
    engine.set_configuration(EngineConfig())
    assert payloads(engine) == []


def test_engine_config_from_settings_defaults_yaml_and_flags(tmp_path: Path) -> None:
    defaults = engine_config_from_settings(build_run_options({}).engine_settings)
    assert defaults == EngineConfig(
        width=84, height=84, quality_level=5, time_scale=20.0, target_frame_rate=-1, capture_frame_rate=60
    )
    config = tmp_path / "trainer.yaml"
    config.write_text("engine_settings:\n  height: 64\n  quality_level: 2\n  time_scale: 10\n")
    from_yaml = engine_config_from_settings(resolve_run_options(parse_learn_args([str(config)])).engine_settings)
    assert from_yaml == EngineConfig(
        width=84, height=64, quality_level=2, time_scale=10.0, target_frame_rate=-1, capture_frame_rate=60
    )
    argv = [
        str(config),
        "--time-scale",
        "5",
        "--width",
        "128",
        "--target-frame-rate",
        "30",
        "--capture-frame-rate",
        "0",
    ]
    typed = engine_config_from_settings(resolve_run_options(parse_learn_args(argv)).engine_settings)
    assert typed == EngineConfig(
        width=128, height=64, quality_level=2, time_scale=5.0, target_frame_rate=30, capture_frame_rate=0
    )
    engine = EngineConfigurationChannel()
    engine.set_configuration(typed)
    assert payloads(engine)[2] == I2 + struct.pack("<f", 5.0)


def test_engine_channel_ignores_messages_from_unity(caplog: pytest.LogCaptureFixture) -> None:
    engine = EngineConfigurationChannel()
    with caplog.at_level(logging.WARNING, logger="fledge"):
        engine.on_message_received(IncomingMessage(b"\x01"))
        engine.on_message_received(IncomingMessage(b"\x01"))
    assert len([r for r in caplog.records if "only sends" in r.getMessage()]) == 1


# ---- environment parameters ------------------------------------------------------------------------------


def test_environment_parameter_messages_golden() -> None:
    channel = EnvironmentParametersChannel()
    channel.set_float_parameter("mass", 2.0)
    channel.set_uniform_sampler_parameters("gravity", 1.0, 2.0, 7)
    channel.set_gaussian_sampler_parameters("scale", 1.0, 0.5, 3)
    channel.set_multirangeuniform_sampler_parameters("len", [(1.0, 2.0), (3.0, 10.0)], 0)
    assert payloads(channel) == [
        I4 + b"mass" + I0 + F_TWO,
        b"\x07\x00\x00\x00gravity" + I1 + b"\x07\x00\x00\x00" + I0 + F_ONE + F_TWO,
        b"\x05\x00\x00\x00scale" + I1 + I3 + I1 + F_ONE + F_HALF,
        I3 + b"len" + I1 + I0 + I2 + I4 + F_ONE + F_TWO + F_THREE + F_TEN,
    ]


ENV_PARAMETERS = {
    "mass": 2.0,
    "gravity": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 1.0, "max_value": 2.0}},
    "scale": {"sampler_type": "gaussian", "sampler_parameters": {"mean": 1.0, "st_dev": 0.5, "seed": 3}},
    "len": {"sampler_type": "multirangeuniform", "sampler_parameters": {"intervals": [[1.0, 2.0], [3.0, 10.0]]}},
    "size": {
        "curriculum": [
            {"name": "small", "value": 1.0, "completion_criteria": {"behavior": "B", "threshold": 0.5}},
            {"name": "big", "value": {"sampler_type": "uniform", "sampler_parameters": {"max_value": 3.0}}},
        ]
    },
}


def test_send_environment_parameters_from_the_config() -> None:
    options = build_run_options({"environment_parameters": ENV_PARAMETERS})
    assert options.environment_parameters is not None
    channel = EnvironmentParametersChannel()
    send_environment_parameters(channel, options.environment_parameters, run_seed=100)
    # seeds of -1 count up from the run seed in file order (mass 100, gravity 101, len 102, size 103/104);
    # a constant is sent as a float parameter
    assert payloads(channel) == [
        I4 + b"mass" + I0 + F_TWO,
        b"\x07\x00\x00\x00gravity" + I1 + struct.pack("<i", 101) + I0 + F_ONE + F_TWO,
        b"\x05\x00\x00\x00scale" + I1 + I3 + I1 + F_ONE + F_HALF,
        I3 + b"len" + I1 + struct.pack("<i", 102) + I2 + I4 + F_ONE + F_TWO + F_THREE + F_TEN,
        I4 + b"size" + I0 + F_ONE,
    ]
    send_environment_parameters(channel, options.environment_parameters, run_seed=100, lessons={"size": 1})
    assert payloads(channel)[-1] == I4 + b"size" + I1 + struct.pack("<i", 104) + I0 + b"\x00" * 4 + F_THREE
    with pytest.raises(ValueError, match="lesson number 2"):
        send_environment_parameters(channel, options.environment_parameters, lessons={"size": 2})


# ---- stats -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "method"),
    [
        (0, StatsAggregationMethod.AVERAGE),
        (1, StatsAggregationMethod.MOST_RECENT),
        (2, StatsAggregationMethod.SUM),
        (3, StatsAggregationMethod.HISTOGRAM),
    ],
)
def test_stats_aggregation_mapping(code: int, method: StatsAggregationMethod) -> None:
    stats = StatsSideChannel()
    stats.on_message_received(IncomingMessage(b"\x08\x00\x00\x00Reward/x" + F_HALF + bytes([code, 0, 0, 0])))
    stats.on_message_received(IncomingMessage(b"\x08\x00\x00\x00Reward/x" + F_TWO + bytes([code, 0, 0, 0])))
    result = stats.get_and_reset_stats()
    assert result == {"Reward/x": [(0.5, method), (2.0, method)]}
    assert all(type(m) is StatsAggregationMethod for _, m in result["Reward/x"])
    assert stats.get_and_reset_stats() == {}


def test_stats_unknown_aggregation_method_is_a_clear_error() -> None:
    stats = StatsSideChannel()
    with pytest.raises(SideChannelError, match="aggregation method 9"):
        stats.on_message_received(IncomingMessage(I1 + b"k" + F_ONE + b"\x09\x00\x00\x00"))


def test_stats_short_message_reads_defaults() -> None:
    stats = StatsSideChannel()
    stats.on_message_received(IncomingMessage(I1 + b"k"))
    assert stats.get_and_reset_stats() == {"k": [(0.0, StatsAggregationMethod.AVERAGE)]}


# ---- float properties and raw bytes ----------------------------------------------------------------------


def test_float_properties_both_directions() -> None:
    props = FloatPropertiesChannel()
    props.set_property("speed", 2.0)
    assert payloads(props) == [b"\x05\x00\x00\x00speed" + F_TWO]
    props.on_message_received(IncomingMessage(b"\x04\x00\x00\x00mass" + F_HALF))
    assert props.get_property("speed") == 2.0
    assert props.get_property("mass") == 0.5
    assert props.get_property("none") is None
    assert props.list_properties() == ["speed", "mass"]


def test_raw_bytes_channel_round_trip_through_two_managers() -> None:
    channel_id = uuid.uuid4()
    python_side, unity_side = RawBytesChannel(channel_id), RawBytesChannel(channel_id)
    python_side.send_raw_data(b"\x00\x01hello")
    python_side.send_raw_data(b"")
    blob = SideChannelManager([python_side]).outgoing()
    assert blob[:16] == channel_id.bytes_le
    SideChannelManager([unity_side]).process_incoming(blob)
    assert unity_side.get_and_clear_received_messages() == [b"\x00\x01hello", b""]


def test_nan_stat_is_refused() -> None:
    stats = StatsSideChannel()
    with pytest.raises(FledgeError, match="not finite"):
        stats.on_message_received(IncomingMessage(I1 + b"k" + struct.pack("<f", math.nan) + I0))
