"""The acting accelerator for policies with LSTM memory: ActorCritic.act with memories carried, in numpy.

It covers vector-observation MLP bodies with memory (`NumpyRecurrentActor.covers`): the dense copies as
`NumpyActor` computes them, then one LSTM step per copy in numpy (gates i, f, g, o; memory [h, c]).
As in `ActorCritic.act`, the actor's LSTM starts from each agent's memory, the critic's (when separate)
from zero memory (trainers recompute values per trajectory with carried critic memories), and the
random draws are the torch module's: a torch generator seeded from `rng` at every decision gives the
Gaussian noise and the categorical samples, so that a run acts as it does through the torch module up
to float rounding. tests/unit/test_numpy_recurrent.py checks it against the torch module.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch

from fledge.networks import distributions as D
from fledge.networks.actor_critic import ActorCritic
from fledge.networks.body import numpy_view
from fledge.networks.dense import DenseStack
from fledge.networks.numpy_actor import ActOutput, NumpyActor


def lstm_arrays(lstm: torch.nn.LSTM) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W_ih^T (n_in, 4H), W_hh^T (H, 4H) and b_ih + b_hh (4H,) of a one-layer LSTM, float32, with the columns of
    the sigmoid gates (i, f, o) halved: sigmoid(z) = 0.5 + 0.5 tanh(z / 2), so that one tanh serves every gate."""
    w_ih, w_hh, b_ih, b_hh = (
        numpy_view(cast(torch.Tensor, getattr(lstm, name)))
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    )
    bias = b_ih + b_hh
    hid = w_hh.shape[1]
    half = np.full(4 * hid, 0.5, dtype=np.float32)
    half[2 * hid : 3 * hid] = 1.0
    return (
        (w_ih.T * half).astype(np.float32),
        (w_hh.T * half).astype(np.float32),
        (bias * half).astype(np.float32),
    )


