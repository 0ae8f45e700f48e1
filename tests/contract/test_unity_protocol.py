"""The Unity wire protocol (communication version 1.5.0): field numbers against the specification, every
message through serialisation and back, the checked-in generated code against a fresh protoc run, and the
PNG observations of the fake player against their uncompressed form."""

from __future__ import annotations

import importlib.util
import io
import struct
import subprocess
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from google.protobuf import descriptor as _d
from google.protobuf import symbol_database
from google.protobuf.message import Message
from PIL import Image

from fledge.envs.unity.protocol import demonstration_pb2, observation_pb2, unity_message_pb2

REPO = Path(__file__).resolve().parents[2]
PROTOCOL = REPO / "src" / "fledge" / "envs" / "unity" / "protocol"
FILES = (observation_pb2, unity_message_pb2, demonstration_pb2)
PACKAGE = "communicator_objects"

# (message, field, number): from section 1.5 of the specification, and from the .proto files where it does
# not list a message ("proto").
FIELDS: list[tuple[str, str, int]] = [
    ("UnityMessageProto", "header", 1),
    ("UnityMessageProto", "unity_output", 2),
    ("UnityMessageProto", "unity_input", 3),
    ("HeaderProto", "status", 1),
    ("HeaderProto", "message", 2),
    ("UnityRLInitializationInputProto", "seed", 1),
    ("UnityRLInitializationInputProto", "communication_version", 2),
    ("UnityRLInitializationInputProto", "package_version", 3),
    ("UnityRLInitializationInputProto", "capabilities", 4),
    ("UnityRLInitializationInputProto", "num_areas", 5),
    ("UnityRLInitializationOutputProto", "name", 1),
    ("UnityRLInitializationOutputProto", "communication_version", 2),
    ("UnityRLInitializationOutputProto", "log_path", 3),
    ("UnityRLInitializationOutputProto", "brain_parameters", 5),
    ("UnityRLInitializationOutputProto", "package_version", 7),
    ("UnityRLInitializationOutputProto", "capabilities", 8),
    ("BrainParametersProto", "vector_action_size_deprecated", 3),
    ("BrainParametersProto", "vector_action_descriptions_deprecated", 5),
    ("BrainParametersProto", "vector_action_space_type_deprecated", 6),
    ("BrainParametersProto", "brain_name", 7),
    ("BrainParametersProto", "is_training", 8),
    ("BrainParametersProto", "action_spec", 9),
    ("ActionSpecProto", "num_continuous_actions", 1),
    ("ActionSpecProto", "num_discrete_actions", 2),
    ("ActionSpecProto", "discrete_branch_sizes", 3),
    ("ActionSpecProto", "action_descriptions", 4),
    ("UnityRLInputProto", "agent_actions", 1),
    ("UnityRLInputProto", "command", 4),
    ("UnityRLInputProto", "side_channel", 5),
    ("UnityRLOutputProto", "agentInfos", 2),
    ("UnityRLOutputProto", "side_channel", 3),
    ("AgentActionProto", "vector_actions_deprecated", 1),
    ("AgentActionProto", "continuous_actions", 6),
    ("AgentActionProto", "discrete_actions", 7),
    ("AgentInfoProto", "reward", 7),
    ("AgentInfoProto", "done", 8),
    ("AgentInfoProto", "max_step_reached", 9),
    ("AgentInfoProto", "id", 10),
    ("AgentInfoProto", "action_mask", 11),
    ("AgentInfoProto", "observations", 13),
    ("AgentInfoProto", "group_id", 14),
    ("AgentInfoProto", "group_reward", 15),
    ("ObservationProto", "shape", 1),
    ("ObservationProto", "compression_type", 2),
    ("ObservationProto", "compressed_data", 3),
    ("ObservationProto", "float_data", 4),
    ("ObservationProto", "compressed_channel_mapping", 5),
    ("ObservationProto", "dimension_properties", 6),
    ("ObservationProto", "observation_type", 7),
    ("ObservationProto", "name", 8),
    ("DemonstrationMetaProto", "api_version", 1),
    ("DemonstrationMetaProto", "demonstration_name", 2),
    ("DemonstrationMetaProto", "number_steps", 3),
    ("DemonstrationMetaProto", "number_episodes", 4),
    ("DemonstrationMetaProto", "mean_reward", 5),
    # proto
    ("AgentActionProto", "value", 4),
    ("ObservationProto.FloatData", "data", 1),
    ("UnityRLInputProto.ListAgentActionProto", "value", 1),
    ("UnityRLOutputProto.ListAgentInfoProto", "value", 1),
    ("UnityInputProto", "rl_input", 1),
    ("UnityInputProto", "rl_initialization_input", 2),
    ("UnityOutputProto", "rl_output", 1),
    ("UnityOutputProto", "rl_initialization_output", 2),
    ("UnityRLCapabilitiesProto", "baseRLCapabilities", 1),
    ("UnityRLCapabilitiesProto", "concatenatedPngObservations", 2),
    ("UnityRLCapabilitiesProto", "compressedChannelMapping", 3),
    ("UnityRLCapabilitiesProto", "hybridActions", 4),
    ("UnityRLCapabilitiesProto", "trainingAnalytics", 5),
    ("UnityRLCapabilitiesProto", "variableLengthObservation", 6),
    ("UnityRLCapabilitiesProto", "multiAgentGroups", 7),
    ("AgentInfoActionPairProto", "agent_info", 1),
    ("AgentInfoActionPairProto", "action_info", 2),
]
ENUMS: dict[str, dict[str, int]] = {
    "CommandProto": {"STEP": 0, "RESET": 1, "QUIT": 2},
    "CompressionTypeProto": {"NONE": 0, "PNG": 1},
    "ObservationTypeProto": {"DEFAULT": 0, "GOAL_SIGNAL": 1},
    "SpaceTypeProto": {"discrete": 0, "continuous": 1},
}


