"""Live progress of a run: per behavior steps and share of max_steps, steps per second, reward, ETA.

On a terminal it is a rich progress display redrawn twice a second; otherwise (CI, files) a plain
line every `plain_interval_s` seconds through the "fledge" logger; `mode="none"` shows nothing. The
per-step call (`update`) only stores numbers and reads the clock; the display is refreshed when
enough time has passed, so it costs nothing measurable (benchmarks/progress_overhead.py).
"""

from __future__ import annotations

import logging
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

log = logging.getLogger("fledge")

DisplayMode = Literal["auto", "live", "plain", "none"]


@dataclass
class _Behavior:
    max_steps: int
    start_step: int
    step: int
    started: float
    returns: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    task: Any = None


def format_eta(seconds: float) -> str:
    if not np.isfinite(seconds) or seconds < 0:
        return "--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressDisplay:
    def __init__(
        self,
        *,
        mode: DisplayMode = "auto",
        plain_interval_s: float = 30.0,
        live_interval_s: float = 0.5,
        console: Any = None,
    ) -> None:
        if mode == "auto":
            mode = "live" if sys.stdout.isatty() else "plain"
        self.mode = mode
        self.interval = live_interval_s if mode == "live" else plain_interval_s
        self.behaviors: dict[str, _Behavior] = {}
        self._next = time.monotonic() + self.interval
        self._rich: Any = None
        self._console = console
        self._swapped: list[tuple[logging.StreamHandler[Any], Any]] = []
        self._stdout_before: Any = sys.stdout

    # -- feeding ----------------------------------------------------------------------------------
    def add(self, name: str, *, max_steps: int, step: int = 0) -> None:
        if self.mode == "none":
            return
        b = _Behavior(max_steps=max(1, int(max_steps)), start_step=int(step), step=int(step), started=time.monotonic())
        self.behaviors[name] = b
        if self.mode == "live":
            self._stdout_before = sys.stdout
            self._ensure_rich()
            b.task = self._rich.add_task(name, total=b.max_steps, completed=b.step, rate="", reward="", eta="")

    def update(self, name: str, step: int, returns: np.ndarray | None = None) -> None:
        if self.mode == "none":
            return
        b = self.behaviors.get(name)
        if b is None:
            return
        b.step = step
        if returns is not None and len(returns):
            b.returns.extend(returns.tolist())
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.interval
            self.refresh(now)

    # -- showing ----------------------------------------------------------------------------------
    def figures(self, name: str, now: float | None = None) -> dict[str, Any]:
        b = self.behaviors[name]
        now = time.monotonic() if now is None else now
        elapsed = max(now - b.started, 1e-9)
        rate = (b.step - b.start_step) / elapsed
        left = max(b.max_steps - b.step, 0)
        rewards = np.array(b.returns) if b.returns else None
        return {
            "step": b.step,
            "max_steps": b.max_steps,
            "fraction": min(b.step / b.max_steps, 1.0),
            "rate": rate,
            "mean": float(rewards.mean()) if rewards is not None else None,
            "std": float(rewards.std()) if rewards is not None else None,
            "eta": left / rate if rate > 0 else float("inf"),
        }

    def plain_line(self, name: str, now: float | None = None) -> str:
        f = self.figures(name, now)
        reward = (
            "no episode yet" if f["mean"] is None else f"reward {f['mean']:.3f} ± {f['std']:.3f} (last 100 episodes)"
        )
        return (
            f"{name}: {f['step']:,}/{f['max_steps']:,} steps ({100 * f['fraction']:.1f}%), {f['rate']:,.0f} steps/s, "
            f"{reward}, ETA {format_eta(f['eta'])}"
        )

    def refresh(self, now: float | None = None) -> None:
        if self.mode == "plain":
            for name in self.behaviors:
                log.info("%s", self.plain_line(name, now))
        elif self.mode == "live" and self._rich is not None:
            for name, b in self.behaviors.items():
                f = self.figures(name, now)
                reward = "" if f["mean"] is None else f"{f['mean']:.2f} ± {f['std']:.2f}"
                self._rich.update(
                    b.task,
                    completed=min(b.step, b.max_steps),
                    rate=f"{f['rate']:,.0f}/s",
                    reward=reward,
                    eta=format_eta(f["eta"]),
                )

    def close(self) -> None:
        if self._rich is not None:
            self.refresh()
            self._rich.stop()
            self._rich = None
            for handler, stream in self._swapped:
                handler.setStream(stream)

    def _ensure_rich(self) -> None:
        if self._rich is not None:
            return
        from rich.progress import BarColumn, Progress, TextColumn

        self._rich = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TextColumn("{task.completed:,}/{task.total:,} steps"),
            TextColumn("{task.fields[rate]}"),
            TextColumn("reward {task.fields[reward]}"),
            TextColumn("ETA {task.fields[eta]}"),
            console=self._console,
            auto_refresh=True,
            refresh_per_second=2,
            redirect_stdout=True,
            redirect_stderr=True,
        )
        self._rich.start()
        # log lines must go through rich's redirected stdout to appear above the bars
        self._swapped = []
        for handler in log.handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.__stdout__, self._stdout_before):
                self._swapped.append((handler, handler.setStream(sys.stdout)))
