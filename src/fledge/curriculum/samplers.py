"""Samplers of environment parameters, and the form in which a parameter travels to an environment.

A *draw* is the JSON-able description of one parameter's current lesson value, as environments
receive it (in this process, in a worker process, or over Unity's EnvironmentParameters channel):
``{"sampler_type": "uniform", "sampler_parameters": {"min_value": 1.0, "max_value": 2.0}, "seed": 7}``.
Its seed is the lesson's `seed`, or, when that is -1, the run seed plus a running offset counting such
lessons in file order (spec 2.10). An environment builds a `Sampler` from each draw and asks it for
one value per agent at every episode start, as a Unity scene reads a sampled parameter.

Distributions: uniform on [min_value, max_value]; gaussian(mean, st_dev); multirangeuniform picks an
interval with probability proportional to its length, then a uniform value inside it (an interval of
length zero can only be picked when all have length zero: then each is equally likely); constant.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fledge.config.environment_parameters import (
    ConstantParameters,
    EnvironmentParameterSettings,
    GaussianParameters,
    MultiRangeUniformParameters,
    SamplerSettings,
    UniformParameters,
)
from fledge.errors import ConfigError

__all__ = ["Draw", "Sampler", "draw_of", "lesson_seeds", "sampler_of", "settings_of"]

Draw = dict[str, Any]  # {"sampler_type", "sampler_parameters", "seed"} (JSON-able)


def lesson_seeds(
    environment_parameters: Mapping[str, EnvironmentParameterSettings], run_seed: int
) -> dict[tuple[str, int], int]:
    """The seed of every lesson, keyed by (parameter, lesson index).

    A seed of -1 becomes run_seed + a running offset counting those lessons in file order (spec 2.10);
    other seeds are kept.
    """
    seeds: dict[tuple[str, int], int] = {}
    offset = 0
    for name, settings in environment_parameters.items():
        for index, lesson in enumerate(settings.curriculum):
            seed = lesson.value.sampler_parameters.seed
            if seed == -1:
                seed = run_seed + offset
                offset += 1
            seeds[name, index] = int(seed)
    return seeds


def draw_of(sampler: SamplerSettings, seed: int) -> Draw:
    """The JSON-able form of a lesson value with its resolved seed."""
    params = sampler.sampler_parameters.model_dump(mode="json")
    params.pop("seed", None)
    return {"sampler_type": str(sampler.sampler_type), "sampler_parameters": params, "seed": int(seed)}


def settings_of(draw: Mapping[str, Any]) -> tuple[SamplerSettings, int]:
    """A draw back as validated sampler settings and its seed (a ConfigError names what is wrong)."""
    try:
        settings = SamplerSettings.model_validate(
            {"sampler_type": draw["sampler_type"], "sampler_parameters": dict(draw.get("sampler_parameters") or {})}
        )
        return settings, int(draw.get("seed", 0))
    except Exception as exc:
        raise ConfigError(f"environment parameter value {dict(draw)!r} is not a valid sampler: {exc}") from None


class Sampler:
    """Values of one parameter, drawn from its own generator (seeded by the draw's seed and `stream`).

    `stream` tells apart copies of an environment that receive the same draw (copy i of a pool uses
    stream i), so that they do not all draw the same sequence; stream 0 is the seed alone.
    """

    def __init__(self, draw: Mapping[str, Any], *, stream: int = 0) -> None:
        self.settings, self.seed = settings_of(draw)
        seed = self.seed % 2**32
        self.rng = np.random.default_rng(seed if stream == 0 else [seed, int(stream)])
        params = self.settings.sampler_parameters
        self._constant: float | None = float(params.value) if isinstance(params, ConstantParameters) else None
        self._params = params
        if isinstance(params, MultiRangeUniformParameters):
            lows = np.array([i[0] for i in params.intervals], dtype=np.float64)
            highs = np.array([i[1] for i in params.intervals], dtype=np.float64)
            lengths = highs - lows
            total = float(lengths.sum())
            self._lows, self._highs = lows, highs
            self._weights = lengths / total if total > 0 else np.full(len(lows), 1.0 / len(lows))

    @property
    def is_constant(self) -> bool:
        return self._constant is not None

    def sample(self, n: int) -> np.ndarray:
        """`n` values (float64)."""
        params = self._params
        if self._constant is not None:
            return np.full(n, self._constant, dtype=np.float64)
        if isinstance(params, UniformParameters):
            return self.rng.uniform(params.min_value, params.max_value, size=n)
        if isinstance(params, GaussianParameters):
            return self.rng.normal(params.mean, params.st_dev, size=n)
        if isinstance(params, MultiRangeUniformParameters):
            which = self.rng.choice(len(self._lows), size=n, p=self._weights)
            return self.rng.uniform(self._lows[which], self._highs[which])
        raise ConfigError(f"no sampler for {type(params).__name__}")  # pragma: no cover - the config refuses it

    def one(self) -> float:
        return float(self.sample(1)[0])


def sampler_of(draw: Mapping[str, Any], *, stream: int = 0) -> Sampler:
    return Sampler(draw, stream=stream)