def all_messages() -> dict[str, _d.Descriptor]:
    """Every message of the three files (nested ones too, except map entries) by name relative to the package."""
    found: dict[str, _d.Descriptor] = {}

    def visit(descriptor: _d.Descriptor) -> None:
        if descriptor.GetOptions().map_entry:
            return
        found[descriptor.full_name.removeprefix(PACKAGE + ".")] = descriptor
        for nested in descriptor.nested_types:
            visit(nested)

    for module in FILES:
        assert module.DESCRIPTOR.package == PACKAGE
        for descriptor in module.DESCRIPTOR.message_types_by_name.values():
            visit(descriptor)
    return found


MESSAGES = all_messages()


def test_field_numbers_match_the_specification() -> None:
    in_descriptors = {(name, f.name, f.number) for name, d in MESSAGES.items() for f in d.fields}
    assert len(FIELDS) == len(set(FIELDS))
    assert set(FIELDS) - in_descriptors == set(), "fields of the table missing or numbered differently"
    assert in_descriptors - set(FIELDS) == set(), "fields the table does not list"


def test_enums_and_service() -> None:
    enums = {name: e for module in FILES for name, e in module.DESCRIPTOR.enum_types_by_name.items()}
    assert {name: {v.name: v.number for v in e.values} for name, e in enums.items()} == ENUMS
    (service,) = unity_message_pb2.DESCRIPTOR.services_by_name.values()
    assert service.full_name == f"{PACKAGE}.UnityToExternalProto"
    (method,) = service.methods
    assert method.name == "Exchange"
    assert method.input_type.full_name == method.output_type.full_name == f"{PACKAGE}.UnityMessageProto"
    assert not method.client_streaming and not method.server_streaming


# -- every field through serialisation --------------------------------------------------------------------


