"""SAC's networks: squashed-Gaussian/categorical actor, twin Q critics, a state-value network and its target.

Formulation: ML-Agents' V-network SAC (spec 8.4), chosen deliberately over the "target-Q" variant
(twin target Q networks, y = r + gamma (min Q'(s', a'') - alpha log pi(a''|s'))):
- the Q target r + gamma (1 - done) V_target(s') needs no action at s': no actor pass on s' and no
  action mask at s' (fledge's trajectories carry the mask of each decision, not of the one after the
  last step, so a target-Q with masked discrete actions would have to guess it);
- the stats keep ML-Agents' meaning: `Losses/Value Loss` is the V loss, `Policy/Extrinsic Value` is V(s);
- the module set mirrors ML-Agents' checkpoint (policy, q1/q2, value, target value, three optimisers).
`tau` is the soft update rate of the target value network: target = tau V + (1 - tau) target.

All networks read observations through ONE normaliser, the actor's (ML-Agents copies the actor's
normaliser into every critic before each update; sharing the module is the same thing without the copy).
Layout: every weight is stored (in, out) so that forward passes are `addmm`s and the numpy actor uses
the arrays as they are. Hidden layers: SiLU, He-normal (linear gain 1), zero bias. Heads: mean and
log-std gain 0.2, logits gain 0.1 (ML-Agents); value/Q output layers Xavier-uniform with gain 0.1
(1.1.0: gain 1). With gain 1 the untrained critics output values of order 1 with random slopes in
the action, far above the per-step reward scale; the actor follows those slopes into saturated tanh
actions while the entropy coefficient shrinks, and sparse-reward tasks stall (MoveToGoal2D: no
progress in 10k steps with gain 1, near-optimal within 3k steps with gain 0.1).
The twin Q networks are one module: their first layer is one matmul producing both twins' units,
later layers one batched matmul over the twins.
Q outputs per reward signal: 1 value for continuous-only actions, one per discrete action (sum of
branch sizes) otherwise; their input is the observation plus the (squashed) continuous action.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fledge.networks.actor_graph import ActorGraph
from fledge.networks.distributions import MASKED_LOGIT
from fledge.networks.normalizer import CLIP, RunningNormalizer
from fledge.networks.numpy_actor import ActOutput, sample_branches
from fledge.trainers.sac import losses as L


@dataclass(frozen=True)
class SACShape:
    obs_size: int
    continuous_size: int
    branches: tuple[int, ...]
    hidden_units: int = 128
    num_layers: int = 2
    normalize: bool = False
    n_signals: int = 1

    @property
    def n_logits(self) -> int:
        return int(sum(self.branches))

    @property
    def q_columns(self) -> int:
        """Q outputs per signal: one per discrete action, or one for continuous-only actions."""
        return self.n_logits if self.branches else 1

    @property
    def q_input(self) -> int:
        return self.obs_size + self.continuous_size


CRITIC_HEAD_GAIN = 0.1


def _numpy(t: torch.Tensor) -> np.ndarray:
    """A CPU tensor's memory as an array (no copy); a copy of a tensor on another device."""
    return t.detach().cpu().numpy()


def _he(n_in: int, n_out: int, gain: float = 1.0) -> torch.Tensor:
    return torch.randn(n_in, n_out) * (gain / math.sqrt(n_in))


def _xavier(*shape: int, gain: float = 1.0) -> torch.Tensor:
    n_in, n_out = shape[-2], shape[-1]
    bound = gain * math.sqrt(6.0 / (n_in + n_out))
    return torch.empty(*shape).uniform_(-bound, bound)


