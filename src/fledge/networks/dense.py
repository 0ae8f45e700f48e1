"""`DenseStack`: the dense part of a network body, `copies` MLPs of the same shape over the same input.

Layer 1 is one matmul producing every copy's units side by side; later layers are one batched matmul
over the copies. It is the same maths as separate Linear+SiLU stacks with fewer operations. Weights
are stored (in, out) so that the numpy acting path and the hand gradients use them as they are; they
are He-normal (linear gain 1), biases zero.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


def numpy_view(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor's memory as an array (no copy: it follows in-place updates); a copy otherwise."""
    return t.detach().cpu().numpy()


class DenseStack(nn.Module):
    """`copies` SiLU MLPs of `num_layers` layers of `hidden` units over the same input.

    forward(x (B, n_in)) -> (copies, B, out_size); with num_layers 0 every copy is x itself.
    """

    def __init__(self, n_in: int, hidden: int, num_layers: int, copies: int = 1) -> None:
        super().__init__()
        self.n_in, self.hidden, self.num_layers, self.copies = n_in, hidden, num_layers, copies
        self.out_size = hidden if num_layers > 0 else n_in
        if num_layers > 0:
            w1 = torch.empty(n_in, copies * hidden)
            nn.init.normal_(w1, std=1.0 / math.sqrt(n_in))
            self.w_in = nn.Parameter(w1)
            self.b_in = nn.Parameter(torch.zeros(copies * hidden))
        self.w_hidden = nn.ParameterList()
        self.b_hidden = nn.ParameterList()
        for _ in range(num_layers - 1):
            w = torch.empty(copies, hidden, hidden)
            nn.init.normal_(w, std=1.0 / math.sqrt(hidden))
            self.w_hidden.append(nn.Parameter(w))
            self.b_hidden.append(nn.Parameter(torch.zeros(copies, 1, hidden)))

    def parameter_list(self) -> list[torch.Tensor]:
        """Every weight in forward order: w_in, b_in, then (w, b) of each later layer."""
        out: list[torch.Tensor] = []
        if self.num_layers > 0:
            out += [self.w_in, self.b_in]
        for w, b in zip(self.w_hidden, self.b_hidden):
            out += [w, b]
        return out

    def forward(self, x: torch.Tensor, *, detached: bool = False) -> torch.Tensor:
        """All copies' features (copies, B, out_size); `detached`: no gradient reaches the weights."""
        if self.num_layers == 0:
            return x.unsqueeze(0).expand(self.copies, *x.shape)
        params = self.parameter_list()
        if detached:
            params = [p.detach() for p in params]
        h = F.silu(torch.addmm(params[1], x, params[0]))
        hs = h.view(x.shape[0], self.copies, self.hidden).transpose(0, 1)
        for i in range(2, len(params), 2):
            w, b = params[i], params[i + 1]
            if self.copies == 1:
                hs = F.silu(torch.addmm(b[0], hs[0], w[0])).unsqueeze(0)
            else:
                hs = F.silu(torch.baddbmm(b, hs, w))
        return hs

    def layer_arrays(self, copy: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W (in, out), b (out,)) of every layer of one copy, as numpy views of CPU parameters."""
        h = self.hidden
        layers: list[tuple[np.ndarray, np.ndarray]] = []
        if self.num_layers > 0:
            layers.append(
                (numpy_view(self.w_in)[:, copy * h : (copy + 1) * h], numpy_view(self.b_in)[copy * h : (copy + 1) * h])
            )
        for w, b in zip(self.w_hidden, self.b_hidden):
            layers.append((numpy_view(w)[copy], numpy_view(b)[copy, 0]))
        return layers
