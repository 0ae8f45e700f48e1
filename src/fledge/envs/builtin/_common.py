"""Small helpers shared by the built-in tasks."""

from __future__ import annotations

import numpy as np

from fledge.errors import ConfigError


def check_count(env: str, what: str, value: object, *, minimum: int = 1) -> int:
    """An integer parameter of a built-in environment, at least `minimum`, or a ConfigError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"Environment '{env}': {what} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def one_hot(index: np.ndarray, size: int) -> np.ndarray:
    """A new float32 (len(index), size) array with a 1 at each row's index."""
    out = np.zeros((len(index), size), dtype=np.float32)
    out[np.arange(len(index)), index] = 1.0
    return out