class Mlp(nn.Module):
    """num_layers SiLU layers of `hidden` units, then an optional linear head; weights (in, out)."""

    def __init__(self, n_in: int, hidden: int, num_layers: int, n_out: int = 0) -> None:
        super().__init__()
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        size = n_in
        for _ in range(num_layers):
            self.weights.append(nn.Parameter(_he(size, hidden)))
            self.biases.append(nn.Parameter(torch.zeros(hidden)))
            size = hidden
        self.out_size = size
        self.head_w = nn.Parameter(_xavier(size, n_out, gain=CRITIC_HEAD_GAIN)) if n_out else None
        self.head_b = nn.Parameter(torch.zeros(n_out)) if n_out else None

    def body(self, x: torch.Tensor) -> torch.Tensor:
        for w, b in zip(self.weights, self.biases):
            x = F.silu(torch.addmm(b, x, w))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.head_w is not None and self.head_b is not None
        return torch.addmm(self.head_b, self.body(x), self.head_w)

    def arrays(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(W, b) of every layer, head included: numpy VIEWS of CPU parameters (they follow updates), copies
        of parameters on another device (taken again by `NumpySACActor.sync` after each update loop)."""
        pairs = [(_numpy(w), _numpy(b)) for w, b in zip(self.weights, self.biases)]
        if self.head_w is not None and self.head_b is not None:
            pairs.append((_numpy(self.head_w), _numpy(self.head_b)))
        return pairs


@dataclass
class PolicySample:
    """What the update needs from the actor for a batch of normalised observations."""

    action: torch.Tensor | None  # (B, c) tanh(u), reparameterised
    log_pi_c: torch.Tensor | None  # (B,) joint log-prob of the continuous part
    probs: torch.Tensor | None  # (B, K) branch probabilities (masked actions 0)
    log_probs: torch.Tensor | None  # (B, K)
    branch_log_probs: torch.Tensor | None  # (B, n_branches) E_pi_b[log pi_b]


class SquashedActor(nn.Module):
    """Observation normaliser, body, and one fused head: [mean (c) | log-std (c) | logits (K)]."""

    def __init__(self, shape: SACShape) -> None:
        super().__init__()
        self.shape = shape
        self.normalizer = RunningNormalizer(shape.obs_size) if shape.normalize else None
        self.body = Mlp(shape.obs_size, shape.hidden_units, shape.num_layers)
        c, k, h = shape.continuous_size, shape.n_logits, self.body.out_size
        w = torch.cat([_he(h, c, 0.2), _he(h, c, 0.2), _he(h, k, 0.1)], dim=1)
        self.head_w = nn.Parameter(w)
        self.head_b = nn.Parameter(torch.zeros(2 * c + k))
        self.split_sizes = [s for s in (c, c, k) if s]

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self.normalizer is None else self.normalizer(obs)

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(mean, clamped log-std, raw logits) for normalised observations."""
        out = torch.addmm(self.head_b, self.body.body(x), self.head_w)
        c = self.shape.continuous_size
        mean = log_std = logits = None
        if c:
            mean = out[:, :c]
            log_std = torch.clamp(out[:, c : 2 * c], L.LOG_STD_MIN, L.LOG_STD_MAX)
        if self.shape.branches:
            logits = out[:, 2 * c :]
        return mean, log_std, logits

    def sample(self, x: torch.Tensor, noise: torch.Tensor | None, allowed: torch.Tensor | None) -> PolicySample:
        mean, log_std, logits = self.heads(x)
        action = log_pi_c = probs = log_probs = branch_lp = None
        if mean is not None and log_std is not None and noise is not None:
            u = mean + torch.exp(log_std) * noise
            action = torch.tanh(u)
            log_pi_c = L.squashed_log_prob_from_noise(noise, log_std, u)
        if logits is not None:
            log_probs = branch_log_softmax(logits, allowed, self.shape.branches)
            probs = torch.exp(log_probs)
            branch_lp = L.branch_expected_log_probs(probs, log_probs, self.shape.branches)
        return PolicySample(action, log_pi_c, probs, log_probs, branch_lp)


def branch_log_softmax(logits: torch.Tensor, allowed: torch.Tensor | None, branches: tuple[int, ...]) -> torch.Tensor:
    """Per-branch log-softmax of masked logits (masked entries get about -1e8, never -inf)."""
    if allowed is not None:
        logits = torch.where(allowed, logits, torch.full_like(logits, MASKED_LOGIT))
    if len(branches) == 1:
        return torch.log_softmax(logits, dim=-1)
    return torch.cat([torch.log_softmax(t, dim=-1) for t in torch.split(logits, list(branches), dim=-1)], dim=-1)


class TwinQ(nn.Module):
    """Q1 and Q2 computed together. forward(inp) -> (2, B, S, K)."""

    def __init__(self, shape: SACShape) -> None:
        super().__init__()
        self.shape = shape
        n_in, hidden, layers = shape.q_input, shape.hidden_units, shape.num_layers
        self.hidden = hidden
        self.w_in = nn.Parameter(torch.cat([_he(n_in, hidden), _he(n_in, hidden)], dim=1))
        self.b_in = nn.Parameter(torch.zeros(2 * hidden))
        self.w_hidden = nn.ParameterList(
            [nn.Parameter(torch.stack([_he(hidden, hidden), _he(hidden, hidden)])) for _ in range(layers - 1)]
        )
        self.b_hidden = nn.ParameterList([nn.Parameter(torch.zeros(2, 1, hidden)) for _ in range(layers - 1)])
        n_out = shape.n_signals * shape.q_columns
        self.w_out = nn.Parameter(_xavier(2, hidden, n_out, gain=CRITIC_HEAD_GAIN))
        self.b_out = nn.Parameter(torch.zeros(2, 1, n_out))

    def forward(self, inp: torch.Tensor, *, detached: bool = False) -> torch.Tensor:
        """Both twins on the same input (B, obs [+ c]); `detached`: no gradient reaches the weights."""
        params = [self.w_in, self.b_in, *self.w_hidden, *self.b_hidden, self.w_out, self.b_out]
        if detached:
            params = [p.detach() for p in params]
        n_hidden = len(self.w_hidden)
        w_in, b_in = params[0], params[1]
        w_hidden, b_hidden = params[2 : 2 + n_hidden], params[2 + n_hidden : 2 + 2 * n_hidden]
        w_out, b_out = params[-2], params[-1]
        h = F.silu(torch.addmm(b_in, inp, w_in))
        hs = h.view(inp.shape[0], 2, self.hidden).transpose(0, 1)
        for w, b in zip(w_hidden, b_hidden):
            hs = F.silu(torch.baddbmm(b, hs, w))
        q = torch.baddbmm(b_out, hs, w_out)
        return q.view(2, inp.shape[0], self.shape.n_signals, self.shape.q_columns)


class SACNetworks(nn.Module):
    """Every trained module of SAC plus the frozen target value network."""

    def __init__(self, shape: SACShape) -> None:
        super().__init__()
        self.shape = shape
        self.policy = SquashedActor(shape)
        self.q = TwinQ(shape)
        self.value = Mlp(shape.obs_size, shape.hidden_units, shape.num_layers, shape.n_signals)
        self.target_value = Mlp(shape.obs_size, shape.hidden_units, shape.num_layers, shape.n_signals)
        self.target_value.load_state_dict(self.value.state_dict())
        self.target_value.requires_grad_(False)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy.normalize(obs)


# -- acting in numpy -------------------------------------------------------------------------------
def _silu(x: np.ndarray) -> np.ndarray:
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
    """Acting with the actor's weights as numpy views on the CPU (no copies: updates are seen at once);
    with the networks on another device, with copies taken by `sync()` after every update loop.

    Continuous: u = mean + std * noise, action = tanh(u) (what is stored and sent to the environment);
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

    def sync(self) -> None:
        """Rebind the views: needed on the CPU only if parameters were replaced rather than updated in
        place; on another device, copies the weights again (after every update loop)."""
        actor = self.nets.policy
        norm = actor.normalizer
        self.norm_scale = norm.arrays.scale if norm is not None else None
        self.norm_offset = norm.arrays.offset if norm is not None else None
        self.body = actor.body.arrays()
        self.head_w = _numpy(actor.head_w)
        self.head_b = _numpy(actor.head_b)
        self.value_layers = self.nets.value.arrays()

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
            log_std = np.clip(out[:, c : 2 * c], L.LOG_STD_MIN, L.LOG_STD_MAX)
            if deterministic:
                noise = np.zeros_like(mean)
                u = mean
            else:
                noise = self.rng.standard_normal(mean.shape, dtype=np.float32)
                u = mean + np.exp(log_std) * noise
            cont = np.tanh(u).astype(np.float32, copy=False)
            log_det = 2.0 * (np.float32(L.LOG_2) - u - _softplus(-2.0 * u))
            logp += (-0.5 * noise * noise - log_std - np.float32(L.LOG_SQRT_2PI) - log_det).sum(axis=1)
            entropy += (log_std + np.float32(0.5 + L.LOG_SQRT_2PI)).sum(axis=1)
        if self.branches:
            disc, branch_logp, branch_entropy = sample_branches(
                out[:, 2 * c :], allowed, self.split_at, self.rng, deterministic=deterministic
            )
            logp += branch_logp
            entropy += branch_entropy
        values = np.zeros((n, self.n_signals), dtype=np.float32)
        return ActOutput(continuous=cont, discrete=disc, log_prob=logp, values=values, entropy=entropy)


def actor_graph(nets: SACNetworks, observation_shapes: tuple[tuple[int, ...], ...]) -> ActorGraph:
    """The acting network as plain arrays (copies): tanh-squashed mean/log-std heads and logits."""
    actor = nets.policy
    c, k = nets.shape.continuous_size, nets.shape.n_logits

    def arr(t: torch.Tensor) -> np.ndarray:
        return np.array(t.detach().cpu().numpy(), dtype=np.float32)

    w, b = arr(actor.head_w), arr(actor.head_b)
    norm = actor.normalizer
    return ActorGraph(
        observation_shapes=observation_shapes,
        hidden_layers=tuple((arr(wi), arr(bi)) for wi, bi in zip(actor.body.weights, actor.body.biases)),
        norm_scale=arr(norm.scale) if norm is not None else None,
        norm_offset=arr(norm.offset) if norm is not None else None,
        continuous_size=c,
        mu=(w[:, :c].copy(), b[:c].copy()) if c else None,
        log_std_head=(w[:, c : 2 * c].copy(), b[c : 2 * c].copy()) if c else None,
        continuous_transform="tanh",
        discrete_branches=nets.shape.branches,
        logits=(w[:, 2 * c : 2 * c + k].copy(), b[2 * c :].copy()) if k else None,
    )
