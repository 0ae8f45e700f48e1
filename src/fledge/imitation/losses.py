"""Behavioral cloning's formulas (spec 8.7), as pure functions; tests/unit/test_bc_losses.py checks each
against a hand computation.

- Learning rate: policy learning_rate x strength, decaying linearly to 1e-10 over `steps` trainer steps
  (constant when steps is 0); at or below 1e-10 BC stops updating.
- Continuous loss: mean over rows and action dimensions of (policy action - expert action)^2, both in the
  environment's units: the policy's reparameterised sample mean + std x noise, mapped by the trainer's
  action transform (PPO: a / 3; SAC: tanh(a)).
- Discrete loss: per branch the cross-entropy -sum(one_hot(expert) x log_softmax(logits)) with unavailable
  actions masked out, then the mean over branches and rows.
- A hybrid action adds the two.
"""

from __future__ import annotations

import torch

from fledge.networks.distributions import masked_logits, split_branches

BC_LEARNING_RATE_FLOOR = 1.0e-10

__all__ = ["BC_LEARNING_RATE_FLOOR", "bc_learning_rate", "continuous_bc_loss", "discrete_bc_loss"]


def bc_learning_rate(learning_rate: float, strength: float, steps: int, step: int) -> float:
    """BC's learning rate at trainer step `step`."""
    initial = float(learning_rate) * float(strength)
    if steps <= 0:
        return initial
    frac = min(max(step, 0) / steps, 1.0)
    return (initial - BC_LEARNING_RATE_FLOOR) * (1.0 - frac) + BC_LEARNING_RATE_FLOOR


def continuous_bc_loss(policy_actions: torch.Tensor, expert_actions: torch.Tensor) -> torch.Tensor:
    """mean((policy - expert)^2) over every row and dimension; both (B, c) in environment units."""
    return torch.mean((policy_actions - expert_actions) ** 2)


def discrete_bc_loss(
    logits: torch.Tensor, expert: torch.Tensor, allowed: torch.Tensor | None, branches: tuple[int, ...]
) -> torch.Tensor:
    """Mean over branches and rows of the cross-entropy of the expert's choice.

    logits (B, sum(branches)) unnormalised; expert (B, len(branches)) int64; allowed (B, sum(branches)) bool
    (True = available) or None (all available)."""
    per_branch = []
    for b, branch_logits in enumerate(split_branches(masked_logits(logits, allowed), branches)):
        log_probs = torch.log_softmax(branch_logits, dim=1)
        per_branch.append(-log_probs.gather(1, expert[:, b : b + 1]).squeeze(1))
    return torch.stack(per_branch, dim=1).mean()
