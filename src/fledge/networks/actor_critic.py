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
from typing import Any, NamedTuple, cast

import numpy as np
import torch
from torch import nn

from fledge.envs.api import ActionSpec, ObservationSpec
from fledge.networks import distributions as D
from fledge.networks.actor_graph import ActorGraph, ExportSource, TorchActorSource
from fledge.networks.body import DenseStack, NetworkBody
from fledge.networks.memory import LSTMMemory, carry_through
from fledge.networks.normalizer import RunningNormalizer

ENV_ACTION_CLIP = 3.0
# Checkpoint names of the state (kept from before the NetworkBody): module path -> stored name. The
# encoder towers of non-vector bodies are stored as "towers." (before "body." so that reading back,
# where "body." becomes "body.dense.", never sees them); the LSTMs as "memory." for the same reason.
_STORED_NAMES = (
    ("body.towers.", "towers."),
    ("body.encoder.normalizer.", "normalizer."),
    ("body.memory.", "memory."),
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
    memory_size: int = 0  # LSTM memory [h, c] after the dense layers (0: none)


class Decision(NamedTuple):
    """One batched decision in torch: continuous actions as stored, discrete choices, joint log-prob, values, entropy."""

    continuous: torch.Tensor | None  # (B, c): PPO's raw Gaussian sample, SAC's tanh-squashed action
    discrete: torch.Tensor | None  # (B, branches) int64
    log_prob: torch.Tensor  # (B,)
    values: torch.Tensor  # (B, n_signals)
    entropy: torch.Tensor  # (B,)
    memory: torch.Tensor | None = None  # (B, memory_size) the actor's memory after this decision


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
            memory_size=shape.memory_size,
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
        """True when the body is the plain vector-observation MLP without memory (what the accelerators cover)."""
        return self.body.plain and type(self.body.dense) is DenseStack and self.body.memory is None

    @property
    def memory_size(self) -> int:
        """Size of the actor's memory vector [h, c] (0 without memory); the critic's, when separate, is the same."""
        return self.body.memory_size

    def _lstm(self, copy: int) -> LSTMMemory:
        assert self.body.memory is not None, "the network has no memory"
        return cast(LSTMMemory, self.body.memory[copy])

    @property
    def actor_memory(self) -> LSTMMemory:
        return self._lstm(0)

    @property
    def critic_memory(self) -> LSTMMemory:
        """The critic's LSTM (the actor's with `shared_critic`)."""
        return self._lstm(len(self.body.memory) - 1 if self.body.memory is not None else 0)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Preprocessed observations: the running normaliser on the vector columns (or the identity)."""
        return self.body.encode(obs)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Actor and critic features (B, out) of NORMALISED observations (the same tensor when shared).

        With memory, each LSTM starts from a zero memory for every row (use `step_features` or
        `sequence_features` to carry memories)."""
        if self.body.memory is None:
            hs = self.body.features(x)
            return hs[0], hs[-1]
        zeros = torch.zeros(x.shape[0], self.memory_size, device=x.device, dtype=x.dtype)
        return self.step_features(x, zeros, None)[:2]

    def step_features(
        self, x: torch.Tensor, memory: torch.Tensor, critic_memory: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decision with memory: (actor features, critic features, new actor memory, new critic memory).

        x (B, obs) NORMALISED; memory (B, memory_size) the actor's; critic_memory the critic's (zeros when
        None). With `shared_critic` the critic reads the actor's features and memory."""
        hs = self.body.features(x)
        h, new = self.actor_memory.step(hs[0], memory)
        if self.shared_critic:
            return h, h, new, new
        cm = critic_memory if critic_memory is not None else torch.zeros_like(memory)
        hc, new_c = self.critic_memory.step(hs[1], cm)
        return h, hc, new, new_c

    def sequence_features(
        self, x: torch.Tensor, memory: torch.Tensor, critic_memory: torch.Tensor | None, seq_len: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actor and critic features (N * L, out) of NORMALISED rows x (N * L, obs) forming N whole sequences,
        each LSTM re-run from the memories (N, memory_size) stored at the sequence starts."""
        hs = self.body.features(x)
        h = self.actor_memory.sequences(hs[0], memory, seq_len)
        if self.shared_critic:
            return h, h
        assert critic_memory is not None, "a separate critic needs its memories at the sequence starts"
        return h, self.critic_memory.sequences(hs[1], critic_memory, seq_len)

    @torch.no_grad()
    def critic_trajectory(
        self, x: torch.Tensor, initial: torch.Tensor, seq_len: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Values (n, S) of one trajectory's NORMALISED observations (n, obs), the critic memory run sequence by
        sequence from `initial` (memory_size,); also the critic memory at each sequence start (ceil(n/L), M)
        and after the last step (M,)."""
        hc = self.body.features(x)[-1]
        out, starts, final = carry_through(self.critic_memory, hc, initial, seq_len)
        return self.value_head(out), starts, final

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """Value estimates (B, n_signals) of raw observations (with memory: from a zero critic memory)."""
        return self.value_head(self.features(self.normalize(obs))[1])

    def action_parameters(
        self, obs: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Gaussian mean (B, c), log-std (c,) and unmasked logits (B, sum(branches)) of raw observations
        (with memory: from a zero memory; `recurrent_action_parameters` carries it)."""
        if self.body.memory is not None:
            zeros = torch.zeros(obs.shape[0], self.memory_size, device=obs.device, dtype=obs.dtype)
            return self.recurrent_action_parameters(obs, zeros)[:3]
        h = self.body.features(self.normalize(obs), first_only=True)[0]
        mean = self.mu(h) if self.mu is not None else None
        logits = self.logits(h) if self.logits is not None else None
        return mean, self.log_std, logits

    def recurrent_action_parameters(
        self, obs: torch.Tensor, memory: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None, torch.Tensor]:
        """`action_parameters` of one step with the actor's memory (B, memory_size), and the new memory."""
        hs = self.body.features(self.normalize(obs), first_only=True)
        h, new = self.actor_memory.step(hs[0], memory)
        mean = self.mu(h) if self.mu is not None else None
        logits = self.logits(h) if self.logits is not None else None
        return mean, self.log_std, logits, new

    # -- acting -----------------------------------------------------------------------------------
    @torch.no_grad()
    def act(
        self,
        obs: torch.Tensor,
        allowed: torch.Tensor | None,
        *,
        generator: torch.Generator | None,
        deterministic: bool = False,
        memory: torch.Tensor | None = None,
    ) -> Decision:
        """Sample actions for raw observations (the generator lives on the observations' device).

        With memory, `memory` (B, memory_size) is each agent's actor memory before this decision (zeros
        when None) and the decision carries the memory after it. Its values then come from a zero critic
        memory unless the critic is shared: trainers recompute them per trajectory with carried memories."""
        new_memory = None
        if self.body.memory is not None:
            x = self.normalize(obs)
            if memory is None:
                memory = torch.zeros(obs.shape[0], self.memory_size, device=obs.device, dtype=obs.dtype)
            h, hc, new_memory, _ = self.step_features(x, memory, None)
        else:
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
        return Decision(cont, disc, logp, values, entropy, new_memory)

    # -- training ---------------------------------------------------------------------------------
    def evaluate(
        self,
        x: torch.Tensor,
        cont: torch.Tensor | None,
        disc: torch.Tensor | None,
        allowed: torch.Tensor | None,
        *,
        memory: torch.Tensor | None = None,
        critic_memory: torch.Tensor | None = None,
        seq_len: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Joint log-prob, joint entropy and values for NORMALISED observations x and stored actions.

        With memory, x holds whole sequences of `seq_len` rows and `memory` / `critic_memory` (N, memory_size)
        are the memories stored at their starts."""
        if self.body.memory is not None:
            assert memory is not None, "a network with memory is evaluated on sequences from their start memories"
            h, hc = self.sequence_features(x, memory, critic_memory, seq_len)
        else:
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
        memory_size=model.memory_size,
    )


def export_source(model: ActorCritic, observation_shapes: tuple[tuple[int, ...], ...]) -> ExportSource:
    """What ONNX export builds from: the hand-built graph's description where it covers the model, else the module."""
    if model.vector_mlp:
        return actor_graph(model, observation_shapes)
    return torch_actor_source(model, observation_shapes)


def env_continuous_action(raw: torch.Tensor) -> torch.Tensor:
    """What the environment receives for a raw Gaussian sample: clamp(a, -3, 3) / 3."""
    return torch.clamp(raw, -ENV_ACTION_CLIP, ENV_ACTION_CLIP) / ENV_ACTION_CLIP
