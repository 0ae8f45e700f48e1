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


def ppo_loss(
    model: ActorCritic, mb: Minibatch, *, epsilon: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, policy_loss, value_loss) of a minibatch; call total.backward() for the gradients."""
    log_prob, entropy, values = model.evaluate(mb.x, mb.continuous, mb.discrete, mb.allowed)
    p_loss = policy_loss(log_prob, mb.old_log_prob, mb.advantages, epsilon)
    v_loss = value_loss(values, mb.old_values, mb.returns, epsilon)
    return p_loss + VALUE_WEIGHT * v_loss - beta * entropy.mean(), p_loss, v_loss


def normalize_advantages(adv: np.ndarray) -> np.ndarray:
    return ((adv - adv.mean()) / (adv.std() + 1e-10)).astype(np.float32)


def policy_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, epsilon: float
) -> torch.Tensor:
    ratio = torch.exp(log_prob - old_log_prob)
    surrogate = torch.min(ratio * advantages, torch.clamp(ratio, 1.0 - epsilon, 1.0 + epsilon) * advantages)
    return -surrogate.mean()


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Clipped value loss averaged over samples and reward signals (equal weight per signal)."""
    clipped = old_values + torch.clamp(values - old_values, -epsilon, epsilon)
    return torch.max((returns - values) ** 2, (returns - clipped) ** 2).mean()