def scalar(field: _d.FieldDescriptor, k: int) -> Any:
    """A value different from the default for a scalar field (k distinguishes the elements of a list)."""
    kind = field.type
    if kind == _d.FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values[-1].number
    if kind == _d.FieldDescriptor.TYPE_BOOL:
        return True
    if kind == _d.FieldDescriptor.TYPE_STRING:
        return f"{field.name}-{k}"
    if kind == _d.FieldDescriptor.TYPE_BYTES:
        return bytes([field.number, k, 255])
    if kind in (_d.FieldDescriptor.TYPE_FLOAT, _d.FieldDescriptor.TYPE_DOUBLE):
        return field.number + 0.25 + k  # exact in float32
    return -(field.number + k) if k % 2 else field.number + k


def fill(message: Message, choice: int, depth: int = 0) -> None:
    """Set every field of `message` (and of its sub-messages) to non-default values; in each oneof only
    its member number `choice` (modulo its size)."""
    descriptor = message.DESCRIPTOR
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and oneof.fields[choice % len(oneof.fields)] is not field:
            continue
        is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
        if is_map:
            key_field, value_field = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            target = getattr(message, field.name)
            for k in range(2):
                key = scalar(key_field, k)
                if value_field.message_type is not None:
                    fill(target[key], choice, depth + 1)
                else:
                    target[key] = scalar(value_field, k)
        elif field.is_repeated:
            target = getattr(message, field.name)
            for k in range(2):
                if field.message_type is not None:
                    fill(target.add(), choice, depth + 1)
                else:
                    target.append(scalar(field, k))
        elif field.message_type is not None:
            assert depth < 6, f"{descriptor.full_name} nests too deep"
            fill(getattr(message, field.name), choice, depth + 1)
        else:
            setattr(message, field.name, scalar(field, 0))


def set_fields(message: Message) -> set[str]:
    return {field.name for field, _ in message.ListFields()}


@pytest.mark.parametrize("name", sorted(MESSAGES))
def test_every_message_round_trips_with_every_field_set(name: str) -> None:
    descriptor = MESSAGES[name]
    cls = symbol_database.Default().GetSymbol(descriptor.full_name)
    choices = max([len(o.fields) for o in descriptor.oneofs] or [1])
    for choice in range(choices):
        original = cls()
        fill(original, choice)
        wire = original.SerializeToString()
        parsed = cls.FromString(wire)
        assert parsed == original
        assert parsed.SerializeToString(deterministic=True) == original.SerializeToString(deterministic=True)
        expected = {f.name for f in descriptor.fields if f.containing_oneof is None}
        expected |= {o.fields[choice % len(o.fields)].name for o in descriptor.oneofs}
        assert set_fields(parsed) == expected


# -- generated code ----------------------------------------------------------------------------------------


