"""Hand-derived gradients of the learned signals' losses (losses.py): the same numbers as autograd, far fewer
operations.

The signals' networks are small, so autograd's bookkeeping costs a large share of their updates. Where a signal's networks are plain vector-observation MLPs
(`covers`: a NetworkBody that is one DenseStack, no VAIL), its update computes the forward pass without
recording and sets every trained parameter's `.grad` to d loss / d parameter in closed form; otherwise it
trains through autograd. tests/unit/test_reward_fast_gradients.py checks the losses and every gradient
against autograd.

Closed forms used (B rows, SiLU s(z) = z sigma(z)):
- g s'(z) by torch's SiLU backward kernel; s''(z) = sigma (1 - sigma) (2 + z (1 - 2 sigma));
- curiosity, loss = 2 forward + 8 inverse: d/d predicted = 2 (predicted - phi(s')) / B (and the opposite
  into phi(s')), d/d predicted action = 16 (predicted - a) / B, d/d logits = 8 (softmax - onehot) / B;
- RND, loss = mean sum (P - T)^2: d/dP = 2 (P - T) / B;
- GAIL discriminator loss: d/d logit_expert = -D_e (1 - D_e) / (B (D_e + eps)),
  d/d logit_policy = D_p (1 - D_p) / (B (1 - D_p + eps));
- GAIL gradient penalty P = mean((||g|| - 1)^2) with g = dD/du the input gradient of the interpolated rows
  u: g = q c_0 where q = D (1 - D), c_L = w_out and c_(k-1) = (c_k * s'(z_k)) W_k^T. Its parameter gradient
  runs back through that chain (into W_k, w_out, and into z_k through s''), then through q into the logit,
  then back through the forward pass as usual.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn
from torch.nn import functional as F

from fledge.networks.body import NetworkBody
from fledge.networks.dense import DenseStack
from fledge.rewards import losses as L

__all__ = [
    "CuriosityParts",
    "DiscriminatorParts",
    "Gradients",
    "covers_body",
    "curiosity_gradients",
    "dense_backward",
    "dense_forward",
    "gail_gradients",
    "rnd_gradients",
]

Cache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (input, pre-activation)


class CuriosityParts(Protocol):
    """What the hand gradients read of curiosity's networks (rewards/curiosity.py CuriosityNetworks)."""

    body: NetworkBody
    inverse: nn.Sequential
    inverse_continuous: nn.Linear | None
    inverse_discrete: nn.Linear | None
    forward_model: nn.Sequential
    branches: list[int]


class DiscriminatorParts(Protocol):
    """What the hand gradients read of GAIL's discriminator (rewards/gail.py Discriminator)."""

    body: NetworkBody
    vail: bool
    estimator: nn.Linear


def covers_body(body: NetworkBody) -> bool:
    """Whether `body` is one plain DenseStack (vector observations, one copy, no memory): what this module
    differentiates by hand."""
    return body.plain and body.copies == 1 and body.memory is None


class Gradients:
    """Parameter gradients summed over the passes of one update, then written to `.grad`."""

    def __init__(self) -> None:
        self._grads: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def add(self, param: torch.Tensor, grad: torch.Tensor) -> None:
        grad = grad.reshape(param.shape)
        held = self._grads.get(id(param))
        self._grads[id(param)] = (param, grad if held is None else held[1] + grad)

    def write(self, params: Sequence[torch.Tensor]) -> None:
        """Set every parameter's `.grad` (zeros where no pass reached it)."""
        for p in params:
            held = self._grads.get(id(p))
            p.grad = held[1] if held is not None else torch.zeros_like(p)


def _layers(stack: DenseStack) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(W (in, out), b (out,), W's parameter, b's parameter) of each layer of a one-copy stack."""
    params = stack.parameter_list()
    out = []
    for i in range(0, len(params), 2):
        w, b = params[i], params[i + 1]
        out.append((w.reshape(w.shape[-2], w.shape[-1]), b.reshape(-1), w, b))
    return out


def _silu_grad(g: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """g s'(pre), torch's own SiLU backward kernel (one pass over the rows)."""
    out: torch.Tensor = torch.ops.aten.silu_backward(g, pre)
    return out


def _d2silu(pre: torch.Tensor) -> torch.Tensor:
    sig = torch.sigmoid(pre)
    return sig * (1.0 - sig) * (2.0 + pre * (1.0 - 2.0 * sig))


def dense_forward(stack: DenseStack, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
    """The stack's features (B, out) of x (B, n_in), and what `dense_backward` needs."""
    cache: Cache = []
    h = x
    for w, b, _, _ in _layers(stack):
        pre = torch.addmm(b, h, w)
        cache.append((h, pre))
        h = F.silu(pre)
    return h, cache


