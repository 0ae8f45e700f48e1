"""Every formula of the reward signals (spec 8.6), as pure tensor maths tested against hand computations.

Curiosity (ICM), per row:
- forward error      e = sum_f 0.5 (phi(s')_f - predicted_f)^2
- reward             min(e, 1 / strength)            (so reward x strength <= 1)
- forward loss       masked mean of e
- inverse loss       masked mean of [sum_d (a_d - predicted_d)^2 + sum_branches cross-entropy(logits, a)]
- total loss         10 (0.2 forward + 0.8 inverse)
RND, per row:        e = sum_f (predicted_f - target_f)^2; reward e; loss masked mean of e.
GAIL:
- reward             -log(1 - D (1 - 1e-7))
- discriminator loss -mean(log(D_expert + 1e-7) + log(1 - D_policy + 1e-7))
- gradient penalty   mean((||dD/dx_interpolated||_2 - 1)^2), x = w x_expert + (1 - w) x_policy, w ~ U(0, 1) per row
- VAIL KL            mean over rows of sum_z 0.5 (mu^2 + sigma^2 - 1 - log sigma^2)   (KL(N(mu, sigma^2) || N(0, 1)))
- VAIL beta update   beta' = max(0, beta + 0.0005 (KL - 0.5))
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

FORWARD_WEIGHT = 0.2
INVERSE_WEIGHT = 0.8
CURIOSITY_SCALE = 10.0
GAIL_EPS = 1e-7
GRADIENT_PENALTY_WEIGHT = 10.0
VAIL_INFORMATION_CONSTRAINT = 0.5
VAIL_BETA_STEP = 0.0005


def masked_mean(x: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
    """sum(x m) / max(1, sum(m)); the plain mean without masks."""
    if masks is None:
        return x.mean()
    return (x * masks).sum() / masks.sum().clamp(min=1.0)


# -- curiosity ------------------------------------------------------------------------------------------
def forward_error(next_encoding: torch.Tensor, predicted: torch.Tensor) -> torch.Tensor:
    """(B,) 0.5 x the squared distance between phi(s') and the forward model's prediction."""
    return 0.5 * ((next_encoding - predicted) ** 2).sum(dim=1)


def curiosity_reward(next_encoding: torch.Tensor, predicted: torch.Tensor, strength: float) -> torch.Tensor:
    """(B,) the forward error clipped at 1 / strength (no clip for strength <= 0)."""
    error = forward_error(next_encoding, predicted)
    return error.clamp(max=1.0 / strength) if strength > 0 else error


def inverse_loss(
    *,
    predicted_continuous: torch.Tensor | None,
    continuous: torch.Tensor | None,
    logits: list[torch.Tensor],
    discrete: torch.Tensor | None,
    masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """Masked mean over rows of (squared error summed over continuous dims + cross-entropy summed over branches).

    logits: one (B, n_b) tensor per discrete branch; discrete (B, branches) int64."""
    per_row: torch.Tensor | None = None
    if predicted_continuous is not None and continuous is not None:
        per_row = ((predicted_continuous - continuous) ** 2).sum(dim=1)
    for b, branch in enumerate(logits):
        assert discrete is not None
        ce = F.cross_entropy(branch, discrete[:, b], reduction="none")
        per_row = ce if per_row is None else per_row + ce
    if per_row is None:
        raise ValueError("the inverse model needs a continuous or a discrete action")
    return masked_mean(per_row, masks)


def curiosity_loss(forward: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """10 (0.2 forward + 0.8 inverse)."""
    return CURIOSITY_SCALE * (FORWARD_WEIGHT * forward + INVERSE_WEIGHT * inverse)


# -- RND ------------------------------------------------------------------------------------------------
def rnd_error(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) the squared distance between the predictor's and the fixed target's features (also the reward)."""
    return ((predicted - target) ** 2).sum(dim=1)


# -- GAIL -----------------------------------------------------------------------------------------------
def gail_reward(estimate: torch.Tensor) -> torch.Tensor:
    """-log(1 - D (1 - 1e-7)): large where the discriminator takes the policy's step for the expert's."""
    return -torch.log(1.0 - estimate * (1.0 - GAIL_EPS))


def discriminator_loss(expert_estimate: torch.Tensor, policy_estimate: torch.Tensor) -> torch.Tensor:
    """-mean(log(D_expert + 1e-7) + log(1 - D_policy + 1e-7)) (both batches the same size)."""
    return -(torch.log(expert_estimate + GAIL_EPS) + torch.log(1.0 - policy_estimate + GAIL_EPS)).mean()


def interpolate(expert: torch.Tensor, policy: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """w x_expert + (1 - w) x_policy, one weight per row (weights (B,) in [0, 1])."""
    w = weights.reshape(-1, *([1] * (expert.dim() - 1)))
    return w * expert + (1.0 - w) * policy


def gradient_penalty(gradients: list[torch.Tensor]) -> torch.Tensor:
    """mean((||g||_2 - 1)^2), the norm over every input's gradient of one row together."""
    squared = sum((g.reshape(len(g), -1) ** 2).sum(dim=1) for g in gradients)
    assert isinstance(squared, torch.Tensor)
    return ((squared.sqrt() - 1.0) ** 2).mean()


def vail_kl(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(N(mu, sigma^2) || N(0, 1)) summed over the code's dimensions; sigma (z,) or (B, z)."""
    var = (sigma**2).expand_as(mu)
    return (0.5 * (mu**2 + var - 1.0 - torch.log(var))).sum(dim=1).mean()


def vail_loss_term(kl: torch.Tensor, beta: float) -> torch.Tensor:
    """beta (KL - 0.5): the information bottleneck added to the discriminator loss."""
    return beta * (kl - VAIL_INFORMATION_CONSTRAINT)


def vail_beta_update(beta: float, kl: float) -> float:
    """max(0, beta + 0.0005 (KL - 0.5))."""
    return max(0.0, beta + VAIL_BETA_STEP * (kl - VAIL_INFORMATION_CONSTRAINT))
