"""The SAC update with its gradients derived by hand: the same numbers as autograd, far fewer operations.

For RL-sized networks autograd's per-operation bookkeeping costs more than the arithmetic. This module
runs the forward pass without recording, computes the gradient of every loss of `losses.py` in closed
form and backpropagates it through the actor, the twin Q networks and the value network by hand,
then hands the gradients to the fused Adam step. tests/unit/test_sac_fast_update.py checks every
gradient against autograd (`SACUpdater.losses` + backward) for continuous, discrete (masked, several
branches) and hybrid actions and 1 to 3 hidden layers.

Closed forms (B samples, S signals, K Q-columns, nb branches, alpha without gradient):
- Q losses: d/dQ_i(s, a) = (Q_i - y) / (B S), spread to the stored action's column of every branch / nb;
- value loss: d/dV = (V - V_target) / (B S);
- policy loss mean(P) - mean(E[Q1]) with P = alpha_c log pi_c + sum_b alpha_b E_b[log pi_b]:
  * through Q1(s, a') to the action (weights detached): input gradient of Q1 at a', the action columns;
  * tanh-squashed Gaussian, u = mean + std noise, a = tanh(u): d log pi / du = 2 a (from the log-det),
    da/du = 1 - a^2, d log pi / d log_std = -1 (direct) and du/d log_std = std noise;
  * branch probabilities: for L(p), dL/dz_j = p_j (c_j - sum_k p_k c_k) over the branch, with
    c_k = dL/dp_k + (alpha_b / B) log p_k (the entropy term; its +1 cancels);
- entropy coefficients: d/dlog alpha_c = -mean(log pi_c + target_c), d/dlog alpha_b = -mean(E_b[log pi_b] + target_b);
- SiLU backward: aten's silu_backward; clamp of the log-std passes gradient inside [-20, 2] only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from fledge.trainers.sac import losses as L
from fledge.trainers.sac.networks import TwinQ
from fledge.trainers.sac.records import Batches, UpdateStats

if TYPE_CHECKING:
    from fledge.trainers.sac.update import SACUpdater

_silu_backward = torch.ops.aten.silu_backward


def _mlp_forward(
    x: torch.Tensor, weights: list[torch.Tensor], biases: list[torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """SiLU layers; returns the output and, per layer, its input and pre-activation."""
    inputs, pre = [], []
    h = x
    for w, b in zip(weights, biases):
        inputs.append(h)
        z = torch.addmm(b, h, w)
        pre.append(z)
        h = F.silu(z)
    return h, inputs, pre


def _mlp_backward(
    g: torch.Tensor, weights: list[torch.Tensor], inputs: list[torch.Tensor], pre: list[torch.Tensor]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Weight and bias gradients of every layer for the gradient g of the last layer's output."""
    grads: list[tuple[torch.Tensor, torch.Tensor]] = []
    for layer in range(len(weights) - 1, -1, -1):
        gz = _silu_backward(g, pre[layer])
        grads.append((torch.mm(inputs[layer].t(), gz), gz.sum(0)))
        if layer:
            g = torch.mm(gz, weights[layer].t())
    grads.reverse()
    return grads


class _TwinCache:
    def __init__(
        self, inp: torch.Tensor, z1: torch.Tensor, hs_in: list[torch.Tensor], zs: list[torch.Tensor], top: torch.Tensor
    ) -> None:
        self.inp, self.z1, self.hs_in, self.zs, self.top = inp, z1, hs_in, zs, top


def _twin_forward(q: TwinQ, inp: torch.Tensor) -> tuple[torch.Tensor, _TwinCache]:
    """TwinQ.forward keeping what the backward passes need; q (2, B, S*K)."""
    n, hidden = inp.shape[0], q.hidden
    z1 = torch.addmm(q.b_in, inp, q.w_in)
    hs = F.silu(z1).view(n, 2, hidden).transpose(0, 1)
    hs_in, zs = [], []
    for w, b in zip(q.w_hidden, q.b_hidden):
        hs_in.append(hs)
        z = torch.baddbmm(b, hs, w)
        zs.append(z)
        hs = F.silu(z)
    out = torch.baddbmm(q.b_out, hs, q.w_out)
    return out, _TwinCache(inp, z1, hs_in, zs, hs)


