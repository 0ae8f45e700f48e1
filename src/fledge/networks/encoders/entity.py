"""Variable-length entity observations (max_entities, entity_size): entity embedding + residual self-attention.

Spec 8.1. Each entity observation has its own embedding: Linear(entity_size + self_size, 128) and
Swish over every entity row concatenated with the agent's own fixed-size encodings (`self_size`,
0 when it has none). The embeddings of all entity observations are joined along the entity axis and
pass one residual self-attention block shared by all of them:
    e   = layer_norm(embeddings)                   (no learned scale or shift)
    q, k, v = e Wq, e Wk, e Wv                     (normal weights times sqrt(0.125 / 128), zero bias)
    a   = 4-head softmax(q k^T / sqrt(32) - 1e6 mask_k) v
    out = layer_norm(a Wo + e)
    pooled = sum over present entities of out / (count of present entities + 1e-6)
An entity is absent when its row is all zeros (the padding of a variable count): it gets a -1e6
attention logit as a key and is left out of the pooled average, so a padded row changes nothing.
The block contributes 128 features (once, whatever the number of entity observations).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

EMBEDDING_SIZE = 128
HEADS = 4
MASK_LOGIT = 1e6
POOL_EPS = 1e-6


def _normal_linear(n_in: int, n_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.normal_(0.0, 1.0).mul_(gain)
        layer.bias.zero_()
    return layer


def absent(entities: torch.Tensor) -> torch.Tensor:
    """(B, N) float: 1 where an entity row is all zeros (absent), else 0 (through Sign, not a float
    comparison: ONNX opset 9's Equal takes no floats)."""
    return 1.0 - torch.sign(entities.abs().sum(dim=2))


class EntityEncoder(nn.Module):
    """forward(entity tensors [(B, N_i, size_i)], self encoding (B, self_size) | None) -> (B, 128)."""

    def __init__(self, entity_sizes: tuple[int, ...], self_size: int, embedding_size: int = EMBEDDING_SIZE) -> None:
        super().__init__()
        self.self_size = self_size
        self.out_size = embedding_size
        self.embeddings = nn.ModuleList(nn.Linear(size + self_size, embedding_size) for size in entity_sizes)
        gain = math.sqrt(0.125 / embedding_size)
        self.q = _normal_linear(embedding_size, embedding_size, gain)
        self.k = _normal_linear(embedding_size, embedding_size, gain)
        self.v = _normal_linear(embedding_size, embedding_size, gain)
        self.out = _normal_linear(embedding_size, embedding_size, gain)

    def forward(self, entities: list[torch.Tensor], x_self: torch.Tensor | None) -> torch.Tensor:
        embedded, masks = [], []
        for ent, layer in zip(entities, self.embeddings):
            masks.append(absent(ent))
            inp = ent
            if self.self_size:
                assert x_self is not None
                inp = torch.cat([ent, x_self.unsqueeze(1).expand(-1, ent.shape[1], -1)], dim=2)
            embedded.append(F.silu(layer(inp)))
        mask = torch.cat(masks, dim=1)  # (B, N)
        d = self.out_size  # constants, not traced sizes: the ONNX export needs them static
        n = mask.shape[1]
        hd = d // HEADS
        e = F.layer_norm(torch.cat(embedded, dim=1), (d,))

        def heads(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(-1, n, HEADS, hd).transpose(1, 2)  # (B, H, N, hd)

        q, k, v = heads(self.q(e)), heads(self.k(e)), heads(self.v(e))
        logits = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(hd) - MASK_LOGIT * mask[:, None, None, :]
        att = torch.matmul(torch.softmax(logits, dim=3), v).transpose(1, 2).reshape(-1, n, d)
        out = F.layer_norm(self.out(att) + e, (d,))
        present = (1.0 - mask).unsqueeze(2)
        return (out * present).sum(dim=1) / (present.sum(dim=1) + POOL_EPS)