def test_checked_in_generated_code_is_up_to_date(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    protos = sorted(str(p.relative_to(REPO)) for p in PROTOCOL.glob("*.proto"))
    assert len(protos) == 3
    out = str(tmp_path)
    command = [sys.executable, "-m", "grpc_tools.protoc", "-I", "src", f"--python_out={out}", f"--pyi_out={out}"]
    subprocess.run([*command, f"--grpc_python_out={out}", *protos], cwd=REPO, check=True, capture_output=True)
    generated = sorted((tmp_path / "fledge" / "envs" / "unity" / "protocol").iterdir())
    names = [p.name for p in generated]
    assert names == sorted(
        f"{Path(p).stem}{suffix}" for p in protos for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
    )
    stale = [p.name for p in generated if p.read_bytes() != (PROTOCOL / p.name).read_bytes()]
    assert stale == [], f"regenerate with `make protocol`: {stale}"


# -- the fake player's encodings ---------------------------------------------------------------------------


def load_player() -> ModuleType:
    if "fake_player" in sys.modules:
        return sys.modules["fake_player"]
    spec = importlib.util.spec_from_file_location("fake_player", REPO / "tests" / "unity" / "fake_player.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fake_player"] = module
    spec.loader.exec_module(module)
    return module


def split_pngs(data: bytes) -> list[bytes]:
    """Concatenated PNG files, cut at the end of each IEND chunk."""
    signature, images, start = b"\x89PNG\r\n\x1a\n", [], 0
    while start < len(data):
        assert data[start : start + 8] == signature, f"no PNG signature at byte {start}"
        offset = start + 8
        while True:
            (length,) = struct.unpack_from(">I", data, offset)
            kind = data[offset + 4 : offset + 8]
            offset += 12 + length
            if kind == b"IEND":
                break
        images.append(data[start:offset])
        start = offset
    return images


def decode(observation: Any, channels: int) -> np.ndarray:
    """A PNG observation as float32 (C, H, W) in [0, 1]: pages channels-last / 255, concatenated, then the
    channel mapping applied (channels mapped to the same index averaged, -1 dropped)."""
    pages = [
        np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32) / 255.0
        for png in split_pngs(observation.compressed_data)
    ]
    stacked = np.concatenate([p[:, :, None] if p.ndim == 2 else p for p in pages], axis=2)
    mapping = list(observation.compressed_channel_mapping)
    if not mapping:
        hwc = stacked.mean(axis=2, keepdims=True) if channels == 1 else stacked[:, :, :channels]
    else:
        assert len(mapping) == stacked.shape[2]
        hwc = np.stack(
            [stacked[:, :, [k for k, m in enumerate(mapping) if m == c]].mean(axis=2) for c in range(channels)], axis=2
        )
    return np.moveaxis(hwc, -1, 0)


@pytest.mark.parametrize("channels", [1, 3, 4, 7])
def test_png_observation_decodes_to_the_uncompressed_one(channels: int) -> None:
    player = load_player()
    task = player.BallPlatforms(3)
    task.reset(np.arange(3), np.random.default_rng(5))
    task.step(np.ones((3, 2), dtype=np.float32))
    images = task.camera(channels)
    assert images.shape == (3, channels, 84, 84) and images.dtype == np.float32
    for image in images:
        compressed = player.png_observation(image)
        raw = player.vector_observation(image)
        assert (
            compressed.compression_type == observation_pb2.PNG
            and compressed.WhichOneof("observation_data") == "compressed_data"
        )
        assert list(compressed.shape) == list(raw.shape) == [channels, 84, 84]
        assert len(split_pngs(compressed.compressed_data)) == -(-channels // 3)
        expected = np.asarray(raw.float_data.data, dtype=np.float32).reshape(raw.shape)
        np.testing.assert_allclose(decode(compressed, channels), expected, atol=1 / 255)
        assert np.ptp(expected) > 0.5  # the picture is not blank
    if channels == 4:
        assert list(player.png_observation(images[0]).compressed_channel_mapping) == [0, 1, 2, 3, 3, 3]
    hwc = player.png_observation(images[0], layout="hwc")
    assert list(hwc.shape) == [84, 84, channels]


def test_player_side_channel_records_are_little_endian_uuids() -> None:
    player = load_player()
    engine = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
    blob = player.join_side_channels([(engine, struct.pack("<if", 2, 20.0)), (player.STATS_ID, b"")])
    assert blob[:4] == bytes([0x2C, 0x34, 0x51, 0xE9]) and blob[16:20] == struct.pack("<i", 8)
    assert player.split_side_channels(blob) == [(engine, struct.pack("<if", 2, 20.0)), (player.STATS_ID, b"")]
    with pytest.raises(ValueError, match="past the end"):
        player.split_side_channels(blob[:27])  # the first record is 20 + 8 bytes
    with pytest.raises(ValueError, match="truncated"):
        player.split_side_channels(blob[:-1])
    settings = player.EngineSettings()
    settings.apply(struct.pack("<if", 2, 20.0))
    settings.apply(struct.pack("<iii", 0, 64, 48))
    assert (settings.time_scale, settings.width, settings.height) == (20.0, 64, 48)
