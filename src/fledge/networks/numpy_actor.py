"""The acting accelerator: ActorCritic's acting pass in numpy, for small batches of agents.

For the small networks of RL a numpy forward over a dozen agents costs a fraction of the torch
dispatch overhead. It covers vector-observation MLP policies (`NumpyActor.covers`); networks/acting.py
picks it when it does and otherwise acts through the torch module itself. The dense layers are read
from the model's DenseStack as numpy views of its parameters (all copies fused, as the torch forward
computes them); the heads and the derived constants are refreshed by `sync()` after every update, the
observation normaliser's arrays are shared. tests/unit/test_networks.py checks the results against
the torch module (float32 precision).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fledge.networks.actor_critic import ActorCritic
from fledge.networks.body import numpy_view
from fledge.networks.distributions import LOG_SQRT_2PI, MASKED_LOGIT
from fledge.networks.normalizer import CLIP

if TYPE_CHECKING:
    import torch


@dataclass
class ActOutput:
    """One batched decision: raw continuous sample, discrete choices, joint log-prob, values, entropy."""

    continuous: np.ndarray  # (B, c) float32, raw Gaussian sample (stored for training)
    discrete: np.ndarray  # (B, d) int32
    log_prob: np.ndarray  # (B,) float32
    values: np.ndarray  # (B, n_signals) float32
    entropy: np.ndarray  # (B,) float32
    memory: np.ndarray | None = None  # (B, memory_size) float32: each agent's memory after it (recurrent policies)


def _silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x); the exponent is bounded so that float32 never overflows (the result is ~0 there)."""
    return x / (np.exp(np.minimum(-x, 80.0)) + 1.0)


def sample_branches(
    logits: np.ndarray,
    allowed: np.ndarray | None,
    split_at: np.ndarray,
    rng: np.random.Generator,
    *,
    deterministic: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masked categorical branches in numpy: (choices int32 (n, branches), joint log-prob, joint entropy).

    Unavailable actions get a very negative logit; sampling is Gumbel-max, deterministic is argmax.
    """
    n = logits.shape[0]
    if allowed is not None:
        logits = np.where(allowed, logits, np.float32(MASKED_LOGIT))
    parts = np.split(logits, split_at, axis=1)
    disc = np.empty((n, len(parts)), dtype=np.int32)
    logp = np.zeros(n, dtype=np.float32)
    entropy = np.zeros(n, dtype=np.float32)
    rows = np.arange(n)
    for b, lg in enumerate(parts):
        shifted = lg - lg.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        if deterministic:
            idx = log_p.argmax(axis=1)
        else:
            u = rng.random(log_p.shape, dtype=np.float32)
            idx = (log_p - np.log(-np.log(np.maximum(u, np.float32(1e-20))))).argmax(axis=1)
        disc[:, b] = idx
        logp += log_p[rows, idx]
        entropy -= (np.exp(log_p) * log_p).sum(axis=1)
    return disc, logp, entropy


class NumpyActor:
    """The numpy acting path of an ActorCritic. Call `sync()` after the torch weights change."""

    def __init__(self, model: ActorCritic, *, rng: np.random.Generator) -> None:
        self.model = model
        self.rng = rng
        self.branches = model.branches
        self.cont = model.action_spec.continuous_size
        self.sync()

    @staticmethod
    def covers(model: ActorCritic) -> bool:
        """Whether this accelerator computes what `model` computes (vector observations, dense MLP)."""
        return isinstance(model, ActorCritic) and model.vector_mlp

    def sync(self) -> None:
        m = self.model
        dense = m.dense

        def arr(t: torch.Tensor) -> np.ndarray:
            return np.ascontiguousarray(numpy_view(t), dtype=np.float32)

        # the normaliser's numpy scale and offset are updated in place, so its updates need no sync
        self.norm_scale = m.normalizer.arrays.scale if m.normalizer is not None else None
        self.norm_offset = m.normalizer.arrays.offset if m.normalizer is not None else None
        self.copies, self.hidden = dense.copies, dense.hidden
        # (W, b) of every dense layer, all copies fused: (in, copies*h), (copies*h,), then (copies, h, h), (copies, 1, h)
        params = [arr(p) for p in dense.parameter_list()]
        self.layers = list(zip(params[0::2], params[1::2]))
        self.w_mu = arr(m.mu.weight).T.copy() if m.mu is not None else None
        self.b_mu = arr(m.mu.bias) if m.mu is not None else None
        self.log_std = arr(m.log_std) if m.log_std is not None else None
        self.std = np.exp(self.log_std) if self.log_std is not None else None
        self.w_logits = arr(m.logits.weight).T.copy() if m.logits is not None else None
        self.b_logits = arr(m.logits.bias) if m.logits is not None else None
        self.w_v = arr(m.value_head.weight).T.copy()
        self.b_v = arr(m.value_head.bias)
        self.split_at = np.cumsum(self.branches)[:-1] if self.branches else np.zeros(0, dtype=int)
        if self.log_std is not None:
            self.cont_entropy = np.float32((self.log_std + 0.5 + LOG_SQRT_2PI).sum())
            self.cont_logp_const = np.float32(-(self.log_std + LOG_SQRT_2PI).sum())

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        if self.norm_scale is None:
            return obs
        return np.minimum(np.maximum(obs * self.norm_scale - self.norm_offset, -CLIP), CLIP)

    def _features(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Actor and critic features, as DenseStack.forward computes them."""
        if not self.layers:
            return x, x
        w_in, b_in = self.layers[0]
        h = _silu(x @ w_in + b_in)
        if len(self.layers) == 1:
            return h[:, : self.hidden], h[:, -self.hidden :]
        hs = h.reshape(x.shape[0], self.copies, self.hidden).transpose(1, 0, 2)
        for w, b in self.layers[1:]:
            hs = _silu(np.matmul(hs, w) + b)
        return hs[0], hs[-1]

    def values(self, obs: np.ndarray) -> np.ndarray:
        _, hc = self._features(self.normalize(obs))
        return hc @ self.w_v + self.b_v

    def act(self, obs: np.ndarray, allowed: np.ndarray | None, *, deterministic: bool = False) -> ActOutput:
        """Decide for a batch of raw observations (B, obs_size); allowed (B, sum(branches)) bool, True = allowed."""
        n = obs.shape[0]
        h, hc = self._features(self.normalize(obs))
        values = (hc @ self.w_v + self.b_v).astype(np.float32, copy=False)
        logp = np.zeros(n, dtype=np.float32)
        entropy = np.zeros(n, dtype=np.float32)
        cont = np.zeros((n, 0), dtype=np.float32)
        disc = np.zeros((n, 0), dtype=np.int32)
        if self.w_mu is not None:
            mean = h @ self.w_mu + self.b_mu
            if deterministic:
                cont = mean.astype(np.float32, copy=False)
                logp += self.cont_logp_const
            else:
                noise = self.rng.standard_normal(mean.shape, dtype=np.float32)
                cont = mean + noise * self.std
                logp += self.cont_logp_const - 0.5 * (noise * noise).sum(axis=1)
            entropy += self.cont_entropy
        if self.w_logits is not None:
            disc, branch_logp, branch_entropy = sample_branches(
                h @ self.w_logits + self.b_logits, allowed, self.split_at, self.rng, deterministic=deterministic
            )
            logp += branch_logp
            entropy += branch_entropy
        return ActOutput(continuous=cont, discrete=disc, log_prob=logp, values=values, entropy=entropy)
