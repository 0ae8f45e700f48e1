"""Observation encoders inside the NetworkBody (spec 1.1 selection, 8.1 layer tables): layout of the flat
row, each visual encoder's output and parameters, the minimum-resolution error, entity masking, goal
conditioning (hyper and none), the normaliser on vector columns only, and the accelerators' refusal of
anything but vector MLPs."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from fledge.checkpoints.export import observation_specs_of
from fledge.config import build_run_options
from fledge.envs.api import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from fledge.errors import ConfigError
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.networks.body import NetworkBody
from fledge.networks.dense import DenseStack
from fledge.networks.encoders.entity import EntityEncoder
from fledge.networks.encoders.goal import ConditionedStack, HyperLayer
from fledge.networks.encoders.layout import ObservationLayout
from fledge.networks.encoders.visual import MIN_RESOLUTION, VISUAL_ENCODERS, visual_encoder
from fledge.networks.numpy_actor import NumpyActor
from fledge.networks.sac import SACNetworks, SACShape
from fledge.networks.sac_numpy import NumpySACActor
from fledge.trainers.policy import PolicySettings
from fledge.trainers.ppo import fast_gradients
from fledge.trainers.ppo.policy import PPOPolicy
from fledge.trainers.sac import fast_update
from fledge.trainers.settings import warn_unused_encoders

D = DimensionProperty
VISUAL = (D.NONE, D.TRANSLATIONAL_EQUIVARIANCE, D.TRANSLATIONAL_EQUIVARIANCE)
ENTITY = (D.VARIABLE_SIZE, D.NONE)


def visual(c: int, h: int, w: int, name: str = "camera") -> ObservationSpec:
    return ObservationSpec((c, h, w), VISUAL, ObservationType.DEFAULT, name)


def entities(n: int, size: int) -> ObservationSpec:
    return ObservationSpec((n, size), ENTITY, ObservationType.DEFAULT, "buffer")


def goal(size: int) -> ObservationSpec:
    return ObservationSpec((size,), (D.NONE,), ObservationType.GOAL_SIGNAL, "goal")


MIXED = [visual(1, 20, 20), ObservationSpec.vector(4), entities(3, 5), goal(2)]


def shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in module.named_parameters()}


# -- layout ------------------------------------------------------------------------------------------
def test_layout_splits_the_flat_row_by_kind() -> None:
    layout = ObservationLayout.of(MIXED)
    assert [s.kind for s in layout.slots] == ["visual", "vector", "entity", "vector"]
    assert [(s.start, s.stop) for s in layout.slots] == [(0, 400), (400, 404), (404, 419), (419, 421)]
    assert layout.size == 421 and [s.goal for s in layout.slots] == [False, False, False, True]
    assert layout.vector_columns == (400, 401, 402, 403, 419, 420)
    # no dimension properties (as some players send): all unspecified -> visual for rank 3
    assert ObservationLayout.of([ObservationSpec((3, 8, 8), ())]).slots[0].kind == "visual"


@pytest.mark.parametrize(
    "spec",
    [
        ObservationSpec((4, 5), (D.NONE, D.NONE), name="grid"),
        ObservationSpec((3, 8, 8), (D.VARIABLE_SIZE, D.NONE, D.NONE), name="grid"),
        ObservationSpec((2, 3, 4, 5), (D.NONE,) * 4, name="grid"),
    ],
)
def test_unsupported_sensors_are_refused_naming_the_observation(spec: ObservationSpec) -> None:
    with pytest.raises(ConfigError, match=r"Observation 1 \('grid'\): unsupported sensor"):
        ObservationLayout.of([ObservationSpec.vector(2), spec])
    ps = PolicySettings(
        behavior_name="B",
        spec=BehaviorSpec([ObservationSpec.vector(2), spec], ActionSpec(1, ())),
        hidden_units=8,
        num_layers=1,
        normalize=False,
        signal_names=("extrinsic",),
    )
    with pytest.raises(ConfigError, match="Behavior 'B': Observation 1"):
        _ = ps.obs_size


# -- visual encoders ---------------------------------------------------------------------------------
H = 32
VISUAL_TABLE: dict[str, tuple[tuple[int, int, int], dict[str, tuple[int, ...]]]] = {
    # 40 -> 9 -> 3 and 44 -> 10 -> 4: 32 * 3 * 4 = 384
    "simple": (
        (3, 40, 44),
        {
            "conv.0.weight": (16, 3, 8, 8),
            "conv.0.bias": (16,),
            "conv.2.weight": (32, 16, 4, 4),
            "conv.2.bias": (32,),
            "dense.weight": (H, 384),
            "dense.bias": (H,),
        },
    ),
    # 40 -> 9 -> 3 -> 1 and 44 -> 10 -> 4 -> 2: 64 * 1 * 2 = 128
    "nature_cnn": (
        (3, 40, 44),
        {
            "conv.0.weight": (32, 3, 8, 8),
            "conv.0.bias": (32,),
            "conv.2.weight": (64, 32, 4, 4),
            "conv.2.bias": (64,),
            "conv.4.weight": (64, 64, 3, 3),
            "conv.4.bias": (64,),
            "dense.weight": (H, 128),
            "dense.bias": (H,),
        },
    ),
    # 5 -> 3 -> 1 and 6 -> 4 -> 2: 144 * 1 * 2 = 288
    "match3": (
        (3, 5, 6),
        {
            "conv.0.weight": (35, 3, 3, 3),
            "conv.0.bias": (35,),
            "conv.2.weight": (144, 35, 3, 3),
            "conv.2.bias": (144,),
            "dense.weight": (H, 288),
            "dense.bias": (H,),
        },
    ),
    "fully_connected": ((3, 2, 2), {"dense.weight": (H, 12), "dense.bias": (H,)}),
}


def resnet_table() -> dict[str, tuple[int, ...]]:
    """Stacks of 16, 32, 32 channels: conv, pool, two residual blocks each; 15 -> 7 -> 3 -> 1 (16 too)."""
    out: dict[str, tuple[int, ...]] = {}
    c = 3
    for i, channels in enumerate((16, 32, 32)):
        out[f"stacks.{4 * i}.weight"] = (channels, c, 3, 3)
        out[f"stacks.{4 * i}.bias"] = (channels,)
        for block in (1, 2):
            for conv in ("conv1", "conv2"):
                out[f"stacks.{4 * i + 1 + block}.{conv}.weight"] = (channels, channels, 3, 3)
                out[f"stacks.{4 * i + 1 + block}.{conv}.bias"] = (channels,)
        c = channels
    out["dense.weight"] = (H, 32)
    out["dense.bias"] = (H,)
    return out


@pytest.mark.parametrize("encoder", VISUAL_ENCODERS)
def test_visual_encoder_output_and_parameters_follow_the_table(encoder: str) -> None:
    if encoder == "resnet":
        shape, table = (3, 15, 16), resnet_table()
    else:
        shape, table = VISUAL_TABLE[encoder]
    torch.manual_seed(0)
    module = visual_encoder(encoder, shape, H)
    assert shapes(module) == table
    out = module(torch.rand(5, *shape))
    assert out.shape == (5, H) and torch.isfinite(out).all()
    if encoder == "resnet":
        assert (out >= 0).all()  # ReLU after the dense layer
    dense = module.dense  # He-normal with gain 1.41, zero bias
    assert torch.count_nonzero(dense.bias) == 0
    std = float(dense.weight.detach().std())
    assert abs(std - 1.41 / math.sqrt(dense.weight.shape[1])) < 0.2 * std


@pytest.mark.parametrize("encoder", VISUAL_ENCODERS)
def test_visual_observations_below_the_minimum_resolution_are_refused(encoder: str) -> None:
    least = MIN_RESOLUTION[encoder]
    visual_encoder(encoder, (1, least, least), 8)  # the minimum itself is fine
    if least == 1:
        return
    for h, w in ((least - 1, least), (least, least - 1)):
        with pytest.raises(ConfigError) as info:
            NetworkBody(
                observation_specs=[ObservationSpec.vector(2), visual(3, h, w, "cam")],
                hidden_units=8,
                num_layers=1,
                normalize=False,
                vis_encode_type=encoder,
            )
        message = str(info.value)
        assert f"Observation 1 ('cam') of shape (3, {h}, {w})" in message
        assert f"resolution ({w}x{h}) is too small for the provided EncoderType ({encoder})" in message
        assert f"The min dimension is {least}" in message


# -- entities ----------------------------------------------------------------------------------------
def test_entity_encoder_parameters_and_output() -> None:
    enc = EntityEncoder((5, 7), self_size=4)
    assert shapes(enc) == {
        "embeddings.0.weight": (128, 9),
        "embeddings.0.bias": (128,),
        "embeddings.1.weight": (128, 11),
        "embeddings.1.bias": (128,),
        **{f"{n}.weight": (128, 128) for n in ("q", "k", "v", "out")},
        **{f"{n}.bias": (128,) for n in ("q", "k", "v", "out")},
    }
    out = enc([torch.randn(6, 3, 5), torch.randn(6, 2, 7)], torch.randn(6, 4))
    assert out.shape == (6, 128)


def test_absent_entities_change_nothing() -> None:
    torch.manual_seed(1)
    enc = EntityEncoder((5,), self_size=3)
    x_self = torch.randn(4, 3)
    present = torch.randn(4, 2, 5)
    padded = torch.cat([present[:, :1], torch.zeros(4, 1, 5), present[:, 1:], torch.zeros(4, 2, 5)], dim=1)
    with torch.no_grad():
        base = enc([present], x_self)
        torch.testing.assert_close(enc([padded], x_self), base, rtol=0, atol=1e-6)
        swapped = enc([present.flip(1)], x_self)  # unordered: the order of the entities does not matter
        torch.testing.assert_close(swapped, base, rtol=0, atol=1e-5)
        moved = present.clone()
        moved[:, 1] += 1.0
        assert not torch.allclose(enc([moved], x_self), base)  # a present entity does matter
        nothing = enc([torch.zeros(4, 3, 5)], x_self)  # every entity absent: pooled features are zero
        assert torch.isfinite(nothing).all() and float(nothing.abs().max()) == 0.0


def test_the_body_masks_padded_entities_in_the_flat_row() -> None:
    torch.manual_seed(2)
    body = NetworkBody(
        observation_specs=[ObservationSpec.vector(3), entities(4, 5)], hidden_units=16, num_layers=2, normalize=False
    )
    vec, ents = torch.randn(2, 3), torch.randn(2, 4, 5)
    ents[:, 2:] = 0.0
    row = torch.cat([vec, ents.flatten(1)], dim=1)
    other = ents.clone()
    other[:, [0, 1, 2, 3]] = ents[:, [3, 1, 0, 2]]  # same present entities, padding elsewhere
    row2 = torch.cat([vec, other.flatten(1)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(body(row2), body(row), rtol=0, atol=1e-5)
    assert body.out_size == 16 and body.towers is not None and body.towers[0].n_in == 3 + 128


# -- goal conditioning -------------------------------------------------------------------------------
def test_hyper_goal_conditioning_replaces_the_last_layer() -> None:
    specs = [ObservationSpec.vector(4), goal(3)]
    body = NetworkBody(observation_specs=specs, hidden_units=16, num_layers=2, normalize=False, copies=2)
    assert body.conditioned and not body.plain and body.towers is not None
    tower = body.towers[0]
    assert isinstance(tower.dense, ConditionedStack) and tower.n_in == 4 and tower.goal_size == 3
    assert shapes(tower.dense) == {
        "head.w_in": (4, 16),
        "head.b_in": (16,),
        "hyper.bias": (16,),
        "hyper.hyper_in.weight": (16, 3),
        "hyper.hyper_in.bias": (16,),
        "hyper.hyper_hidden.weight": (16, 16),
        "hyper.hyper_hidden.bias": (16,),
        "hyper.hyper_out.weight": (16 * 16, 16),
        "hyper.hyper_out.bias": (16 * 16,),
    }
    bound = math.sqrt(1.0 / (16 * 16))
    assert float(tower.dense.hyper.hyper_out.weight.detach().abs().max()) <= bound
    row = torch.randn(5, 7)
    out = body(row)
    assert out.shape == (2, 5, 16)
    other_goal = row.clone()
    other_goal[:, 4:] += 1.0
    assert not torch.allclose(body(other_goal), out)
    one = NetworkBody(observation_specs=specs, hidden_units=16, num_layers=1, normalize=False)
    assert one.towers is not None and shapes(one.towers[0].dense)["hyper.hyper_out.weight"] == (4 * 16, 16)


def test_none_goal_conditioning_concatenates_the_goal() -> None:
    specs = [ObservationSpec.vector(4), goal(3)]
    body = NetworkBody(
        observation_specs=specs, hidden_units=16, num_layers=2, normalize=False, goal_conditioning_type="none"
    )
    assert body.plain and isinstance(body.dense, DenseStack) and body.dense.n_in == 7
    assert body(torch.randn(5, 7)).shape == (1, 5, 16)
    visual_goal = NetworkBody(
        observation_specs=[visual(1, 20, 20), goal(3)],
        hidden_units=16,
        num_layers=2,
        normalize=False,
        goal_conditioning_type="none",
    )
    assert visual_goal.towers is not None and visual_goal.towers[0].n_in == 16 + 3
    # hyper without dense layers has nothing to replace: goals are concatenated
    flat = NetworkBody(observation_specs=specs, hidden_units=16, num_layers=0, normalize=False)
    assert flat.plain and flat.out_size == 7


def test_hyper_layer_matches_a_hand_computation() -> None:
    torch.manual_seed(3)
    layer = HyperLayer(3, 2, 4, 5)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -0.25]))
    x, g = torch.randn(6, 3), torch.randn(6, 4)
    p = {k: v.detach().double().numpy() for k, v in layer.named_parameters()}
    xn, gn = x.double().numpy(), g.double().numpy()

    def silu(z: np.ndarray) -> np.ndarray:
        return z / (1.0 + np.exp(-z))

    h = silu(gn @ p["hyper_in.weight"].T + p["hyper_in.bias"])
    h = silu(h @ p["hyper_hidden.weight"].T + p["hyper_hidden.bias"])
    h = (h - h.mean(1, keepdims=True)) / np.sqrt(h.var(1, keepdims=True) + 1e-5)
    w = (h @ p["hyper_out.weight"].T + p["hyper_out.bias"]).reshape(6, 3, 2)
    want = np.einsum("bi,bio->bo", xn, w) + p["bias"]
    np.testing.assert_allclose(layer(x, g).detach().numpy(), want, rtol=1e-4, atol=1e-5)


# -- the normaliser ----------------------------------------------------------------------------------
def test_the_normaliser_covers_vector_columns_only() -> None:
    specs = [ObservationSpec.vector(2), visual(1, 20, 20), ObservationSpec.vector(3)]
    body = NetworkBody(observation_specs=specs, hidden_units=8, num_layers=1, normalize=True)
    norm = body.normalizer
    assert norm is not None and norm.size == 5
    rng = np.random.default_rng(0)
    rows = rng.normal(3.0, 2.0, size=(50, 405)).astype(np.float32)
    norm.update(rows)  # whole rows: the normaliser takes its columns
    vec = np.concatenate([rows[:, :2], rows[:, 402:]], axis=1).astype(np.float64)
    np.testing.assert_allclose(norm.arrays.mean, vec.mean(0), rtol=1e-10)
    np.testing.assert_allclose(norm.variance(), vec.var(0), rtol=1e-10)
    x = torch.from_numpy(rows[:7])
    out = body.encode(x).numpy()
    want = np.clip((vec[:7] - vec.mean(0)) / np.sqrt(vec.var(0) + 1e-8), -5, 5)
    np.testing.assert_allclose(out[:, :2], want[:, :2], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, 402:], want[:, 2:], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(out[:, 2:402], rows[:7, 2:402])  # pixels untouched
    scale, offset = body.encoder.row_scale_offset()  # type: ignore[misc]
    assert scale.shape == (405,) and np.all(scale[2:402] == 1) and np.all(offset[2:402] == 0)
    only_pixels = NetworkBody(observation_specs=[visual(1, 20, 20)], hidden_units=8, num_layers=1, normalize=True)
    assert only_pixels.normalizer is None


def test_vector_only_networks_are_unchanged() -> None:
    """Several vector observations build exactly the network one vector of their total size builds."""
    shape = NetworkShape(hidden_units=16, num_layers=2, normalize=True)
    torch.manual_seed(4)
    old = ActorCritic(obs_size=8, action_spec=ActionSpec(2, (3,)), shape=shape)
    torch.manual_seed(4)
    new = ActorCritic(
        observation_specs=[ObservationSpec.vector(3), ObservationSpec.vector(5)],
        action_spec=ActionSpec(2, (3,)),
        shape=shape,
    )
    assert new.vector_mlp and NumpyActor.covers(new) and fast_gradients.covers(new)
    a, b = old.state_dict(), new.state_dict()
    assert list(a) == list(b)
    assert [k for k in a if k.startswith("normalizer.")] == [
        "normalizer.count",
        "normalizer.mean",
        "normalizer.m2",
        "normalizer.offset",
        "normalizer.scale",
    ]
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    torch.manual_seed(5)
    sac_old = SACNetworks(SACShape(obs_size=8, continuous_size=2, branches=()))
    torch.manual_seed(5)
    sac_new = SACNetworks(
        SACShape(
            obs_size=8,
            continuous_size=2,
            branches=(),
            observations=(ObservationSpec.vector(3), goal(5)),
            goal_conditioning_type="none",
        )
    )
    assert fast_update.covers(sac_new) and NumpySACActor.covers(sac_new)
    for (ka, va), (kb, vb) in zip(sac_old.state_dict().items(), sac_new.state_dict().items()):
        assert ka == kb
        torch.testing.assert_close(va, vb, rtol=0, atol=0)


# -- accelerators, policies, checkpoints -------------------------------------------------------------
def _settings(specs: list[ObservationSpec], action: ActionSpec, **kwargs: object) -> PolicySettings:
    return PolicySettings(
        behavior_name="B",
        spec=BehaviorSpec(specs, action),
        hidden_units=16,
        num_layers=2,
        normalize=True,
        signal_names=("extrinsic",),
        **kwargs,  # type: ignore[arg-type]
    )


def test_accelerators_cover_vector_mlps_only() -> None:
    for specs in ([visual(1, 20, 20), ObservationSpec.vector(2)], [ObservationSpec.vector(2), entities(3, 4)]):
        model = ActorCritic(observation_specs=specs, action_spec=ActionSpec(1, (2,)), shape=NetworkShape(16, 2, True))
        assert not model.vector_mlp and not NumpyActor.covers(model) and not fast_gradients.covers(model)
        nets = SACNetworks(
            SACShape(
                obs_size=ObservationLayout.of(specs).size,
                continuous_size=1,
                branches=(2,),
                observations=tuple(specs),
            )
        )
        assert not nets.vector_mlp and not NumpySACActor.covers(nets) and not fast_update.covers(nets)
        assert nets.q.body is not None and nets.value.body is not None


def test_sac_q_reads_the_action_and_detached_q_keeps_its_weights_out_of_the_gradient() -> None:
    specs = (visual(1, 20, 20), ObservationSpec.vector(2))
    nets = SACNetworks(SACShape(obs_size=402, continuous_size=2, branches=(), hidden_units=16, observations=specs))
    x = torch.rand(4, 402)
    action = torch.zeros(4, 2, requires_grad=True)
    q = nets.q(torch.cat([x, action], dim=1), detached=True)
    assert q.shape == (2, 4, 1, 1)
    q.sum().backward()
    assert action.grad is not None and float(action.grad.abs().sum()) > 0
    assert all(p.grad is None for p in nets.q.parameters())
    nets.q(torch.cat([x, action.detach()], dim=1)).sum().backward()
    assert all(p.grad is not None for p in nets.q.parameters())


def test_an_encoder_policy_state_round_trips() -> None:
    settings = _settings(MIXED, ActionSpec(2, (3,)))
    policy = PPOPolicy.build(settings, None, seed=0, device=None)
    assert policy.settings.obs_size == 421
    state = policy.policy_state()
    assert any(k.startswith("policy.towers.0.visual.0.conv.0") for k in state)
    assert "policy.normalizer.mean" in state and state["policy.normalizer.mean"].shape == (6,)
    torch.manual_seed(9)
    other = PPOPolicy.build(settings, None, seed=1, device=None)
    other.load_policy_state(state)
    obs = np.random.default_rng(0).random((3, 421)).astype(np.float32)
    policy.deterministic = other.deterministic = True
    a, b = policy.act(obs, None), other.act(obs, None)
    np.testing.assert_array_equal(a.continuous, b.continuous)
    np.testing.assert_array_equal(a.discrete, b.discrete)
    np.testing.assert_array_equal(policy.values(obs), other.values(obs))


def test_fingerprints_rebuild_the_observation_specs() -> None:
    fp = {
        "observation_shapes": [list(s.shape) for s in MIXED],
        "observation_kinds": [[[int(p) for p in s.dimension_property], int(s.observation_type)] for s in MIXED],
    }
    rebuilt = observation_specs_of(fp)
    assert [(s.shape, s.dimension_property, s.observation_type) for s in rebuilt] == [
        (s.shape, s.dimension_property, s.observation_type) for s in MIXED
    ]
    old = observation_specs_of({"observation_shapes": [[3], [5]]})  # before the encoders: vectors only
    assert old == [ObservationSpec.vector(3), ObservationSpec.vector(5)]


def test_features_of_the_actor_alone_equal_the_first_copy() -> None:
    model = ActorCritic(observation_specs=MIXED, action_spec=ActionSpec(2, ()), shape=NetworkShape(16, 2, False))
    x = torch.rand(3, 421)
    with torch.no_grad():
        both = model.body.features(x)
        first = model.body.features(x, first_only=True)
    assert both.shape == (2, 3, 16) and first.shape == (1, 3, 16)
    torch.testing.assert_close(first[0], both[0])
    assert not torch.allclose(both[0], both[1])  # the critic has its own encoders


def test_encoder_settings_a_behavior_never_reaches_are_warned(caplog: pytest.LogCaptureFixture) -> None:
    settings = build_run_options(
        {"default_settings": {"network_settings": {"vis_encode_type": "resnet", "goal_conditioning_type": "none"}}}
    ).behavior_settings("B")
    vector_only = BehaviorSpec([ObservationSpec.vector(3)], ActionSpec(1, ()))
    with caplog.at_level(logging.WARNING, logger="fledge"):
        warn_unused_encoders("B", vector_only, settings)
    messages = [r.getMessage() for r in caplog.records]
    assert any("network_settings.vis_encode_type: 'resnet' has no effect here" in m for m in messages)
    assert any("network_settings.goal_conditioning_type: 'none' has no effect here" in m for m in messages)
    caplog.clear()
    camera_and_goal = BehaviorSpec(
        [
            ObservationSpec((3, 20, 20), (DimensionProperty.NONE,) + (DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,) * 2,
                            ObservationType.DEFAULT, "camera"),
            ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.GOAL_SIGNAL, "goal"),
        ],
        ActionSpec(0, (5,)),
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="fledge"):
        warn_unused_encoders("B", camera_and_goal, settings)
    assert not caplog.records
