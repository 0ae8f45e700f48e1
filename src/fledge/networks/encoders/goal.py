"""Goal conditioning with a hypernetwork (`goal_conditioning_type: hyper`, spec 8.1).

When a behavior has a GOAL_SIGNAL observation with a fixed-size encoder and the body has dense
layers, the last dense layer becomes a `HyperLayer`: its weight matrix is produced per sample from
the goal encoding by a small network,
    g -> Linear(goal, hidden), Swish, Linear(hidden, hidden), Swish, layer_norm (no scale or shift),
         Linear(hidden, n_in * n_out)        (uniform in +-sqrt(1 / (hidden * n_in)), zero bias)
and the layer computes y = x W(g) + b with a learned bias b (zeros at start), followed by Swish like
the layers it replaces. The goal observations then feed only the hypernetwork. With
`goal_conditioning_type: none` goals are ordinary observations, concatenated with the others.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from fledge.networks.dense import DenseStack


class HyperLayer(nn.Module):
    """forward(x (B, n_in), goal (B, goal_size)) -> (B, n_out) = x W(goal) + bias (no activation)."""

    def __init__(self, n_in: int, n_out: int, goal_size: int, hidden: int) -> None:
        super().__init__()
        self.n_in, self.n_out, self.hidden = n_in, n_out, hidden
        self.hyper_in = nn.Linear(goal_size, hidden)
        self.hyper_hidden = nn.Linear(hidden, hidden)
        self.hyper_out = nn.Linear(hidden, n_in * n_out)
        bound = math.sqrt(1.0 / (hidden * n_in))
        with torch.no_grad():
            self.hyper_out.weight.uniform_(-bound, bound)
            self.hyper_out.bias.zero_()
        self.bias = nn.Parameter(torch.zeros(n_out))

    def weights(self, goal: torch.Tensor) -> torch.Tensor:
        """The per-sample weight matrices (B, n_in, n_out)."""
        h = F.silu(self.hyper_hidden(F.silu(self.hyper_in(goal))))
        h = F.layer_norm(h, (self.hidden,))
        return self.hyper_out(h).view(goal.shape[0], self.n_in, self.n_out)

    def forward(self, x: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        return torch.bmm(x.unsqueeze(1), self.weights(goal)).squeeze(1) + self.bias


class ConditionedStack(nn.Module):
    """`num_layers` (>= 1) Swish layers of `hidden` units whose last one is a HyperLayer over the goal encoding.

    forward(x (B, n_in), goal (B, goal_size)) -> (B, hidden).
    """

    def __init__(self, n_in: int, goal_size: int, hidden: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError("a goal-conditioned stack needs at least one layer")
        self.n_in, self.hidden, self.num_layers = n_in, hidden, num_layers
        self.out_size = hidden
        self.head = DenseStack(n_in, hidden, num_layers - 1) if num_layers > 1 else None
        self.hyper = HyperLayer(hidden if num_layers > 1 else n_in, hidden, goal_size, hidden)

    def forward(self, x: torch.Tensor, goal: torch.Tensor) -> torch.Tensor:
        h = self.head(x)[0] if self.head is not None else x
        return F.silu(self.hyper(h, goal))
