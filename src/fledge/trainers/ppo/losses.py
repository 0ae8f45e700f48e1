"""Every PPO formula as a pure function (numpy for per-trajectory maths, torch for the losses).

`ppo_loss` is the loss PPO minimises, written with autograd: the reference. The trainer computes its
gradients with the hand-derived accelerator in fast_gradients.py where that covers the network
(update.py chooses; tests/unit/test_fast_gradients.py checks them equal).

- Total: policy_loss + 0.5 * value_loss - beta * mean(joint entropy).
- GAE (advantages and returns per trajectory): trainers/returns.py, shared by the on-policy trainers.
- Policy loss: -mean(min(r A, clip(r, 1-eps, 1+eps) A)) with r = exp(logp - old_logp) of the JOINT
  action log-probability (fledge computes the joint ratio; ML-Agents 1.1.0 uses one ratio per action
  column).
- Value loss: mean(max((R - V)^2, (R - V_clip)^2)), V_clip = V_old + clip(V - V_old, -eps, eps), with
  V_old the value stored when the action was taken (1.1.0 accidentally used the returns here).
- Schedules: constant, or linear from the initial value at step 0 to a floor at max_steps.
- With memory, minibatches are whole sequences whose padded rows have mask 0: every mean above is then
  the masked mean sum(x * mask) / max(1, sum(mask)) (spec 8.8), the log-ratio of padded rows is set to
  0 before exp (so their garbage log-probs cannot overflow), and advantages are normalised over real
  rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from fledge.trainers.schedules import BETA_FLOOR, EPSILON_FLOOR, LEARNING_RATE_FLOOR, decayed  # noqa: F401

if TYPE_CHECKING:
    from fledge.networks.actor_critic import ActorCritic

VALUE_WEIGHT = 0.5


@dataclass
class Minibatch:
    x: torch.Tensor  # (B, obs) normalised observations
    continuous: torch.Tensor | None  # (B, c)
    discrete: torch.Tensor | None  # (B, d) int64
    allowed: torch.Tensor | None  # (B, sum(branches)) bool
    old_log_prob: torch.Tensor  # (B,)
    advantages: torch.Tensor  # (B,)
    old_values: torch.Tensor  # (B, S)
    returns: torch.Tensor  # (B, S)
    masks: torch.Tensor | None = None  # (B,) 1.0 real step, 0.0 padding (recurrent networks)
    memory: torch.Tensor | None = None  # (B / seq_len, memory_size) actor memories at the sequence starts
    critic_memory: torch.Tensor | None = None  # (B / seq_len, memory_size) critic memories at the starts
    seq_len: int = 1


def ppo_loss(
    model: ActorCritic, mb: Minibatch, *, epsilon: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, policy_loss, value_loss) of a minibatch; call total.backward() for the gradients."""
    log_prob, entropy, values = model.evaluate(
        mb.x,
        mb.continuous,
        mb.discrete,
        mb.allowed,
        memory=mb.memory,
        critic_memory=mb.critic_memory,
        seq_len=mb.seq_len,
    )
    p_loss = policy_loss(log_prob, mb.old_log_prob, mb.advantages, epsilon, mb.masks)
    v_loss = value_loss(values, mb.old_values, mb.returns, epsilon, mb.masks)
    return p_loss + VALUE_WEIGHT * v_loss - beta * masked_mean(entropy, mb.masks), p_loss, v_loss


def masked_mean(x: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    """mean(x) without masks; else sum(x * mask) / max(1, sum(mask)) over the rows (x (B,) or (B, ...), masks (B,))."""
    if masks is None:
        return x.mean()
    m = masks.reshape(masks.shape + (1,) * (x.dim() - 1))
    per_row = x[0].numel() if x.dim() > 1 else 1
    return (x * m).sum() / (torch.clamp(masks.sum(), min=1.0) * per_row)


def normalize_advantages(adv: np.ndarray, masks: np.ndarray | None = None) -> np.ndarray:
    """(A - mean) / (std + 1e-10), the statistics over the real rows (masks 1) when masks are given."""
    real = adv if masks is None else adv[masks > 0]
    return ((adv - real.mean()) / (real.std() + 1e-10)).astype(np.float32)


def policy_loss(
    log_prob: torch.Tensor,
    old_log_prob: torch.Tensor,
    advantages: torch.Tensor,
    epsilon: float,
    masks: torch.Tensor | None = None,
) -> torch.Tensor:
    log_ratio = log_prob - old_log_prob
    if masks is not None:
        log_ratio = log_ratio * masks  # padded rows: ratio 1, whatever their log-probs
    ratio = torch.exp(log_ratio)
    surrogate = torch.min(ratio * advantages, torch.clamp(ratio, 1.0 - epsilon, 1.0 + epsilon) * advantages)
    return -masked_mean(surrogate, masks)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    epsilon: float,
    masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """Clipped value loss averaged over (real) samples and reward signals (equal weight per signal)."""
    clipped = old_values + torch.clamp(values - old_values, -epsilon, epsilon)
    return masked_mean(torch.max((returns - values) ** 2, (returns - clipped) ** 2), masks)
