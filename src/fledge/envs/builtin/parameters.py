"""Environment parameters of a built-in task: the names it reads, their defaults, per-agent values.

A task declares `parameter_defaults` (name -> value used when the run sets nothing). The run sends
draws (fledge.curriculum.samplers); each parameter then gets its own seeded sampler, and at every
episode start the agents that start get a fresh value each, as a Unity scene reads a sampled
parameter when an agent's episode begins. Tasks read `values[name][i]` (float64, one per agent).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fledge.curriculum.samplers import Sampler
from fledge.errors import ConfigError

__all__ = ["TaskParameters", "unknown_parameters_error"]


def unknown_parameters_error(env: str, unknown: list[str], known: list[str]) -> ConfigError:
    accepted = ", ".join(sorted(known)) if known else "none"
    return ConfigError(
        f"environment_parameters: environment '{env}' has no parameter(s) {', '.join(sorted(unknown))}; the "
        f"parameters it reads are: {accepted}. Rename or remove them in the config."
    )


class TaskParameters:
    def __init__(self, defaults: Mapping[str, float], n: int, *, owner: str) -> None:
        self.defaults = dict(defaults)
        self.owner = owner
        self.values: dict[str, np.ndarray] = {name: np.full(n, float(v)) for name, v in self.defaults.items()}
        self.samplers: dict[str, Sampler] = {}
        self.version = 0  # bumped by every `set`, so tasks can tell that values may have changed

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.defaults)

    def check(self, names: list[str]) -> None:
        unknown = [n for n in names if n not in self.defaults]
        if unknown:
            raise unknown_parameters_error(self.owner, unknown, list(self.defaults))

    def set(self, draws: Mapping[str, Mapping[str, Any]]) -> None:
        """New lesson values; the agents' values change at their next episode start."""
        self.check(list(draws))
        for name, draw in draws.items():
            self.samplers[name] = Sampler(draw, stream=int(draw.get("stream", 0)))
        self.version += 1

    def draw(self, idx: np.ndarray) -> None:
        """Fresh values for the agents at positions `idx`, which start an episode."""
        if not self.samplers or len(idx) == 0:
            return
        for name, sampler in self.samplers.items():
            self.values[name][idx] = sampler.sample(len(idx))
