"""ONNX export contract (spec section 7): golden input/output signature, parity with the torch policy,
masking, opsets, determinism of the file, and refusal to write a model that fails its check.

Regenerate the golden files with FLEDGE_UPDATE_GOLDEN=1 (then review the diff).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import fledge
from fledge.checkpoints import onnx as onnx_export
from fledge.checkpoints.onnx import (
    OP_TYPES,
    ExportError,
    describe_onnx,
    export_onnx,
    load_onnx_policy,
    reference_outputs,
)
from fledge.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from fledge.errors import FledgeError
from fledge.networks.actor_critic import (
    ActorCritic,
    NetworkShape,
    actor_graph,
    env_continuous_action,
    export_source,
    torch_actor_source,
)
from fledge.networks.actor_graph import ActorGraph, TorchActorSource
from fledge.networks.sac import SquashedActor
from fledge.networks.sac import actor_graph as sac_actor_graph
from fledge.trainers.policy import PolicySettings
from fledge.trainers.sac.policy import SACPolicy

GOLDEN = Path(__file__).parent / "golden"
OBS_SHAPES: tuple[tuple[int, ...], ...] = ((3,), (5,))
SPECS = {
    "continuous": ActionSpec(2, ()),
    "discrete": ActionSpec(0, (3, 2)),
    "hybrid": ActionSpec(2, (3,)),
}
# Operators found in ML-Agents 1.1.0 models (spec 7.3); every exported op must be one of them.
MLAGENTS_OPS = {
    "Add",
    "Clip",
    "Concat",
    "Constant",
    "Div",
    "Exp",
    "Gemm",
    "Identity",
    "Mul",
    "RandomNormalLike",
    "Sigmoid",
    "Sub",
    "Conv",
    "LeakyRelu",
    "LSTM",
    "Softmax",
    "Multinomial",
    "ArgMax",
    "Log",
    "Slice",
    "Reshape",
    "Squeeze",
    "Transpose",
    "Tanh",
    "MatMul",
    "Cast",
}


def make_model(
    spec: ActionSpec,
    *,
    layers: int = 2,
    hidden: int = 16,
    normalize: bool = True,
    obs_shapes: tuple[tuple[int, ...], ...] = OBS_SHAPES,
    seed: int = 0,
) -> tuple[ActorCritic, ActorGraph]:
    """An ActorCritic with non-trivial weights (biases, log_std) and, if normalised, updated statistics."""
    torch.manual_seed(seed)
    obs_size = sum(math.prod(s) for s in obs_shapes)
    model = ActorCritic(obs_size=obs_size, action_spec=spec, shape=NetworkShape(hidden, layers, normalize))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    if model.normalizer is not None:
        rng = np.random.default_rng(seed)
        loc, scale = rng.uniform(-3, 3, obs_size), rng.uniform(0.1, 4, obs_size)
        model.normalizer.update(rng.normal(loc, scale, (500, obs_size)))
    return model, actor_graph(model, obs_shapes)


def random_obs(graph: ActorGraph, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    out = []
    for shape in graph.observation_shapes:
        out.append(rng.normal(0.0, 4.0, (n, *shape)).astype(np.float32))
    return out


def random_masks(branches: tuple[int, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    masks = (rng.random((n, sum(branches))) < 0.5).astype(np.float32)
    start = 0
    for size in branches:
        masks[np.arange(n), start + rng.integers(0, size, n)] = 1.0
        start += size
    return masks


# -- golden contract --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(SPECS))
def test_golden_signature(kind: str, tmp_path: Path) -> None:
    _, graph = make_model(SPECS[kind])
    report = export_onnx(graph, tmp_path / f"{kind}.onnx")
    described = describe_onnx(report.path)
    metadata = described.pop("metadata")
    golden = GOLDEN / f"onnx_{kind}.json"
    if os.environ.get("FLEDGE_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(described, indent=2) + "\n")
    assert described == json.loads(golden.read_text())
    assert described["opset"] == 9 and described["ir_version"] == 4
    assert metadata["fledge_version"] == fledge.__version__
    spec = SPECS[kind]
    assert json.loads(metadata["action_spec"]) == {
        "continuous_size": spec.continuous_size,
        "discrete_branches": list(spec.discrete_branches),
    }
    proto = onnx.load(str(report.path))
    assert proto.producer_name == "fledge" and proto.doc_string
    assert report.inputs == tuple(i["name"] for i in described["inputs"])
    assert report.outputs == tuple(o["name"] for o in described["outputs"])


def test_op_types_within_mlagents_set(tmp_path: Path) -> None:
    assert OP_TYPES <= MLAGENTS_OPS
    used: set[str] = set()
    for spec in SPECS.values():
        for opset in (9, 13, 17):
            _, graph = make_model(spec, obs_shapes=((2, 3), (4,)))
            used |= set(describe_onnx(export_onnx(graph, tmp_path / "m.onnx", opset=opset).path)["op_types"])
    assert used <= OP_TYPES


def test_constants_are_identity_of_initializers(tmp_path: Path) -> None:
    _, graph = make_model(SPECS["hybrid"])
    proto = onnx.load(str(export_onnx(graph, tmp_path / "m.onnx").path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in proto.graph.initializer}
    producers = {n.output[0]: n for n in proto.graph.node}
    expect = {
        "version_number": [3.0],
        "memory_size": [0.0],
        "continuous_action_output_shape": [2.0],
        "discrete_action_output_shape": [[3.0]],
    }
    for name, value in expect.items():
        node = producers[name]
        assert node.op_type == "Identity"
        np.testing.assert_array_equal(inits[node.input[0]], np.array(value, np.float32))


# -- parity with the torch policy -------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("layers", [0, 1, 2])
@pytest.mark.parametrize("normalize", [False, True])
def test_parity_with_torch(kind: str, layers: int, normalize: bool, tmp_path: Path) -> None:
    spec = SPECS[kind]
    model, graph = make_model(spec, layers=layers, normalize=normalize, seed=layers)
    report = export_onnx(graph, tmp_path / "m.onnx")
    assert all(d <= 1e-5 for d in report.max_abs_diff.values())
    policy = load_onnx_policy(report.path)
    rng = np.random.default_rng(7)
    obs = random_obs(graph, 64, rng)
    masks = random_masks(spec.discrete_branches, 64, rng) if spec.discrete_branches else None
    cont, disc = policy.act(obs, masks, deterministic=True)
    x = torch.from_numpy(np.concatenate([o.reshape(64, -1) for o in obs], axis=1))
    allowed = torch.from_numpy(masks > 0) if masks is not None else None
    t_cont, t_disc = model.act(x, allowed, generator=None, deterministic=True)[:2]
    if spec.continuous_size:
        assert cont is not None and t_cont is not None
        np.testing.assert_allclose(cont, env_continuous_action(t_cont).numpy(), atol=1e-5, rtol=0)
        assert model.mu is not None
        mean = model.mu(model.features(model.normalize(x))[0])  # the same thing, spelled out
        np.testing.assert_allclose(cont, (torch.clamp(mean, -3, 3) / 3).detach().numpy(), atol=1e-5, rtol=0)
    else:
        assert cont is None
    if spec.discrete_branches:
        assert disc is not None and t_disc is not None and disc.dtype == np.int32
        np.testing.assert_array_equal(disc, t_disc.numpy())
    else:
        assert disc is None
    ref = reference_outputs(graph, obs, masks)
    if spec.continuous_size:
        assert cont is not None
        np.testing.assert_allclose(ref["deterministic_continuous_actions"], cont, atol=1e-5, rtol=0)


def test_masked_actions_never_sampled(tmp_path: Path) -> None:
    model, graph = make_model(SPECS["discrete"])
    policy = load_onnx_policy(export_onnx(graph, tmp_path / "m.onnx").path)
    rng = np.random.default_rng(1)
    n = 4000
    obs = [np.repeat(o, n, axis=0) for o in random_obs(graph, 1, rng)]
    masks = np.tile(np.array([[1, 0, 1, 0, 1]], np.float32), (n, 1))
    _, disc = policy.act(obs, masks)
    assert disc is not None and disc.shape == (n, 2)
    assert set(np.unique(disc[:, 0])) == {0, 2}  # both allowed actions occur, the masked one never
    assert model.logits is not None
    with torch.no_grad():  # and with the frequencies of the masked softmax
        x = torch.from_numpy(np.concatenate([o[:1] for o in obs], axis=1))
        logits = model.logits(model.features(model.normalize(x))[0])[0, [0, 2]]
        p0 = float(torch.softmax(logits, dim=0)[0])
    assert abs(float((disc[:, 0] == 0).mean()) - p0) < 0.035
    assert set(np.unique(disc[:, 1])) == {1}
    masks = random_masks(graph.discrete_branches, n, rng)
    _, disc = policy.act(random_obs(graph, n, rng), masks)
    assert disc is not None
    assert np.all(masks[np.arange(n), disc[:, 0]] == 1) and np.all(masks[np.arange(n), 3 + disc[:, 1]] == 1)
    _, disc = policy.act(random_obs(graph, 8, rng))  # no masks: all allowed
    assert disc is not None and np.all((disc >= 0) & (disc < np.array([3, 2])))


def test_stochastic_continuous_distribution(tmp_path: Path) -> None:
    model, _ = make_model(SPECS["continuous"], normalize=False)
    assert model.log_std is not None
    with torch.no_grad():
        model.log_std.copy_(torch.log(torch.tensor([0.3, 0.6])))
    graph = actor_graph(model, OBS_SHAPES)
    policy = load_onnx_policy(export_onnx(graph, tmp_path / "m.onnx").path)
    n = 20000
    obs = [np.zeros((n, 3), np.float32), np.zeros((n, 5), np.float32)]
    sample, _ = policy.act(obs)
    mean, _ = policy.act([o[:1] for o in obs], deterministic=True)
    assert sample is not None and mean is not None
    assert np.all(np.abs(sample) <= 1.0)
    raw = 3.0 * sample  # clipping at 3 is > 4 sigma away here
    np.testing.assert_allclose(raw.mean(axis=0), 3.0 * mean[0], atol=0.03)
    np.testing.assert_allclose(raw.std(axis=0), [0.3, 0.6], rtol=0.05)


# -- refusing bad models ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "output"),
    [
        ("continuous", "deterministic_continuous_actions"),
        ("discrete", "deterministic_discrete_actions"),
        ("hybrid", "version_number"),
        ("discrete", "discrete_action_output_shape"),
    ],
)
def test_tampered_reference_is_refused(kind: str, output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, graph = make_model(SPECS[kind])
    original = reference_outputs

    def tampered(*args: object, **kwargs: object) -> dict[str, np.ndarray]:
        out = original(*args, **kwargs)  # type: ignore[arg-type]
        if out[output].dtype == np.int64:
            out[output] = (out[output] + 1) % 2
        else:
            out[output] = out[output] + np.float32(1e-3)
        return out

    monkeypatch.setattr(onnx_export, "reference_outputs", tampered)
    target = tmp_path / "policy.onnx"
    target.write_bytes(b"previous file")
    with pytest.raises(ExportError, match=output) as info:
        export_onnx(graph, target)
    assert str(target) in str(info.value) and isinstance(info.value, FledgeError)
    assert target.read_bytes() == b"previous file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["policy.onnx"]
    export_onnx(graph, tmp_path / "unchecked.onnx", check=False)  # check=False skips the comparison


def test_invalid_graphs_are_refused(tmp_path: Path) -> None:
    _, graph = make_model(SPECS["hybrid"])
    bad = [
        ActorGraph(**{**graph.__dict__, "memory_size": 16}),
        ActorGraph(**{**graph.__dict__, "observation_shapes": ((3,), (4,))}),
        ActorGraph(**{**graph.__dict__, "log_std": None}),
        ActorGraph(**{**graph.__dict__, "discrete_branches": (2,)}),
        ActorGraph(**{**graph.__dict__, "continuous_size": 0, "discrete_branches": ()}),
    ]
    for g in bad:
        with pytest.raises(ExportError):
            export_onnx(g, tmp_path / "bad.onnx")
    for opset in (8, 18):
        with pytest.raises(ExportError, match="opset"):
            export_onnx(graph, tmp_path / "bad.onnx", opset=opset)
    assert not (tmp_path / "bad.onnx").exists()


# -- file properties and opsets ---------------------------------------------------------------------
def test_byte_identical_reexport(tmp_path: Path) -> None:
    model, graph = make_model(SPECS["hybrid"])
    a = export_onnx(graph, tmp_path / "a.onnx").path.read_bytes()
    b = export_onnx(actor_graph(model, OBS_SHAPES), tmp_path / "b.onnx", seed=5).path.read_bytes()
    assert a == b


@pytest.mark.parametrize("opset", list(range(9, 18)))
def test_opsets_load_and_match(opset: int, tmp_path: Path) -> None:
    _, graph = make_model(SPECS["hybrid"], obs_shapes=((2, 3), (4,)), seed=opset)
    report = export_onnx(graph, tmp_path / "m.onnx", opset=opset, samples=32)
    described = describe_onnx(report.path)
    assert described["opset"] == opset
    assert described["ir_version"] == {9: 4, 10: 5, 11: 6, 12: 7, 13: 7, 14: 7, 15: 8, 16: 8, 17: 8}[opset]
    assert described["inputs"][0] == {"name": "obs_0", "dtype": "float32", "shape": ["batch", 2, 3]}
    policy = load_onnx_policy(report.path)
    rng = np.random.default_rng(opset)
    obs, masks = random_obs(graph, 16, rng), random_masks((3,), 16, rng)
    cont, disc = policy.act(obs, masks, deterministic=True)
    assert cont is not None and disc is not None
    ref = reference_outputs(graph, obs, masks)
    np.testing.assert_allclose(cont, ref["deterministic_continuous_actions"], atol=1e-5, rtol=0)
    np.testing.assert_array_equal(disc, ref["deterministic_discrete_actions"])


def _sac_graph(transform: str, log_std_bias: float, mu_scale: float = 4.0) -> ActorGraph:
    rng = np.random.default_rng(3)

    def f(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.5, shape).astype(np.float32)

    return ActorGraph(
        observation_shapes=((6,),),
        hidden_layers=((f(6, 8), f(8)),),
        continuous_size=2,
        mu=(f(8, 2) * mu_scale, f(2) * mu_scale),
        log_std_head=(f(8, 2) * 0, np.full(2, log_std_bias, np.float32)),
        continuous_transform=transform,  # type: ignore[arg-type]
        extra={"trainer": "sac"},
    )


def test_sac_graph_tanh(tmp_path: Path) -> None:
    graph = _sac_graph("tanh", -1.0)
    report = export_onnx(graph, tmp_path / "sac.onnx")
    assert "Tanh" in describe_onnx(report.path)["op_types"]
    assert describe_onnx(report.path)["metadata"]["extra.trainer"] == "sac"
    policy = load_onnx_policy(report.path)
    obs = [np.random.default_rng(0).normal(0, 2, (256, 6)).astype(np.float32)]
    det, _ = policy.act(obs, deterministic=True)
    assert det is not None
    w1, b1 = graph.hidden_layers[0]
    z = obs[0].astype(np.float64) @ w1 + b1
    h = z / (1 + np.exp(-z))
    assert graph.mu is not None
    np.testing.assert_allclose(det, np.tanh(h @ graph.mu[0] + graph.mu[1]), atol=1e-5, rtol=0)
    sample, _ = policy.act(obs)
    assert sample is not None and np.all(np.abs(sample) <= 1.0 + 1e-6)  # ORT's Tanh can exceed 1 by 2e-7
    assert not np.allclose(sample, det)


def test_state_dependent_log_std_is_clipped(tmp_path: Path) -> None:
    # a log_std head that outputs 10 is clipped to 2: with std e^2 a fair share of raw samples stays
    # inside [-3, 3], while with std e^10 virtually none would
    graph = _sac_graph("clip3", 10.0, mu_scale=0.5)
    policy = load_onnx_policy(export_onnx(graph, tmp_path / "m.onnx").path)
    n = 20000
    obs = [np.zeros((n, 6), np.float32)]
    sample, _ = policy.act(obs)
    det, _ = policy.act([obs[0][:1]], deterministic=True)
    assert sample is not None and det is not None and np.all(np.abs(det) < 1)
    mean, std = 3.0 * det[0].astype(np.float64), math.exp(2.0)

    def cdf(x: float) -> float:
        return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))

    expected = [cdf((-3 - m) / std) + 1 - cdf((3 - m) / std) for m in mean]
    clipped = (np.abs(sample) >= 1.0).mean(axis=0)
    np.testing.assert_allclose(clipped, expected, atol=0.02)
    assert max(expected) < 0.9


def test_policy_refuses_wrong_inputs(tmp_path: Path) -> None:
    _, graph = make_model(SPECS["hybrid"])
    policy = load_onnx_policy(export_onnx(graph, tmp_path / "m.onnx").path)
    assert policy.observation_shapes == [(3,), (5,)]
    assert policy.continuous_size == 2 and policy.discrete_branches == (3,)
    with pytest.raises(ExportError, match="obs_1"):
        policy.act([np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)])
    with pytest.raises(ExportError, match="masks"):
        policy.act([np.zeros((2, 3), np.float32), np.zeros((2, 5), np.float32)], np.ones((2, 4)))
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"not a model")
    with pytest.raises(ExportError, match="cannot load"):
        load_onnx_policy(bogus)


# -- the general exporter (torch's), forced on networks the hand builder covers -------------------------
def assert_exports_agree(graph: ActorGraph, source: TorchActorSource, opset: int, tmp_path: Path) -> None:
    """The torch-exported source has the hand-built graph's inputs, outputs and metadata, the same
    deterministic actions in onnxruntime, and samples that stay in range and respect the masks."""
    hand = export_onnx(graph, tmp_path / "hand.onnx", opset=opset)
    traced = export_onnx(source, tmp_path / "torch.onnx", opset=opset, samples=32)
    assert all(d <= 1e-5 for d in traced.max_abs_diff.values())
    a, b = describe_onnx(hand.path), describe_onnx(traced.path)
    for key in ("ir_version", "opset", "producer_name", "inputs", "outputs", "metadata"):
        assert a[key] == b[key], key
    hand_policy, torch_policy = load_onnx_policy(hand.path), load_onnx_policy(traced.path)
    branches = graph.discrete_branches
    assert (torch_policy.continuous_size, torch_policy.discrete_branches) == (graph.continuous_size, branches)
    rng = np.random.default_rng(opset)
    obs = random_obs(graph, 64, rng)
    masks = random_masks(branches, 64, rng) if branches else None
    want_cont, want_disc = hand_policy.act(obs, masks, deterministic=True)
    got_cont, got_disc = torch_policy.act(obs, masks, deterministic=True)
    if graph.continuous_size:
        assert got_cont is not None and want_cont is not None
        np.testing.assert_allclose(got_cont, want_cont, atol=1e-5, rtol=0)
        sample, _ = torch_policy.act(obs, masks)
        # ORT's Tanh can exceed 1 by 2e-7
        assert sample is not None and np.all(np.abs(sample) <= 1.0 + 1e-6) and not np.allclose(sample, got_cont)
    if branches:
        assert got_disc is not None and want_disc is not None and masks is not None
        np.testing.assert_array_equal(got_disc, want_disc)
        _, sampled = torch_policy.act(obs, masks)
        assert sampled is not None
        offsets = np.concatenate([[0], np.cumsum(branches)[:-1]])
        assert np.all(masks[np.arange(64)[:, None], sampled + offsets] == 1)


@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("opset", [9, 17])
def test_torch_export_equals_the_hand_built_graph(kind: str, opset: int, tmp_path: Path) -> None:
    shapes = ((2, 3), (4,))
    model, graph = make_model(SPECS[kind], obs_shapes=shapes, seed=opset)
    assert_exports_agree(graph, torch_actor_source(model, shapes), opset, tmp_path)


@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize("opset", [9, 17])
def test_sac_policy_torch_export_equals_the_hand_built_graph(
    kind: str, opset: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = BehaviorSpec([ObservationSpec.vector(n) for (n,) in OBS_SHAPES], SPECS[kind])
    settings = PolicySettings("B", spec, hidden_units=16, num_layers=2, normalize=True, signal_names=("extrinsic",))
    policy = SACPolicy(settings, torch_seed=opset, rng=np.random.default_rng(0))
    with torch.no_grad():  # non-trivial weights (the heads' biases start at zero) and normaliser
        for p in policy.nets.policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    assert policy.normalizer is not None
    policy.normalizer.update(np.random.default_rng(opset).normal(1.0, 3.0, (500, 8)))
    graph = policy.actor_graph()
    assert isinstance(graph, ActorGraph) and graph.continuous_transform == "tanh"
    monkeypatch.setattr(SquashedActor, "vector_mlp", property(lambda self: False))
    with pytest.raises(ValueError):
        sac_actor_graph(policy.nets, OBS_SHAPES)
    source = policy.actor_graph()
    assert isinstance(source, TorchActorSource) and source.continuous_transform == "tanh"
    assert_exports_agree(graph, source, opset, tmp_path)


def test_export_source_falls_back_to_torch_for_uncovered_networks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, _ = make_model(SPECS["hybrid"])
    assert isinstance(export_source(model, OBS_SHAPES), ActorGraph)
    monkeypatch.setattr(ActorCritic, "vector_mlp", property(lambda self: False))
    with pytest.raises(ValueError):
        actor_graph(model, OBS_SHAPES)
    source = export_source(model, OBS_SHAPES)
    assert isinstance(source, TorchActorSource)
    report = export_onnx(source, tmp_path / "m.onnx")
    assert report.outputs == tuple(o["name"] for o in json.loads((GOLDEN / "onnx_hybrid.json").read_text())["outputs"])


def test_torch_export_is_checked_before_it_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, _ = make_model(SPECS["continuous"])
    original = onnx_export.torch_reference

    def tampered(*args: object) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        out, masked = original(*args)  # type: ignore[arg-type]
        out["deterministic_continuous_actions"] = out["deterministic_continuous_actions"] + np.float32(1e-3)
        return out, masked

    monkeypatch.setattr(onnx_export, "torch_reference", tampered)
    with pytest.raises(ExportError, match="deterministic_continuous_actions"):
        export_onnx(torch_actor_source(model, OBS_SHAPES), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
