"""What a sweep writes when its trials are done: a table on the console, summary.csv, summary.json and
final_rewards.png (the final mean reward of every trial, one column of dots per point of the space)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from fledge.files import atomic_write, atomic_write_text

COLUMNS = ("trial", "point", "run_id", "seed", "behavior", "final_reward", "step", "status", "elapsed_s", "node")


@dataclass(frozen=True)
class TrialRow:
    """One behavior of one finished (or failed) trial."""

    trial: int  # index of the point of the space
    point: str  # 'learning_rate=0.001 ...'
    run_id: str
    seed: int
    behavior: str  # '' when the trial wrote no summaries
    final_reward: float  # the last Environment/Cumulative Reward summary; NaN when there is none
    step: int
    status: str  # 'ok', or what went wrong
    elapsed_s: float
    node: str  # the Ray node the trial ran on


def _shown(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def render_table(rows: Sequence[TrialRow]) -> str:
    """A plain text table, one line per row, and one line per point with the mean over its seeds."""
    head = f"{'trial':>5}  {'run id':<16} {'seed':>4}  {'behavior':<14} {'final reward':>12} {'step':>8}  {'status':<8} point"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.trial:>5}  {r.run_id:<16} {r.seed:>4}  {r.behavior:<14} {_shown(r.final_reward):>12} {r.step:>8}  "
            f"{r.status:<8} {r.point}"
        )
    lines.append("")
    lines.append("mean over seeds per point:")
    for (trial, point, behavior), values in _by_point(rows).items():
        finite = [v for v in values if not math.isnan(v)]
        mean = sum(finite) / len(finite) if finite else math.nan
        spread = f" (min {min(finite):.3f}, max {max(finite):.3f})" if finite else ""
        lines.append(f"  trial {trial} {behavior}: {_shown(mean)} over {len(finite)} seed(s){spread}  {point}")
    return "\n".join(lines)


def _by_point(rows: Sequence[TrialRow]) -> dict[tuple[int, str, str], list[float]]:
    out: dict[tuple[int, str, str], list[float]] = {}
    for r in rows:
        out.setdefault((r.trial, r.point, r.behavior), []).append(r.final_reward)
    return out


def write_summary(folder: Path, rows: Sequence[TrialRow]) -> list[Path]:
    """summary.csv, summary.json and final_rewards.png in the sweep's folder (each written atomically)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(COLUMNS))
    writer.writeheader()
    for r in rows:
        writer.writerow(asdict(r))
    paths = [atomic_write_text(folder / "summary.csv", text.getvalue())]
    records = [{**asdict(r), "final_reward": None if math.isnan(r.final_reward) else r.final_reward} for r in rows]
    paths.append(atomic_write_text(folder / "summary.json", json.dumps({"trials": records}, indent=2) + "\n"))
    paths.append(plot_final_rewards(folder / "final_rewards.png", rows))
    return paths


def plot_final_rewards(path: Path, rows: Sequence[TrialRow]) -> Path:
    """One dot per trial (seed) at its point, the mean of the point as a bar; drawn with Agg, no display."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = _by_point(rows)
    figure = Figure(figsize=(max(6.0, 1.2 * len(groups) + 2.0), 5.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    labels = []
    for x, ((trial, point, behavior), values) in enumerate(groups.items()):
        finite = [v for v in values if not math.isnan(v)]
        if finite:
            axes.bar(x, sum(finite) / len(finite), width=0.6, alpha=0.35, color="tab:blue")
            axes.scatter([x] * len(finite), finite, color="tab:blue", zorder=3, s=18)
        label = f"{trial}: {point}" if len(point) < 40 else f"{trial}: {point[:37]}..."
        labels.append(label if behavior in ("", rows[0].behavior) else f"{label}\n{behavior}")
    axes.set_xticks(range(len(labels)))
    axes.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
    axes.set_ylabel("final mean reward (last summary)")
    axes.set_title("Final mean reward per point (dots: seeds, bars: mean)")
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return atomic_write(path, lambda f: figure.savefig(f, format="png"))
