"""ONNX export of recurrent policies (spec 7): `recurrent_in` / `recurrent_out` [batch, 1, memory_size]
float32 (h then c), the `memory_size` constant, and onnxruntime equal to the torch policy over 20 steps
with the memory carried (1e-5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fledge.checkpoints.onnx import ExportError, describe_onnx, export_onnx, load_onnx_policy
from fledge.checkpoints.onnx_torch import torch_reference
from fledge.envs.api import ActionSpec
from fledge.networks.actor_critic import ActorCritic, NetworkShape, export_source
from fledge.networks.actor_graph import TorchActorSource

OBS_SHAPES: tuple[tuple[int, ...], ...] = ((3,), (5,))
MEMORY = 12
SPECS = {"continuous": ActionSpec(2, ()), "discrete": ActionSpec(0, (3, 2)), "hybrid": ActionSpec(2, (3,))}
MLAGENTS_OPS = {
    "Add", "Clip", "Concat", "Constant", "Div", "Exp", "Gemm", "Identity", "Mul", "RandomNormalLike", "Sigmoid",
    "Sub", "Conv", "LeakyRelu", "LSTM", "Softmax", "Multinomial", "ArgMax", "Log", "Slice", "Reshape", "Squeeze",
    "Transpose", "Tanh", "MatMul", "Cast", "Gather", "Unsqueeze", "Shape",  # the last three: slicing, reshapes
}  # fmt: skip


def recurrent_model(spec: ActionSpec, *, normalize: bool = True, seed: int = 0) -> ActorCritic:
    torch.manual_seed(seed)
    model = ActorCritic(
        obs_size=8,
        action_spec=spec,
        shape=NetworkShape(hidden_units=16, num_layers=2, normalize=normalize, memory_size=MEMORY),
    )
    if normalize:
        assert model.normalizer is not None
        model.normalizer.update(np.random.default_rng(seed).normal(1.0, 3.0, (50, 8)).astype(np.float32))
    return model


@pytest.mark.parametrize("kind", list(SPECS))
def test_recurrent_inputs_outputs_names_shapes_and_dtypes(tmp_path: Path, kind: str) -> None:
    spec = SPECS[kind]
    source = export_source(recurrent_model(spec), OBS_SHAPES)
    assert isinstance(source, TorchActorSource) and source.memory_size == MEMORY
    report = export_onnx(source, tmp_path / "policy.onnx")
    assert report.max_abs_diff and max(report.max_abs_diff.values()) <= 1e-5
    info = describe_onnx(tmp_path / "policy.onnx")
    inputs = {i["name"]: i for i in info["inputs"]}
    expected_inputs = ["obs_0", "obs_1"] + (["action_masks"] if spec.discrete_branches else []) + ["recurrent_in"]
    assert [i["name"] for i in info["inputs"]] == expected_inputs
    assert inputs["recurrent_in"]["dtype"] == "float32"
    assert inputs["recurrent_in"]["shape"][1:] == [1, MEMORY] and isinstance(inputs["recurrent_in"]["shape"][0], str)
    outputs = [o["name"] for o in info["outputs"]]
    assert outputs[:2] == ["version_number", "memory_size"] and outputs[-1] == "recurrent_out"
    rec_out = info["outputs"][-1]
    assert rec_out["dtype"] == "float32" and rec_out["shape"][1:] == [1, MEMORY]
    assert "LSTM" in info["op_types"] and set(info["op_types"]) <= MLAGENTS_OPS, info["op_types"]
    assert info["opset"] == 9 and info["metadata"]["memory_size"] == str(MEMORY)


@pytest.mark.parametrize("kind", list(SPECS))
def test_onnxruntime_equals_torch_over_20_steps_with_memory_carried(tmp_path: Path, kind: str) -> None:
    spec = SPECS[kind]
    model = recurrent_model(spec, seed=3)
    source = export_source(model, OBS_SHAPES)
    assert isinstance(source, TorchActorSource)
    export_onnx(source, tmp_path / "policy.onnx")
    policy = load_onnx_policy(tmp_path / "policy.onnx")
    assert policy.memory_size == MEMORY
    rng = np.random.default_rng(0)
    n = 4
    mem_onnx = np.zeros((n, MEMORY), np.float32)
    mem_torch = np.zeros((n, 1, MEMORY), np.float32)
    names = [s.name for s in policy.session.get_outputs()]
    for _ in range(20):
        obs = [rng.normal(1.0, 3.0, (n, *s)).astype(np.float32) for s in OBS_SHAPES]
        masks = np.ones((n, sum(spec.discrete_branches)), np.float32) if spec.discrete_branches else None
        feeds = {"obs_0": obs[0], "obs_1": obs[1], "recurrent_in": mem_onnx.reshape(n, 1, MEMORY)}
        if masks is not None:
            feeds["action_masks"] = masks
        got = dict(zip(names, policy.session.run(names, feeds)))
        want, _ = torch_reference(source, obs, masks, mem_torch)
        for name, value in want.items():
            np.testing.assert_allclose(got[name], value, atol=1e-5, rtol=0, err_msg=name)
        assert float(got["memory_size"][0]) == MEMORY
        # what the policy's own acting path carries
        _, _, new = policy.step(obs, masks, mem_onnx, deterministic=True)
        assert new is not None
        np.testing.assert_allclose(new, got["recurrent_out"].reshape(n, MEMORY), atol=1e-6)
        # the torch module's acting step carries the same memory
        d = model.act(torch.from_numpy(np.concatenate(obs, 1)), None, generator=None, deterministic=True,
                      memory=torch.from_numpy(mem_torch[:, 0]))  # fmt: skip
        assert d.memory is not None
        np.testing.assert_allclose(d.memory.numpy(), want["recurrent_out"][:, 0], atol=1e-6)
        mem_onnx, mem_torch = new, want["recurrent_out"]
    assert np.abs(mem_onnx).max() > 0.01  # the memory did move


def test_the_export_check_catches_a_model_whose_memory_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fledge.checkpoints import onnx as onnx_module

    source = export_source(recurrent_model(SPECS["hybrid"]), OBS_SHAPES)
    real = onnx_module.torch_reference

    def shifted(*args: object) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        out, masked = real(*args)  # type: ignore[arg-type]
        out["recurrent_out"] = out["recurrent_out"] + 1e-3
        return out, masked

    monkeypatch.setattr(onnx_module, "torch_reference", shifted)
    with pytest.raises(ExportError, match="recurrent_out"):
        export_onnx(source, tmp_path / "policy.onnx")
    assert not (tmp_path / "policy.onnx").exists()


@pytest.mark.parametrize("kind", list(SPECS))
def test_sac_recurrent_actor_exports_with_memory_carried(tmp_path: Path, kind: str) -> None:
    from fledge.networks.sac import SACNetworks, SACShape
    from fledge.networks.sac import export_source as sac_export_source

    spec = SPECS[kind]
    torch.manual_seed(4)
    nets = SACNetworks(
        SACShape(
            obs_size=8,
            continuous_size=spec.continuous_size,
            branches=tuple(spec.discrete_branches),
            hidden_units=16,
            num_layers=2,
            normalize=False,
            memory_size=MEMORY,
        )
    )
    source = sac_export_source(nets, OBS_SHAPES)
    assert isinstance(source, TorchActorSource) and source.memory_size == MEMORY
    report = export_onnx(source, tmp_path / "sac.onnx")
    assert report.outputs[-1] == "recurrent_out" and "recurrent_in" in report.inputs
    policy = load_onnx_policy(tmp_path / "sac.onnx")
    rng = np.random.default_rng(1)
    memory = np.zeros((3, MEMORY), np.float32)
    memory_torch = torch.zeros(3, MEMORY)
    for _ in range(20):
        obs = [rng.normal(0.0, 2.0, (3, *s)).astype(np.float32) for s in OBS_SHAPES]
        cont, disc, memory = policy.step(obs, None, memory, deterministic=True)  # type: ignore[assignment]
        d = nets.act(torch.from_numpy(np.concatenate(obs, 1)), None, generator=None, deterministic=True,
                     memory=memory_torch)  # fmt: skip
        assert d.memory is not None and memory is not None
        np.testing.assert_allclose(memory, d.memory.numpy(), atol=1e-5)
        if disc is not None:
            assert d.discrete is not None
            np.testing.assert_array_equal(disc, d.discrete.numpy())
        memory_torch = d.memory


@pytest.mark.parametrize("kind", ["ppo", "sac"])
def test_recurrent_visual_vector_entity_goal_policy_matches_torch_over_20_steps(tmp_path: Path, kind: str) -> None:
    """Memory after the encoders: onnxruntime equals the torch policy's own acting over 20 steps, each carrying
    its memory, on a behavior with every observation kind."""
    from fledge.envs.api import BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
    from fledge.trainers.policy import PolicySettings
    from fledge.trainers.ppo.policy import PPOPolicy
    from fledge.trainers.sac.policy import SACPolicy

    d = DimensionProperty
    specs = [
        ObservationSpec((3, 20, 24), (d.NONE, d.TRANSLATIONAL_EQUIVARIANCE, d.TRANSLATIONAL_EQUIVARIANCE), name="cam"),
        ObservationSpec.vector(4),
        ObservationSpec((5, 6), (d.VARIABLE_SIZE, d.NONE), name="buffer"),
        ObservationSpec((2,), (d.NONE,), ObservationType.GOAL_SIGNAL, "goal"),
    ]
    settings = PolicySettings(
        behavior_name="B",
        spec=BehaviorSpec(specs, ActionSpec(2, (3, 2))),
        hidden_units=16,
        num_layers=2,
        normalize=True,
        signal_names=("extrinsic",),
        memory_size=MEMORY,
        sequence_length=4,
    )
    cls = PPOPolicy if kind == "ppo" else SACPolicy
    pol = cls.build(settings, None, seed=0, device=None)
    assert pol.memory_size == MEMORY and pol.normalizer is not None
    pol.normalizer.update(np.random.default_rng(1).normal(2.0, 3.0, size=(64, settings.obs_size)))
    pol.deterministic = True
    source = pol.actor_graph()
    assert isinstance(source, TorchActorSource) and source.memory_size == MEMORY
    export_onnx(source, tmp_path / "policy.onnx")
    info = describe_onnx(tmp_path / "policy.onnx")
    assert [i["name"] for i in info["inputs"]] == ["obs_0", "obs_1", "obs_2", "obs_3", "action_masks", "recurrent_in"]
    onnx_policy = load_onnx_policy(tmp_path / "policy.onnx")
    rng = np.random.default_rng(2)
    n = 4
    memory_onnx = memory_torch = np.zeros((n, MEMORY), np.float32)
    for _ in range(20):
        obs = [rng.random((n, *s.shape)).astype(np.float32) * 2 - 0.5 for s in specs]
        obs[2][:, 3:] = 0.0  # absent entities
        _, disc, new_onnx = onnx_policy.step(obs, None, memory_onnx, deterministic=True)
        flat = np.concatenate([o.reshape(n, -1) for o in obs], axis=1)
        out = pol.act(flat, None, memory_torch)
        assert new_onnx is not None and out.memory is not None
        np.testing.assert_allclose(new_onnx, out.memory, atol=1e-5)
        assert disc is not None
        np.testing.assert_array_equal(disc, out.discrete)
        memory_onnx, memory_torch = new_onnx, out.memory
    assert np.abs(memory_onnx).max() > 0.01
