"""The gradient accelerator of `losses.ppo_loss` for policies with LSTM memory: autograd's numbers, by hand.

It covers what `fast_gradients` covers plus the LSTM memory the body puts after its dense copies
(`covers`: vector observations, the plain DenseStack body, memory, CPU parameters). A minibatch is N
whole sequences of L rows (padding at their ends, `masks` 0 there) with the actor's and the critic's
memories at the sequence starts. The dense copies run forward and backward as in `fast_gradients`
(torch, no recording); the LSTMs run over the sequences in numpy, both copies as one block-diagonal
LSTM, keeping the gate activations; the heads, the masked losses and their gradient with respect to
the features (the LSTM outputs) are computed in numpy in closed form; that gradient is propagated back
through time by hand. For small minibatches of short sequences numpy's per-operation cost is a
fraction of torch's.

The losses are the masked means of `losses.ppo_loss` (D = max(1, sum(masks)), S reward signals):
- d policy_loss / d logp_i = -(m_i / D) r_i A_i where the unclipped term is the minimum, else 0
  (the log-ratio is m_i (logp_i - old_i), and m_i m_i = m_i for masks of 0 and 1);
- d value_loss / d V = 2 m_i (V - R) / (D S) or its clipped counterpart (see fast_gradients);
- d mean(entropy) / d entropy_i = m_i / D (a Gaussian's entropy is the same on every row: sum(m) / D).

LSTM (gates in torch's order i, f, g, o; bias b = b_ih + b_hh; h, c the halves of a memory vector):
    z_t = x_t W_ih^T + h_{t-1} W_hh^T + b,  i, f, o = sigmoid(z), g = tanh(z)
    c_t = f c_{t-1} + i g,  h_t = o tanh(c_t)
and back through time, with dh_t = d loss / d h_t (its own row's plus the next step's through W_hh):
    dc_t = dh_t o (1 - tanh(c_t)^2) + dc_{t+1} f_{t+1}
    dz = [dc_t g i (1 - i), dc_t c_{t-1} f (1 - f), dc_t i (1 - g^2), dh_t tanh(c_t) o (1 - o)]
    dW_ih = sum dz^T x,  dW_hh = sum dz^T h_{t-1},  db_ih = db_hh = sum dz,  dx = dz W_ih.
The memories at the sequence starts are data (no gradient). tests/unit/test_fast_recurrent.py checks
the losses and every gradient against autograd.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from fledge.networks.actor_critic import ActorCritic
from fledge.networks.dense import DenseStack
from fledge.networks.distributions import LOG_SQRT_2PI, MASKED_LOGIT
from fledge.networks.memory import LSTMMemory
from fledge.trainers.ppo.fast_gradients import dense_backward, dense_forward
from fledge.trainers.ppo.losses import VALUE_WEIGHT, Minibatch

__all__ = ["covers", "loss_and_gradients"]

_WEIGHTS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def covers(model: ActorCritic) -> bool:
    """Whether the hand gradients are those of `model`: a vector-observation MLP body with LSTM memory, on the CPU."""
    if not (
        isinstance(model, ActorCritic)
        and model.body.plain
        and type(model.body.dense) is DenseStack
        and model.body.memory is not None
    ):
        return False
    probe = _lstm_parameters(model)[0][0]  # a module's parameters move together: one stands for all
    return probe.device.type == "cpu" and probe.dtype in (torch.float32, torch.float64)


def _np(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor's memory as an array (no copy; `covers` ensures the CPU)."""
    return t.detach().numpy()


def _lstm_parameters(model: ActorCritic) -> list[list[torch.Tensor]]:
    """[weight_ih, weight_hh, bias_ih, bias_hh] of each LSTM copy (the actor's, then the critic's if separate)."""
    assert model.body.memory is not None
    return [
        [cast(torch.Tensor, getattr(cast(LSTMMemory, m).lstm, name)) for name in _WEIGHTS] for m in model.body.memory
    ]


