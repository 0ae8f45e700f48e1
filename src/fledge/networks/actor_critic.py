"""The PPO policy: observation normaliser, actor body and heads, critic body and value heads.

Continuous actions: Gaussian with a state-independent learned log-std (initialised to 0). The raw
sample is what the trainer stores; the environment receives clamp(a, -3, 3) / 3, as in ML-Agents.
Discrete actions: one linear head per branch (fused into one layer), masks respected.
Value heads: one output per reward signal, on a separate critic body, or on the actor body with
`shared_critic`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fledge.envs.api import ActionSpec
from fledge.networks import distributions as D
from fledge.networks.actor_graph import ActorGraph
from fledge.networks.normalizer import RunningNormalizer

ENV_ACTION_CLIP = 3.0


def kaiming_linear(n_in: int, n_out: int, gain: float) -> nn.Linear:
    """Linear layer with He-normal weights (for a linear nonlinearity) times `gain`, zero bias."""
    layer = nn.Linear(n_in, n_out)
    nn.init.kaiming_normal_(layer.weight, nonlinearity="linear")
    with torch.no_grad():
        layer.weight.mul_(gain)
        layer.bias.zero_()
    return layer


class TwinBody(nn.Module):
    """`twins` MLPs of the same shape over the same input (actor and critic), computed together.

    Layer 1 is one matmul producing all twins' units side by side; later layers are one batched
    matmul over the twins. Same maths as separate Linear+SiLU stacks, a third of the operations.
    Weights are He-normal (linear gain 1) per twin block, biases zero.
    """

    def __init__(self, n_in: int, hidden: int, num_layers: int, twins: int) -> None:
        super().__init__()
        self.n_in, self.hidden, self.num_layers, self.twins = n_in, hidden, num_layers, twins
        self.out_size = hidden if num_layers > 0 else n_in
        if num_layers > 0:
            w1 = torch.empty(n_in, twins * hidden)
            nn.init.normal_(w1, std=1.0 / math.sqrt(n_in))
            self.w_in = nn.Parameter(w1)
            self.b_in = nn.Parameter(torch.zeros(twins * hidden))
        self.w_hidden = nn.ParameterList()
        self.b_hidden = nn.ParameterList()
        for _ in range(num_layers - 1):
            w = torch.empty(twins, hidden, hidden)
            nn.init.normal_(w, std=1.0 / math.sqrt(hidden))
            self.w_hidden.append(nn.Parameter(w))
            self.b_hidden.append(nn.Parameter(torch.zeros(twins, 1, hidden)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.num_layers == 0:
            return [x] * self.twins
        h = F.silu(torch.addmm(self.b_in, x, self.w_in))
        if self.num_layers == 1:
            return list(torch.split(h, self.hidden, dim=-1))
        hs = h.view(x.shape[0], self.twins, self.hidden).transpose(0, 1)
        for w, b in zip(self.w_hidden, self.b_hidden):
            hs = F.silu(torch.baddbmm(b, hs, w))
        return list(hs.unbind(0))


@dataclass(frozen=True)
class NetworkShape:
    """What the network needs to know of the settings (decoupled from the config schema)."""

    hidden_units: int = 128
    num_layers: int = 2
    normalize: bool = False


class ActorCritic(nn.Module):
    def __init__(
        self,
        *,
        obs_size: int,
        action_spec: ActionSpec,
        shape: NetworkShape,
        value_names: tuple[str, ...] = ("extrinsic",),
        shared_critic: bool = False,
    ) -> None:
        super().__init__()
        self.obs_size = obs_size
        self.action_spec = action_spec
        self.branches = tuple(action_spec.discrete_branches)
        self.value_names = value_names
        self.shared_critic = shared_critic
        self.normalizer = RunningNormalizer(obs_size) if shape.normalize else None
        self.body = TwinBody(obs_size, shape.hidden_units, shape.num_layers, 1 if shared_critic else 2)
        body_out = self.body.out_size
        cont = action_spec.continuous_size
        self.mu = kaiming_linear(body_out, cont, 0.2) if cont else None
        self.log_std = nn.Parameter(torch.zeros(cont)) if cont else None
        self.logits = kaiming_linear(body_out, sum(self.branches), 0.1) if self.branches else None
        self.value_head = nn.Linear(body_out, len(value_names))

    # -- pieces -----------------------------------------------------------------------------------
    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return obs if self.normalizer is None else self.normalizer(obs)

    def _bodies(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hs = self.body(x)
        return hs[0], hs[-1]

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """Value estimates (B, n_signals) of raw observations."""
        return self.value_head(self._bodies(self.normalize(obs))[1])

    # -- acting -----------------------------------------------------------------------------------
    @torch.no_grad()
    def act(
        self,
        obs: torch.Tensor,
        allowed: torch.Tensor | None,
        *,
        generator: torch.Generator | None,
        deterministic: bool = False,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Sample actions for raw observations. Returns (continuous raw sample, discrete, joint log-prob, values)."""
        x = self.normalize(obs)
        h, hc = self._bodies(x)
        values = self.value_head(hc)
        logp = torch.zeros(obs.shape[0], device=obs.device)
        cont = disc = None
        if self.mu is not None and self.log_std is not None:
            mean = self.mu(h)
            if deterministic:
                cont = mean
            else:
                noise = torch.randn(mean.shape, generator=generator).to(mean.device)
                cont = mean + noise * torch.exp(self.log_std)
            logp = logp + D.gaussian_log_prob(cont, mean, self.log_std)
        if self.logits is not None:
            disc, lp = D.sample_categorical(
                self.logits(h), allowed, self.branches, generator=generator, deterministic=deterministic
            )
            logp = logp + lp
        return cont, disc, logp, values

    # -- training ---------------------------------------------------------------------------------
    def evaluate(
        self,
        x: torch.Tensor,
        cont: torch.Tensor | None,
        disc: torch.Tensor | None,
        allowed: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Joint log-prob, joint entropy and values for NORMALISED observations x and stored actions."""
        h, hc = self._bodies(x)
        values = self.value_head(hc)
        logp: torch.Tensor | None = None
        entropy: torch.Tensor | None = None
        if self.mu is not None and self.log_std is not None and cont is not None:
            logp = D.gaussian_log_prob(cont, self.mu(h), self.log_std)
            entropy = D.gaussian_entropy(self.log_std).expand(x.shape[0])
        if self.logits is not None and disc is not None:
            lp, ent = D.categorical_log_prob_entropy(self.logits(h), allowed, disc, self.branches)
            logp = lp if logp is None else logp + lp
            entropy = ent if entropy is None else entropy + ent
        assert logp is not None and entropy is not None, "a policy has at least one kind of action"
        return logp, entropy, values


def actor_graph(model: ActorCritic, observation_shapes: tuple[tuple[int, ...], ...]) -> ActorGraph:
    """The acting network of an ActorCritic (actor twin only), as plain arrays."""

    def arr(t: torch.Tensor) -> np.ndarray:
        return np.array(t.detach().cpu().numpy(), dtype=np.float32)

    body = model.body
    h = body.hidden
    layers: list[tuple[np.ndarray, np.ndarray]] = []
    if body.num_layers > 0:
        layers.append((arr(body.w_in)[:, :h], arr(body.b_in)[:h]))
        for w, b in zip(body.w_hidden, body.b_hidden):
            layers.append((arr(w[0]), arr(b[0, 0])))
    norm = model.normalizer
    return ActorGraph(
        observation_shapes=observation_shapes,
        hidden_layers=tuple(layers),
        norm_scale=arr(norm.scale) if norm is not None else None,
        norm_offset=arr(norm.offset) if norm is not None else None,
        continuous_size=model.action_spec.continuous_size,
        mu=(arr(model.mu.weight).T.copy(), arr(model.mu.bias)) if model.mu is not None else None,
        log_std=arr(model.log_std) if model.log_std is not None else None,
        continuous_transform="clip3",
        discrete_branches=model.branches,
        logits=(arr(model.logits.weight).T.copy(), arr(model.logits.bias)) if model.logits is not None else None,
    )


def env_continuous_action(raw: torch.Tensor) -> torch.Tensor:
    """What the environment receives for a raw Gaussian sample: clamp(a, -3, 3) / 3."""
    return torch.clamp(raw, -ENV_ACTION_CLIP, ENV_ACTION_CLIP) / ENV_ACTION_CLIP
