"""The PPO policy: a NetworkBody (observation encoder -> dense copies) with actor heads and value heads.

The body has two dense copies, the actor's and the critic's, computed together; with `shared_critic`
one copy feeds both. Continuous actions: Gaussian with a state-independent learned log-std
(initialised to 0). The raw sample is what the trainer stores; the environment receives
clamp(a, -3, 3) / 3, as in ML-Agents. Discrete actions: one linear head per branch (fused into one
layer), masks respected. Value heads: one output per reward signal.

This module is the reference definition of the policy: the numpy acting path (numpy_actor.py), the
hand-derived gradients (trainers/ppo/fast_gradients.py) and the hand-built ONNX graph (actor_graph())
are accelerators derived from it and tested equal to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from fledge.envs.api import ActionSpec, ObservationSpec
from fledge.networks import distributions as D
from fledge.networks.actor_graph import ActorGraph, ExportSource, TorchActorSource
from fledge.networks.body import DenseStack, NetworkBody
from fledge.networks.normalizer import RunningNormalizer

ENV_ACTION_CLIP = 3.0
# Checkpoint names of the state (kept from before the NetworkBody): module path -> stored name. The
# encoder towers of non-vector bodies are stored as "towers." (before "body." so that reading back,
# where "body." becomes "body.dense.", never sees them).
_STORED_NAMES = (
    ("body.towers.", "towers."),
    ("body.encoder.normalizer.", "normalizer."),
    ("body.dense.", "body."),
)


def kaiming_linear(n_in: int, n_out: int, gain: float) -> nn.Linear:
    """Linear layer with He-normal weights (for a linear nonlinearity) times `gain`, zero bias."""
    layer = nn.Linear(n_in, n_out)
    nn.init.kaiming_normal_(layer.weight, nonlinearity="linear")
    with torch.no_grad():
        layer.weight.mul_(gain)
        layer.bias.zero_()
    return layer


@dataclass(frozen=True)
class NetworkShape:
    """What the network needs to know of the settings (decoupled from the config schema)."""

    hidden_units: int = 128
    num_layers: int = 2
    normalize: bool = False
    vis_encode_type: str = "simple"
    goal_conditioning_type: str = "hyper"


class Decision(NamedTuple):
    """One batched decision in torch: continuous actions as stored, discrete choices, joint log-prob, values, entropy."""

    continuous: torch.Tensor | None  # (B, c): PPO's raw Gaussian sample, SAC's tanh-squashed action
    discrete: torch.Tensor | None  # (B, branches) int64
    log_prob: torch.Tensor  # (B,)
    values: torch.Tensor  # (B, n_signals)
    entropy: torch.Tensor  # (B,)


def _rename(state: dict[str, Any], prefix: str, pairs: tuple[tuple[str, str], ...]) -> None:
    """Rename keys prefix+old... to prefix+new... in place, keeping the order of the entries."""
    items = list(state.items())
    state.clear()
    for key, value in items:
        for old, new in pairs:
            if key.startswith(prefix + old):
                key = prefix + new + key[len(prefix + old) :]
                break
        state[key] = value


class ActorCritic(nn.Module):
    def __init__(
        self,
        *,
        obs_size: int | None = None,
        action_spec: ActionSpec,
        shape: NetworkShape,
        value_names: tuple[str, ...] = ("extrinsic",),
        shared_critic: bool = False,
        observation_specs: Sequence[ObservationSpec] | None = None,
    ) -> None:
        """`observation_specs` (BehaviorSpec order) choose the encoders; without them the body reads one
        vector observation of `obs_size`."""
        super().__init__()
        self.action_spec = action_spec
        self.branches = tuple(action_spec.discrete_branches)
        self.value_names = value_names
        self.shared_critic = shared_critic
        self.body = NetworkBody(
            obs_size=obs_size,
            observation_specs=observation_specs,
            hidden_units=shape.hidden_units,
            num_layers=shape.num_layers,
            normalize=shape.normalize,
            copies=1 if shared_critic else 2,
            vis_encode_type=shape.vis_encode_type,
            goal_conditioning_type=shape.goal_conditioning_type,
        )
        body_out = self.body.out_size
        cont = action_spec.continuous_size
        self.mu = kaiming_linear(body_out, cont, 0.2) if cont else None
        self.log_std = nn.Parameter(torch.zeros(cont)) if cont else None
        self.logits = kaiming_linear(body_out, sum(self.branches), 0.1) if self.branches else None
        self.value_head = nn.Linear(body_out, len(value_names))
        self.register_state_dict_post_hook(self._stored_names)
        self.register_load_state_dict_pre_hook(self._module_names)

    # -- checkpoint names ---------------------------------------------------------------------------
    @staticmethod
    def _stored_names(module: nn.Module, state: dict[str, Any], prefix: str, local_metadata: Any) -> None:
        _rename(state, prefix, _STORED_NAMES)

    @staticmethod
    def _module_names(module: nn.Module, state: dict[str, Any], prefix: str, *args: Any) -> None:
        _rename(state, prefix, tuple((new, old) for old, new in _STORED_NAMES))

    # -- pieces -----------------------------------------------------------------------------------
    @property
    def obs_size(self) -> int:
        return self.body.obs_size

    @property
    def normalizer(self) -> RunningNormalizer | None:
        return self.body.normalizer

    @property
    def dense(self) -> DenseStack:
        """The body's dense stack (plain vector-observation bodies only: see `vector_mlp`)."""
        return self.body.dense

    @property
    def hidden_units(self) -> int:
        return self.body.hidden_units

    @property
    def num_layers(self) -> int:
        return self.body.num_layers

    @property
    def vector_mlp(self) -> bool:
        """True when the body is the plain vector-observation MLP (what the accelerators cover)."""
        return self.body.plain and type(self.body.dense) is DenseStack

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Preprocessed observations: the running normaliser on the vector columns (or the identity)."""
        return self.body.encode(obs)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actor and critic features (B, out) of NORMALISED observations (the same tensor when shared)."""
        hs = self.body.features(x)
        return hs[0], hs[-1]

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """Value estimates (B, n_signals) of raw observations."""
        return self.value_head(self.features(self.normalize(obs))[1])

    def action_parameters(
        self, obs: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Gaussian mean (B, c), log-std (c,) and unmasked logits (B, sum(branches)) of raw observations."""
        h = self.body.features(self.normalize(obs), first_only=True)[0]
        mean = self.mu(h) if self.mu is not None else None
        logits = self.logits(h) if self.logits is not None else None
        return mean, self.log_std, logits

    # -- acting -----------------------------------------------------------------------------------
    @torch.no_grad()
    def act(
        self,
        obs: torch.Tensor,
        allowed: torch.Tensor | None,
        *,
        generator: torch.Generator | None,
        deterministic: bool = False,
    ) -> Decision:
        """Sample actions for raw observations (the generator lives on the observations' device)."""
        h, hc = self.features(self.normalize(obs))
        values = self.value_head(hc)
        logp = torch.zeros(obs.shape[0], device=obs.device)
        entropy = torch.zeros_like(logp)
        cont = disc = None
        if self.mu is not None and self.log_std is not None:
            mean = self.mu(h)
            if deterministic:
                cont = mean
            else:
                noise = torch.randn(mean.shape, generator=generator, device=mean.device)
                cont = mean + noise * torch.exp(self.log_std)
            logp = logp + D.gaussian_log_prob(cont, mean, self.log_std)
            entropy = entropy + D.gaussian_entropy(self.log_std)
        if self.logits is not None:
            disc, lp, ent = D.sample_categorical(
                self.logits(h), allowed, self.branches, generator=generator, deterministic=deterministic
            )
            logp = logp + lp
            entropy = entropy + ent
        return Decision(cont, disc, logp, values, entropy)

    # -- training ---------------------------------------------------------------------------------
    def evaluate(
        self,
        x: torch.Tensor,
        cont: torch.Tensor | None,
        disc: torch.Tensor | None,
        allowed: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Joint log-prob, joint entropy and values for NORMALISED observations x and stored actions."""
        h, hc = self.features(x)
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
    """The acting network of an ActorCritic (the actor's dense copy), as plain arrays for the ONNX builder.

    Only vector-observation MLPs have this description (`model.vector_mlp`); others raise ValueError.
    """
    if not model.vector_mlp:
        raise ValueError("actor_graph describes vector-observation MLP policies only")

    def arr(t: torch.Tensor | np.ndarray) -> np.ndarray:
        return np.array(t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else t, dtype=np.float32)

    norm = model.normalizer
    return ActorGraph(
        observation_shapes=observation_shapes,
        hidden_layers=tuple((arr(w), arr(b)) for w, b in model.dense.layer_arrays(0)),
        norm_scale=arr(norm.scale) if norm is not None else None,
        norm_offset=arr(norm.offset) if norm is not None else None,
        continuous_size=model.action_spec.continuous_size,
        mu=(arr(model.mu.weight).T.copy(), arr(model.mu.bias)) if model.mu is not None else None,
        log_std=arr(model.log_std) if model.log_std is not None else None,
        continuous_transform="clip3",
        discrete_branches=model.branches,
        logits=(arr(model.logits.weight).T.copy(), arr(model.logits.bias)) if model.logits is not None else None,
    )


def torch_actor_source(model: ActorCritic, observation_shapes: tuple[tuple[int, ...], ...]) -> TorchActorSource:
    """The policy as a torch module for the general ONNX exporter (any body)."""
    norm = model.body.encoder.row_scale_offset()
    return TorchActorSource(
        module=model,
        observation_shapes=observation_shapes,
        continuous_size=model.action_spec.continuous_size,
        continuous_transform="clip3",
        discrete_branches=model.branches,
        norm_scale=norm[0] if norm is not None else None,
        norm_offset=norm[1] if norm is not None else None,
    )


def export_source(model: ActorCritic, observation_shapes: tuple[tuple[int, ...], ...]) -> ExportSource:
    """What ONNX export builds from: the hand-built graph's description where it covers the model, else the module."""
    if model.vector_mlp:
        return actor_graph(model, observation_shapes)
    return torch_actor_source(model, observation_shapes)


def env_continuous_action(raw: torch.Tensor) -> torch.Tensor:
    """What the environment receives for a raw Gaussian sample: clamp(a, -3, 3) / 3."""
    return torch.clamp(raw, -ENV_ACTION_CLIP, ENV_ACTION_CLIP) / ENV_ACTION_CLIP
