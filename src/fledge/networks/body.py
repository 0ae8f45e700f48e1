"""The network body every actor and critic is built from: observations -> encoders -> dense layers.

`NetworkBody` is the single definition of "observations in, hidden features out", built from the
behavior's observation specs (networks/encoders/layout.py) and the network settings. Observations
arrive as one flat row per step (every observation reshaped to (-1,) and concatenated in
BehaviorSpec order); the body splits the row back into its observations.

It works in two stages:
- `encode(raw row)` -> preprocessed row of the same width: the running normaliser on the vector
  observations' columns (encoders/vector.py). No learned weights: trainers apply it once to a whole
  buffer, and SAC's critics read the actor's preprocessed row.
- `features(row[, extra])` -> (copies, B, out_size): the learned part.
  * A "plain" body (vector observations only, no hypernetwork) is a `DenseStack` of `copies` MLPs over
    [row, extra]: the network fledge has always built, with the same weights for the same seed (the
    numpy accelerators, the hand gradients and the hand-built ONNX graph cover exactly these).
  * Otherwise each copy is a `Tower`: its own visual encoders (encoders/visual.py) for [C, H, W]
    observations, an entity encoder (encoders/entity.py) for variable-length observations, the
    vector observations as they are, all concatenated (with `extra`) before `num_layers` Swish
    layers of `hidden_units`; with goal observations and `goal_conditioning_type: hyper` the last of
    those layers is a hypernetwork layer over the goal encoding (encoders/goal.py).
`extra_inputs` are columns appended after the encodings (SAC's Q networks: the continuous action).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fledge.envs.api import ObservationSpec
from fledge.networks.dense import DenseStack, numpy_view
from fledge.networks.encoders.entity import EntityEncoder
from fledge.networks.encoders.goal import ConditionedStack
from fledge.networks.encoders.layout import ObservationLayout, ObservationSlot
from fledge.networks.encoders.vector import VectorEncoder
from fledge.networks.encoders.visual import visual_encoder
from fledge.networks.normalizer import RunningNormalizer

__all__ = ["DenseStack", "NetworkBody", "Tower", "VectorEncoder", "goal_conditioned", "numpy_view", "plain_body"]

GOAL_CONDITIONING = ("hyper", "none")


def goal_conditioned(layout: ObservationLayout, *, num_layers: int, goal_conditioning_type: str) -> bool:
    """Whether a body gets a hypernetwork layer: `hyper`, dense layers to replace, a fixed-size goal
    observation and something else to condition."""
    return (
        goal_conditioning_type == "hyper"
        and num_layers >= 1
        and layout.has_fixed_goal()
        and any(not s.goal or s.kind == "entity" for s in layout.slots)
    )


def plain_body(layout: ObservationLayout, *, num_layers: int, goal_conditioning_type: str) -> bool:
    """Whether a body of this layout is the plain vector-observation MLP (one DenseStack)."""
    return layout.all_vector and not goal_conditioned(
        layout, num_layers=num_layers, goal_conditioning_type=goal_conditioning_type
    )


class Tower(nn.Module):
    """One copy's learned encoders and dense layers. forward(row (B, size)[, extra (B, e)]) -> (B, out_size)."""

    def __init__(
        self,
        layout: ObservationLayout,
        *,
        hidden_units: int,
        num_layers: int,
        vis_encode_type: str,
        conditioned: bool,
        extra_inputs: int = 0,
    ) -> None:
        super().__init__()
        self.layout = layout
        self.conditioned = conditioned
        self.visual_slots = layout.of_kind("visual")
        self.entity_slots = layout.of_kind("entity")
        self.visual = nn.ModuleList(
            visual_encoder(vis_encode_type, s.shape, hidden_units, index=s.index, name=s.name)
            for s in self.visual_slots
        )
        fixed = [s for s in layout.slots if s.kind != "entity"]
        self.goal_slots = tuple(s for s in fixed if conditioned and s.goal)
        self.self_slots = tuple(s for s in fixed if s not in self.goal_slots)
        self.self_size = sum(self._encoded_size(s, hidden_units) for s in self.self_slots)
        self.goal_size = sum(self._encoded_size(s, hidden_units) for s in self.goal_slots)
        self.entity: EntityEncoder | None = None
        if self.entity_slots:
            self.entity = EntityEncoder(tuple(s.shape[1] for s in self.entity_slots), self.self_size)
        self.n_in = self.self_size + (self.entity.out_size if self.entity is not None else 0) + extra_inputs
        self.dense: ConditionedStack | DenseStack = (
            ConditionedStack(self.n_in, self.goal_size, hidden_units, num_layers)
            if conditioned
            else DenseStack(self.n_in, hidden_units, num_layers)
        )
        self.out_size = self.dense.out_size

    @staticmethod
    def _encoded_size(slot: ObservationSlot, hidden_units: int) -> int:
        return hidden_units if slot.kind == "visual" else slot.size

    def encodings(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Each fixed-size observation's encoding (B, k), keyed by its index in BehaviorSpec order."""
        out = {s.index: x[:, s.start : s.stop] for s in self.layout.slots if s.kind == "vector"}
        for slot, encoder in zip(self.visual_slots, self.visual):
            out[slot.index] = encoder(x[:, slot.start : slot.stop].reshape(-1, *slot.shape))
        return out

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        enc = self.encodings(x)
        parts = [enc[s.index] for s in self.self_slots]
        x_self = torch.cat(parts, dim=1) if len(parts) > 1 else (parts[0] if parts else None)
        if self.entity is not None:
            entities = [x[:, s.start : s.stop].reshape(-1, *s.shape) for s in self.entity_slots]
            parts.append(self.entity(entities, x_self))
        if extra is not None:
            parts.append(extra)
        h = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        if isinstance(self.dense, ConditionedStack):
            goals = [enc[s.index] for s in self.goal_slots]
            goal = torch.cat(goals, dim=1) if len(goals) > 1 else goals[0]
            return self.dense(h, goal)
        return self.dense(h)[0]


class NetworkBody(nn.Module):
    """Observations -> encoders -> `copies` dense stacks. forward(raw row[, extra]) -> (copies, B, out_size).

    Built from `observation_specs` (or, without them, from `obs_size`: one vector observation).
    `normalize`: a running normaliser on the vector observations' columns (`encode`); critics that read
    another body's preprocessed row pass False.
    """

    def __init__(
        self,
        *,
        obs_size: int | None = None,
        observation_specs: Sequence[ObservationSpec] | None = None,
        hidden_units: int,
        num_layers: int,
        normalize: bool,
        copies: int = 1,
        vis_encode_type: str = "simple",
        goal_conditioning_type: str = "hyper",
        extra_inputs: int = 0,
    ) -> None:
        super().__init__()
        if observation_specs is not None:
            self.layout = ObservationLayout.of(observation_specs)
            if obs_size is not None and obs_size != self.layout.size:
                raise ValueError(f"obs_size {obs_size} does not match the observation specs' {self.layout.size}")
        elif obs_size is not None:
            self.layout = ObservationLayout.vector(obs_size)
        else:
            raise ValueError("a NetworkBody needs observation_specs or obs_size")
        if goal_conditioning_type not in GOAL_CONDITIONING:
            raise ValueError(
                f"goal_conditioning_type must be one of {GOAL_CONDITIONING}, not {goal_conditioning_type!r}"
            )
        self.obs_size = self.layout.size
        self.hidden_units, self.num_layers, self.copies = hidden_units, num_layers, copies
        self.extra_inputs = extra_inputs
        self.conditioned = goal_conditioned(
            self.layout, num_layers=num_layers, goal_conditioning_type=goal_conditioning_type
        )
        self.encoder = VectorEncoder(self.layout.size, normalize=normalize, layout=self.layout)
        self.towers: nn.ModuleList | None = None
        self.out_size: int
        if self.layout.all_vector and not self.conditioned:
            self.dense = DenseStack(self.layout.size + extra_inputs, hidden_units, num_layers, copies)
            self.out_size = self.dense.out_size
        else:
            towers = [
                Tower(
                    self.layout,
                    hidden_units=hidden_units,
                    num_layers=num_layers,
                    vis_encode_type=vis_encode_type,
                    conditioned=self.conditioned,
                    extra_inputs=extra_inputs,
                )
                for _ in range(copies)
            ]
            self.towers = nn.ModuleList(towers)
            self.out_size = towers[0].out_size

    @property
    def plain(self) -> bool:
        """True for the vector-observation MLP (one DenseStack): what the numpy accelerators cover."""
        return self.towers is None

    @property
    def normalizer(self) -> RunningNormalizer | None:
        return self.encoder.normalizer

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """The preprocessed row (B, obs_size): vector columns normalised when the body normalises."""
        return self.encoder(obs)

    def features(
        self, x: torch.Tensor, extra: torch.Tensor | None = None, *, detached: bool = False, first_only: bool = False
    ) -> torch.Tensor:
        """Every copy's features (copies, B, out_size) of a PREPROCESSED row; `detached`: no gradient
        reaches the weights (the gradient still flows to x and extra); `first_only`: an encoder body
        computes copy 0 alone (1, B, out_size) (the actor of an actor-critic body; what ONNX exports)."""
        if self.towers is None:
            inp = x if extra is None else torch.cat([x, extra], dim=1)
            return self.dense(inp, detached=detached)
        outs = []
        for tower in self.towers[:1] if first_only else self.towers:
            if detached:
                params = {name: p.detach() for name, p in tower.named_parameters()}
                outs.append(torch.func.functional_call(tower, params, (x, extra)))
            else:
                outs.append(tower(x, extra))
        return torch.stack(outs)

    def forward(self, obs: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        return self.features(self.encode(obs), extra)