class _Unrolled:
    """The LSTM copies run forward over N sequences of L steps, with what the backward pass needs.

    The copies run side by side as one LSTM of C * H units with block-diagonal recurrent weights, so
    that a step is a handful of operations on 2-D arrays. Arrays are time-major, (L, N, 4 * C * H), the
    columns grouped by gate (i, f, g, o), then copy, then unit. Sigmoids are computed as
    0.5 + 0.5 tanh(z / 2): the i, f, o columns of the gate inputs and of W_hh are halved (exact in floating
    point) and one tanh per step serves every gate."""

    def __init__(self, params: list[list[torch.Tensor]], xs: torch.Tensor, h0: np.ndarray, c0: np.ndarray) -> None:
        """params per copy; xs (C, N * L, n_in) the inputs; h0, c0 (C, N, H) the states at the sequence starts.

        The matrix products over all rows run in torch (one thread, as the run sets it); the steps in numpy."""
        copies, rows, _ = xs.shape
        n_seq, hid = h0.shape[1], h0.shape[-1]
        seq_len = rows // n_seq
        width = copies * hid
        self.w_ih = torch.stack([p[0] for p in params])  # (C, 4H, n_in)
        bias = torch.stack([p[2] + p[3] for p in params]).unsqueeze(1)  # (C, 1, 4H)
        pre_rows = _np(torch.baddbmm(bias, xs, self.w_ih.transpose(1, 2)))  # (C, N * L, 4H)
        dtype = pre_rows.dtype
        half = np.array([0.5, 0.5, 1.0, 0.5], dtype=dtype)[:, None, None]  # per gate; g keeps its tanh
        pre = (pre_rows.reshape(copies, n_seq, seq_len, 4, hid).transpose(2, 1, 3, 0, 4) * half).reshape(
            seq_len, n_seq, 4 * width
        )
        w_hh = np.zeros((copies, hid, 4, copies, hid), dtype=dtype)  # block-diagonal W_hh^T
        for c, p in enumerate(params):
            w_hh[c, :, :, c] = _np(p[1]).reshape(4, hid, hid).transpose(2, 0, 1)
        w_hh_t = w_hh.reshape(width, 4 * width)
        self.w_back = np.ascontiguousarray(w_hh_t.T)  # (4 C H, C H): d gates -> d h
        w_fwd = (w_hh * half).reshape(width, 4 * width)
        tanh_z = np.empty((seq_len, n_seq, 4 * width), dtype=dtype)  # tanh of the (halved) gate inputs
        gates = np.empty_like(tanh_z)  # i, f, o as sigmoids (g's columns unused)
        cells = np.empty((seq_len + 1, n_seq, width), dtype=dtype)  # c before step 0, then after each
        tanh_c = np.empty((seq_len, n_seq, width), dtype=dtype)
        hs = np.empty_like(cells)  # h likewise
        cells[0] = c0.transpose(1, 0, 2).reshape(n_seq, width)
        hs[0] = h0.transpose(1, 0, 2).reshape(n_seq, width)
        tmp = np.empty((n_seq, width), dtype=dtype)
        w1, w2, w3 = width, 2 * width, 3 * width
        for t in range(seq_len):
            z, a, c = tanh_z[t], gates[t], cells[t + 1]
            np.matmul(hs[t], w_fwd, out=z)
            z += pre[t]
            np.tanh(z, out=z)
            np.multiply(z, 0.5, out=a)
            a += 0.5
            np.multiply(a[:, w1:w2], cells[t], out=c)
            np.multiply(a[:, :w1], z[:, w2:w3], out=tmp)
            c += tmp
            np.tanh(c, out=tanh_c[t])
            np.multiply(a[:, w3:], tanh_c[t], out=hs[t + 1])
        self.xs, self.tanh_z, self.gates, self.cells, self.tanh_c, self.hs = xs, tanh_z, gates, cells, tanh_c, hs
        self.copies, self.hid = copies, hid

    def _per_copy(self, arr: np.ndarray) -> np.ndarray:
        """(L, N, [k,] C * H) time-major columns -> (C, N * L, [k *] H) rows in sequence order."""
        seq_len, n_seq = arr.shape[:2]
        blocks = arr.reshape(seq_len, n_seq, -1, self.copies, self.hid)
        per_copy = np.ascontiguousarray(blocks.transpose(3, 1, 0, 2, 4))
        return per_copy.reshape(self.copies, seq_len * n_seq, -1)

    def outputs(self) -> np.ndarray:
        """h of every step (C, N * L, H), rows in sequence order."""
        return self._per_copy(self.hs[1:])

    def backward(self, g_out: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(dW_ih (C, 4H, n_in), dW_hh (C, 4H, H), db (C, 4H), dx (C, N * L, n_in)) of d loss / d outputs
        g_out (C, N, L, H)."""
        tanh_c = self.tanh_c
        seq_len, n_seq, width = tanh_c.shape
        w1, w2, w3 = width, 2 * width, 3 * width
        i, f, o = self.gates[..., :w1], self.gates[..., w1:w2], self.gates[..., w3:]
        g = self.tanh_z[..., w2:w3]
        dc_dh = o * (1.0 - tanh_c * tanh_c)  # d c_t / d h_t through h = o tanh(c)
        k = np.empty((seq_len, n_seq, 4, width), dtype=tanh_c.dtype)  # dz = [dc, dc, dc, dh] * k
        k[:, :, 0] = g * i * (1.0 - i)
        k[:, :, 1] = self.cells[:-1] * f * (1.0 - f)
        k[:, :, 2] = i * (1.0 - g * g)
        k[:, :, 3] = tanh_c * o * (1.0 - o)
        g_steps = np.ascontiguousarray(g_out.transpose(2, 1, 0, 3)).reshape(seq_len, n_seq, width)
        dz = np.empty_like(k)
        dz_flat = dz.reshape(seq_len, n_seq, 4 * width)
        dh = np.empty((n_seq, width), dtype=tanh_c.dtype)
        dc = np.empty_like(dh)
        dh_next = np.zeros_like(dh)
        carry = np.zeros_like(dh)  # dc_{t+1} f_{t+1}
        for t in range(seq_len - 1, -1, -1):
            np.add(g_steps[t], dh_next, out=dh)
            np.multiply(dh, dc_dh[t], out=dc)
            dc += carry
            np.multiply(k[t, :, :3], dc[:, None], out=dz[t, :, :3])
            np.multiply(k[t, :, 3], dh, out=dz[t, :, 3])
            np.multiply(dc, f[t], out=carry)
            np.matmul(dz_flat[t], self.w_back, out=dh_next)
        dz_rows = torch.from_numpy(self._per_copy(dz))  # (C, N * L, 4H)
        h_prev = torch.from_numpy(self._per_copy(self.hs[:-1]))  # (C, N * L, H)
        dz_t = dz_rows.transpose(1, 2)
        d_w_ih = torch.bmm(dz_t, self.xs)
        d_w_hh = torch.bmm(dz_t, h_prev)
        d_b = dz_rows.sum(dim=1)
        d_x = torch.bmm(dz_rows, self.w_ih)
        return d_w_ih, d_w_hh, d_b, d_x


def _starts(mb: Minibatch, copies: int, hid: int) -> tuple[np.ndarray, np.ndarray]:
    """(h0, c0) (C, N, H) of the actor's (and the critic's) memories at the sequence starts."""
    assert mb.memory is not None
    mems = [mb.memory] if copies == 1 else [mb.memory, mb.critic_memory]
    arrays = []
    for m in mems:
        assert m is not None, "a separate critic needs its memories at the sequence starts"
        arrays.append(_np(m))
    stacked = np.stack(arrays)
    return stacked[..., :hid], stacked[..., hid:]


def _grad(param: torch.Tensor, value: np.ndarray) -> None:
    param.grad = torch.from_numpy(np.ascontiguousarray(value, dtype=_np(param).dtype))


@torch.no_grad()
def loss_and_gradients(
    model: ActorCritic, mb: Minibatch, *, epsilon: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`losses.ppo_loss`'s (total, policy_loss, value_loss), with `.grad` of every parameter set to d total / d it.

    Overflows give inf and NaN silently, as in torch: the trainer's divergence check reports them."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _loss_and_gradients(model, mb, epsilon=epsilon, beta=beta)


def _loss_and_gradients(
    model: ActorCritic, mb: Minibatch, *, epsilon: float, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    body = model.dense
    x = mb.x
    n = x.shape[0]
    seq_len = mb.seq_len
    params = _lstm_parameters(model)
    copies = len(params)
    hid = model.memory_size // 2

    # ---- forward: dense copies (torch), LSTMs over the sequences (numpy) ------------------------------
    hs, cache = dense_forward(body, x)
    if hs.shape[0] != copies:  # no dense layers: every LSTM reads x
        hs = hs.expand(copies, -1, -1)
    h0, c0 = _starts(mb, copies, hid)
    lstm = _Unrolled(params, hs, h0, c0)
    out = lstm.outputs()
    h_actor, h_critic = out[0], out[-1]

    # ---- heads and masked losses (numpy) ------------------------------------------------------------
    masks = _np(mb.masks) if mb.masks is not None else np.ones(n, dtype=out.dtype)
    denom = max(float(masks.sum()), 1.0)
    row_weight = masks / denom  # d masked_mean / d row
    w_v, b_v = _np(model.value_head.weight), _np(model.value_head.bias)
    values = h_critic @ w_v.T + b_v
    logp = np.zeros(n, dtype=out.dtype)
    entropy_mean = 0.0
    cont_cache = None
    if model.mu is not None and model.log_std is not None and mb.continuous is not None:
        w_mu, log_std = _np(model.mu.weight), _np(model.log_std)
        mean = h_actor @ w_mu.T + _np(model.mu.bias)
        inv_std = np.exp(-log_std)
        z = (_np(mb.continuous) - mean) * inv_std
        log_std_sum = float(log_std.sum())
        logp -= 0.5 * (z * z).sum(axis=1) + (log_std_sum + LOG_SQRT_2PI * z.shape[1])
        entropy_mean += (log_std_sum + (0.5 + LOG_SQRT_2PI) * z.shape[1]) * float(row_weight.sum())
        cont_cache = (z, inv_std, w_mu)
    disc_cache = None
    chosen_rows = np.arange(n)
    if model.logits is not None and mb.discrete is not None:
        w_l = _np(model.logits.weight)
        logits = h_actor @ w_l.T + _np(model.logits.bias)
        allowed = _np(mb.allowed) if mb.allowed is not None else None
        if allowed is not None:
            logits = np.where(allowed, logits, np.asarray(MASKED_LOGIT, dtype=logits.dtype))
        actions = _np(mb.discrete)
        log_ps = []
        for b, lg in enumerate(np.split(logits, np.cumsum(model.branches)[:-1], axis=1)):
            shifted = lg - lg.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            logp += log_p[chosen_rows, actions[:, b]]
            log_ps.append(log_p)
        disc_cache = (log_ps, w_l, allowed, actions)

    ratio = np.exp((logp - _np(mb.old_log_prob)) * masks)
    adv = _np(mb.advantages)
    surr1 = ratio * adv
    surr2 = np.clip(ratio, 1.0 - epsilon, 1.0 + epsilon) * adv
    policy_loss = -float((np.minimum(surr1, surr2) * masks).sum()) / denom
    g_logp = np.where(surr1 <= surr2, surr1, 0.0) * -row_weight

    old_values, returns = _np(mb.old_values), _np(mb.returns)
    delta = values - old_values
    clipped = old_values + np.clip(delta, -epsilon, epsilon)
    err1 = returns - values
    err2 = returns - clipped
    sq1, sq2 = err1 * err1, err2 * err2
    n_signals = values.shape[1]
    value_loss = float((np.maximum(sq1, sq2) * masks[:, None]).sum()) / (denom * n_signals)
    inside = np.abs(delta) <= epsilon
    value_weight = (VALUE_WEIGHT * 2.0 / n_signals) * row_weight[:, None]
    g_values = np.where(sq1 >= sq2, err1, np.where(inside, err2, 0.0)) * -value_weight

    # ---- gradients of the heads ---------------------------------------------------------------------
    g_h_actor = np.zeros_like(h_actor)
    if cont_cache is not None:
        assert model.mu is not None and model.log_std is not None
        z, inv_std, w_mu = cont_cache
        g_mean = g_logp[:, None] * z * inv_std
        _grad(model.log_std, (g_logp[:, None] * (z * z - 1.0)).sum(axis=0) - beta * float(row_weight.sum()))
        _grad(model.mu.weight, g_mean.T @ h_actor)
        _grad(model.mu.bias, g_mean.sum(axis=0))
        g_h_actor += g_mean @ w_mu
    if disc_cache is not None:
        assert model.logits is not None
        log_ps, w_l, allowed, actions = disc_cache
        parts = []
        for b, log_p in enumerate(log_ps):
            p = np.exp(log_p)
            entropy = -(p * log_p).sum(axis=1, keepdims=True)
            entropy_mean += float((entropy[:, 0] * row_weight).sum())
            onehot = np.zeros_like(p)
            onehot[chosen_rows, actions[:, b]] = 1.0
            parts.append(g_logp[:, None] * (onehot - p) + (beta * row_weight[:, None]) * p * (log_p + entropy))
        g_logits = np.concatenate(parts, axis=1)
        if allowed is not None:
            g_logits = g_logits * allowed
        _grad(model.logits.weight, g_logits.T @ h_actor)
        _grad(model.logits.bias, g_logits.sum(axis=0))
        g_h_actor += g_logits @ w_l
    _grad(model.value_head.weight, g_values.T @ h_critic)
    _grad(model.value_head.bias, g_values.sum(axis=0))
    g_h_critic = g_values @ w_v
    total = policy_loss + VALUE_WEIGHT * value_loss - beta * entropy_mean

    # ---- back through time, then through the dense copies -------------------------------------------
    g_out = (g_h_actor + g_h_critic)[None] if copies == 1 else np.stack((g_h_actor, g_h_critic))
    d_w_ih, d_w_hh, d_b, d_x = lstm.backward(g_out.reshape(copies, n // seq_len, seq_len, hid))
    for c, (w_ih, w_hh, b_ih, b_hh) in enumerate(params):
        w_ih.grad, w_hh.grad = d_w_ih[c], d_w_hh[c]
        b_ih.grad, b_hh.grad = d_b[c], d_b[c].clone()
    if body.num_layers > 0:
        dense_backward(body, x, cache, d_x)
    dtype = x.dtype
    return (
        torch.tensor(total, dtype=dtype),
        torch.tensor(policy_loss, dtype=dtype),
        torch.tensor(value_loss, dtype=dtype),
    )