def _twin_weight_grads(q: TwinQ, g: torch.Tensor, c: _TwinCache) -> dict[torch.Tensor, torch.Tensor]:
    """Gradients of both twins' weights for g = dL/dq (2, B, S*K)."""
    grads: dict[torch.Tensor, torch.Tensor] = {
        q.w_out: torch.bmm(c.top.transpose(1, 2), g),
        q.b_out: g.sum(1, keepdim=True),
    }
    gh = torch.bmm(g, q.w_out.transpose(1, 2))
    for i in range(len(c.zs) - 1, -1, -1):
        gz = _silu_backward(gh, c.zs[i])
        grads[q.w_hidden[i]] = torch.bmm(c.hs_in[i].transpose(1, 2), gz)
        grads[q.b_hidden[i]] = gz.sum(1, keepdim=True)
        gh = torch.bmm(gz, q.w_hidden[i].transpose(1, 2))
    n = c.inp.shape[0]
    gz1 = _silu_backward(gh.transpose(0, 1).reshape(n, 2 * q.hidden), c.z1)
    grads[q.w_in] = torch.mm(c.inp.t(), gz1)
    grads[q.b_in] = gz1.sum(0)
    return grads


def _q1_action_grad(q: TwinQ, g1: torch.Tensor, c: _TwinCache, obs_size: int) -> torch.Tensor:
    """d/d(action columns of the input) of sum(g1 * Q1) for g1 (B, S*K): twin 0 only, weights fixed."""
    hidden = q.hidden
    gh = torch.mm(g1, q.w_out[0].t())
    for i in range(len(c.zs) - 1, -1, -1):
        gz = _silu_backward(gh, c.zs[i][0])
        gh = torch.mm(gz, q.w_hidden[i][0].t())
    gz1 = _silu_backward(gh, c.z1[:, :hidden])
    return torch.mm(gz1, q.w_in[obs_size:, :hidden].t())


def update(up: SACUpdater, b: Batches) -> UpdateStats:
    """One SAC update (gradients by hand, fused Adam step, soft target update); returns the losses."""
    forward_pass = forward(up, b)
    up.stepper.step_with(backward(up, forward_pass))
    L.soft_update(up._target, up._source, up.tau)
    return forward_pass.stats


def gradients(up: SACUpdater, b: Batches) -> tuple[dict[torch.Tensor, torch.Tensor], UpdateStats]:
    """d(total loss)/d(parameter) for every trained parameter, and the loss values."""
    forward_pass = forward(up, b)
    return backward(up, forward_pass), forward_pass.stats


@dataclass
class Forward:
    """What the backward pass needs from the forward pass."""

    batch: Batches
    stats: UpdateStats
    dq: torch.Tensor  # (2, B, S) Q(s, a) - y
    dv: torch.Tensor  # (B, S) V(s) - value target
    q_cache: _TwinCache
    q_fresh: torch.Tensor  # (2, B, S, K)
    q_fresh_cache: _TwinCache
    v_body: torch.Tensor
    v_cache: tuple[list[torch.Tensor], list[torch.Tensor]]
    actor_body: torch.Tensor
    actor_cache: tuple[list[torch.Tensor], list[torch.Tensor]]
    action: torch.Tensor | None = None
    std: torch.Tensor | None = None
    ls_raw: torch.Tensor | None = None
    log_pi_c: torch.Tensor | None = None
    alpha_c: torch.Tensor | None = None
    probs: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None
    branch_lp: torch.Tensor | None = None
    alpha_d: torch.Tensor | None = None


