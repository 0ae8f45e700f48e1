"""Action distributions as pure tensor maths: diagonal Gaussian, tanh-squashed Gaussian and masked
categorical branches.

Conventions (fledge, documented in docs): the log-probability of an action is the JOINT log-prob of
the agent's whole action (sum over continuous dimensions and discrete branches), and the entropy is
the joint entropy (same sum). Masks are float or bool tensors with 1/True = action allowed.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

LOG_2 = math.log(2.0)
LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
MASKED_LOGIT = -1.0e8


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Sum over dimensions of log N(a; mean, exp(log_std)^2). Shapes (B, D) -> (B,)."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - LOG_SQRT_2PI).sum(dim=-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Sum over dimensions of 0.5 * log(2 pi e sigma^2) = log_std + 0.5 + log sqrt(2 pi)."""
    return (log_std + 0.5 + LOG_SQRT_2PI).sum(dim=-1)


def tanh_log_det_jacobian(u: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), elementwise and stable for large |u|."""
    return 2.0 * (LOG_2 - u - F.softplus(-2.0 * u))


def squashed_gaussian_log_prob(u: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """Joint log-probability (B,) of a = tanh(u) for u (B, c) drawn from N(mean, exp(log_std)^2)."""
    return gaussian_log_prob(u, mean, log_std) - tanh_log_det_jacobian(u).sum(dim=-1)


def squashed_log_prob_from_noise(noise: torch.Tensor, log_std: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """The same for a reparameterised sample u = mean + exp(log_std) noise ((u - mean) / std is noise exactly)."""
    return (-0.5 * noise * noise - log_std - LOG_SQRT_2PI - tanh_log_det_jacobian(u)).sum(-1)


def masked_logits(logits: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Replace the logits of unavailable actions by a very negative number (never -inf: no NaN)."""
    if allowed is None:
        return logits
    return torch.where(allowed > 0, logits, torch.full_like(logits, MASKED_LOGIT))


def split_branches(flat: torch.Tensor, branches: tuple[int, ...]) -> list[torch.Tensor]:
    return list(torch.split(flat, list(branches), dim=-1))


def categorical_log_prob_entropy(
    logits: torch.Tensor, allowed: torch.Tensor | None, actions: torch.Tensor, branches: tuple[int, ...]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint log-prob of the chosen index per branch and joint entropy, both (B,).

    logits: (B, sum(branches)); allowed: same shape (1 = allowed) or None; actions: (B, n_branches) int.
    """
    logp_total = torch.zeros(logits.shape[0], dtype=logits.dtype, device=logits.device)
    ent_total = torch.zeros_like(logp_total)
    masked = masked_logits(logits, allowed)
    for b, branch_logits in enumerate(split_branches(masked, branches)):
        log_p = torch.log_softmax(branch_logits, dim=-1)
        logp_total = logp_total + log_p.gather(-1, actions[:, b : b + 1].long()).squeeze(-1)
        ent_total = ent_total - (log_p.exp() * log_p).sum(dim=-1)
    return logp_total, ent_total


def sample_categorical(
    logits: torch.Tensor,
    allowed: torch.Tensor | None,
    branches: tuple[int, ...],
    *,
    generator: torch.Generator | None,
    deterministic: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample (or take the argmax of) each branch (Gumbel-max).

    Returns (actions int64 (B, n_branches), joint log-prob (B,), joint entropy (B,)).
    """
    masked = masked_logits(logits, allowed)
    choices = []
    logp_total = torch.zeros(logits.shape[0], dtype=logits.dtype, device=logits.device)
    ent_total = torch.zeros_like(logp_total)
    for branch_logits in split_branches(masked, branches):
        log_p = torch.log_softmax(branch_logits, dim=-1)
        if deterministic:
            idx = torch.argmax(log_p, dim=-1, keepdim=True)
        else:
            u = torch.rand(log_p.shape, generator=generator, dtype=log_p.dtype, device=log_p.device)
            gumbel = -torch.log(-torch.log(u.clamp_min(1e-20)))
            idx = torch.argmax(log_p + gumbel, dim=-1, keepdim=True)
        choices.append(idx)
        logp_total = logp_total + log_p.gather(-1, idx).squeeze(-1)
        ent_total = ent_total - (log_p.exp() * log_p).sum(dim=-1)
    return torch.cat(choices, dim=-1), logp_total, ent_total
