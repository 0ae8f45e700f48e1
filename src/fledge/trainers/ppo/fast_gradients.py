"""The gradient accelerator of `losses.ppo_loss`: the same numbers as autograd, derived by hand, far fewer operations.

For the small networks of RL, autograd's bookkeeping costs more than the arithmetic (about 80 us per
backward() call and 10-20 us per recorded operation on a 2-core machine). This module computes the
forward pass without recording, the gradient of

    loss = policy_loss + 0.5 * value_loss - beta * mean(entropy)        (losses.ppo_loss)

with respect to the log-probabilities, values and entropies in closed form, and backpropagates it
through the heads and the dense copies of the body by hand. It covers vector-observation MLP
policies (`covers`); update.py falls back to autograd on `ppo_loss` for anything else.
tests/unit/test_fast_gradients.py checks the losses and every gradient against autograd for
continuous, discrete (masked, several branches) and hybrid actions, shared and separate critics,
0 to 3 hidden layers, with and without the normaliser.

Closed forms used (B samples, S reward signals, r = exp(logp - old_logp)):
- d policy_loss / d logp_i = -(A_i / B) r_i where the unclipped term is the minimum, else 0;
- d value_loss / d V = 2 (V - R) / (B S) where the unclipped error is the larger, else
  2 (V_clip - R) / (B S) where V - V_old lies inside [-eps, eps], else 0;
- Gaussian: d logp / d mu = z / sigma, d logp / d log_sigma = z^2 - 1, d entropy / d log_sigma = 1;
- categorical branch: d logp / d logits = onehot(a) - p, d entropy / d logits = -p (log p + H);
- SiLU: d/dx x s(x) = s(x) (1 + x (1 - s(x))).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch.nn import functional as F

from fledge.networks.actor_critic import ActorCritic
from fledge.networks.dense import DenseStack
from fledge.networks.distributions import LOG_SQRT_2PI, masked_logits, split_branches
from fledge.trainers.ppo.losses import VALUE_WEIGHT, Minibatch

__all__ = ["DenseCache", "Minibatch", "covers", "dense_backward", "dense_forward", "loss_and_gradients"]


def covers(model: ActorCritic) -> bool:
    """Whether the hand gradients are those of `model` (an ActorCritic on a vector-observation MLP body, no memory)."""
    return isinstance(model, ActorCritic) and model.vector_mlp and model.memory_size == 0


def _dsilu(pre: torch.Tensor, sig: torch.Tensor) -> torch.Tensor:
    return sig * (1.0 + pre * (1.0 - sig))


@torch.no_grad()
def loss_and_gradients(
    model: ActorCritic, mb: Minibatch, *, epsilon: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`losses.ppo_loss`'s (total, policy_loss, value_loss), with `.grad` of every parameter set to d total / d it."""
    body = model.dense
    x = mb.x
    n = x.shape[0]
    twins, layers = body.copies, body.num_layers

    hs, cache = dense_forward(body, x)
    h_actor, h_critic = hs[0], hs[-1]

    # ---- heads and losses ---------------------------------------------------------------------------
    values = F.linear(h_critic, model.value_head.weight, model.value_head.bias)
    logp: torch.Tensor | None = None
    entropy_terms: list[tuple[torch.Tensor, float]] = []  # (term, weight): sum of weight * term = mean(entropy)
    cont_cache = None
    if model.mu is not None and model.log_std is not None and mb.continuous is not None:
        mean = F.linear(h_actor, model.mu.weight, model.mu.bias)
        inv_std = torch.exp(-model.log_std)
        z = (mb.continuous - mean) * inv_std
        log_std_sum = model.log_std.sum()
        logp = (z * z).sum(dim=1).mul_(-0.5).sub_(log_std_sum + LOG_SQRT_2PI * z.shape[1])
        entropy_terms.append((log_std_sum + (0.5 + LOG_SQRT_2PI) * z.shape[1], 1.0))
        cont_cache = (z, inv_std)
    disc_cache = None
    if model.logits is not None and mb.discrete is not None:
        logits = masked_logits(F.linear(h_actor, model.logits.weight, model.logits.bias), mb.allowed)
        log_ps = [torch.log_softmax(lg, dim=1) for lg in split_branches(logits, model.branches)]
        for b, log_p in enumerate(log_ps):
            chosen = log_p.gather(1, mb.discrete[:, b : b + 1]).squeeze(1)
            logp = chosen if logp is None else logp + chosen
        disc_cache = log_ps
    assert logp is not None, "a policy has at least one kind of action"

    ratio = torch.exp(logp - mb.old_log_prob)
    adv = mb.advantages
    surr1 = ratio * adv
    surr2 = torch.clamp(ratio, 1.0 - epsilon, 1.0 + epsilon) * adv
    policy_loss = -torch.minimum(surr1, surr2).mean()
    g_logp = torch.where(surr1 <= surr2, surr1, 0.0).mul_(-1.0 / n)

    delta = values - mb.old_values
    clipped = mb.old_values + torch.clamp(delta, -epsilon, epsilon)
    err1 = mb.returns - values
    err2 = mb.returns - clipped
    sq1, sq2 = err1 * err1, err2 * err2
    value_loss = torch.maximum(sq1, sq2).mean()
    scale = VALUE_WEIGHT * 2.0 / values.numel()
    inside = delta.abs() <= epsilon
    g_values = torch.where(sq1 >= sq2, err1, torch.where(inside, err2, 0.0)).mul_(-scale)

    # ---- gradients of the heads ---------------------------------------------------------------------
    g_h_actor = None
    if cont_cache is not None:
        assert model.mu is not None and model.log_std is not None
        z, inv_std = cont_cache
        g_mean = g_logp[:, None] * z * inv_std
        model.log_std.grad = (g_logp[:, None] * (z * z - 1.0)).sum(dim=0) - beta
        model.mu.weight.grad = g_mean.t() @ h_actor
        model.mu.bias.grad = g_mean.sum(dim=0)
        g_h_actor = g_mean @ model.mu.weight
    if disc_cache is not None:
        assert model.logits is not None and mb.discrete is not None
        parts = []
        for b, log_p in enumerate(disc_cache):
            p = torch.exp(log_p)
            entropy = -(p * log_p).sum(dim=1, keepdim=True)
            entropy_terms.append((entropy.sum(), 1.0 / n))
            onehot = torch.zeros_like(p).scatter_(1, mb.discrete[:, b : b + 1], 1.0)
            parts.append(g_logp[:, None] * (onehot - p) + (beta / n) * p * (log_p + entropy))
        g_logits = torch.cat(parts, dim=1)
        if mb.allowed is not None:
            g_logits = g_logits * mb.allowed
        model.logits.weight.grad = g_logits.t() @ h_actor
        model.logits.bias.grad = g_logits.sum(dim=0)
        g_disc = g_logits @ model.logits.weight
        g_h_actor = g_disc if g_h_actor is None else g_h_actor + g_disc
    model.value_head.weight.grad = g_values.t() @ h_critic
    model.value_head.bias.grad = g_values.sum(dim=0)
    g_h_critic = g_values @ model.value_head.weight
    total = torch.add(policy_loss, value_loss, alpha=VALUE_WEIGHT)
    for term, weight in entropy_terms:
        total.sub_(term, alpha=beta * weight)

    # ---- backward through the body ------------------------------------------------------------------
    if layers == 0:
        return total, policy_loss, value_loss
    if g_h_actor is None:
        g_h_actor = torch.zeros_like(g_h_critic)
    g_hs = (g_h_actor + g_h_critic).unsqueeze(0) if twins == 1 else torch.stack((g_h_actor, g_h_critic))
    dense_backward(body, x, cache, g_hs)
    return total, policy_loss, value_loss


