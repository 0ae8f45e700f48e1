"""The records of one SAC update, shared by the autograd reference (losses.py), the hand-derived gradients
(fast_update.py) and the optimiser step (update.py): the minibatches an update reads (`Batches`), what
it reads besides the networks (`SACCoefficients`) and the losses it returns (`UpdateStats`)."""

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
    # with memory: the rows are whole sequences of seq_len (B a multiple of it)
    seq_len: int = 1
    masks: torch.Tensor | None = None  # (n*B,) 1.0 real step, 0.0 padding
    memory: torch.Tensor | None = None  # (n*B/L, M) the actor's memory at each sequence start
    critic_memory: torch.Tensor | None = None  # (n*B/L, M) the value network's memory at each start
    next_critic_memory: torch.Tensor | None = None  # (n*B/L, M) its memory one step after each start

    def get(self, i: int) -> Batches:
        s = slice(i * self.size, (i + 1) * self.size)
        per = self.size // self.seq_len
        q = slice(i * per, (i + 1) * per)

        def cut(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[s]

        def cut_seq(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t[q]

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
            seq_len=self.seq_len,
            masks=cut(self.masks),
            memory=cut_seq(self.memory),
            critic_memory=cut_seq(self.critic_memory),
            next_critic_memory=cut_seq(self.next_critic_memory),
        )


@dataclass
class SACCoefficients:
    """What the SAC losses read besides the networks and the minibatch (the tensors are on the update's device).

    The log entropy coefficients are the learned parameters themselves (the entropy optimiser steps them).
    """

    log_alpha_c: torch.nn.Parameter | None  # (1,) log of the continuous entropy coefficient
    log_alpha_d: torch.nn.Parameter | None  # (n_branches,) log of each branch's entropy coefficient
    target_c: float  # target entropy of the continuous part
    target_d: torch.Tensor | None  # (n_branches,) target entropy of each branch
    gammas: torch.Tensor  # (S,) discount per reward signal
    branch_matrix: torch.Tensor  # (K, n_branches): 1 where column k belongs to branch b


@dataclass
class UpdateStats:
    policy_loss: torch.Tensor
    value_loss: torch.Tensor
    q1_loss: torch.Tensor
    q2_loss: torch.Tensor