@torch.no_grad()
def forward(up: SACUpdater, b: Batches) -> Forward:
    """The forward pass of every network and the loss values (no autograd recording)."""
    nets, shape = up.nets, up.nets.shape
    c, branches = shape.continuous_size, shape.branches
    nb, n_sig, n_cols = len(branches), shape.n_signals, shape.q_columns
    n = b.x.shape[0]
    actor, q, value = nets.policy, nets.q, nets.value

    # -- actor forward ------------------------------------------------------------------------------
    body_w, body_b = list(actor.body.weights), list(actor.body.biases)
    h, a_inputs, a_pre = _mlp_forward(b.x, body_w, body_b)
    out = torch.addmm(actor.head_b, h, actor.head_w)
    alpha_c = alpha_d = action = std = ls_raw = None
    penalty = None
    log_pi_c = branch_lp = probs = log_probs = None
    if c:
        assert up.log_alpha_c is not None and b.noise is not None
        alpha_c = torch.exp(up.log_alpha_c)
        mean, ls_raw = out[:, :c], out[:, c : 2 * c]
        log_std = torch.clamp(ls_raw, L.LOG_STD_MIN, L.LOG_STD_MAX)
        std = torch.exp(log_std)
        u = torch.addcmul(mean, std, b.noise)
        action = torch.tanh(u)
        log_pi_c = L.squashed_log_prob_from_noise(b.noise, log_std, u)
        penalty = alpha_c * log_pi_c
    if nb:
        assert up.log_alpha_d is not None and b.mask_add is not None
        alpha_d = torch.exp(up.log_alpha_d)
        z = out[:, 2 * c :] + b.mask_add
        if nb == 1:
            log_probs = torch.log_softmax(z, dim=1)
        else:
            log_probs = torch.cat([torch.log_softmax(t, dim=1) for t in torch.split(z, list(branches), dim=1)], 1)
        probs = torch.exp(log_probs)
        branch_lp = torch.mm(probs * log_probs, up.branch_matrix)  # (B, nb)
        disc_pen = torch.mv(branch_lp, alpha_d)
        penalty = disc_pen if penalty is None else penalty + disc_pen
    assert penalty is not None

    # -- critics forward ----------------------------------------------------------------------------
    q_stored, cache_stored = _twin_forward(q, b.q_input)
    if c:
        assert action is not None
        q_fresh, cache_fresh = _twin_forward(q, torch.cat([b.x, action], dim=1))
    else:
        q_fresh, cache_fresh = q_stored, cache_stored
    q_fresh = q_fresh.view(2, n, n_sig, n_cols)
    v, v_inputs, v_pre = _mlp_forward(b.x, list(value.weights), list(value.biases))
    assert value.head_w is not None and value.head_b is not None
    v_out = torch.addmm(value.head_b, v, value.head_w)  # (B, S)
    y = torch.addcmul(b.rewards, b.discount, nets.target_value(b.next_x))
    q_min = torch.minimum(q_fresh[0], q_fresh[1])
    if nb:
        assert probs is not None and b.one_hot is not None
        p3 = probs.unsqueeze(1)
        expected_min = (q_min * p3).sum(-1) / nb
        expected_q1 = (q_fresh[0] * p3).sum(-1) / nb
        q_taken = (q_stored.view(2, n, n_sig, n_cols) * b.one_hot.unsqueeze(1)).sum(-1) / nb
    else:
        expected_min = q_min[..., 0]
        expected_q1 = q_fresh[0, ..., 0]
        q_taken = q_stored.view(2, n, n_sig)
    value_target = expected_min - penalty.unsqueeze(1)

    # -- losses -------------------------------------------------------------------------------------
    dq = q_taken - y  # (2, B, S)
    dv = v_out - value_target  # (B, S)
    q_losses = 0.5 * (dq * dq).mean((1, 2))
    value_loss = 0.5 * (dv * dv).mean()
    policy_loss = penalty.mean() - expected_q1.mean()
    return Forward(
        batch=b,
        stats=UpdateStats(policy_loss, value_loss, q_losses[0], q_losses[1]),
        dq=dq,
        dv=dv,
        q_cache=cache_stored,
        q_fresh=q_fresh,
        q_fresh_cache=cache_fresh,
        v_body=v,
        v_cache=(v_inputs, v_pre),
        actor_body=h,
        actor_cache=(a_inputs, a_pre),
        action=action,
        std=std,
        ls_raw=ls_raw,
        log_pi_c=log_pi_c,
        alpha_c=alpha_c,
        probs=probs,
        log_probs=log_probs,
        branch_lp=branch_lp,
        alpha_d=alpha_d,
    )


