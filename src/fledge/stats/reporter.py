"""The run's stats reporter: collects values per category (behavior) and key, summarises them
every summary period and hands the summaries to its writers (console, TensorBoard, CSV).

One reporter per run, created by the run and passed down; there is no global registry.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

#: Property name under which a trainer's full settings are reported (TensorBoard text tag).
HYPERPARAMETERS = "Hyperparameters"


class Aggregation(IntEnum):
    """How the values of one key within a summary period become one scalar (ML-Agents'
    ``StatsAggregationMethod``)."""

    AVERAGE = 0
    MOST_RECENT = 1
    SUM = 2
    HISTOGRAM = 3  # scalar is the mean; writers that can also record the full distribution


@dataclass(frozen=True)
class StatSummary:
    """All values of one key in one summary period, in the order they were added."""

    values: np.ndarray
    aggregation: Aggregation = Aggregation.AVERAGE

    @property
    def count(self) -> int:
        return int(self.values.size)

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values.size else float("nan")

    @property
    def std(self) -> float:
        """Population standard deviation (numpy's default, as ML-Agents reports it)."""
        return float(np.std(self.values)) if self.values.size else float("nan")

    @property
    def sum(self) -> float:
        return float(np.sum(self.values))

    @property
    def scalar(self) -> float:
        """The one number written for this key: sum for SUM, last for MOST_RECENT, else mean."""
        if self.aggregation == Aggregation.SUM:
            return self.sum
        if self.aggregation == Aggregation.MOST_RECENT:
            return float(self.values[-1]) if self.values.size else float("nan")
        return self.mean


class StatsWriter(ABC):
    """Receives the summaries of one category at every summary step."""

    @abstractmethod
    def write_stats(self, category: str, summaries: Mapping[str, StatSummary], step: int) -> None:
        """Record the summaries of ``category`` at ``step``."""

    def add_property(self, category: str, name: str, value: object) -> None:  # noqa: B027 - optional hook
        """Record a property of a category, e.g. its hyperparameters. Ignored by default."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release files. Does nothing by default."""


class _Key:
    """Pending values of one key: scalars and arrays in arrival order, concatenated at write time."""

    __slots__ = ("aggregation", "parts")

    def __init__(self, aggregation: Aggregation) -> None:
        self.aggregation = aggregation
        self.parts: list[float | np.ndarray] = []

    def values(self) -> np.ndarray:
        parts = self.parts
        if all(isinstance(p, float) for p in parts):
            return np.array(parts, dtype=np.float64)
        return np.concatenate([np.atleast_1d(np.asarray(p, dtype=np.float64)) for p in parts])


class StatsReporter:
    """Collects stats of every category of one run and writes them through its writers.

    Thread-safe: trainers running in threads may add stats while another writes.
    """

    def __init__(self, writers: Sequence[StatsWriter]) -> None:
        self._writers: tuple[StatsWriter, ...] = tuple(writers)
        self._pending: dict[str, dict[str, _Key]] = {}
        self._aggregations: dict[tuple[str, str], Aggregation] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def writers(self) -> tuple[StatsWriter, ...]:
        return self._writers

    def _entry(self, category: str, key: str, aggregation: Aggregation) -> _Key:
        known = self._aggregations.get((category, key))
        if known is None:
            known = self._aggregations[(category, key)] = Aggregation(aggregation)
        elif known != aggregation:
            raise ValueError(
                f"Stat {key!r} of {category!r} was reported with aggregation {known.name} and now with "
                f"{Aggregation(aggregation).name}; report each stat with one aggregation."
            )
        keys = self._pending.setdefault(category, {})
        entry = keys.get(key)
        if entry is None:
            entry = keys[key] = _Key(known)
        return entry

    def add_stat(self, category: str, key: str, value: float, aggregation: Aggregation = Aggregation.AVERAGE) -> None:
        """Add one value to ``key`` of ``category`` for the current summary period."""
        with self._lock:
            self._entry(category, key, aggregation).parts.append(float(value))

    def add_stats(
        self,
        category: str,
        key: str,
        values: np.ndarray | Sequence[float],
        aggregation: Aggregation = Aggregation.AVERAGE,
    ) -> None:
        """Add many values at once (e.g. one per agent). The array is copied, so the caller may reuse it."""
        arr = np.array(values, dtype=np.float64).reshape(-1)
        with self._lock:
            entry = self._entry(category, key, aggregation)
            if arr.size:
                entry.parts.append(arr)

    def set_stat(self, category: str, key: str, value: float) -> None:
        """Replace the value of ``key`` with ``value`` (MOST_RECENT aggregation)."""
        with self._lock:
            self._entry(category, key, Aggregation.MOST_RECENT).parts = [float(value)]

    def get_mean(self, category: str, key: str) -> float | None:
        """Mean of the values of ``key`` not yet written, or None when there are none."""
        with self._lock:
            entry = self._pending.get(category, {}).get(key)
            if entry is None or not entry.parts:
                return None
            return float(np.mean(entry.values()))

    def write_stats(self, category: str, step: int) -> dict[str, StatSummary]:
        """Summarise every key of ``category``, hand the summaries to every writer, clear the
        category and return the summaries."""
        with self._lock:
            keys = self._pending.pop(category, {})
            summaries = {
                key: StatSummary(entry.values(), entry.aggregation) for key, entry in keys.items() if entry.parts
            }
        self._each_writer(lambda w: w.write_stats(category, summaries, int(step)))
        return summaries

    def add_property(self, category: str, name: str, value: object) -> None:
        """Forward a property (e.g. ``HYPERPARAMETERS`` with the settings dict) to every writer."""
        self._each_writer(lambda w: w.add_property(category, name, value))

    def close(self) -> None:
        """Close every writer (once)."""
        if self._closed:
            return
        self._closed = True
        self._each_writer(lambda w: w.close())

    def _each_writer(self, call: Callable[[StatsWriter], None]) -> None:
        # Every writer gets its call even when an earlier one fails; the first failure is raised.
        error: BaseException | None = None
        for writer in self._writers:
            try:
                call(writer)
            except Exception as exc:
                if error is None:
                    error = exc
        if error is not None:
            raise error