class DenseCache(NamedTuple):
    """What `dense_backward` needs of `dense_forward`: the first layer's pre-activation and sigmoid, and
    (input, pre-activation, sigmoid) of every later layer."""

    pre1: torch.Tensor | None
    sig1: torch.Tensor | None
    hidden: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


def dense_forward(body: DenseStack, x: torch.Tensor) -> tuple[torch.Tensor, DenseCache]:
    """Every copy's features (copies, n, out) of rows x (n, n_in) (with no layers: x itself, (1, n, n_in)),
    and what the backward pass needs."""
    n = x.shape[0]
    twins, hidden = body.copies, body.hidden
    if body.num_layers == 0:
        return x.unsqueeze(0), DenseCache(None, None, [])
    hidden_cache: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (input, pre, sigmoid)
    pre1 = torch.addmm(body.b_in, x, body.w_in)
    sig1 = torch.sigmoid(pre1)
    hs = (pre1 * sig1).view(n, twins, hidden).transpose(0, 1)
    for w, b in zip(body.w_hidden, body.b_hidden):
        pre = torch.baddbmm(b, hs, w)
        sig = torch.sigmoid(pre)
        hidden_cache.append((hs, pre, sig))
        hs = pre * sig
    return hs, DenseCache(pre1, sig1, hidden_cache)


def dense_backward(body: DenseStack, x: torch.Tensor, cache: DenseCache, g_hs: torch.Tensor) -> None:
    """Set `.grad` of the dense weights (num_layers >= 1) from d loss / d features g_hs (copies, n, hidden)."""
    n = x.shape[0]
    twins, hidden = body.copies, body.hidden
    assert cache.pre1 is not None and cache.sig1 is not None
    for (inp, pre, sig), w, b in reversed(list(zip(cache.hidden, body.w_hidden, body.b_hidden))):
        g_pre = g_hs * _dsilu(pre, sig)
        w.grad = torch.bmm(inp.transpose(1, 2), g_pre)
        b.grad = g_pre.sum(dim=1, keepdim=True)
        g_hs = torch.bmm(g_pre, w.transpose(1, 2))
    g_pre1 = g_hs.transpose(0, 1).reshape(n, twins * hidden) * _dsilu(cache.pre1, cache.sig1)
    body.w_in.grad = x.t() @ g_pre1
    body.b_in.grad = g_pre1.sum(dim=0)