@torch.no_grad()
def backward(up: SACUpdater, f: Forward) -> dict[torch.Tensor, torch.Tensor]:
    """d(total loss)/d(parameter) for every trained parameter, from a forward pass."""
    nets, shape, b = up.nets, up.nets.shape, f.batch
    c, branches = shape.continuous_size, shape.branches
    nb, n_sig, n_cols = len(branches), shape.n_signals, shape.q_columns
    n = b.x.shape[0]
    inv_bs = 1.0 / (n * n_sig)
    actor, q, value = nets.policy, nets.q, nets.value
    body_w, body_b = list(actor.body.weights), list(actor.body.biases)
    grads: dict[torch.Tensor, torch.Tensor] = {}
    dq, dv, v, h, probs, log_probs = f.dq, f.dv, f.v_body, f.actor_body, f.probs, f.log_probs

    # -- critic gradients ---------------------------------------------------------------------------
    g_taken = dq * inv_bs
    if nb:
        assert b.one_hot is not None
        g_q = (g_taken.unsqueeze(-1) * (b.one_hot.unsqueeze(1) / nb)).view(2, n, n_sig * n_cols)
    else:
        g_q = g_taken
    grads.update(_twin_weight_grads(q, g_q, f.q_cache))
    g_v = dv * inv_bs
    assert value.head_w is not None and value.head_b is not None
    grads[value.head_w] = torch.mm(v.t(), g_v)
    grads[value.head_b] = g_v.sum(0)
    g_vh = torch.mm(g_v, value.head_w.t())
    for (gw, gb), w, bias in zip(_mlp_backward(g_vh, list(value.weights), *f.v_cache), value.weights, value.biases):
        grads[w], grads[bias] = gw, gb

    # -- actor gradients ----------------------------------------------------------------------------
    pen_scale = 1.0 / n
    g_out_parts: list[torch.Tensor] = []
    if c:
        alpha_c, log_pi_c, action, std, ls_raw = f.alpha_c, f.log_pi_c, f.action, f.std, f.ls_raw
        assert alpha_c is not None and log_pi_c is not None and action is not None and std is not None
        assert ls_raw is not None and b.noise is not None and up.log_alpha_c is not None
        if nb:
            assert probs is not None
            g_q1 = (probs.unsqueeze(1) * (-inv_bs / nb)).expand(n, n_sig, n_cols).reshape(n, n_sig * n_cols)
        else:
            g_q1 = torch.full((n, n_sig), -inv_bs, device=b.x.device)
        g_a = _q1_action_grad(q, g_q1, f.q_fresh_cache, shape.obs_size)
        k = alpha_c * pen_scale
        g_u = torch.addcmul(g_a * (1.0 - action * action), action, k * 2.0)
        g_ls = g_u * std * b.noise - k
        inside = (ls_raw >= L.LOG_STD_MIN) & (ls_raw <= L.LOG_STD_MAX)
        g_out_parts += [g_u, g_ls * inside]
        grads[up.log_alpha_c] = -(log_pi_c.mean() + up.target_c).reshape(1)
    if nb:
        alpha_d, branch_lp = f.alpha_d, f.branch_lp
        assert probs is not None and log_probs is not None and alpha_d is not None and branch_lp is not None
        assert up.log_alpha_d is not None and up.target_d is not None
        g_p = f.q_fresh[0].sum(1) * (-inv_bs / nb)  # (B, K)
        alpha_cols = torch.mv(up.branch_matrix, alpha_d)  # (K,)
        cvec = torch.addcmul(g_p, log_probs, alpha_cols * pen_scale)
        pc = probs * cvec
        branch_sum = (
            pc.sum(1, keepdim=True) if nb == 1 else torch.mm(torch.mm(pc, up.branch_matrix), up.branch_matrix.t())
        )
        g_out_parts.append(pc - probs * branch_sum)
        grads[up.log_alpha_d] = -(branch_lp.mean(0) + up.target_d)
    g_out = g_out_parts[0] if len(g_out_parts) == 1 else torch.cat(g_out_parts, dim=1)
    grads[actor.head_w] = torch.mm(h.t(), g_out)
    grads[actor.head_b] = g_out.sum(0)
    g_h = torch.mm(g_out, actor.head_w.t())
    for (gw, gb), w, bias in zip(_mlp_backward(g_h, body_w, *f.actor_cache), body_w, body_b):
        grads[w], grads[bias] = gw, gb

    return grads
