"""Hierarchical wall-clock timers owned by the run, written as ML-Agents' `run_logs/timers.json` tree.

`with timers.block("env_step"):` adds the elapsed time to the node `env_step` under whatever block is
open. Blocks are cached objects, so timing the hot path costs two perf_counter calls per block.
"""

from __future__ import annotations

import platform
import sys
import time
from typing import Any

TIMER_FORMAT_VERSION = "0.1.0"


class TimerNode:
    __slots__ = ("children", "count", "total")

    def __init__(self) -> None:
        self.total = 0.0
        self.count = 0
        self.children: dict[str, TimerNode] = {}

    def to_dict(self, name: str | None = None) -> dict[str, Any]:
        child_total = sum(c.total for c in self.children.values())
        out: dict[str, Any] = {}
        if name is not None:
            out["name"] = name
        out.update({"total": self.total, "count": self.count, "self": max(0.0, self.total - child_total)})
        if self.children:
            out["children"] = {k: c.to_dict() for k, c in self.children.items()}
        return out


class _Block:
    __slots__ = ("_node", "_start", "_timers")

    def __init__(self, timers: Timers, node: TimerNode) -> None:
        self._timers = timers
        self._node = node
        self._start = 0.0

    def __enter__(self) -> _Block:
        self._timers._stack.append(self._node)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self._node.total += time.perf_counter() - self._start
        self._node.count += 1
        self._timers._stack.pop()


class Timers:
    def __init__(self) -> None:
        self.root = TimerNode()
        self._stack: list[TimerNode] = [self.root]
        self._blocks: dict[tuple[int, str], _Block] = {}
        self._start = time.time()
        self.gauges: dict[str, dict[str, float]] = {}
        self.metadata: dict[str, str] = {}

    def block(self, name: str) -> _Block:
        parent = self._stack[-1]
        key = (id(parent), name)
        blk = self._blocks.get(key)
        if blk is None:
            node = parent.children.setdefault(name, TimerNode())
            blk = self._blocks[key] = _Block(self, node)
        return blk

    def set_gauge(self, name: str, value: float) -> None:
        g = self.gauges.get(name)
        if g is None:
            self.gauges[name] = {"value": value, "min": value, "max": value, "count": 1}
        else:
            g.update(value=value, min=min(g["min"], value), max=max(g["max"], value), count=g["count"] + 1)

    def to_dict(self) -> dict[str, Any]:
        self.root.total = time.time() - self._start
        self.root.count = 1
        meta = {
            "timer_format_version": TIMER_FORMAT_VERSION,
            "start_time_seconds": str(int(self._start)),
            "end_time_seconds": str(int(time.time())),
            "python_version": platform.python_version(),
            "command_line_arguments": " ".join(sys.argv),
            **self.metadata,
        }
        out = self.root.to_dict("root")
        return {
            "name": "root",
            "gauges": self.gauges,
            "metadata": meta,
            **{k: v for k, v in out.items() if k != "name"},
        }
