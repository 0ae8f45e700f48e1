"""The records of one SAC update, shared by the reference update (update.py) and the hand-derived one
(fast_update.py): the minibatches it reads (`Batches`) and the losses it returns (`UpdateStats`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batches:
    """`n` minibatches of `size` rows, stored contiguously; `get(i)` returns views of the i-th."""

    size: int
    x: torch.Tensor  # (n*B, obs) normalised observations
    next_x: torch.Tensor  # (n*B, obs) normalised next observations
    rewards: torch.Tensor  # (n*B, S) reward x strength per signal
    done: torch.Tensor  # (n*B,) float 0/1
    discount: torch.Tensor  # (n*B, S) gamma (1 - done)
    q_input: torch.Tensor  # (n*B, obs [+ c]) the Q networks' input for the stored action
    action: torch.Tensor | None  # (n*B, c)
    noise: torch.Tensor | None  # (n*B, c) standard normal for the reparameterised sample
    one_hot: torch.Tensor | None  # (n*B, K) float: the stored discrete action of each branch
    allowed: torch.Tensor | None  # (n*B, K) bool
    mask_add: torch.Tensor | None  # (n*B, K) float: 0 where allowed, -1e8 where masked

    def get(self, i: int) -> Batches:
        s = slice(i * self.size, (i + 1) * self.size)

        def cut(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[s]

        return Batches(
            self.size,
            self.x[s],
            self.next_x[s],
            self.rewards[s],
            self.done[s],
            self.discount[s],
            self.q_input[s],
            cut(self.action),
            cut(self.noise),
            cut(self.one_hot),
            cut(self.allowed),
            cut(self.mask_add),
        )


@dataclass
class UpdateStats:
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    q1_loss: torch.Tensor
    q2_loss: torch.Tensor
