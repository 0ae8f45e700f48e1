"""LSTM memory (spec 2.5, 8.1, 8.8): the recurrent layer after a body's dense stack, and the sequence helpers.

`LSTMMemory` is one single-layer LSTM with hidden size memory_size / 2. The memory vector carried from
one decision to the next is [h, c] (h the first half, c the second), of size `memory_size`, as the
ONNX contract's `recurrent_in` / `recurrent_out` carry it. Its output (the new h) replaces the dense
features, so a body with memory has out_size memory_size / 2.

Training with memory works on sequences of `sequence_length` L consecutive steps of one agent:
- a trajectory of n steps is cut into ceil(n / L) sequences starting at steps 0, L, 2L, ...;
- the last one is padded AT ITS END (as ML-Agents 1.1.0 does, spec 8.8) up to L rows with a fill
  value (0 for most fields; True for allowed actions), so padding never precedes a real step and the
  LSTM's outputs for real steps do not depend on it;
- `masks` is 1.0 on real rows and 0.0 on padding; every loss term is a masked mean over it;
- the memory stored with each step is the one BEFORE its decision; at update time only the rows at
  sequence starts are used, as the initial state from which the LSTM is re-run over the sequence.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from torch import nn


class LSTMMemory(nn.Module):
    """forward(x (N, L, n_in), memory (N, memory_size)) -> (outputs (N, L, memory_size/2), memory (N, memory_size)).

    Initialisation: Xavier-uniform per gate block, zero biases, +1 on the forget gate's input bias.
    """

    def __init__(self, n_in: int, memory_size: int) -> None:
        super().__init__()
        if memory_size <= 0 or memory_size % 2:
            raise ValueError(f"memory_size must be even and > 0, got {memory_size}")
        self.n_in = n_in
        self.memory_size = memory_size
        self.hidden = memory_size // 2
        self.out_size = self.hidden
        self.lstm = nn.LSTM(n_in, self.hidden, num_layers=1, batch_first=True)
        h = self.hidden
        with torch.no_grad():
            for name, p in self.lstm.named_parameters():
                if name.startswith("weight"):
                    for gate in range(4):  # input, forget, cell, output gate blocks
                        nn.init.xavier_uniform_(p[gate * h : (gate + 1) * h])
                else:
                    p.zero_()
            bias = cast(torch.Tensor, self.lstm.bias_ih_l0)
            bias[h : 2 * h].fill_(1.0)  # the forget gate's block

    def split(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h, c), each (1, N, hidden), of memory vectors (N, memory_size)."""
        h, c = memory[:, : self.hidden], memory[:, self.hidden :]
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, (h, c) = self.lstm(x, self.split(memory))
        return out, torch.cat((h[0], c[0]), dim=1)

    def step(self, x: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One decision: x (B, n_in), memory (B, memory_size) -> (output (B, hidden), new memory)."""
        out, new = self.forward(x.unsqueeze(1), memory)
        return out[:, 0], new

    def sequences(self, x: torch.Tensor, starts: torch.Tensor, seq_len: int, *, detached: bool = False) -> torch.Tensor:
        """Outputs (N * L, hidden) of rows x (N * L, n_in) that are N whole sequences, from their start memories.

        `detached`: no gradient reaches the LSTM's weights (it still reaches x), unrolled step by step."""
        seqs = x.reshape(-1, seq_len, x.shape[-1])
        if not detached:
            out, _ = self.forward(seqs, starts)
            return out.reshape(-1, self.hidden)
        w_ih, w_hh, b_ih, b_hh = (
            cast(torch.Tensor, getattr(self.lstm, name)).detach()
            for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
        )
        bias = b_ih + b_hh
        h, c = starts[:, : self.hidden], starts[:, self.hidden :]
        inputs = torch.matmul(seqs, w_ih.t()) + bias  # (N, L, 4 hidden)
        outs = []
        for t in range(seq_len):  # gates in the LSTM's order: input, forget, cell, output
            i, f, g, o = (inputs[:, t] + h @ w_hh.t()).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs.append(h)
        return torch.stack(outs, dim=1).reshape(-1, self.hidden)


# -- sequences ----------------------------------------------------------------------------------------
def padded_length(n: int, seq_len: int) -> int:
    """Rows a trajectory of n steps takes once cut into sequences of seq_len (padding included)."""
    return -(-n // seq_len) * seq_len


def pad_sequences(arr: np.ndarray, seq_len: int, fill: float | bool = 0) -> np.ndarray:
    """`arr` (n, ...) padded at its end with `fill` rows up to a multiple of seq_len."""
    n = len(arr)
    total = padded_length(n, seq_len)
    if total == n:
        return arr
    out = np.full((total,) + arr.shape[1:], fill, dtype=arr.dtype)
    out[:n] = arr
    return out


def sequence_masks(n: int, seq_len: int) -> np.ndarray:
    """1.0 for the n real rows, 0.0 for the padding after them (float32, padded_length(n, seq_len) rows)."""
    masks = np.zeros(padded_length(n, seq_len), dtype=np.float32)
    masks[:n] = 1.0
    return masks


def sequence_starts(rows: int, seq_len: int) -> np.ndarray:
    """Row indices where the sequences of a padded block of `rows` rows start: 0, L, 2L, ..."""
    if rows % seq_len:
        raise ValueError(f"{rows} rows are not whole sequences of length {seq_len}")
    return np.arange(0, rows, seq_len)


@torch.no_grad()
def carry_through(
    memory: LSTMMemory, x: torch.Tensor, initial: torch.Tensor, seq_len: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run ONE trajectory's features x (n, n_in) (no padding) sequence by sequence from `initial` (memory_size,).

    Returns the outputs (n, hidden), the memory at each sequence start (ceil(n / L), memory_size): row k
    is the memory before step k * L, and the memory after the last step (memory_size,). The last,
    shorter sequence runs with its real length.

    Each sequence starts from the memory the previous one ended with, so the LSTM runs over the whole
    trajectory in one call; h at a sequence start is the output before it, and c is carried by its own
    recurrence c_t = f_t c_{t-1} + i_t g_t, the gates recomputed at once from the inputs and the outputs.
    """
    n, hid = x.shape[0], memory.hidden
    out, final = memory.forward(x.unsqueeze(0), initial.reshape(1, -1))
    out = out[0]
    boundary = (padded_length(n, seq_len) // seq_len - 1) * seq_len  # the last sequence's first step
    if boundary == 0:
        return out, initial.reshape(1, -1), final[0]
    lstm = memory.lstm
    w_ih, w_hh, b_ih, b_hh = (
        cast(torch.Tensor, getattr(lstm, name)) for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    )
    h_prev = torch.cat([initial[None, :hid], out[: boundary - 1]])
    z = torch.addmm(b_ih + b_hh, x[:boundary], w_ih.t()).addmm_(h_prev, w_hh.t())
    gates = torch.sigmoid(z)
    f = gates[:, hid : 2 * hid].cpu().numpy()
    ig = (gates[:, :hid] * torch.tanh(z[:, 2 * hid : 3 * hid])).cpu().numpy()
    c = initial[hid:].cpu().numpy()
    cells = []
    for t in range(boundary):
        c = f[t] * c + ig[t]
        if (t + 1) % seq_len == 0:
            cells.append(c)
    ends = torch.from_numpy(np.stack(cells)).to(x.device)
    starts = torch.cat([initial.reshape(1, -1), torch.cat([out[seq_len - 1 : boundary : seq_len], ends], dim=1)])
    return out, starts, final[0]
