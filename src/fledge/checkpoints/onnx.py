"""Export fledge policies to ONNX for Unity (ML-Agents 1.1.0 contract), check them, and run them.

`export_onnx` builds the model from an `ActorGraph` by hand (`onnx_graph.build_model`, the accelerated
path) or from a `TorchActorSource` with torch's exporter (`onnx_torch.build_torch_model`, for networks
an ActorGraph cannot describe), validates it with `onnx.checker`, runs it in onnxruntime FROM MEMORY
against a reference (numpy maths of the graph, or the torch module itself), and only then writes the
file atomically: a model that fails its check is never written.
`load_onnx_policy` runs an exported file (fledge's or ML-Agents') for playing and inference.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from fledge.checkpoints.onnx_graph import (
    ACTION_CLIP,
    MASK_PENALTY,
    MAX_OPSET,
    MIN_OPSET,
    MODEL_VERSION,
    NORM_CLIP,
    OP_TYPES,
    ExportError,
    build_model,
    output_names,
)
from fledge.checkpoints.onnx_torch import build_torch_model, torch_reference
from fledge.files import atomic_write_bytes
from fledge.networks.actor_graph import ActorGraph, ExportSource, TorchActorSource

__all__ = [
    "ExportError",
    "MAX_OPSET",
    "MIN_OPSET",
    "OP_TYPES",
    "OnnxPolicy",
    "OnnxReport",
    "build_model",
    "describe_onnx",
    "export_onnx",
    "load_onnx_policy",
    "reference_outputs",
]

_DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.BOOL: "bool",
}


@dataclass(frozen=True)
class OnnxReport:
    path: Path
    opset: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    max_abs_diff: dict[str, float] = field(default_factory=dict)  # deterministic and constant outputs
    range_checked: tuple[str, ...] = ()  # stochastic outputs checked for range (and masks)
    size_bytes: int = 0
    seconds: float = 0.0


# -- numpy reference --------------------------------------------------------------------------------
def _features(graph: ActorGraph, obs_list: list[np.ndarray]) -> np.ndarray:
    """Body output h (float64) for raw observations."""
    if len(obs_list) != len(graph.observation_shapes):
        raise ExportError(f"expected {len(graph.observation_shapes)} observation arrays, got {len(obs_list)}")
    n = np.asarray(obs_list[0]).shape[0]
    x = np.concatenate([np.asarray(o, np.float64).reshape(n, -1) for o in obs_list], axis=1)
    if graph.norm_scale is not None and graph.norm_offset is not None:
        x = np.clip(x * graph.norm_scale.astype(np.float64) - graph.norm_offset, -NORM_CLIP, NORM_CLIP)
    for w, b in graph.hidden_layers:
        z = x @ w.astype(np.float64) + b
        x = z * 0.5 * (1.0 + np.tanh(0.5 * z))  # z * sigmoid(z), overflow-free
    return x


def _masked_logits(graph: ActorGraph, h: np.ndarray, masks: np.ndarray | None) -> np.ndarray:
    assert graph.logits is not None
    logits: np.ndarray = h @ graph.logits[0].astype(np.float64) + graph.logits[1]
    m = np.ones_like(logits) if masks is None else np.asarray(masks, np.float64)
    masked: np.ndarray = logits * m - MASK_PENALTY * (1.0 - m)
    return masked


def _transform(x: np.ndarray, kind: str) -> np.ndarray:
    out: np.ndarray = np.tanh(x) if kind == "tanh" else np.clip(x, -ACTION_CLIP, ACTION_CLIP) / ACTION_CLIP
    return out


def reference_outputs(
    graph: ActorGraph, obs_list: list[np.ndarray], masks: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Deterministic and constant outputs of `graph` computed in numpy (float64 maths, contract dtypes)."""
    h = _features(graph, obs_list)
    out: dict[str, np.ndarray] = {
        "version_number": np.array([MODEL_VERSION], np.float32),
        "memory_size": np.array([graph.memory_size], np.float32),
    }
    if graph.continuous_size > 0 and graph.mu is not None:
        mean = h @ graph.mu[0].astype(np.float64) + graph.mu[1]
        out["continuous_action_output_shape"] = np.array([graph.continuous_size], np.float32)
        out["deterministic_continuous_actions"] = _transform(mean, graph.continuous_transform).astype(np.float32)
    if graph.discrete_branches:
        masked = _masked_logits(graph, h, masks)
        split_at = np.cumsum(graph.discrete_branches)[:-1]
        choices = [part.argmax(axis=1) for part in np.split(masked, split_at, axis=1)]
        out["discrete_action_output_shape"] = np.array([graph.discrete_branches], np.float32)
        out["deterministic_discrete_actions"] = np.stack(choices, axis=1).astype(np.int64)
    return out


