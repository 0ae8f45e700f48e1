"""Build the ONNX model of an `ActorGraph` directly with `onnx.helper` (no torch exporter).

The graph follows the ML-Agents 1.1.0 contract (spec section 7): inputs `obs_<i>` (and `action_masks`
with discrete actions), outputs `version_number`, `memory_size`, then the continuous and the
discrete triples, in that order. Constants are initializers passed through `Identity` nodes, as the
ML-Agents exporter writes them. Only operators that Unity's inference engines import for ML-Agents
models are used (see `OP_TYPES`), with the attribute/input form that each opset requires.

Everything is deterministic: the same ActorGraph and opset give the same bytes.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import fledge
from fledge.errors import FledgeError
from fledge.networks.actor_graph import ActorGraph, ExportSource

MIN_OPSET = 9
MAX_OPSET = 17
MODEL_VERSION = 3.0  # ML-Agents `MLAgents2_0`
NORM_CLIP = 5.0
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
ACTION_CLIP = 3.0
MASK_PENALTY = 1.0e8
BATCH = "batch"
DOC_STRING = "fledge actor policy for Unity (ML-Agents 1.1.0 ONNX contract, version_number 3)"
# Every operator this builder can emit (a subset of what ML-Agents 1.1.0 models use).
OP_TYPES = frozenset(
    {
        "Add",
        "ArgMax",
        "Clip",
        "Concat",
        "Div",
        "Exp",
        "Gemm",
        "Identity",
        "Log",
        "Mul",
        "Multinomial",
        "RandomNormalLike",
        "Reshape",
        "Sigmoid",
        "Slice",
        "Softmax",
        "Sub",
        "Tanh",
    }
)


class ExportError(FledgeError):
    """A policy cannot be exported to ONNX, or the exported model does not compute what it should."""


def output_names(graph: ExportSource) -> list[str]:
    """The contract's output names for this graph, in order."""
    names = ["version_number", "memory_size"]
    if graph.continuous_size > 0:
        names += ["continuous_actions", "continuous_action_output_shape", "deterministic_continuous_actions"]
    if graph.discrete_branches:
        names += ["discrete_actions", "discrete_action_output_shape", "deterministic_discrete_actions"]
    if graph.memory_size > 0:
        names.append("recurrent_out")
    return names


def _shape_error(what: str, got: tuple[int, ...], want: tuple[int, ...]) -> ExportError:
    return ExportError(f"ONNX export: {what} has shape {got}, expected {want}.")


def validate_graph(graph: ActorGraph) -> None:
    """Refuse an ActorGraph whose arrays do not fit together (raises ExportError)."""
    if not graph.observation_shapes:
        raise ExportError("ONNX export: the policy has no observations.")
    for i, shape in enumerate(graph.observation_shapes):
        if not shape or any(int(d) <= 0 for d in shape):
            raise ExportError(f"ONNX export: observation {i} has an invalid shape {shape}.")
    if graph.memory_size != 0:
        raise ExportError("ONNX export: recurrent policies (memory_size > 0) are not supported yet.")
    if graph.continuous_size <= 0 and not graph.discrete_branches:
        raise ExportError("ONNX export: the policy has no actions.")
    if any(int(b) <= 0 for b in graph.discrete_branches):
        raise ExportError(f"ONNX export: invalid discrete branch sizes {graph.discrete_branches}.")
    arrays: list[tuple[str, np.ndarray | None]] = [("norm_scale", graph.norm_scale), ("norm_offset", graph.norm_offset)]
    width = graph.obs_size
    if (graph.norm_scale is None) != (graph.norm_offset is None):
        raise ExportError("ONNX export: norm_scale and norm_offset must be given together.")
    for name, arr in arrays:
        if arr is not None and arr.shape != (width,):
            raise _shape_error(name, arr.shape, (width,))
    for k, (w, b) in enumerate(graph.hidden_layers):
        if w.ndim != 2 or w.shape[0] != width:
            raise _shape_error(f"hidden layer {k} weight", w.shape, (width, w.shape[-1]))
        if b.shape != (w.shape[1],):
            raise _shape_error(f"hidden layer {k} bias", b.shape, (w.shape[1],))
        arrays += [(f"hidden layer {k} weight", w), (f"hidden layer {k} bias", b)]
        width = w.shape[1]
    c = graph.continuous_size
    heads: list[tuple[str, tuple[np.ndarray, np.ndarray] | None, int]] = []
    if c > 0:
        if graph.mu is None:
            raise ExportError("ONNX export: continuous actions need the mean head `mu`.")
        if (graph.log_std is None) == (graph.log_std_head is None):
            raise ExportError("ONNX export: continuous actions need exactly one of log_std and log_std_head.")
        if graph.log_std is not None and graph.log_std.shape != (c,):
            raise _shape_error("log_std", graph.log_std.shape, (c,))
        if graph.continuous_transform not in ("clip3", "tanh"):
            raise ExportError(f"ONNX export: unknown continuous transform {graph.continuous_transform!r}.")
        heads += [("mu", graph.mu, c), ("log_std_head", graph.log_std_head, c)]
        arrays.append(("log_std", graph.log_std))
    if graph.discrete_branches:
        if graph.logits is None:
            raise ExportError("ONNX export: discrete actions need the `logits` head.")
        heads.append(("logits", graph.logits, sum(graph.discrete_branches)))
    for name, head, n_out in heads:
        if head is None:
            continue
        if head[0].shape != (width, n_out):
            raise _shape_error(f"{name} weight", head[0].shape, (width, n_out))
        if head[1].shape != (n_out,):
            raise _shape_error(f"{name} bias", head[1].shape, (n_out,))
        arrays += [(f"{name} weight", head[0]), (f"{name} bias", head[1])]
    for name, arr in arrays:
        if arr is not None and not np.all(np.isfinite(arr)):
            raise ExportError(f"ONNX export: {name} contains NaN or infinite values.")


