"""The SAC losses' gradients derived by hand: the same numbers as `losses.sac_losses` + autograd, far fewer operations.

For RL-sized networks autograd's per-operation bookkeeping costs more than the arithmetic. `HandGradients`
runs the forward pass without recording, computes the gradient of every loss of `losses.py` in closed
form and backpropagates it through the actor, the twin Q networks and the value network by hand;
update.py hands the gradients to the fused Adam step. It covers the networks `covers` accepts (vector
encoders and DenseStack bodies of at least one layer); update.py trains anything else through autograd.
tests/unit/test_sac_fast_update.py checks every loss and gradient against the autograd reference for
continuous, discrete (masked, several branches) and hybrid actions, normalisation on and off, 1 to 3
hidden layers and several reward signals.

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

import torch
from torch.nn import functional as F

from fledge.networks import distributions as D
from fledge.networks.body import DenseStack
from fledge.networks.sac import LOG_STD_MAX, LOG_STD_MIN, SACNetworks, SquashedActor, TwinQ, ValueNetwork
from fledge.trainers.sac.records import Batches, SACCoefficients, UpdateStats

_silu_backward = torch.ops.aten.silu_backward


def covers(nets: SACNetworks) -> bool:
    """Whether the hand gradients know every network of `nets` (exact types: a subclass may compute otherwise)."""
    actor = nets.policy
    return (
        type(actor) is SquashedActor
        and actor.body.plain
        and nets.q.body is None
        and nets.value.body is None
        and type(nets.q) is TwinQ
        and type(nets.value) is ValueNetwork
        and type(nets.target_value) is ValueNetwork
        and all(type(d) is DenseStack and d.num_layers >= 1 for d in (actor.body.dense, nets.q.dense, nets.value.dense))
    )


class _Stack:
    """A DenseStack of one copy as plain matrices: detached views of its parameters (they follow the
    optimiser's in-place updates), and the parameters themselves to key the gradients by."""

    def __init__(self, stack: DenseStack) -> None:
        params = stack.parameter_list()
        self.w_params, self.b_params = params[0::2], params[1::2]
        self.weights = [self.w_params[0].detach()] + [w.detach()[0] for w in self.w_params[1:]]
        self.biases = [self.b_params[0].detach()] + [b.detach()[0, 0] for b in self.b_params[1:]]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for w, b in zip(self.weights, self.biases):
            x = F.silu(torch.addmm(b, x, w))
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """SiLU layers; returns the output and, per layer, its input and pre-activation."""
        inputs, pre = [], []
        h = x
        for w, b in zip(self.weights, self.biases):
            inputs.append(h)
            z = torch.addmm(b, h, w)
            pre.append(z)
            h = F.silu(z)
        return h, inputs, pre

    def backward(
        self,
        g: torch.Tensor,
        inputs: list[torch.Tensor],
        pre: list[torch.Tensor],
        grads: dict[torch.Tensor, torch.Tensor],
    ) -> None:
        """Weight and bias gradients of every layer, shaped as the parameters, for the gradient g of the output."""
        for layer in range(len(self.weights) - 1, -1, -1):
            gz = _silu_backward(g, pre[layer])
            gw = torch.mm(inputs[layer].t(), gz)
            if layer:  # later layers are stored (1, in, out) and (1, 1, out)
                grads[self.w_params[layer]] = gw.unsqueeze_(0)
                grads[self.b_params[layer]] = gz.sum(0, keepdim=True).unsqueeze_(0)
                g = torch.mm(gz, self.weights[layer].t())
            else:
                grads[self.w_params[0]] = gw
                grads[self.b_params[0]] = gz.sum(0)


class _TwinCache:
    def __init__(
        self, inp: torch.Tensor, z1: torch.Tensor, hs_in: list[torch.Tensor], zs: list[torch.Tensor], top: torch.Tensor
    ) -> None:
        self.inp, self.z1, self.hs_in, self.zs, self.top = inp, z1, hs_in, zs, top


class _Twin:
    """The twin Q networks' parameters as lists: first layer (in, 2 hidden), later layers and head batched."""

    def __init__(self, q: TwinQ) -> None:
        d = q.dense
        self.hidden = d.hidden
        self.w_in, self.b_in = d.w_in, d.b_in
        self.w_hidden, self.b_hidden = list(d.w_hidden), list(d.b_hidden)
        self.head_w, self.head_b = q.head_w, q.head_b

    def forward(self, inp: torch.Tensor) -> tuple[torch.Tensor, _TwinCache]:
        """TwinQ.forward keeping what the backward passes need; q (2, B, S*K)."""
        n, hidden = inp.shape[0], self.hidden
        z1 = torch.addmm(self.b_in, inp, self.w_in)
        hs = F.silu(z1).view(n, 2, hidden).transpose(0, 1)
        hs_in, zs = [], []
        for w, b in zip(self.w_hidden, self.b_hidden):
            hs_in.append(hs)
            z = torch.baddbmm(b, hs, w)
            zs.append(z)
            hs = F.silu(z)
        out = torch.baddbmm(self.head_b, hs, self.head_w)
        return out, _TwinCache(inp, z1, hs_in, zs, hs)

    def weight_grads(self, g: torch.Tensor, c: _TwinCache, grads: dict[torch.Tensor, torch.Tensor]) -> None:
        """Gradients of both twins' weights for g = dL/dq (2, B, S*K)."""
        grads[self.head_w] = torch.bmm(c.top.transpose(1, 2), g)
        grads[self.head_b] = g.sum(1, keepdim=True)
        gh = torch.bmm(g, self.head_w.transpose(1, 2))
        for i in range(len(c.zs) - 1, -1, -1):
            gz = _silu_backward(gh, c.zs[i])
            grads[self.w_hidden[i]] = torch.bmm(c.hs_in[i].transpose(1, 2), gz)
            grads[self.b_hidden[i]] = gz.sum(1, keepdim=True)
            gh = torch.bmm(gz, self.w_hidden[i].transpose(1, 2))
        n = c.inp.shape[0]
        gz1 = _silu_backward(gh.transpose(0, 1).reshape(n, 2 * self.hidden), c.z1)
        grads[self.w_in] = torch.mm(c.inp.t(), gz1)
        grads[self.b_in] = gz1.sum(0)

    def q1_action_grad(self, g1: torch.Tensor, c: _TwinCache, obs_size: int) -> torch.Tensor:
        """d/d(action columns of the input) of sum(g1 * Q1) for g1 (B, S*K): twin 0 only, weights fixed."""
        hidden = self.hidden
        gh = torch.mm(g1, self.head_w[0].t())
        for i in range(len(c.zs) - 1, -1, -1):
            gz = _silu_backward(gh, c.zs[i][0])
            gh = torch.mm(gz, self.w_hidden[i][0].t())
        gz1 = _silu_backward(gh, c.z1[:, :hidden])
        return torch.mm(gz1, self.w_in[obs_size:, :hidden].t())


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


class HandGradients:
    """`(gradients, losses)` of one minibatch, as `losses.sac_losses` + one backward pass would give them.

    Called as `gradients(batch)`; `forward` and `backward` are the two halves (timed apart by the benchmark).
    It holds views of the parameters taken when it is built: the networks must already be on their
    device, and their parameters are updated in place from then on (the optimisers and checkpoint loads do).
    """

    def __init__(self, nets: SACNetworks, coefs: SACCoefficients) -> None:
        assert covers(nets), "the hand gradients do not cover these networks; train them through autograd"
        self.nets, self.coefs = nets, coefs
        self.actor = _Stack(nets.policy.body.dense)
        self.value = _Stack(nets.value.dense)
        self.target = _Stack(nets.target_value.dense)
        self.q = _Twin(nets.q)

    def __call__(self, b: Batches) -> tuple[dict[torch.Tensor, torch.Tensor], UpdateStats]:
        forward_pass = self.forward(b)
        return self.backward(forward_pass), forward_pass.stats

    @torch.no_grad()
    def forward(self, b: Batches) -> Forward:
        """The forward pass of every network and the loss values (no autograd recording)."""
        nets, shape, coefs = self.nets, self.nets.shape, self.coefs
        c, branches = shape.continuous_size, shape.branches
        nb, n_sig, n_cols = len(branches), shape.n_signals, shape.q_columns
        n = b.x.shape[0]
        actor, value, target = nets.policy, nets.value, nets.target_value

        # -- actor forward ------------------------------------------------------------------------------
        h, a_inputs, a_pre = self.actor.forward(b.x)
        out = torch.addmm(actor.head_b, h, actor.head_w)
        alpha_c = alpha_d = action = std = ls_raw = None
        penalty = None
        log_pi_c = branch_lp = probs = log_probs = None
        if c:
            assert coefs.log_alpha_c is not None and b.noise is not None
            alpha_c = torch.exp(coefs.log_alpha_c)
            mean, ls_raw = out[:, :c], out[:, c : 2 * c]
            log_std = torch.clamp(ls_raw, LOG_STD_MIN, LOG_STD_MAX)
            std = torch.exp(log_std)
            u = torch.addcmul(mean, std, b.noise)
            action = torch.tanh(u)
            log_pi_c = D.squashed_log_prob_from_noise(b.noise, log_std, u)
            penalty = alpha_c * log_pi_c
        if nb:
            assert coefs.log_alpha_d is not None and b.mask_add is not None
            alpha_d = torch.exp(coefs.log_alpha_d)
            z = out[:, 2 * c :] + b.mask_add
            if nb == 1:
                log_probs = torch.log_softmax(z, dim=1)
            else:
                log_probs = torch.cat([torch.log_softmax(t, dim=1) for t in torch.split(z, list(branches), dim=1)], 1)
            probs = torch.exp(log_probs)
            branch_lp = torch.mm(probs * log_probs, coefs.branch_matrix)  # (B, nb)
            disc_pen = torch.mv(branch_lp, alpha_d)
            penalty = disc_pen if penalty is None else penalty + disc_pen
        assert penalty is not None

        # -- critics forward ----------------------------------------------------------------------------
        q_stored, cache_stored = self.q.forward(b.q_input)
        if c:
            assert action is not None
            q_fresh, cache_fresh = self.q.forward(torch.cat([b.x, action], dim=1))
        else:
            q_fresh, cache_fresh = q_stored, cache_stored
        q_fresh = q_fresh.view(2, n, n_sig, n_cols)
        v, v_inputs, v_pre = self.value.forward(b.x)
        v_out = torch.addmm(value.head_b, v, value.head_w)  # (B, S)
        v_next = torch.addmm(target.head_b, self.target.features(b.next_x), target.head_w)
        y = torch.addcmul(b.rewards, b.discount, v_next)
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
    def backward(self, f: Forward) -> dict[torch.Tensor, torch.Tensor]:
        """d(total loss)/d(parameter) for every trained parameter, from a forward pass."""
        nets, shape, coefs, b = self.nets, self.nets.shape, self.coefs, f.batch
        c, branches = shape.continuous_size, shape.branches
        nb, n_sig, n_cols = len(branches), shape.n_signals, shape.q_columns
        n = b.x.shape[0]
        inv_bs = 1.0 / (n * n_sig)
        actor, value = nets.policy, nets.value
        grads: dict[torch.Tensor, torch.Tensor] = {}
        dq, dv, v, h, probs, log_probs = f.dq, f.dv, f.v_body, f.actor_body, f.probs, f.log_probs

        # -- critic gradients ---------------------------------------------------------------------------
        g_taken = dq * inv_bs
        if nb:
            assert b.one_hot is not None
            g_q = (g_taken.unsqueeze(-1) * (b.one_hot.unsqueeze(1) / nb)).view(2, n, n_sig * n_cols)
        else:
            g_q = g_taken
        self.q.weight_grads(g_q, f.q_cache, grads)
        g_v = dv * inv_bs
        grads[value.head_w] = torch.mm(v.t(), g_v)
        grads[value.head_b] = g_v.sum(0)
        g_vh = torch.mm(g_v, value.head_w.t())
        self.value.backward(g_vh, *f.v_cache, grads)

        # -- actor gradients ----------------------------------------------------------------------------
        pen_scale = 1.0 / n
        g_out_parts: list[torch.Tensor] = []
        if c:
            alpha_c, log_pi_c, action, std, ls_raw = f.alpha_c, f.log_pi_c, f.action, f.std, f.ls_raw
            assert alpha_c is not None and log_pi_c is not None and action is not None and std is not None
            assert ls_raw is not None and b.noise is not None and coefs.log_alpha_c is not None
            if nb:
                assert probs is not None
                g_q1 = (probs.unsqueeze(1) * (-inv_bs / nb)).expand(n, n_sig, n_cols).reshape(n, n_sig * n_cols)
            else:
                g_q1 = torch.full((n, n_sig), -inv_bs, device=b.x.device)
            g_a = self.q.q1_action_grad(g_q1, f.q_fresh_cache, shape.obs_size)
            k = alpha_c * pen_scale
            g_u = torch.addcmul(g_a * (1.0 - action * action), action, k * 2.0)
            g_ls = g_u * std * b.noise - k
            inside = (ls_raw >= LOG_STD_MIN) & (ls_raw <= LOG_STD_MAX)
            g_out_parts += [g_u, g_ls * inside]
            grads[coefs.log_alpha_c] = -(log_pi_c.mean() + coefs.target_c).reshape(1)
        if nb:
            alpha_d, branch_lp = f.alpha_d, f.branch_lp
            assert probs is not None and log_probs is not None and alpha_d is not None and branch_lp is not None
            assert coefs.log_alpha_d is not None and coefs.target_d is not None
            g_p = f.q_fresh[0].sum(1) * (-inv_bs / nb)  # (B, K)
            alpha_cols = torch.mv(coefs.branch_matrix, alpha_d)  # (K,)
            cvec = torch.addcmul(g_p, log_probs, alpha_cols * pen_scale)
            pc = probs * cvec
            branch_sum = (
                pc.sum(1, keepdim=True)
                if nb == 1
                else torch.mm(torch.mm(pc, coefs.branch_matrix), coefs.branch_matrix.t())
            )
            g_out_parts.append(pc - probs * branch_sum)
            grads[coefs.log_alpha_d] = -(branch_lp.mean(0) + coefs.target_d)
        g_out = g_out_parts[0] if len(g_out_parts) == 1 else torch.cat(g_out_parts, dim=1)
        grads[actor.head_w] = torch.mm(h.t(), g_out)
        grads[actor.head_b] = g_out.sum(0)
        g_h = torch.mm(g_out, actor.head_w.t())
        self.actor.backward(g_h, *f.actor_cache, grads)

        return grads
