"""An exporter-neutral description of a policy's acting network: plain float32 arrays and a few flags.

Every trainer's actor can describe itself this way (`actor_graph()`); the ONNX exporter and any
other consumer build from it, so they depend neither on the training classes nor on torch's exporter.

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
from typing import Literal

import numpy as np

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