class _Builder:
    """Accumulates nodes and initializers with deterministic names, in the form the opset needs."""

    def __init__(self, opset: int) -> None:
        self.opset = opset
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        arr = np.ascontiguousarray(value)
        if arr.dtype.kind == "f":
            arr = arr.astype(np.float32)
        self.initializers.append(numpy_helper.from_array(arr, name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{out}/{op_type}", **attrs))
        return out

    def clip(self, x: str, lo: float, hi: float, out: str) -> str:
        if self.opset < 11:
            return self.op("Clip", [x], out, min=float(lo), max=float(hi))
        lo_name = self.const(f"{out}/min", np.array(lo, dtype=np.float32))
        hi_name = self.const(f"{out}/max", np.array(hi, dtype=np.float32))
        return self.op("Clip", [x, lo_name, hi_name], out)

    def slice_columns(self, x: str, start: int, end: int, out: str) -> str:
        """x[:, start:end] (Slice with attributes before opset 10, with inputs from 10)."""
        if self.opset < 10:
            return self.op("Slice", [x], out, starts=[start], ends=[end], axes=[1])
        bounds = [
            self.const(f"{out}/{k}", np.array([v], dtype=np.int64))
            for k, v in (("starts", start), ("ends", end), ("axes", 1))
        ]
        return self.op("Slice", [x, *bounds], out)

    def dense(self, x: str, layer: tuple[np.ndarray, np.ndarray], prefix: str) -> str:
        w = self.const(f"{prefix}/weight", layer[0])
        b = self.const(f"{prefix}/bias", layer[1])
        return self.op("Gemm", [x, w, b], f"{prefix}/out", alpha=1.0, beta=1.0)

    def constant_output(self, name: str, value: np.ndarray) -> str:
        return self.op("Identity", [self.const(f"{name}/value", value)], name)


def _transform(b: _Builder, x: str, kind: str, out: str) -> str:
    if kind == "tanh":
        return b.op("Tanh", [x], out)
    clipped = b.clip(x, -ACTION_CLIP, ACTION_CLIP, f"{out}/clipped")
    return b.op("Div", [clipped, b.const(f"{out}/divisor", np.array(ACTION_CLIP, np.float32))], out)


def metadata(graph: ExportSource) -> dict[str, str]:
    """The metadata_props written into the model (sorted keys, plain strings)."""
    meta = {
        "fledge_version": fledge.__version__,
        "action_spec": json.dumps(
            {"continuous_size": graph.continuous_size, "discrete_branches": list(graph.discrete_branches)}
        ),
        "observation_shapes": json.dumps([list(s) for s in graph.observation_shapes]),
        "continuous_transform": graph.continuous_transform if graph.continuous_size else "",
        "normalize": "true" if graph.norm_scale is not None else "false",
        "memory_size": str(graph.memory_size),
    }
    meta.update({f"extra.{k}": str(v) for k, v in graph.extra.items()})
    return dict(sorted(meta.items()))


def build_model(graph: ActorGraph, opset: int = 9) -> onnx.ModelProto:
    """The ONNX model of `graph` at `opset` (not checked; see `fledge.checkpoints.onnx.export_onnx`)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"ONNX export: opset {opset} is not supported (use {MIN_OPSET}..{MAX_OPSET}).")
    validate_graph(graph)
    b = _Builder(opset)
    f32, i64 = TensorProto.FLOAT, TensorProto.INT64
    inputs: list[onnx.ValueInfoProto] = []
    flat: list[str] = []
    for i, shape in enumerate(graph.observation_shapes):
        name = f"obs_{i}"
        inputs.append(helper.make_tensor_value_info(name, f32, [BATCH, *[int(d) for d in shape]]))
        if len(shape) != 1:
            target = b.const(f"{name}/flat_shape", np.array([-1, int(np.prod(shape))], dtype=np.int64))
            name = b.op("Reshape", [name, target], f"{name}/flat")
        flat.append(name)
    x = flat[0] if len(flat) == 1 else b.op("Concat", flat, "obs/concat", axis=1)
    if graph.norm_scale is not None and graph.norm_offset is not None:
        x = b.op("Mul", [x, b.const("normalizer/scale", graph.norm_scale)], "normalizer/scaled")
        x = b.op("Sub", [x, b.const("normalizer/offset", graph.norm_offset)], "normalizer/centered")
        x = b.clip(x, -NORM_CLIP, NORM_CLIP, "normalizer/out")
    for k, layer in enumerate(graph.hidden_layers):
        z = b.dense(x, layer, f"body/layer_{k}")
        x = b.op("Mul", [z, b.op("Sigmoid", [z], f"body/layer_{k}/sigmoid")], f"body/layer_{k}/silu")

    outputs = [
        helper.make_tensor_value_info("version_number", f32, [1]),
        helper.make_tensor_value_info("memory_size", f32, [1]),
    ]
    b.constant_output("version_number", np.array([MODEL_VERSION], np.float32))
    b.constant_output("memory_size", np.array([graph.memory_size], np.float32))

    c = graph.continuous_size
    if c > 0 and graph.mu is not None:
        mean = b.dense(x, graph.mu, "continuous/mu")
        if graph.log_std_head is not None:
            raw = b.dense(x, graph.log_std_head, "continuous/log_std_head")
            log_std = b.clip(raw, LOG_STD_MIN, LOG_STD_MAX, "continuous/log_std")
        else:
            assert graph.log_std is not None
            log_std = b.const("continuous/log_std", graph.log_std)
        std = b.op("Exp", [log_std], "continuous/std")
        noise = b.op("RandomNormalLike", [mean], "continuous/noise", dtype=f32, mean=0.0, scale=1.0)
        scaled = b.op("Mul", [noise, std], "continuous/scaled_noise")
        sample = b.op("Add", [mean, scaled], "continuous/sample")
        _transform(b, sample, graph.continuous_transform, "continuous_actions")
        b.constant_output("continuous_action_output_shape", np.array([c], np.float32))
        _transform(b, mean, graph.continuous_transform, "deterministic_continuous_actions")
        outputs += [
            helper.make_tensor_value_info("continuous_actions", f32, [BATCH, c]),
            helper.make_tensor_value_info("continuous_action_output_shape", f32, [1]),
            helper.make_tensor_value_info("deterministic_continuous_actions", f32, [BATCH, c]),
        ]

    branches = tuple(int(s) for s in graph.discrete_branches)
    if branches and graph.logits is not None:
        inputs.append(helper.make_tensor_value_info("action_masks", f32, [BATCH, sum(branches)]))
        logits = b.dense(x, graph.logits, "discrete/logits")
        kept = b.op("Mul", [logits, "action_masks"], "discrete/kept")
        one = b.const("discrete/one", np.array(1.0, np.float32))
        inverted = b.op("Sub", [one, "action_masks"], "discrete/inverted")
        penalty = b.op(
            "Mul", [inverted, b.const("discrete/penalty", np.array(MASK_PENALTY, np.float32))], "discrete/penalty_out"
        )
        masked = b.op("Sub", [kept, penalty], "discrete/masked")
        samples: list[str] = []
        argmaxes: list[str] = []
        offsets = np.concatenate([[0], np.cumsum(branches)]).astype(int)
        for i in range(len(branches)):
            part = b.slice_columns(masked, int(offsets[i]), int(offsets[i + 1]), f"discrete/branch_{i}/logits")
            probs = b.op("Softmax", [part], f"discrete/branch_{i}/probs", axis=1)
            log_probs = b.op("Log", [probs], f"discrete/branch_{i}/log_probs")
            samples.append(b.op("Multinomial", [log_probs], f"discrete/branch_{i}/sample", dtype=i64, sample_size=1))
            argmaxes.append(b.op("ArgMax", [part], f"discrete/branch_{i}/argmax", axis=1, keepdims=1))
        b.op("Concat", samples, "discrete_actions", axis=1)
        b.constant_output("discrete_action_output_shape", np.array([branches], np.float32))
        b.op("Concat", argmaxes, "deterministic_discrete_actions", axis=1)
        outputs += [
            helper.make_tensor_value_info("discrete_actions", i64, [BATCH, len(branches)]),
            helper.make_tensor_value_info("discrete_action_output_shape", f32, [1, len(branches)]),
            helper.make_tensor_value_info("deterministic_discrete_actions", i64, [BATCH, len(branches)]),
        ]

    onnx_graph = helper.make_graph(b.nodes, "fledge_policy", inputs, outputs, initializer=b.initializers)
    opset_ids = [helper.make_opsetid("", opset)]
    model = helper.make_model(
        onnx_graph,
        producer_name="fledge",
        producer_version=fledge.__version__,
        doc_string=DOC_STRING,
        opset_imports=opset_ids,
    )
    model.ir_version = helper.find_min_ir_version_for(opset_ids)
    helper.set_model_props(model, metadata(graph))
    return model
