"""ONNX contract (spec 7) for policies with encoders: a visual + vector + entity + goal behavior exports
one obs_<i> input per observation in BehaviorSpec order with its real shape (visual NCHW, entities
[batch, n, size], vectors [batch, n]), float32, the contract's outputs, and the deterministic outputs
equal the torch module's within 1e-5 in onnxruntime (absent entities included)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fledge.checkpoints.onnx import describe_onnx, export_onnx, load_onnx_policy
from fledge.envs.api import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from fledge.networks.actor_graph import TorchActorSource
from fledge.trainers.policy import PolicySettings
from fledge.trainers.ppo.policy import PPOPolicy
from fledge.trainers.sac.policy import SACPolicy

D = DimensionProperty
SPECS = [
    ObservationSpec((3, 20, 24), (D.NONE, D.TRANSLATIONAL_EQUIVARIANCE, D.TRANSLATIONAL_EQUIVARIANCE), name="cam"),
    ObservationSpec.vector(4),
    ObservationSpec((5, 6), (D.VARIABLE_SIZE, D.NONE), name="buffer"),
    ObservationSpec((2,), (D.NONE,), ObservationType.GOAL_SIGNAL, "goal"),
]
ACTIONS = ActionSpec(2, (3, 2))


def policy(kind: str, encoder: str) -> PPOPolicy | SACPolicy:
    settings = PolicySettings(
        behavior_name="B",
        spec=BehaviorSpec(SPECS, ACTIONS),
        hidden_units=16,
        num_layers=2,
        normalize=True,
        signal_names=("extrinsic",),
        vis_encode_type=encoder,
    )
    cls = PPOPolicy if kind == "ppo" else SACPolicy
    built = cls.build(settings, None, seed=0, device=None)
    norm = built.normalizer
    assert norm is not None
    norm.update(np.random.default_rng(1).normal(2.0, 3.0, size=(64, settings.obs_size)))
    return built


def inputs(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = [rng.random((n, *s.shape)).astype(np.float32) * 2 - 0.5 for s in SPECS]
    for i in range(n):  # i % 6 entities present, the rest padding
        obs[2][i, i % 6 :] = 0.0
    masks = np.ones((n, 5), np.float32)
    masks[::2, 0] = 0.0
    masks[1::3, 4] = 0.0
    return obs, masks


@pytest.mark.parametrize(("kind", "encoder"), [("ppo", "simple"), ("sac", "resnet"), ("ppo", "fully_connected")])
def test_encoder_policy_onnx_names_shapes_and_parity(tmp_path: Path, kind: str, encoder: str) -> None:
    pol = policy(kind, encoder)
    source = pol.actor_graph()
    assert isinstance(source, TorchActorSource)  # the torch exporter path for networks with encoders
    path = tmp_path / "policy.onnx"
    report = export_onnx(source, path)
    assert all(d <= 1e-5 for d in report.max_abs_diff.values()), report.max_abs_diff

    info = describe_onnx(path)
    assert [(i["name"], i["dtype"], i["shape"][1:]) for i in info["inputs"]] == [
        ("obs_0", "float32", [3, 20, 24]),
        ("obs_1", "float32", [4]),
        ("obs_2", "float32", [5, 6]),
        ("obs_3", "float32", [2]),
        ("action_masks", "float32", [5]),
    ]
    assert all(isinstance(i["shape"][0], str) for i in info["inputs"])  # dynamic batch
    assert [(o["name"], o["dtype"]) for o in info["outputs"]] == [
        ("version_number", "float32"),
        ("memory_size", "float32"),
        ("continuous_actions", "float32"),
        ("continuous_action_output_shape", "float32"),
        ("deterministic_continuous_actions", "float32"),
        ("discrete_actions", "int64"),
        ("discrete_action_output_shape", "float32"),
        ("deterministic_discrete_actions", "int64"),
    ]
    assert info["opset"] == 9
    assert info["metadata"]["normalize"] == "true"

    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    obs, masks = inputs(12, seed=2)
    feeds = {f"obs_{i}": o for i, o in enumerate(obs)} | {"action_masks": masks}
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))

    module = source.module
    x = torch.cat([torch.from_numpy(o).flatten(1) for o in obs], dim=1)
    with torch.no_grad():
        mean, _, logits = module.action_parameters(x)  # type: ignore[operator]
    assert mean is not None and logits is not None
    want_cont = torch.tanh(mean) if kind == "sac" else torch.clamp(mean, -3, 3) / 3
    np.testing.assert_allclose(got["deterministic_continuous_actions"], want_cont.numpy(), rtol=0, atol=1e-5)
    masked = logits.numpy() * masks - 1e8 * (1 - masks)
    want_disc = np.stack([masked[:, :3].argmax(1), masked[:, 3:].argmax(1)], axis=1)
    np.testing.assert_array_equal(got["deterministic_discrete_actions"], want_disc)
    assert np.all(masks[np.arange(12), got["discrete_actions"][:, 0]] == 1)  # samples respect the masks
    np.testing.assert_array_equal(got["memory_size"], [0.0])
    np.testing.assert_array_equal(got["discrete_action_output_shape"], [[3.0, 2.0]])

    # the torch policy acting on the same flat rows decides as the exported graph does
    pol.deterministic = True
    out = pol.act(x.numpy(), masks.astype(bool))
    np.testing.assert_array_equal(out.discrete, want_disc)
    sent = pol.env_actions(out).continuous
    np.testing.assert_allclose(sent, got["deterministic_continuous_actions"], rtol=0, atol=1e-5)

    played = load_onnx_policy(path)  # what `fledge play` runs
    assert played.observation_shapes == [tuple(s.shape) for s in SPECS]
    cont, disc = played.act(obs, masks, deterministic=True)
    np.testing.assert_array_equal(disc, want_disc)
