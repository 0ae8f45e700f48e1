"""The search space of `fledge sweep`: which config keys (dotted paths) take which values, grid or random.

A space file is YAML:

    method: grid                 # grid: every combination of the lists; random: num_samples draws
    num_samples: 8               # random only: how many points are drawn
    seed: 0                      # random only: the draw's own seed (the same file draws the same points)
    parameters:
      behaviors.Basic.hyperparameters.learning_rate: [3.0e-4, 1.0e-3]     # a list: these values
      behaviors.Basic.hyperparameters.beta: {loguniform: [1.0e-4, 1.0e-2]} # random only
      behaviors.Basic.hyperparameters.batch_size: {choice: [32, 64]}
      behaviors.Basic.network_settings.hidden_units: {randint: [16, 128]}  # random only, both ends included

Keys are dotted paths into the training config (`behaviors.NAME.hyperparameters.KEY`,
`default_settings.max_steps`, `env_settings.num_areas`, ...). Each point of the space is a list of
(path, value) overrides; every seed of `--seeds` runs every point.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fledge.errors import ConfigError

METHODS = ("grid", "random")
DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
TOP_KEYS = ("method", "num_samples", "seed", "parameters")

Point = tuple[tuple[str, Any], ...]
"""One point of the space: (dotted path, value) in the file's order."""


@dataclass(frozen=True)
class Parameter:
    path: str
    kind: str  # "values" (a plain list), or one of DISTRIBUTIONS
    args: tuple[Any, ...]


@dataclass(frozen=True)
class SearchSpace:
    method: str
    parameters: tuple[Parameter, ...]
    num_samples: int = 1
    seed: int = 0

    def points(self) -> list[Point]:
        """Every point (grid) or `num_samples` draws (random); one empty point for an empty space."""
        if not self.parameters:
            return [()]
        if self.method == "grid":
            lists = [p.args for p in self.parameters]
            return [tuple(zip([p.path for p in self.parameters], combo)) for combo in itertools.product(*lists)]
        rng = np.random.default_rng(self.seed)
        return [tuple((p.path, _draw(p, rng)) for p in self.parameters) for _ in range(self.num_samples)]


def _draw(p: Parameter, rng: np.random.Generator) -> Any:
    if p.kind in ("values", "choice"):
        return p.args[int(rng.integers(len(p.args)))]
    low, high = p.args
    if p.kind == "uniform":
        return float(rng.uniform(low, high))
    if p.kind == "loguniform":
        return float(math.exp(rng.uniform(math.log(low), math.log(high))))
    return int(rng.integers(int(low), int(high) + 1))  # randint: both ends included


def parse_space(raw: Any, where: str = "the search space") -> SearchSpace:
    """A SearchSpace from the YAML mapping of a space file; ConfigError naming the key otherwise."""
    if raw is None:
        return SearchSpace(method="grid", parameters=())
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'parameters' (and 'method'), got {type(raw).__name__}.")
    unknown = [k for k in raw if k not in TOP_KEYS]
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(map(str, unknown))}; the keys are {', '.join(TOP_KEYS)}."
        )
    method = str(raw.get("method", "grid"))
    if method not in METHODS:
        raise ConfigError(f"{where}: method '{method}' is not one of {', '.join(METHODS)}.")
    num_samples = raw.get("num_samples", 1 if method == "grid" else None)
    if method == "random" and (not isinstance(num_samples, int) or num_samples < 1):
        raise ConfigError(f"{where}: method random needs num_samples, a whole number of at least 1.")
    if method == "grid" and "num_samples" in raw:
        raise ConfigError(f"{where}: num_samples applies to method random only; a grid runs every combination.")
    seed = raw.get("seed", 0)
    if not isinstance(seed, int):
        raise ConfigError(f"{where}: seed must be a whole number, got {seed!r}.")
    params = raw.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where}: parameters must map dotted config keys to values.")
    parsed = tuple(_parameter(str(path), spec, method, where) for path, spec in params.items())
    return SearchSpace(method=method, parameters=parsed, num_samples=int(num_samples or 1), seed=int(seed))


def _parameter(path: str, spec: Any, method: str, where: str) -> Parameter:
    at = f"{where}: parameters.{path}"
    if not path or any(not part for part in path.split(".")):
        raise ConfigError(f"{at}: a key is a dotted path such as behaviors.Basic.hyperparameters.learning_rate.")
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{at}: the list of values is empty.")
        return Parameter(path, "values", tuple(spec))
    if isinstance(spec, Mapping) and len(spec) == 1:
        kind, args = next(iter(spec.items()))
        if kind not in DISTRIBUTIONS:
            raise ConfigError(f"{at}: '{kind}' is not one of {', '.join(DISTRIBUTIONS)} (or give a plain list).")
        if not isinstance(args, list) or not args:
            raise ConfigError(f"{at}: {kind} takes a list, e.g. {{{kind}: [low, high]}}.")
        if kind == "choice":
            return Parameter(path, "values", tuple(args))
        if method == "grid":
            raise ConfigError(f"{at}: {kind} draws at random; a grid takes a list of values (or use method: random).")
        if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
            raise ConfigError(f"{at}: {kind} takes [low, high] numbers, got {args!r}.")
        low, high = args
        if not low <= high or (kind == "loguniform" and low <= 0):
            raise ConfigError(f"{at}: {kind} needs low <= high{' and low > 0' if kind == 'loguniform' else ''}.")
        return Parameter(path, kind, (low, high))
    raise ConfigError(f"{at}: give a list of values or one of {{{', '.join(DISTRIBUTIONS)}: [...]}}.")


def load_space(path: Path | None) -> SearchSpace:
    """The space file at `path` (None: the empty space, seeds only)."""
    if path is None:
        return parse_space(None)
    import yaml

    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--space: cannot read {path}: {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--space: {path} is not valid YAML: {exc}") from None
    return parse_space(raw, where=str(path))


def apply_point(config: Mapping[str, Any], point: Point) -> dict[str, Any]:
    """A deep copy of the raw training config with every (dotted path, value) of the point set."""
    out = copy.deepcopy(dict(config))
    for path, value in point:
        node: dict[str, Any] = out
        parts = path.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                shown = ".".join(parts[: i + 1])
                raise ConfigError(f"search space: {path} goes through {shown}, which is {child!r}, not a mapping.")
            node = child
        node[parts[-1]] = value
    return out


def describe_point(point: Sequence[tuple[str, Any]]) -> str:
    """'learning_rate=0.001 beta=0.01' (last part of each path), or 'defaults' for the empty point."""
    return (
        " ".join(
            f"{path.rsplit('.', 1)[-1]}={value:g}" if _is_number(value) else f"{path.rsplit('.', 1)[-1]}={value}"
            for path, value in point
        )
        or "defaults"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
