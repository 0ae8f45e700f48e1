"""Where each observation lies in the flat observation row, and which encoder reads it (no torch).

Observations travel through rollout, buffers and the wire as one flat float32 row per agent step:
every observation of the step reshaped to (-1,) and concatenated in BehaviorSpec order. A network
body splits that row back into its observations with an `ObservationLayout`, built from the
behavior's observation specs. The kind of each observation follows spec 1.1 (encoder selection by
dimension properties):

- rank 1, properties (NONE,) or (UNSPECIFIED,): vector;
- rank 3 [C, H, W] (channels first), properties (NONE, TRANSLATIONAL_EQUIVARIANCE,
  TRANSLATIONAL_EQUIVARIANCE) or all UNSPECIFIED: visual;
- rank 2 (max_entities, entity_size), properties (VARIABLE_SIZE, NONE): variable-length entities;
- anything else is refused.
An observation without dimension properties (an empty tuple) counts as all UNSPECIFIED.
`ObservationType.GOAL_SIGNAL` marks goal observations (the goal conditioning reads them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fledge.envs.api import DimensionProperty, ObservationSpec, ObservationType
from fledge.errors import ConfigError

ObservationKind = Literal["vector", "visual", "entity"]

_D = DimensionProperty
_VISUAL_PROPS = (
    (_D.NONE, _D.TRANSLATIONAL_EQUIVARIANCE, _D.TRANSLATIONAL_EQUIVARIANCE),
    (_D.UNSPECIFIED, _D.UNSPECIFIED, _D.UNSPECIFIED),
)
_VECTOR_PROPS = ((_D.NONE,), (_D.UNSPECIFIED,))
_ENTITY_PROPS = ((_D.VARIABLE_SIZE, _D.NONE),)


@dataclass(frozen=True)
class ObservationSlot:
    """One observation: its position in BehaviorSpec order, kind, shape and columns [start, stop) of the row."""

    index: int
    name: str
    kind: ObservationKind
    shape: tuple[int, ...]
    start: int
    stop: int
    goal: bool = False

    @property
    def size(self) -> int:
        return self.stop - self.start


def observation_kind(spec: ObservationSpec, index: int) -> ObservationKind:
    """The encoder kind of one observation; an unsupported shape/properties pair raises ConfigError."""
    shape = tuple(int(d) for d in spec.shape)
    props = tuple(DimensionProperty(int(p)) for p in spec.dimension_property) or (_D.UNSPECIFIED,) * len(shape)
    if len(shape) == 1 and props in _VECTOR_PROPS:
        return "vector"
    if len(shape) == 3 and props in _VISUAL_PROPS:
        return "visual"
    if len(shape) == 2 and props in _ENTITY_PROPS:
        return "entity"
    names = ", ".join(p.name or str(int(p)) for p in props)
    raise ConfigError(
        f"Observation {index} ('{spec.name}'): unsupported sensor with shape {shape} and dimension properties "
        f"({names}). fledge reads vectors (rank 1), visual observations [C, H, W] (rank 3) and variable-length "
        "entities (max_entities, entity_size) with properties (VARIABLE_SIZE, NONE)."
    )


@dataclass(frozen=True)
class ObservationLayout:
    """Every observation's slot in the flat row, in BehaviorSpec order."""

    slots: tuple[ObservationSlot, ...]

    @classmethod
    def of(cls, specs: Sequence[ObservationSpec]) -> ObservationLayout:
        slots = []
        start = 0
        for i, spec in enumerate(specs):
            shape = tuple(int(d) for d in spec.shape)
            size = 1
            for d in shape:
                size *= d
            if size <= 0:
                raise ConfigError(f"Observation {i} ('{spec.name}') has an empty shape {shape}.")
            slots.append(
                ObservationSlot(
                    index=i,
                    name=spec.name,
                    kind=observation_kind(spec, i),
                    shape=shape,
                    start=start,
                    stop=start + size,
                    goal=int(spec.observation_type) == int(ObservationType.GOAL_SIGNAL),
                )
            )
            start += size
        if not slots:
            raise ConfigError("A behavior needs at least one observation.")
        return cls(tuple(slots))

    @classmethod
    def vector(cls, size: int) -> ObservationLayout:
        """One vector observation of `size` (the layout of networks built from a size alone)."""
        return cls.of([ObservationSpec.vector(int(size))])

    @property
    def size(self) -> int:
        """The width of the flat row."""
        return self.slots[-1].stop

    @property
    def all_vector(self) -> bool:
        return all(s.kind == "vector" for s in self.slots)

    @property
    def vector_columns(self) -> tuple[int, ...]:
        """The row's columns that belong to vector observations (what the normaliser covers)."""
        return tuple(c for s in self.slots if s.kind == "vector" for c in range(s.start, s.stop))

    def of_kind(self, kind: ObservationKind) -> tuple[ObservationSlot, ...]:
        return tuple(s for s in self.slots if s.kind == kind)

    def has_fixed_goal(self) -> bool:
        """Whether a goal observation has a fixed-size encoder (vector or visual): what hyper conditioning reads."""
        return any(s.goal and s.kind != "entity" for s in self.slots)
