"""The general ONNX export: a policy's torch module traced by torch's exporter, for networks an
ActorGraph cannot describe (the hand builder in onnx_graph.py is the accelerated path for those it can).

`UnityPolicy` wraps the module so that it takes the contract's inputs (`obs_<i>`, `action_masks`,
`recurrent_in` with memory) and returns the contract's outputs in order (`recurrent_out` last), computed as the hand-built graph computes them: the same
mask penalty, sampling (RandomNormalLike, Multinomial on log-probabilities), transforms and constants.
The model carries the same producer, doc string, IR version and metadata as a hand-built one.

torch's TorchScript-based exporter (`dynamo=False`) is used: it needs no package beyond torch and
onnx, while the dynamo exporter needs onnxscript. torch deprecates the former; an ExportError says so
when a torch without it is installed.
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from pathlib import Path
from typing import cast

import numpy as np
import onnx
import torch
from onnx import helper
from torch import nn

import fledge
from fledge.checkpoints.onnx_graph import (
    ACTION_CLIP,
    BATCH,
    DOC_STRING,
    MASK_PENALTY,
    MAX_OPSET,
    MIN_OPSET,
    MODEL_VERSION,
    ExportError,
    metadata,
    output_names,
)
from fledge.networks.actor_graph import ActionParameters, RecurrentActionParameters, TorchActorSource


def _cpu_module(module: nn.Module) -> nn.Module:
    """The module itself when it lives on the CPU, else a CPU copy (the training module stays where it is)."""
    if all(t.device.type == "cpu" for t in (*module.parameters(), *module.buffers())):
        return module
    return copy.deepcopy(module).cpu()


class UnityPolicy(nn.Module):
    """forward(obs_0, ..., obs_{k-1}[, action_masks][, recurrent_in]) -> the contract's outputs, in order.

    With memory, recurrent_in / recurrent_out are [batch, 1, memory_size]: the actor LSTM's [h, c]."""

    version_number: torch.Tensor
    memory_size: torch.Tensor
    continuous_shape: torch.Tensor
    discrete_shape: torch.Tensor

    def __init__(self, source: TorchActorSource) -> None:
        super().__init__()
        self.policy = _cpu_module(source.module)
        self.action_parameters = cast(ActionParameters, self.policy).action_parameters
        self.recurrent = source.memory_size > 0
        if self.recurrent:
            self.recurrent_parameters = cast(RecurrentActionParameters, self.policy).recurrent_action_parameters
        self.n_obs = len(source.observation_shapes)
        self.continuous_size = source.continuous_size
        self.transform = source.continuous_transform
        self.branches = tuple(int(b) for b in source.discrete_branches)
        self.register_buffer("version_number", torch.tensor([MODEL_VERSION]))
        self.register_buffer("memory_size", torch.tensor([float(source.memory_size)]))
        self.register_buffer("continuous_shape", torch.tensor([float(source.continuous_size)]))
        self.register_buffer("discrete_shape", torch.tensor([[float(b) for b in self.branches]]))

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        if self.transform == "tanh":
            return torch.tanh(x)
        return torch.clamp(x, -ACTION_CLIP, ACTION_CLIP) / ACTION_CLIP

    def _decide(
        self, x: torch.Tensor, inputs: tuple[torch.Tensor, ...]
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        if not self.recurrent:
            return (*self.action_parameters(x), None)
        mean, log_std, logits, memory = self.recurrent_parameters(x, inputs[-1][:, 0, :])
        return mean, log_std, logits, memory.unsqueeze(1)

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        flat = [o if o.dim() == 2 else o.flatten(1) for o in inputs[: self.n_obs]]
        x = flat[0] if len(flat) == 1 else torch.cat(flat, dim=1)
        mean, log_std, logits, memory = self._decide(x, inputs)
        out: list[torch.Tensor] = [self.version_number.clone(), self.memory_size.clone()]
        if self.continuous_size:
            assert mean is not None and log_std is not None
            sample = mean + torch.randn_like(mean) * torch.exp(log_std)
            out += [self._transform(sample), self.continuous_shape.clone(), self._transform(mean)]
        if self.branches:
            assert logits is not None
            masks = inputs[self.n_obs]
            masked = logits * masks - (1.0 - masks) * MASK_PENALTY
            samples, argmaxes = [], []
            start = 0
            for size in self.branches:
                part = masked[:, start : start + size]
                samples.append(torch.multinomial(torch.softmax(part, dim=1), 1))
                argmaxes.append(torch.argmax(part, dim=1, keepdim=True))
                start += size
            out += [torch.cat(samples, dim=1), self.discrete_shape.clone(), torch.cat(argmaxes, dim=1)]
        if memory is not None:
            out.append(memory)
        return tuple(out)

    @torch.no_grad()
    def masked_logits(self, obs: list[np.ndarray], masks: np.ndarray, memory: np.ndarray | None = None) -> np.ndarray:
        """The masked logits (B, sum(branches)) the discrete outputs are taken from (float64)."""
        x = torch.cat([torch.from_numpy(np.asarray(o, np.float32)).flatten(1) for o in obs], dim=1)
        inputs = () if memory is None else (torch.from_numpy(np.asarray(memory, np.float32)),)
        _, _, logits, _ = self._decide(x, inputs)
        assert logits is not None
        m = torch.from_numpy(np.asarray(masks, np.float32))
        return (logits * m - (1.0 - m) * MASK_PENALTY).double().numpy()


def example_inputs(source: TorchActorSource, n: int = 2) -> tuple[torch.Tensor, ...]:
    inputs = [torch.zeros(n, *shape) for shape in source.observation_shapes]
    if source.discrete_branches:
        inputs.append(torch.ones(n, sum(source.discrete_branches)))
    if source.memory_size:
        inputs.append(torch.zeros(n, 1, source.memory_size))
    return tuple(inputs)


def input_names(source: TorchActorSource) -> list[str]:
    names = [f"obs_{i}" for i in range(len(source.observation_shapes))]
    names += ["action_masks"] if source.discrete_branches else []
    return names + (["recurrent_in"] if source.memory_size else [])


def build_torch_model(source: TorchActorSource, opset: int = 9) -> onnx.ModelProto:
    """The ONNX model of `source` at `opset`, traced by torch's exporter (not checked; see export_onnx)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"ONNX export: opset {opset} is not supported (use {MIN_OPSET}..{MAX_OPSET}).")
    if source.continuous_size <= 0 and not source.discrete_branches:
        raise ExportError("ONNX export: the policy has no actions.")
    wrapper = UnityPolicy(source)
    names_in, names_out = input_names(source), output_names(source)
    constant = {"version_number", "memory_size", "continuous_action_output_shape", "discrete_action_output_shape"}
    dynamic = {name: {0: BATCH} for name in names_in + [n for n in names_out if n not in constant]}
    try:
        with warnings.catch_warnings(), torch.no_grad(), tempfile.TemporaryDirectory() as folder:
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
            torch.onnx.export(
                wrapper,
                example_inputs(source),
                Path(folder) / "policy.onnx",
                dynamo=False,
                opset_version=opset,
                input_names=names_in,
                output_names=names_out,
                dynamic_axes=dynamic,
                do_constant_folding=True,
            )
            model = onnx.load(str(Path(folder) / "policy.onnx"))
    except Exception as err:  # torch raises many exception types here
        raise ExportError(f"ONNX export: torch's exporter cannot export this policy: {err}") from err
    model.producer_name = "fledge"
    model.producer_version = fledge.__version__
    model.doc_string = DOC_STRING
    model.graph.name = "fledge_policy"
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    del model.metadata_props[:]
    helper.set_model_props(model, metadata(source))
    return model


def torch_reference(
    source: TorchActorSource, obs: list[np.ndarray], masks: np.ndarray | None, memory: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """The deterministic and constant outputs of the module itself (with memory: `recurrent_out` for the
    `memory` (B, 1, memory_size) given), and its masked logits (None without branches)."""
    wrapper = UnityPolicy(source)
    inputs = [torch.from_numpy(np.asarray(o, np.float32)) for o in obs]
    if source.discrete_branches:
        assert masks is not None
        inputs.append(torch.from_numpy(np.asarray(masks, np.float32)))
    if source.memory_size:
        assert memory is not None, "a recurrent policy's reference needs its memory input"
        inputs.append(torch.from_numpy(np.asarray(memory, np.float32)))
    with torch.no_grad():
        values = wrapper(*inputs)
    out = {
        name: value.numpy()
        for name, value in zip(output_names(source), values)
        if name not in ("continuous_actions", "discrete_actions")
    }
    masked = wrapper.masked_logits(obs, masks, memory) if masks is not None and source.discrete_branches else None
    return out, masked