# -- checking ---------------------------------------------------------------------------------------
def _session(model: bytes | str | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])


def _sample_inputs(graph: ExportSource, samples: int, seed: int) -> tuple[list[np.ndarray], np.ndarray | None]:
    """Observations spread over the normaliser's range (clipped and unclipped) and random valid masks."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 2.5, size=(samples, graph.obs_size))
    if graph.norm_scale is not None and graph.norm_offset is not None:
        z = (z + graph.norm_offset) / graph.norm_scale  # raw values whose normalised form is z
    flat = z.astype(np.float32)
    obs: list[np.ndarray] = []
    start = 0
    for shape in graph.observation_shapes:
        size = int(np.prod(shape))
        part = np.ascontiguousarray(flat[:, start : start + size].reshape(samples, *shape))
        if len(shape) == 2:  # variable-length entities: absent ones (all-zero rows) in every other sample
            kept = rng.integers(0, shape[0] + 1, size=samples)
            part[np.arange(samples) % 2 == 1] *= (np.arange(shape[0])[None, :] < kept[:, None])[
                np.arange(samples) % 2 == 1
            ][..., None]
        obs.append(part)
        start += size
    masks = None
    if graph.discrete_branches:
        masks = (rng.random((samples, sum(graph.discrete_branches))) < 0.6).astype(np.float32)
        masks[0] = 1.0
        start = 0
        for size in graph.discrete_branches:
            part = masks[:, start : start + size]
            empty = part.sum(axis=1) == 0
            part[empty, rng.integers(0, size, size=int(empty.sum()))] = 1.0
            start += size
    return obs, masks


def _fail(path: Path, output: str, what: str) -> ExportError:
    return ExportError(f"ONNX export check failed for output '{output}': {what}; {path} was not written.")


def _check_discrete_samples(graph: ExportSource, name: str, got: np.ndarray, masks: np.ndarray, path: Path) -> None:
    start = 0
    for b, size in enumerate(graph.discrete_branches):
        idx = got[:, b]
        if np.any(idx < 0) or np.any(idx >= size):
            raise _fail(path, name, f"branch {b} index out of range [0, {size}): {idx.min()}..{idx.max()}")
        allowed = masks[np.arange(len(idx)), start + np.clip(idx, 0, size - 1)]
        if np.any(allowed < 0.5):
            raise _fail(path, name, f"branch {b} chose a masked action")
        start += size


def _references(
    graph: ExportSource, obs: list[np.ndarray], masks: np.ndarray | None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The deterministic and constant outputs the model must reproduce, and the masked logits (with branches)."""
    if isinstance(graph, TorchActorSource):
        return torch_reference(graph, obs, masks)
    masked = _masked_logits(graph, _features(graph, obs), masks) if graph.discrete_branches else None
    return reference_outputs(graph, obs, masks), masked


