"""Hand-derived gradients of the learned signals' losses (losses.py): the same numbers as autograd, far fewer
operations.

The signals' networks are small, so autograd's bookkeeping costs a large share of their updates. Where a signal's networks are plain vector-observation MLPs
(`covers`: a NetworkBody that is one DenseStack, no VAIL), its update computes the forward pass without
recording and sets every trained parameter's `.grad` to d loss / d parameter in closed form; otherwise it
trains through autograd. tests/unit/test_reward_fast_gradients.py checks the losses and every gradient
against autograd. Curiosity reads its networks' parameters through `CuriosityTensors` (looked up once) and
computes its rewards with the same forward pass (`curiosity_prediction`).

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
    "CuriosityTensors",
    "DiscriminatorParts",
    "Gradients",
    "backward_layers",
    "covers_body",
    "curiosity_gradients",
    "curiosity_prediction",
    "dense_backward",
    "dense_forward",
    "forward_layers",
    "gail_gradients",
    "rnd_gradients",
]

Cache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (input, pre-activation)
Linear = tuple[torch.Tensor, torch.Tensor]  # (weight (out, in), bias (out,)) of an nn.Linear
Layers = list[
    tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
]  # per layer: W (in, out), b, their parameters


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
        if grad.shape != param.shape:
            grad = grad.reshape(param.shape)
        key = id(param)
        held = self._grads.get(key)
        self._grads[key] = (param, grad if held is None else held[1] + grad)

    def write(self, params: Sequence[torch.Tensor]) -> None:
        """Set every parameter's `.grad` (zeros where no pass reached it)."""
        for p in params:
            held = self._grads.get(id(p))
            p.grad = held[1] if held is not None else torch.zeros_like(p)


def _layers(stack: DenseStack) -> Layers:
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


