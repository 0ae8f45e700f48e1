"""SAC's networks, built from the network body: the squashed actor, twin Q networks, a value network and its target.

Formulation: ML-Agents' V-network SAC (spec 8.4), chosen deliberately over the "target-Q" variant
(twin target Q networks, y = r + gamma (min Q'(s', a'') - alpha log pi(a''|s'))):
- the Q target r + gamma (1 - done) V_target(s') needs no action at s': no actor pass on s' and no
  action mask at s' (fledge's trajectories carry the mask of each decision, not of the one after the
  last step, so a target-Q with masked discrete actions would have to guess it);
- the stats keep ML-Agents' meaning: `Losses/Value Loss` is the V loss, `Policy/Extrinsic Value` is V(s);
- the module set mirrors ML-Agents' checkpoint (policy, q1/q2, value, target value, three optimisers).
`tau` is the soft update rate of the target value network: target = tau V + (1 - tau) target.

Built from `networks/body.py`:
- the actor is a `NetworkBody` (copies 1) and one fused head [mean (c) | log-std (c) | logits (K)];
- the twin Q networks are one `DenseStack` with copies 2 over [normalised obs, squashed continuous
  action] and one batched head (2, hidden, outputs): their first layer is one matmul producing both
  twins' units, later layers and the head one batched matmul over the twins;
- the value network and its target are a `DenseStack` (copies 1) and a head.
All networks read observations through ONE normaliser, the actor body's (ML-Agents copies the actor's
normaliser into every critic before each update; sharing it is the same thing without the copy): the
critics take observations already normalised, which trainers do once for a whole chunk of minibatches.

Initialisation: hidden layers SiLU, He-normal (linear gain 1), zero bias (the body's). Heads: mean
and log-std gain 0.2, logits gain 0.1 (ML-Agents); value/Q output layers Xavier-uniform with gain
0.1 (1.1.0: gain 1). With gain 1 the untrained critics output values of order 1 with random slopes
in the action, far above the per-step reward scale; the actor follows those slopes into saturated
tanh actions while the entropy coefficient shrinks, and sparse-reward tasks stall (MoveToGoal2D: no
progress in 10k steps with gain 1, near-optimal within 3k steps with gain 0.1).
Every weight is stored (in, out), so forward passes are `addmm`s and the numpy actor and the hand
gradients use the arrays as they are.
Q outputs per reward signal: 1 value for continuous-only actions, one per discrete action (sum of
branch sizes) otherwise.

These modules are the reference definition: `SACNetworks.act`/`values` are the torch acting path and
`SquashedActor.action_parameters` what the general ONNX exporter traces; the numpy actor
(sac_numpy.py), the hand gradients (trainers/sac/fast_update.py) and the hand-built ONNX graph
(`actor_graph`) are accelerators for the vector-observation MLPs they cover, tested equal to them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from torch import nn

from fledge.envs.api import ObservationSpec
from fledge.networks import distributions as D
from fledge.networks.actor_critic import Decision
from fledge.networks.actor_graph import ActorGraph, ExportSource, TorchActorSource
from fledge.networks.body import DenseStack, NetworkBody, plain_body
from fledge.networks.encoders.layout import ObservationLayout
from fledge.networks.normalizer import RunningNormalizer

LOG_STD_MIN = -20.0  # the actor's log-std output is clamped to [LOG_STD_MIN, LOG_STD_MAX]
LOG_STD_MAX = 2.0
MEAN_HEAD_GAIN = 0.2
LOG_STD_HEAD_GAIN = 0.2
LOGITS_HEAD_GAIN = 0.1
CRITIC_HEAD_GAIN = 0.1


@dataclass(frozen=True)
class SACShape:
    obs_size: int
    continuous_size: int
    branches: tuple[int, ...]
    hidden_units: int = 128
    num_layers: int = 2
    normalize: bool = False
    n_signals: int = 1
    observations: tuple[ObservationSpec, ...] = ()  # BehaviorSpec order; () = one vector of obs_size
    vis_encode_type: str = "simple"
    goal_conditioning_type: str = "hyper"

    @cached_property
    def layout(self) -> ObservationLayout:
        if not self.observations:
            return ObservationLayout.vector(self.obs_size)
        return ObservationLayout.of(self.observations)

    @property
    def plain(self) -> bool:
        """Vector observations only and no hypernetwork: every network is a plain MLP."""
        return plain_body(self.layout, num_layers=self.num_layers, goal_conditioning_type=self.goal_conditioning_type)

    def body(self, *, normalize: bool, copies: int = 1, extra_inputs: int = 0) -> NetworkBody:
        """A NetworkBody of these observations and network settings."""
        return NetworkBody(
            obs_size=self.obs_size,
            observation_specs=self.observations or None,
            hidden_units=self.hidden_units,
            num_layers=self.num_layers,
            normalize=normalize,
            copies=copies,
            vis_encode_type=self.vis_encode_type,
            goal_conditioning_type=self.goal_conditioning_type,
            extra_inputs=extra_inputs,
        )

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


def he_normal(n_in: int, n_out: int, gain: float = 1.0) -> torch.Tensor:
    return torch.randn(n_in, n_out) * (gain / math.sqrt(n_in))


def xavier_uniform(*shape: int, gain: float = 1.0) -> torch.Tensor:
    """Uniform in +-gain sqrt(6 / (fan_in + fan_out)), the fans being the last two dimensions."""
    n_in, n_out = shape[-2], shape[-1]
    bound = gain * math.sqrt(6.0 / (n_in + n_out))
    return torch.empty(*shape).uniform_(-bound, bound)


class SquashedActor(nn.Module):
    """The actor body (with the normaliser every SAC network reads) and one fused head [mean | log-std | logits]."""

    def __init__(self, shape: SACShape) -> None:
        super().__init__()
        self.shape = shape
        c, k = shape.continuous_size, shape.n_logits
        self.body = shape.body(normalize=shape.normalize)
        h = self.body.out_size
        w = torch.cat(
            [he_normal(h, c, MEAN_HEAD_GAIN), he_normal(h, c, LOG_STD_HEAD_GAIN), he_normal(h, k, LOGITS_HEAD_GAIN)], 1
        )
        self.head_w = nn.Parameter(w)
        self.head_b = nn.Parameter(torch.zeros(2 * c + k))

    @property
    def normalizer(self) -> RunningNormalizer | None:
        return self.body.normalizer

    @property
    def vector_mlp(self) -> bool:
        """True when the body is the plain vector-observation MLP (what the accelerators cover)."""
        return self.body.plain and type(self.body.dense) is DenseStack

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body.encode(obs)

    def action_parameters(
        self, obs: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Mean (B, c), clamped log-std (B, c) and unmasked logits (B, sum(branches)) of RAW observations
        (what the general ONNX exporter traces; tanh is applied by the exported graph)."""
        return self.heads(self.normalize(obs))

    def heads(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """(mean, clamped log-std, raw logits) for normalised observations; None where the action has no such part."""
        out = torch.addmm(self.head_b, self.body.features(x)[0], self.head_w)
        c = self.shape.continuous_size
        mean = log_std = logits = None
        if c:
            mean = out[:, :c]
            log_std = torch.clamp(out[:, c : 2 * c], LOG_STD_MIN, LOG_STD_MAX)
        if self.shape.branches:
            logits = out[:, 2 * c :]
        return mean, log_std, logits


class TwinQ(nn.Module):
    """Q1 and Q2 computed together: a DenseStack with copies 2 and a batched head. forward(inp) -> (2, B, S, K).

    For observations other than vectors (or goal conditioning) the twins are a NetworkBody of copies 2
    (`body`: each twin its own encoders) reading the preprocessed row, with the continuous action
    appended to the encodings; `dense` is then absent.
    """

    def __init__(self, shape: SACShape) -> None:
        super().__init__()
        self.shape = shape
        n_out = shape.n_signals * shape.q_columns
        self.body: NetworkBody | None = None
        if not shape.plain:
            self.body = shape.body(normalize=False, copies=2, extra_inputs=shape.continuous_size)
            self.head_w = nn.Parameter(xavier_uniform(2, self.body.out_size, n_out, gain=CRITIC_HEAD_GAIN))
            self.head_b = nn.Parameter(torch.zeros(2, 1, n_out))
            return
        self.dense = DenseStack(shape.q_input, shape.hidden_units, shape.num_layers, copies=2)
        if self.dense.num_layers:  # twin 0's first layer takes the first block of draws, twin 1's the next,
            # as two separate networks would draw them: a seed gives the weights it gave before the fusion
            w, h = self.dense.w_in, self.dense.hidden
            with torch.no_grad():
                w.copy_(w.reshape(2, shape.q_input, h).transpose(0, 1).reshape(shape.q_input, 2 * h))
        self.head_w = nn.Parameter(xavier_uniform(2, self.dense.out_size, n_out, gain=CRITIC_HEAD_GAIN))
        self.head_b = nn.Parameter(torch.zeros(2, 1, n_out))

    def forward(self, inp: torch.Tensor, *, detached: bool = False) -> torch.Tensor:
        """Both twins on the same input (B, obs [+ c]); `detached`: no gradient reaches the weights."""
        w, b = (self.head_w.detach(), self.head_b.detach()) if detached else (self.head_w, self.head_b)
        if self.body is not None:
            n_obs = self.shape.obs_size
            action = inp[:, n_obs:] if self.shape.continuous_size else None
            features = self.body.features(inp[:, :n_obs], action, detached=detached)
        else:
            features = self.dense(inp, detached=detached)
        q = torch.baddbmm(b, features, w)
        return q.view(2, inp.shape[0], self.shape.n_signals, self.shape.q_columns)


class ValueNetwork(nn.Module):
    """V(s) per reward signal for normalised observations: a DenseStack and a head. forward(x) -> (B, S).

    For observations other than vectors (or goal conditioning), a NetworkBody (`body`, its own
    encoders) over the preprocessed row replaces the DenseStack; `dense` is then absent.
    """

    def __init__(self, shape: SACShape) -> None:
        super().__init__()
        self.body: NetworkBody | None = None
        if shape.plain:
            self.dense = DenseStack(shape.obs_size, shape.hidden_units, shape.num_layers)
            out_size = self.dense.out_size
        else:
            self.body = shape.body(normalize=False)
            out_size = self.body.out_size
        self.head_w = nn.Parameter(xavier_uniform(out_size, shape.n_signals, gain=CRITIC_HEAD_GAIN))
        self.head_b = nn.Parameter(torch.zeros(shape.n_signals))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body.features(x)[0] if self.body is not None else self.dense(x)[0]
        return torch.addmm(self.head_b, features, self.head_w)


class SACNetworks(nn.Module):
    """Every trained module of SAC plus the frozen target value network."""

    def __init__(self, shape: SACShape) -> None:
        super().__init__()
        self.shape = shape
        self.policy = SquashedActor(shape)
        self.q = TwinQ(shape)
        self.value = ValueNetwork(shape)
        self.target_value = ValueNetwork(shape)
        self.target_value.load_state_dict(self.value.state_dict())
        self.target_value.requires_grad_(False)

    @property
    def vector_mlp(self) -> bool:
        """True when the actor and the value network are what the numpy actor computes."""
        return self.policy.vector_mlp and self.value.body is None and type(self.value.dense) is DenseStack

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw observations -> what every SAC network reads (the actor body's encoder)."""
        return self.policy.normalize(obs)

    # -- acting (the reference path) ----------------------------------------------------------------
    @torch.no_grad()
    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) (B, n_signals) of raw observations."""
        values: torch.Tensor = self.value(self.normalize(obs))
        return values

    @torch.no_grad()
    def act(
        self,
        obs: torch.Tensor,
        allowed: torch.Tensor | None,
        *,
        generator: torch.Generator | None,
        deterministic: bool = False,
    ) -> Decision:
        """Decide for raw observations (the generator lives on the observations' device).

        Continuous: u = mean + std noise, the action tanh(u) (stored and sent to the environment), its
        log-probability that of the squashed Gaussian and the entropy the unsquashed Gaussian's;
        deterministic: tanh(mean). Discrete: masked categorical branches, argmax when deterministic.
        The values are zeros (SAC reports V per trajectory through `values`).
        """
        mean, log_std, logits = self.policy.heads(self.normalize(obs))
        n = obs.shape[0]
        logp = torch.zeros(n, device=obs.device)
        entropy = torch.zeros_like(logp)
        cont = disc = None
        if mean is not None and log_std is not None:
            if deterministic:
                noise = torch.zeros_like(mean)
                u = mean
            else:
                noise = torch.randn(mean.shape, generator=generator, device=mean.device)
                u = mean + torch.exp(log_std) * noise
            cont = torch.tanh(u)
            logp = logp + D.squashed_log_prob_from_noise(noise, log_std, u)
            entropy = entropy + D.gaussian_entropy(log_std)
        if logits is not None:
            disc, lp, ent = D.sample_categorical(
                logits, allowed, self.shape.branches, generator=generator, deterministic=deterministic
            )
            logp = logp + lp
            entropy = entropy + ent
        return Decision(cont, disc, logp, torch.zeros(n, self.shape.n_signals, device=obs.device), entropy)


def actor_graph(nets: SACNetworks, observation_shapes: tuple[tuple[int, ...], ...]) -> ActorGraph:
    """The acting network as plain arrays (copies): tanh-squashed mean/log-std heads and logits.

    Only vector-observation MLP actors have this description (`nets.policy.vector_mlp`); others raise ValueError.
    """
    actor = nets.policy
    if not actor.vector_mlp:
        raise ValueError("actor_graph describes vector-observation MLP policies only")
    c, k = nets.shape.continuous_size, nets.shape.n_logits

    def arr(t: torch.Tensor | np.ndarray) -> np.ndarray:
        return np.array(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t, dtype=np.float32)

    w, b = arr(actor.head_w), arr(actor.head_b)
    norm = actor.normalizer
    return ActorGraph(
        observation_shapes=observation_shapes,
        hidden_layers=tuple((arr(wi), arr(bi)) for wi, bi in actor.body.dense.layer_arrays()),
        norm_scale=arr(norm.scale) if norm is not None else None,
        norm_offset=arr(norm.offset) if norm is not None else None,
        continuous_size=c,
        mu=(w[:, :c].copy(), b[:c].copy()) if c else None,
        log_std_head=(w[:, c : 2 * c].copy(), b[c : 2 * c].copy()) if c else None,
        continuous_transform="tanh",
        discrete_branches=nets.shape.branches,
        logits=(w[:, 2 * c : 2 * c + k].copy(), b[2 * c :].copy()) if k else None,
    )


def torch_actor_source(nets: SACNetworks, observation_shapes: tuple[tuple[int, ...], ...]) -> TorchActorSource:
    """The squashed actor as a torch module for the general ONNX exporter (any body)."""
    norm = nets.policy.body.encoder.row_scale_offset()
    return TorchActorSource(
        module=nets.policy,
        observation_shapes=observation_shapes,
        continuous_size=nets.shape.continuous_size,
        continuous_transform="tanh",
        discrete_branches=nets.shape.branches,
        norm_scale=norm[0] if norm is not None else None,
        norm_offset=norm[1] if norm is not None else None,
    )


def export_source(nets: SACNetworks, observation_shapes: tuple[tuple[int, ...], ...]) -> ExportSource:
    """What ONNX export builds from: the hand-built graph's description where it covers the actor, else the module."""
    if nets.policy.vector_mlp:
        return actor_graph(nets, observation_shapes)
    return torch_actor_source(nets, observation_shapes)
