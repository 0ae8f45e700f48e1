"""Acting with SAC's actor in numpy: the forward pass of `SquashedActor` (and V(s) of `ValueNetwork`)
without torch's dispatch cost, for the small batches of agents that act each step. It covers
vector-observation MLPs (`NumpySACActor.covers`); networks/acting.py picks it when it does and
otherwise acts through `SACNetworks.act`/`values`, the torch reference it equals.

It reads the weights as numpy views of the CPU parameters (no copies: updates are seen at once); with
the networks on another device it holds copies, taken again by `sync()` after every update loop.
Results equal the torch reference to float32 precision (tests/unit/test_sac_networks.py).
"""

from __future__ import annotations

import math

import numpy as np

from fledge.networks.body import numpy_view
from fledge.networks.distributions import LOG_SQRT_2PI
from fledge.networks.normalizer import CLIP
from fledge.networks.numpy_actor import ActOutput, sample_branches
from fledge.networks.sac import LOG_STD_MAX, LOG_STD_MIN, SACNetworks

LOG_2 = math.log(2.0)


def _silu(x: np.ndarray) -> np.ndarray:
    """x * sigmoid(x); the exponent is bounded so that float32 never overflows."""
    return x / (np.exp(np.minimum(-x, 80.0)) + 1.0)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.float32(0.0), x)


def numpy_mlp(x: np.ndarray, layers: list[tuple[np.ndarray, np.ndarray]], *, head: bool) -> np.ndarray:
    """SiLU hidden layers, then a linear last layer when `head`."""
    hidden = layers[:-1] if head else layers
    for w, b in hidden:
        x = _silu(x @ w + b)
    if head:
        w, b = layers[-1]
        x = x @ w + b
    return x


class NumpySACActor:
    """Continuous: u = mean + std * noise, action = tanh(u) (what is stored and sent to the environment);
    deterministic: tanh(mean). Discrete: Gumbel-max sampling of masked branches, argmax when deterministic.
    `values` are V(s) of the value network; `act` leaves them at 0 (SAC reports V per trajectory).
    """

    def __init__(self, nets: SACNetworks, *, rng: np.random.Generator) -> None:
        self.nets = nets
        self.rng = rng
        self.c = nets.shape.continuous_size
        self.branches = nets.shape.branches
        self.n_signals = nets.shape.n_signals
        self.split_at = np.cumsum(self.branches)[:-1] if self.branches else np.zeros(0, dtype=int)
        self.sync()

    @staticmethod
    def covers(nets: object) -> bool:
        """Whether this accelerator computes what `nets` computes (vector observations, dense MLPs)."""
        return isinstance(nets, SACNetworks) and nets.vector_mlp

    def sync(self) -> None:
        """Rebind the views: needed on the CPU only if parameters were replaced rather than updated in
        place; on another device, copies the weights again (after every update loop)."""
        actor, value = self.nets.policy, self.nets.value
        norm = actor.normalizer
        self.norm_scale = norm.arrays.scale if norm is not None else None
        self.norm_offset = norm.arrays.offset if norm is not None else None
        self.body = actor.body.dense.layer_arrays()
        self.head_w = numpy_view(actor.head_w)
        self.head_b = numpy_view(actor.head_b)
        self.value_layers = [*value.dense.layer_arrays(), (numpy_view(value.head_w), numpy_view(value.head_b))]

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        if self.norm_scale is None:
            return obs
        return np.minimum(np.maximum(obs * self.norm_scale - self.norm_offset, -CLIP), CLIP)

    def values(self, obs: np.ndarray) -> np.ndarray:
        return numpy_mlp(self.normalize(obs), self.value_layers, head=True).astype(np.float32, copy=False)

    def act(self, obs: np.ndarray, allowed: np.ndarray | None, *, deterministic: bool = False) -> ActOutput:
        n, c = obs.shape[0], self.c
        out = numpy_mlp(self.normalize(obs), self.body, head=False) @ self.head_w + self.head_b
        logp = np.zeros(n, dtype=np.float32)
        entropy = np.zeros(n, dtype=np.float32)
        cont = np.zeros((n, 0), dtype=np.float32)
        disc = np.zeros((n, 0), dtype=np.int32)
        if c:
            mean = out[:, :c]
            log_std = np.clip(out[:, c : 2 * c], LOG_STD_MIN, LOG_STD_MAX)
            if deterministic:
                noise = np.zeros_like(mean)
                u = mean
            else:
                noise = self.rng.standard_normal(mean.shape, dtype=np.float32)
                u = mean + np.exp(log_std) * noise
            cont = np.tanh(u).astype(np.float32, copy=False)
            log_det = 2.0 * (np.float32(LOG_2) - u - _softplus(-2.0 * u))
            logp += (-0.5 * noise * noise - log_std - np.float32(LOG_SQRT_2PI) - log_det).sum(axis=1)
            entropy += (log_std + np.float32(0.5 + LOG_SQRT_2PI)).sum(axis=1)
        if self.branches:
            disc, branch_logp, branch_entropy = sample_branches(
                out[:, 2 * c :], allowed, self.split_at, self.rng, deterministic=deterministic
            )
            logp += branch_logp
            entropy += branch_entropy
        values = np.zeros((n, self.n_signals), dtype=np.float32)
        return ActOutput(continuous=cont, discrete=disc, log_prob=logp, values=values, entropy=entropy)