def _check(
    graph: ExportSource, model_bytes: bytes, path: Path, atol: float, samples: int, seed: int
) -> tuple[dict[str, float], tuple[str, ...]]:
    """Run the model in onnxruntime and compare with `reference_outputs`; raises ExportError on mismatch."""
    try:
        session = _session(model_bytes)
    except Exception as err:  # onnxruntime raises its own exception types
        raise ExportError(f"ONNX export: onnxruntime cannot load the model built for {path}: {err}") from err
    obs, masks = _sample_inputs(graph, samples, seed)
    feeds: dict[str, np.ndarray] = {f"obs_{i}": o for i, o in enumerate(obs)}
    if masks is not None:
        feeds["action_masks"] = masks
    names = output_names(graph)
    got = dict(zip(names, session.run(names, feeds)))
    ref, masked = _references(graph, obs, masks)
    diffs: dict[str, float] = {}
    for name, want in ref.items():
        have = got[name]
        if have.shape != want.shape or have.dtype != want.dtype:
            raise _fail(path, name, f"got {have.dtype} {have.shape}, expected {want.dtype} {want.shape}")
        if name == "deterministic_discrete_actions":
            # an argmax may only differ from the reference on a near-tie: measure the logit gap
            assert masked is not None
            offsets = np.concatenate([[0], np.cumsum(graph.discrete_branches)[:-1]]).astype(np.int64)
            rows = np.arange(samples)[:, None]
            if np.any(have < 0) or np.any(have >= np.array(graph.discrete_branches)):
                raise _fail(path, name, "argmax index out of range")
            gap = masked[rows, want + offsets] - masked[rows, have + offsets]
            diff = float(np.abs(gap).max(initial=0.0))
        else:
            diff = float(np.abs(have.astype(np.float64) - want).max(initial=0.0))
        if not np.isfinite(diff) or diff > atol:
            raise _fail(path, name, f"max abs difference {diff:.3g} > atol {atol:g}")
        diffs[name] = diff
    checked: list[str] = []
    if "continuous_actions" in got:
        sample = got["continuous_actions"]
        if sample.shape != (samples, graph.continuous_size) or not np.all(np.isfinite(sample)):
            raise _fail(path, "continuous_actions", f"bad shape {sample.shape} or non-finite values")
        if np.any(np.abs(sample) > 1.0 + atol):  # onnxruntime's Tanh may exceed 1 by an ulp or two
            raise _fail(path, "continuous_actions", f"value {np.abs(sample).max():.7g} outside [-1, 1]")
        checked.append("continuous_actions")
    if "discrete_actions" in got and masks is not None:
        sample = got["discrete_actions"]
        if sample.shape != (samples, len(graph.discrete_branches)) or sample.dtype != np.int64:
            raise _fail(path, "discrete_actions", f"got {sample.dtype} {sample.shape}")
        _check_discrete_samples(graph, "discrete_actions", sample, masks, path)
        checked.append("discrete_actions")
    return diffs, tuple(checked)


def export_onnx(
    graph: ExportSource,
    path: str | Path,
    *,
    opset: int = 9,
    check: bool = True,
    atol: float = 1e-5,
    samples: int = 16,
    seed: int = 0,
) -> OnnxReport:
    """Build, validate, (optionally) check against the reference, then atomically write the model."""
    started = time.perf_counter()
    target = Path(path)
    model = build_model(graph, opset) if isinstance(graph, ActorGraph) else build_torch_model(graph, opset)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"ONNX export: the model built for {target} is invalid: {err}") from err
    data = model.SerializeToString()
    diffs: dict[str, float] = {}
    checked: tuple[str, ...] = ()
    if check:
        if samples < 1:
            raise ExportError("ONNX export: samples must be at least 1.")
        diffs, checked = _check(graph, data, target, atol, samples, seed)
    atomic_write_bytes(target, data)
    return OnnxReport(
        path=target,
        opset=opset,
        inputs=tuple(i.name for i in model.graph.input),
        outputs=tuple(o.name for o in model.graph.output),
        max_abs_diff=diffs,
        range_checked=checked,
        size_bytes=len(data),
        seconds=time.perf_counter() - started,
    )


# -- inspection -------------------------------------------------------------------------------------
def _value_info(v: onnx.ValueInfoProto) -> dict[str, Any]:
    t = v.type.tensor_type
    dims: list[int | str] = [d.dim_param if d.HasField("dim_param") else int(d.dim_value) for d in t.shape.dim]
    return {"name": v.name, "dtype": _DTYPES.get(int(t.elem_type), str(t.elem_type)), "shape": dims}