def dense_backward(
    stack: DenseStack, cache: Cache, g_out: torch.Tensor, grads: Gradients, *, need_input: bool = False
) -> torch.Tensor | None:
    """Add d loss / d weights of the stack (given d loss / d features) to `grads`; d loss / d x if asked."""
    g: torch.Tensor | None = g_out
    layers = _layers(stack)
    for i in range(len(layers) - 1, -1, -1):
        assert g is not None
        w, _, pw, pb = layers[i]
        inp, pre = cache[i]
        g_pre = _silu_grad(g, pre)
        grads.add(pw, inp.t() @ g_pre)
        grads.add(pb, g_pre.sum(dim=0))
        g = g_pre @ w.t() if (i > 0 or need_input) else None
    return g if layers else g_out


def _linear_backward(layer: torch.nn.Linear, inp: torch.Tensor, g_out: torch.Tensor, grads: Gradients) -> torch.Tensor:
    grads.add(layer.weight, g_out.t() @ inp)
    grads.add(layer.bias, g_out.sum(dim=0))
    return g_out @ layer.weight


# -- curiosity ------------------------------------------------------------------------------------------
@torch.no_grad()
def curiosity_gradients(
    nets: CuriosityParts,
    x: torch.Tensor,
    action: torch.Tensor,
    continuous: torch.Tensor | None,
    discrete: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, Gradients]:
    """(forward loss, inverse loss, gradients of curiosity_loss(forward, inverse)) of a CuriosityNetworks.

    x: the preprocessed [obs; next_obs] rows (2B, obs); action the flat action (B, a); continuous (B, c)
    when the inverse model predicts continuous actions; discrete (B, branches)."""
    grads = Gradients()
    stack = nets.body.dense
    enc, cache = dense_forward(stack, x)
    n = action.shape[0]
    e, e_next = enc[:n], enc[n:]
    forward_lin1, forward_lin2 = nets.forward_model[0], nets.forward_model[2]
    inverse_lin = nets.inverse[0]
    assert isinstance(forward_lin1, torch.nn.Linear) and isinstance(forward_lin2, torch.nn.Linear)
    assert isinstance(inverse_lin, torch.nn.Linear)

    # forward model
    f_in = torch.cat([e, action], dim=1)
    f_pre = F.linear(f_in, forward_lin1.weight, forward_lin1.bias)
    f_hidden = F.silu(f_pre)
    predicted = F.linear(f_hidden, forward_lin2.weight, forward_lin2.bias)
    diff = predicted - e_next
    forward = L.forward_error(e_next, predicted).mean()
    g_pred = diff * (L.CURIOSITY_SCALE * L.FORWARD_WEIGHT / n)

    # inverse model
    i_in = torch.cat([e, e_next], dim=1)
    i_pre = F.linear(i_in, inverse_lin.weight, inverse_lin.bias)
    i_hidden = F.silu(i_pre)
    inverse_weight = L.CURIOSITY_SCALE * L.INVERSE_WEIGHT / n
    per_row = torch.zeros(n)
    g_i_hidden = torch.zeros_like(i_hidden)
    if nets.inverse_continuous is not None and continuous is not None:
        head = nets.inverse_continuous
        err = F.linear(i_hidden, head.weight, head.bias) - continuous
        per_row = per_row + (err * err).sum(dim=1)
        g_i_hidden += _linear_backward(head, i_hidden, err * (2.0 * inverse_weight), grads)
    if nets.inverse_discrete is not None:
        head = nets.inverse_discrete
        logits = F.linear(i_hidden, head.weight, head.bias)
        parts = []
        for b, branch in enumerate(torch.split(logits, nets.branches, dim=1)):
            log_p = torch.log_softmax(branch, dim=1)
            chosen = discrete[:, b : b + 1]
            per_row = per_row - log_p.gather(1, chosen).squeeze(1)
            parts.append((torch.exp(log_p) - torch.zeros_like(log_p).scatter_(1, chosen, 1.0)) * inverse_weight)
        g_i_hidden += _linear_backward(head, i_hidden, torch.cat(parts, dim=1), grads)
    inverse = per_row.mean()

    g_i_in = _linear_backward(inverse_lin, i_in, _silu_grad(g_i_hidden, i_pre), grads)
    g_f_hidden = _linear_backward(forward_lin2, f_hidden, g_pred, grads)
    g_f_in = _linear_backward(forward_lin1, f_in, _silu_grad(g_f_hidden, f_pre), grads)
    h = e.shape[1]
    g_enc = torch.cat([g_f_in[:, :h] + g_i_in[:, :h], g_i_in[:, h:] - g_pred], dim=0)
    dense_backward(stack, cache, g_enc, grads)
    return forward, inverse, grads