def forward_layers(layers: Layers, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
    """The features (B, out) of x (B, n_in) through SiLU layers (`_layers`), and what `backward_layers` needs."""
    cache: Cache = []
    h = x
    for w, b, _, _ in layers:
        pre = torch.addmm(b, h, w)
        cache.append((h, pre))
        h = F.silu(pre)
    return h, cache


def backward_layers(
    layers: Layers, cache: Cache, g_out: torch.Tensor, grads: Gradients, *, need_input: bool = False
) -> torch.Tensor | None:
    """Add d loss / d weights of the layers (given d loss / d features) to `grads`; d loss / d x if asked."""
    g: torch.Tensor | None = g_out
    for i in range(len(layers) - 1, -1, -1):
        assert g is not None
        w, _, pw, pb = layers[i]
        inp, pre = cache[i]
        g_pre = _silu_grad(g, pre)
        grads.add(pw, inp.t() @ g_pre)
        grads.add(pb, g_pre.sum(dim=0))
        g = g_pre @ w.t() if (i > 0 or need_input) else None
    return g if layers else g_out


def dense_forward(stack: DenseStack, x: torch.Tensor) -> tuple[torch.Tensor, Cache]:
    """The stack's features (B, out) of x (B, n_in), and what `dense_backward` needs."""
    return forward_layers(_layers(stack), x)


def dense_backward(
    stack: DenseStack, cache: Cache, g_out: torch.Tensor, grads: Gradients, *, need_input: bool = False
) -> torch.Tensor | None:
    """Add d loss / d weights of the stack (given d loss / d features) to `grads`; d loss / d x if asked."""
    return backward_layers(_layers(stack), cache, g_out, grads, need_input=need_input)


def _linear_grads(layer: Linear, inp: torch.Tensor, g_out: torch.Tensor, grads: Gradients) -> None:
    """Add d loss / d (weight (out, in), bias) of a linear layer given its input and d loss / d output."""
    grads.add(layer[0], g_out.t() @ inp)
    grads.add(layer[1], g_out.sum(dim=0))


# -- curiosity ------------------------------------------------------------------------------------------


class CuriosityTensors:
    """A CuriosityNetworks' parameters looked up once: the module attribute lookups and Sequential indexing
    of every update cost as much as some of its small operations. The parameters are updated in place
    (Adam, loading a state), so the references stay valid for the networks' life."""

    def __init__(self, nets: CuriosityParts) -> None:
        self.encoder = _layers(nets.body.dense)
        first, second, inverse = nets.forward_model[0], nets.forward_model[2], nets.inverse[0]
        assert isinstance(first, nn.Linear) and isinstance(second, nn.Linear) and isinstance(inverse, nn.Linear)
        self.forward1: Linear = (first.weight, first.bias)
        self.forward2: Linear = (second.weight, second.bias)
        self.inverse: Linear = (inverse.weight, inverse.bias)
        cont, disc = nets.inverse_continuous, nets.inverse_discrete
        self.continuous: Linear | None = (cont.weight, cont.bias) if cont is not None else None
        self.discrete: Linear | None = (disc.weight, disc.bias) if disc is not None else None
        self.branches = list(nets.branches)


@torch.no_grad()
def curiosity_prediction(
    t: CuriosityTensors, x: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(phi(s'), the forward model's prediction of it) (B, h) of the preprocessed [obs; next_obs] rows (2B, obs)."""
    enc, _ = forward_layers(t.encoder, x)
    n = action.shape[0]
    w1, b1 = t.forward1
    w2, b2 = t.forward2
    hidden = F.silu(torch.addmm(b1, torch.cat([enc[:n], action], dim=1), w1.t()))
    return enc[n:], torch.addmm(b2, hidden, w2.t())


@torch.no_grad()
def curiosity_gradients(
    t: CuriosityTensors,
    x: torch.Tensor,
    action: torch.Tensor,
    continuous: torch.Tensor | None,
    discrete: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, Gradients]:
    """(forward loss, inverse loss, gradients of curiosity_loss(forward, inverse)) of a CuriosityNetworks.

    x: the preprocessed [obs; next_obs] rows (2B, obs); action the flat action (B, a); continuous (B, c)
    when the inverse model predicts continuous actions; discrete (B, branches). Temporaries are overwritten
    in place once read, and phi's gradient is written straight into its two halves."""
    grads = Gradients()
    enc, cache = forward_layers(t.encoder, x)
    n, h = action.shape[0], enc.shape[1]
    e, e_next = enc[:n], enc[n:]
    (fw1, fb1), (fw2, fb2), (iw, ib) = t.forward1, t.forward2, t.inverse

    # forward model: d/d predicted = 2 (predicted - phi(s')) / B
    f_in = torch.cat([e, action], dim=1)
    f_pre = torch.addmm(fb1, f_in, fw1.t())
    f_hidden = F.silu(f_pre)
    diff = torch.addmm(fb2, f_hidden, fw2.t()).sub_(e_next)
    flat = diff.view(-1)
    forward = torch.dot(flat, flat) * (0.5 / n)
    g_pred = diff.mul_(L.CURIOSITY_SCALE * L.FORWARD_WEIGHT / n)

    # inverse model: d/d predicted action = 16 (predicted - a) / B, d/d logits = 8 (softmax - onehot) / B
    i_in = torch.cat([e, e_next], dim=1)
    i_pre = torch.addmm(ib, i_in, iw.t())
    i_hidden = F.silu(i_pre)
    weight = L.CURIOSITY_SCALE * L.INVERSE_WEIGHT / n
    total = torch.zeros((), device=x.device)
    g_i_hidden: torch.Tensor | None = None
    if t.continuous is not None and continuous is not None:
        err = torch.addmm(t.continuous[1], i_hidden, t.continuous[0].t()).sub_(continuous)
        flat = err.view(-1)
        total = total + torch.dot(flat, flat)
        g_err = err.mul_(2.0 * weight)
        _linear_grads(t.continuous, i_hidden, g_err, grads)
        g_i_hidden = g_err @ t.continuous[0]
    if t.discrete is not None:
        logits = torch.addmm(t.discrete[1], i_hidden, t.discrete[0].t())
        parts = []
        for b, branch in enumerate(torch.split(logits, t.branches, dim=1)):
            log_p = torch.log_softmax(branch, dim=1)
            chosen = discrete[:, b : b + 1]
            total = total - log_p.gather(1, chosen).sum()
            parts.append(torch.exp(log_p).scatter_add_(1, chosen, torch.full(chosen.shape, -1.0, device=x.device)))
        g_logits = torch.cat(parts, dim=1).mul_(weight)
        _linear_grads(t.discrete, i_hidden, g_logits, grads)
        g_i_hidden = g_logits @ t.discrete[0] if g_i_hidden is None else g_i_hidden.addmm_(g_logits, t.discrete[0])
    assert g_i_hidden is not None, "the inverse model predicts a continuous or a discrete action"
    inverse = total / n

    g_i_pre = _silu_grad(g_i_hidden, i_pre)
    _linear_grads(t.inverse, i_in, g_i_pre, grads)
    _linear_grads(t.forward2, f_hidden, g_pred, grads)
    g_f_pre = _silu_grad(g_pred @ fw2, f_pre)
    _linear_grads(t.forward1, f_in, g_f_pre, grads)
    # d/d phi(s) = the forward model's and the inverse model's; d/d phi(s') = the inverse model's - d/d predicted
    g_i_in = g_i_pre @ iw
    g_enc = torch.empty_like(enc)
    torch.addmm(g_i_in[:, :h], g_f_pre, fw1[:, :h], out=g_enc[:n])
    torch.sub(g_i_in[:, h:], g_pred, out=g_enc[n:])
    backward_layers(t.encoder, cache, g_enc, grads)
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