def lstm_step(
    weights: tuple[np.ndarray, np.ndarray, np.ndarray], x: np.ndarray, h: np.ndarray | None, c: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step (h', c') of inputs x (B, n_in) from states h, c (B, H) (None: zero state); `weights` from
    `lstm_arrays`."""
    w_ih_t, w_hh_t, bias = weights
    hid = w_hh_t.shape[0]
    z = x @ w_ih_t + bias
    if h is not None:
        z += h @ w_hh_t
    t = np.tanh(z, out=z)
    a = t * 0.5 + 0.5  # i, f, o
    g = t[:, 2 * hid : 3 * hid]
    c_new = a[:, :hid] * g if c is None else a[:, hid : 2 * hid] * c + a[:, :hid] * g
    return a[:, 3 * hid :] * np.tanh(c_new), c_new


class NumpyRecurrentActor(NumpyActor):
    """The numpy acting path of an ActorCritic with LSTM memory. Call `sync()` after the torch weights change."""

    def __init__(self, model: ActorCritic, *, rng: np.random.Generator) -> None:
        self.generator = torch.Generator()
        super().__init__(model, rng=rng)

    @staticmethod
    def covers(model: ActorCritic) -> bool:
        """Whether this accelerator computes what `model` computes (vector observations, dense MLP, LSTM memory)."""
        return (
            isinstance(model, ActorCritic)
            and model.body.plain
            and type(model.body.dense) is DenseStack
            and model.body.memory is not None
        )

    def sync(self) -> None:
        super().sync()
        m = self.model
        assert m.body.memory is not None
        self.memory_size = m.memory_size
        self.shared = m.shared_critic
        self.lstms = []
        for copy in (m.actor_memory, m.critic_memory)[: 1 if self.shared else 2]:
            self.lstms.append(lstm_arrays(copy.lstm))

    def _recurrent_features(
        self, obs: np.ndarray, memory: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(actor features, critic features, the actor's new memory) of raw observations."""
        h_a, h_c = self._features(self.normalize(obs))
        half = self.memory_size // 2
        if memory is None:
            h, c = lstm_step(self.lstms[0], h_a, None, None)
        else:
            h, c = lstm_step(self.lstms[0], h_a, memory[:, :half], memory[:, half:])
        hc = h if self.shared else lstm_step(self.lstms[1], h_c, None, None)[0]
        return h, hc, np.concatenate([h, c], axis=1).astype(np.float32, copy=False)

    def critic_trajectory(
        self, obs: np.ndarray, initial: np.ndarray, seq_len: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The critic's memory carried through one trajectory's raw observations `obs` (n + 1, obs_size) (its steps,
        then the observation after the last) from `initial` (memory_size,), as `ActorCritic.critic_trajectory`
        computes it: values (n + 1, S) (the last is the bootstrap's), the memory at each sequence start
        (ceil(n / L), memory_size) and the memory after step n - 1 (memory_size,)."""
        _, h_c = self._features(self.normalize(obs))
        w_ih_t, w_hh_t, bias = self.lstms[-1]
        half = self.memory_size // 2
        h1, h2, h3 = half, 2 * half, 3 * half
        pre = h_c @ w_ih_t + bias
        rows = obs.shape[0]
        outs = np.empty((rows, half), dtype=np.float32)
        starts = np.empty((-(-(rows - 1) // seq_len), self.memory_size), dtype=np.float32)
        final = np.empty(self.memory_size, dtype=np.float32)
        h, c = initial[None, :half], initial[None, half:]
        a = np.empty((1, 4 * half), dtype=np.float32)
        for t in range(rows):
            if t == rows - 1:
                final[:half], final[half:] = h[0], c[0]
            elif t % seq_len == 0:
                starts[t // seq_len, :half], starts[t // seq_len, half:] = h[0], c[0]
            z = h @ w_hh_t
            z += pre[t]
            np.tanh(z, out=z)
            np.multiply(z, 0.5, out=a)
            a += 0.5
            c = a[:, h1:h2] * c
            c += a[:, :h1] * z[:, h2:h3]
            h = outs[t : t + 1]
            np.multiply(a[:, h3:], np.tanh(c), out=h)
        values = outs @ self.w_v + self.b_v
        return values.astype(np.float32, copy=False), starts, final

    def values(self, obs: np.ndarray) -> np.ndarray:
        _, hc, _ = self._recurrent_features(obs, None)
        return hc @ self.w_v + self.b_v

    def act(
        self,
        obs: np.ndarray,
        allowed: np.ndarray | None,
        *,
        deterministic: bool = False,
        memory: np.ndarray | None = None,
    ) -> ActOutput:
        """Decide for raw observations (B, obs_size); allowed (B, sum(branches)) bool; `memory` (B, memory_size)
        each agent's memory before the decision (zeros when None); the output carries the one after it."""
        n = obs.shape[0]
        self.generator.manual_seed(int(self.rng.integers(2**63)))
        h, hc, new_memory = self._recurrent_features(obs, memory)
        values = (hc @ self.w_v + self.b_v).astype(np.float32, copy=False)
        logp = np.zeros(n, dtype=np.float32)
        entropy = np.zeros(n, dtype=np.float32)
        cont = np.zeros((n, 0), dtype=np.float32)
        disc = np.zeros((n, 0), dtype=np.int32)
        if self.w_mu is not None:
            assert self.std is not None
            mean = (h @ self.w_mu + self.b_mu).astype(np.float32, copy=False)
            if deterministic:
                cont = mean
            else:
                noise = torch.randn(mean.shape, generator=self.generator).numpy()
                cont = mean + noise * self.std
            z = (cont - mean) / self.std
            logp += self.cont_logp_const - 0.5 * (z * z).sum(axis=1)
            entropy += self.cont_entropy
        if self.w_logits is not None:
            choice, branch_logp, branch_entropy = D.sample_categorical(
                torch.from_numpy(np.ascontiguousarray(h @ self.w_logits + self.b_logits, dtype=np.float32)),
                torch.from_numpy(allowed) if allowed is not None else None,
                self.branches,
                generator=self.generator,
                deterministic=deterministic,
            )
            disc = choice.numpy().astype(np.int32)
            logp += branch_logp.numpy()
            entropy += branch_entropy.numpy()
        return ActOutput(
            continuous=cont, discrete=disc, log_prob=logp, values=values, entropy=entropy, memory=new_memory
        )
