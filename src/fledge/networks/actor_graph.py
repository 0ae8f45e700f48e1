"""What the ONNX exporter builds from: an `ActorGraph` (plain arrays) or a `TorchActorSource` (a torch module).

An ActorGraph is an exporter-neutral description of an MLP acting network: plain float32 arrays and
a few flags. Policies it describes are built by hand (checkpoints/onnx_graph.py), the accelerated
export; consumers depend neither on the training classes nor on torch's exporter. A policy it cannot
describe comes as a TorchActorSource and is exported by tracing its torch module
(checkpoints/onnx_torch.py), with the same inputs, outputs and metadata.

The acting computation it describes, for raw observations obs_0..obs_{k-1} (concatenated to x):
    x = clip(x * norm_scale - norm_offset, -5, 5)          if normalisation is on
    h = silu(x @ W + b) for each hidden layer (W: (in, out))
    mean = h @ mu_w + mu_b                                  continuous actions
    log_std = log_std_vector                                (PPO: state-independent)
            | clip(h @ log_std_w + log_std_b, -20, 2)       (SAC: state-dependent)
    continuous action  = clip(sample, -3, 3) / 3            continuous_transform "clip3" (PPO, POCA)
                       | tanh(sample)                       continuous_transform "tanh"  (SAC)
    logits = h @ logits_w + logits_b, split by branch; masked entries get -1e8 (mask 1 = allowed)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

if TYPE_CHECKING:
    import torch
    from torch import nn

ContinuousTransform = Literal["clip3", "tanh"]


@dataclass(frozen=True)
class ActorGraph:
    observation_shapes: tuple[tuple[int, ...], ...]
    hidden_layers: tuple[tuple[np.ndarray, np.ndarray], ...]  # (W (in, out), b (out,)), each followed by SiLU
    norm_scale: np.ndarray | None = None  # (obs,) float32
    norm_offset: np.ndarray | None = None
    continuous_size: int = 0
    mu: tuple[np.ndarray, np.ndarray] | None = None  # (W (h, c), b (c,))
    log_std: np.ndarray | None = None  # (c,) state-independent
    log_std_head: tuple[np.ndarray, np.ndarray] | None = None  # (W (h, c), b (c,)) state-dependent
    continuous_transform: ContinuousTransform = "clip3"
    discrete_branches: tuple[int, ...] = ()
    logits: tuple[np.ndarray, np.ndarray] | None = None  # (W (h, sum), b (sum,))
    memory_size: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def obs_size(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.observation_shapes))


class ActionParameters(Protocol):
    """What the general exporter calls on a policy module."""

    def action_parameters(
        self, obs: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]: ...


@dataclass(frozen=True)
class TorchActorSource:
    """A policy exported through its torch module.

    `module.action_parameters(obs)` maps raw observations (B, obs_size), concatenated and flattened,
    to (Gaussian mean (B, c) | None, log_std ((c,) or (B, c), already clipped) | None, unmasked
    logits (B, sum(branches)) | None). The normaliser's arrays, when there is one, serve the metadata
    and the inputs of the export check: per column of the flat row (scale 1 and offset 0 on the columns
    of visual and entity observations, which are not normalised).
    """

    module: nn.Module
    observation_shapes: tuple[tuple[int, ...], ...]
    continuous_size: int = 0
    continuous_transform: ContinuousTransform = "clip3"
    discrete_branches: tuple[int, ...] = ()
    norm_scale: np.ndarray | None = None
    norm_offset: np.ndarray | None = None
    memory_size: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def obs_size(self) -> int:
        return int(sum(int(np.prod(s)) for s in self.observation_shapes))


ExportSource = ActorGraph | TorchActorSource
