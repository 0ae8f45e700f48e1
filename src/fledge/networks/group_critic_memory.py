"""POCA's group critic with memory (spec 8.5, 8.8): the group critic's attention and dense layers, then one LSTM
(networks/memory.py) before the heads. The value rows and the baseline rows go through the same LSTM with
memories of their own: a value memory and a baseline memory per agent, carried by the trainer from one
trajectory of the agent to the next and dropped when its episode ends."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fledge.networks.group_critic import GroupCritic
from fledge.networks.memory import LSTMMemory, carry_through


class RecurrentGroupCritic(GroupCritic):
    def __init__(self, *, memory_size: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.memory = LSTMMemory(self.dense.out_size, memory_size)
        self.heads = nn.Linear(self.memory.out_size, int(kwargs["n_values"]))

    @property
    def memory_size(self) -> int:
        return self.memory.memory_size

    def _heads(self, pooled: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        raise TypeError("a group critic with memory runs over sequences: use features() and sequences()")

    def features(
        self, members: torch.Tensor, mask: torch.Tensor, others: torch.Tensor, others_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The dense features (B, hidden) of the value rows and of the baseline rows, before the LSTM: the
        arguments and the one-pass layout of `GroupCritic.value_and_baseline`."""
        pooled, full_mask = self.attended_rows(members, mask, others, others_mask)
        count = 2.0 * full_mask.sum(dim=1) / torch.clamp(self.widest, min=1.0) - 1.0
        h = self.dense(torch.cat([pooled, count[:, None]], dim=1))[0].view(members.shape[0], 2, -1)
        return h[:, 0], h[:, 1]

    def sequences(
        self,
        members: torch.Tensor,
        mask: torch.Tensor,
        others: torch.Tensor,
        others_mask: torch.Tensor,
        *,
        value_starts: torch.Tensor,
        baseline_starts: torch.Tensor,
        seq_len: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Values and baselines (N * L, S) of rows forming N whole sequences, the LSTM re-run over each from
        the value and baseline memories (N, memory_size) stored at its start."""
        hv, hb = self.features(members, mask, others, others_mask)
        values = self.heads(self.memory.sequences(hv, value_starts, seq_len))
        baselines = self.heads(self.memory.sequences(hb, baseline_starts, seq_len))
        return values, baselines

    @torch.no_grad()
    def carry(
        self, h: torch.Tensor, initial: torch.Tensor, seq_len: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Heads (n, S) of one trajectory's features h (n, hidden) from `features`, the LSTM run sequence by
        sequence from `initial` (memory_size,); with the memory at each sequence start and after the last row."""
        out, starts, final = carry_through(self.memory, h, initial, seq_len)
        return self.heads(out), starts, final
