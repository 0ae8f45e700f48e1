"""Multi-head attention among the few entities of each row (a group's members), for the group critic.

For R rows of N entities, d = heads x hd features, queries q, keys k, values v side by side in qkv
(R, N, 3d) and a presence mask (R, N):

    logits[r, i, j, h] = sum_c q[r, i, h, c] k[r, j, h, c] / sqrt(hd) - 1e6 (1 - mask[r, j])
    att = softmax over j of logits
    mixed[r, i, h, :] = sum_j att[r, i, j, h] v[r, j, h, :]

(the entity encoder's attention, networks/encoders/entity.py). With N a handful, batched matrix products
of N x N matrices and broadcast products through autograd both cost far more than the arithmetic; on the
CPU the forward and the backward here are numpy einsum contractions, the backward derived by hand:

    d att    = sum_c g[r, i, h, c] v[r, j, h, c]          d v = sum_i att[r, i, j, h] g[r, i, h, c]
    d logits = att (d att - sum_j att d att)               (softmax)
    d q      = sum_j d logits k[r, j, h, :] / sqrt(hd)    d k = sum_i d logits q[r, i, h, :] / sqrt(hd)

Other devices use the same formulas through torch operations and autograd. tests/unit/test_poca_losses.py
checks both paths and their gradients against the entity encoder.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fledge.networks.encoders.entity import MASK_LOGIT


def _softmax_j(logits: np.ndarray) -> np.ndarray:
    """Softmax over axis 2 (the keys j) of (R, N, N, H) logits."""
    z = np.exp(logits - logits.max(axis=2, keepdims=True))
    z /= z.sum(axis=2, keepdims=True)
    return z


class _NumpyAttention(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, qkv: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
        r, n, d3 = qkv.shape
        hd = d3 // (3 * heads)
        a = qkv.detach().numpy().reshape(r, n, 3, heads, hd)
        logits = np.einsum("rihc,rjhc->rijh", a[:, :, 0], a[:, :, 1])
        logits /= np.float32(math.sqrt(hd))
        logits -= np.float32(MASK_LOGIT) * (1.0 - mask.detach().numpy())[:, None, :, None]
        att = _softmax_j(logits)
        mixed = np.einsum("rijh,rjhc->rihc", att, a[:, :, 2])
        ctx.save_for_backward(qkv, torch.from_numpy(att))
        ctx.heads = heads
        return torch.from_numpy(mixed.reshape(r, n, d3 // 3))

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        qkv, att_t = ctx.saved_tensors
        r, n, d3 = qkv.shape
        heads = ctx.heads
        hd = d3 // (3 * heads)
        a = qkv.detach().numpy().reshape(r, n, 3, heads, hd)
        att = att_t.numpy()
        g = np.ascontiguousarray(grad.detach().numpy()).reshape(r, n, heads, hd)
        out = np.empty((r, n, 3, heads, hd), dtype=np.float32)
        np.einsum("rijh,rihc->rjhc", att, g, out=out[:, :, 2])
        d_att = np.einsum("rihc,rjhc->rijh", g, a[:, :, 2])
        d_logits = att * (d_att - (att * d_att).sum(axis=2, keepdims=True))
        d_logits /= np.float32(math.sqrt(hd))
        np.einsum("rijh,rjhc->rihc", d_logits, a[:, :, 1], out=out[:, :, 0])
        np.einsum("rijh,rihc->rjhc", d_logits, a[:, :, 0], out=out[:, :, 1])
        return torch.from_numpy(out.reshape(r, n, d3)), None, None


def _torch_attention(qkv: torch.Tensor, mask: torch.Tensor, heads: int) -> torch.Tensor:
    r, n, d3 = qkv.shape
    hd = d3 // (3 * heads)
    q, k, v = qkv.view(r, n, 3, heads, hd).unbind(2)
    logits = (q.unsqueeze(2) * k.unsqueeze(1)).sum(dim=4) / math.sqrt(hd)
    logits = logits - MASK_LOGIT * (1.0 - mask)[:, None, :, None]
    att = torch.softmax(logits, dim=2)
    return (att.unsqueeze(4) * v.unsqueeze(1)).sum(dim=2).reshape(r, n, d3 // 3)


def attention(qkv: torch.Tensor, mask: torch.Tensor, *, heads: int, use_numpy: bool | None = None) -> torch.Tensor:
    """mixed (R, N, d) of qkv (R, N, 3d) and mask (R, N); `use_numpy` None: numpy for float32 CPU tensors."""
    if use_numpy is None:
        use_numpy = qkv.device.type == "cpu" and qkv.dtype == torch.float32
    if use_numpy:
        out: torch.Tensor = _NumpyAttention.apply(qkv.contiguous(), mask.contiguous(), heads)
        return out
    return _torch_attention(qkv, mask, heads)