def describe_onnx(model: str | Path | bytes | onnx.ModelProto) -> dict[str, Any]:
    """Inputs and outputs (name, dtype, shape with symbolic dims by name) in order, opset, ops, metadata."""
    if isinstance(model, onnx.ModelProto):
        proto = model
    elif isinstance(model, bytes):
        proto = onnx.load_from_string(model)
    else:
        proto = onnx.load(str(model))
    initializers = {i.name for i in proto.graph.initializer}
    return {
        "ir_version": int(proto.ir_version),
        "opset": max((int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0),
        "producer_name": proto.producer_name,
        "inputs": [_value_info(v) for v in proto.graph.input if v.name not in initializers],
        "outputs": [_value_info(v) for v in proto.graph.output],
        "op_types": sorted({n.op_type for n in proto.graph.node}),
        "metadata": {p.key: p.value for p in proto.metadata_props},
    }


# -- running ----------------------------------------------------------------------------------------
class OnnxPolicy:
    """An exported policy run with onnxruntime: `act(obs_list, masks)` -> (continuous, discrete)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.session = _session(self.path)
        except Exception as err:  # onnxruntime raises its own exception types
            raise ExportError(f"cannot load ONNX model {self.path}: {err}") from err
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.observation_shapes: list[tuple[int, ...]] = []
        while f"obs_{len(self.observation_shapes)}" in inputs:
            dims = inputs[f"obs_{len(self.observation_shapes)}"].shape[1:]
            if not all(isinstance(d, int) for d in dims):
                raise ExportError(f"ONNX model {self.path}: observation dims {dims} are not fixed.")
            self.observation_shapes.append(tuple(int(d) for d in dims))
        if not self.observation_shapes or "version_number" not in self.output_names:
            raise ExportError(f"ONNX model {self.path} is not an ML-Agents 2.0 (version 3) policy: no obs_0 input.")
        if "recurrent_in" in inputs:
            raise ExportError(f"ONNX model {self.path} is recurrent; recurrent policies are not supported yet.")
        self.has_masks = "action_masks" in inputs
        constants = [
            n
            for n in ("version_number", "memory_size", "continuous_action_output_shape", "discrete_action_output_shape")
            if n in self.output_names
        ]
        zeros = [np.zeros((1, *s), np.float32) for s in self.observation_shapes]
        mask_width = inputs["action_masks"].shape[1] if self.has_masks else 0
        if self.has_masks and not isinstance(mask_width, int):
            raise ExportError(f"ONNX model {self.path}: action_masks width is not fixed.")
        values = dict(zip(constants, self.session.run(constants, self._feeds(zeros, None, 1, int(mask_width or 0)))))
        self.version = float(np.asarray(values["version_number"]).reshape(-1)[0])
        if self.version != MODEL_VERSION:
            raise ExportError(f"ONNX model {self.path} has version_number {self.version}, expected {MODEL_VERSION}.")
        self.continuous_size = (
            int(np.asarray(values["continuous_action_output_shape"]).reshape(-1)[0])
            if "continuous_action_output_shape" in values
            else 0
        )
        self.discrete_branches: tuple[int, ...] = (
            tuple(int(v) for v in np.asarray(values["discrete_action_output_shape"]).reshape(-1))
            if "discrete_action_output_shape" in values
            else ()
        )
        self.mask_width = int(mask_width or 0)

    def _feeds(self, obs: list[np.ndarray], masks: np.ndarray | None, n: int, width: int) -> dict[str, np.ndarray]:
        feeds = {f"obs_{i}": np.ascontiguousarray(o, dtype=np.float32) for i, o in enumerate(obs)}
        if self.has_masks:
            m = np.ones((n, width), np.float32) if masks is None else np.asarray(masks, np.float32)
            feeds["action_masks"] = np.ascontiguousarray(m)
        return feeds

    def act(
        self, obs_list: list[np.ndarray], masks: np.ndarray | None = None, deterministic: bool = False
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Actions for a batch: continuous (B, c) float32 in [-1, 1] (what Unity receives) and discrete
        (B, n_branches) int32. masks: (B, sum(branches)), 1/True = allowed, None = all allowed."""
        if len(obs_list) != len(self.observation_shapes):
            raise ExportError(f"{self.path}: expected {len(self.observation_shapes)} observations, got {len(obs_list)}")
        n = int(np.asarray(obs_list[0]).shape[0])
        for i, (o, shape) in enumerate(zip(obs_list, self.observation_shapes)):
            if tuple(np.asarray(o).shape) != (n, *shape):
                raise ExportError(f"{self.path}: obs_{i} has shape {np.asarray(o).shape}, expected {(n, *shape)}")
        if masks is not None and self.has_masks and np.asarray(masks).shape != (n, self.mask_width):
            shape = np.asarray(masks).shape
            raise ExportError(f"{self.path}: masks have shape {shape}, expected {(n, self.mask_width)}")
        prefix = "deterministic_" if deterministic else ""
        wanted = [
            f"{prefix}{k}_actions"
            for k, on in (("continuous", self.continuous_size > 0), ("discrete", bool(self.discrete_branches)))
            if on
        ]
        results = dict(zip(wanted, self.session.run(wanted, self._feeds(list(obs_list), masks, n, self.mask_width))))
        cont = results.get(f"{prefix}continuous_actions")
        disc = results.get(f"{prefix}discrete_actions")
        return (
            None if cont is None else np.asarray(cont, np.float32).reshape(n, self.continuous_size),
            None if disc is None else np.asarray(disc).astype(np.int32).reshape(n, len(self.discrete_branches)),
        )


def load_onnx_policy(path: str | Path) -> OnnxPolicy:
    return OnnxPolicy(path)
