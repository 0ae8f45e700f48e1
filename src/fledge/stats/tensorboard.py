"""TensorBoard writer: one event file per category in ``<base_dir>/<category>/``, tags as ML-Agents.

tensorboard is imported lazily (first write), so importing ``fledge.stats`` stays fast.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fledge.stats.reporter import Aggregation, StatSummary, StatsWriter

HIDDEN_KEYS: frozenset[str] = frozenset({"Is Training", "Step"})
_HIST_BINS = 30


def settings_markdown(value: object, depth: int = 0) -> str:
    """A nested mapping as a markdown bullet list (what the TensorBoard text plugin shows)."""
    if hasattr(value, "model_dump"):
        value = value.model_dump()
    if not isinstance(value, Mapping):
        return str(value)
    lines: list[str] = []
    for key, item in value.items():
        if hasattr(item, "model_dump"):
            item = item.model_dump()
        indent = "  " * depth
        if isinstance(item, Mapping) and item:
            lines.append(f"{indent}- **{key}**:")
            lines.append(settings_markdown(item, depth + 1))
        else:
            lines.append(f"{indent}- **{key}**: `{item}`")
    return "\n".join(lines)


def _check_category(category: str) -> None:
    if not category or category in (".", "..") or "/" in category or "\\" in category or "\0" in category:
        raise ValueError(f"Stats category {category!r} cannot be used as a folder name.")


class TensorboardWriter(StatsWriter):
    """Writes scalars (``StatSummary.scalar``), ``<key>_hist`` histograms for HISTOGRAM keys and
    text properties; flushes after each call.

    ``clear_past_data`` deletes old ``events.out.tfevents*`` files of a category folder when the
    category is first used (for ``--force``; never on resume).
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        clear_past_data: bool = False,
        hidden_keys: frozenset[str] = HIDDEN_KEYS,
    ) -> None:
        self._base_dir = Path(base_dir)
        self._clear_past_data = clear_past_data
        self._hidden_keys = frozenset(hidden_keys)
        self._writers: dict[str, Any] = {}

    def _writer(self, category: str) -> Any:
        writer = self._writers.get(category)
        if writer is None:
            _check_category(category)
            from tensorboard.summary.writer.event_file_writer import EventFileWriter

            folder = self._base_dir / category
            folder.mkdir(parents=True, exist_ok=True)
            if self._clear_past_data:
                for old in folder.glob("events.out.tfevents*"):
                    old.unlink()
            writer = self._writers[category] = EventFileWriter(str(folder))
        return writer

    def _emit(self, category: str, values: list[Any], step: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        writer = self._writer(category)
        writer.add_event(Event(wall_time=time.time(), step=int(step), summary=Summary(value=values)))
        writer.flush()

    def write_stats(self, category: str, summaries: Mapping[str, StatSummary], step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        values: list[Any] = []
        for key, summary in summaries.items():
            if key in self._hidden_keys or not summary.count:
                continue
            values.append(Summary.Value(tag=key, simple_value=summary.scalar))
            if summary.aggregation == Aggregation.HISTOGRAM:
                histo = _histogram(summary.values)
                if histo is not None:
                    values.append(Summary.Value(tag=f"{key}_hist", histo=histo))
        if values:
            self._emit(category, values, step)

    def add_property(self, category: str, name: str, value: object) -> None:
        """Any property is written as text under the tag ``name`` (e.g. ``Hyperparameters``)."""
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.compat.proto.tensor_pb2 import TensorProto
        from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
        from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData

        text = value if isinstance(value, str) else settings_markdown(value)
        metadata = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(
                plugin_name="text", content=TextPluginData(version=0).SerializeToString()
            )
        )
        tensor = TensorProto(
            dtype="DT_STRING",
            string_val=[text.encode("utf-8")],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        self._emit(category, [Summary.Value(tag=name, metadata=metadata, tensor=tensor)], 0)

    def close(self) -> None:
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()


def _histogram(values: np.ndarray) -> Any:
    from tensorboard.compat.proto.summary_pb2 import HistogramProto

    finite = values[np.isfinite(values)]
    if not finite.size:
        return None
    counts, edges = np.histogram(finite, bins=min(_HIST_BINS, finite.size))
    # TensorBoard reads bucket i as (bucket_limit[i-1], bucket_limit[i]]; a leading empty bucket
    # whose limit is the lowest edge keeps the minimum visible.
    return HistogramProto(
        min=float(finite.min()),
        max=float(finite.max()),
        num=float(finite.size),
        sum=float(finite.sum()),
        sum_squares=float(np.dot(finite, finite)),
        bucket_limit=edges.tolist(),
        bucket=[0.0, *counts.astype(np.float64).tolist()],
    )