# -- RND ------------------------------------------------------------------------------------------------
@torch.no_grad()
def rnd_gradients(
    predictor: NetworkBody, target: NetworkBody, x_predictor: torch.Tensor, x_target: torch.Tensor
) -> tuple[torch.Tensor, Gradients]:
    """(the RND loss, its gradients into the predictor) of the rows (B, obs) as each body preprocessed them."""
    grads = Gradients()
    t, _ = dense_forward(target.dense, x_target)
    p, cache = dense_forward(predictor.dense, x_predictor)
    loss = L.rnd_error(p, t).mean()
    dense_backward(predictor.dense, cache, (p - t) * (2.0 / len(p)), grads)
    return loss, grads


# -- GAIL -----------------------------------------------------------------------------------------------
@torch.no_grad()
def gail_gradients(
    nets: DiscriminatorParts, u_expert: torch.Tensor, u_policy: torch.Tensor, weights: torch.Tensor
) -> tuple[dict[str, torch.Tensor], Gradients]:
    """The discriminator's loss terms and the gradients of d_loss + 10 x penalty (no VAIL).

    u_*: the discriminator's input rows [preprocessed obs, extra] (B, in); weights (B,) the interpolation
    weights of the gradient penalty. Terms: "d_loss", "penalty", "d_expert", "d_policy" (the estimates).
    The expert, policy and interpolated rows go through the network in one forward and one backward pass."""
    assert not nets.vail, "VAIL trains through autograd"
    grads = Gradients()
    stack = nets.body.dense
    est = nets.estimator
    n = len(u_expert)
    eps = L.GAIL_EPS
    layers = _layers(stack)

    u = L.interpolate(u_expert, u_policy, weights)
    h, cache = dense_forward(stack, torch.cat([u_expert, u_policy, u]))
    d = torch.sigmoid(F.linear(h, est.weight, est.bias))  # (3B, 1)
    d_expert, d_policy, d_i = d[:n, 0], d[n : 2 * n, 0], d[2 * n :]
    d_loss = L.discriminator_loss(d_expert, d_policy)

    # gradient penalty: g = dD/du = q c_0 on the interpolated rows
    q = d_i * (1.0 - d_i)
    c = est.weight.expand(n, -1)  # c_L = d logit / d features, per row
    chain: list[tuple[torch.Tensor, torch.Tensor]] = []  # (c_k, m_k = c_k s'(z_k)), last layer first
    pre_i = [pre[2 * n :] for _, pre in cache]  # the interpolated rows' pre-activations
    for (w, _, _, _), pre in zip(reversed(layers), reversed(pre_i)):
        m = _silu_grad(c, pre)
        chain.append((c, m))
        c = m @ w.t()
    g = q * c
    norm = g.norm(dim=1, keepdim=True)
    penalty = ((norm - 1.0) ** 2).mean()
    # back through g = q c_0 and the chain of c (d/d c_L reaches the estimator's weight)
    g_g = (norm - 1.0) / norm.clamp(min=1e-30) * (2.0 * L.GRADIENT_PENALTY_WEIGHT / n) * g
    g_q = (g_g * c).sum(dim=1, keepdim=True)
    g_c = g_g * q
    g_pre_extra: list[torch.Tensor] = []  # d penalty / d z_k through s'(z_k), first layer first
    for (w, _, pw, _), pre, (c_k, m) in zip(layers, pre_i, reversed(chain)):
        grads.add(pw, g_c.t() @ m)
        g_m = g_c @ w
        g_pre_extra.append(g_m * c_k * _d2silu(pre))
        g_c = _silu_grad(g_m, pre)
    grads.add(est.weight, g_c.sum(dim=0, keepdim=True))

    # d/d logit of every row: the discriminator loss (expert, policy rows), the penalty through q = D (1 - D)
    g_logit = torch.cat(
        [
            -d_expert * (1.0 - d_expert) / (n * (d_expert + eps)),
            d_policy * (1.0 - d_policy) / (n * (1.0 - d_policy + eps)),
            (g_q * q * (1.0 - 2.0 * d_i))[:, 0],
        ]
    )[:, None]
    grads.add(est.weight, g_logit.t() @ h)
    grads.add(est.bias, g_logit.sum(dim=0))
    g_h: torch.Tensor = g_logit @ est.weight
    for (w, _, pw, pb), (inp, pre), extra, i in zip(
        reversed(layers), reversed(cache), reversed(g_pre_extra), range(len(layers) - 1, -1, -1)
    ):
        g_pre = _silu_grad(g_h, pre)
        g_pre[2 * n :] += extra
        grads.add(pw, inp.t() @ g_pre)
        grads.add(pb, g_pre.sum(dim=0))
        if i > 0:
            g_h = g_pre @ w.t()
    return {"d_loss": d_loss, "penalty": penalty, "d_expert": d_expert, "d_policy": d_policy}, grads
