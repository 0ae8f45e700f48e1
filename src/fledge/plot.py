"""`fledge plot RUN [RUN ...]`: training curves of runs in one image, from their run_logs CSVs.

Each run's `run_logs/<behavior>.csv` (the `Step` column and one column per stat) is read. One panel per
stat, drawn against steps, for the stats that at least one run has; by default:

    Environment/Cumulative Reward, Environment/Episode Length, Losses/Policy Loss, Losses/Value Loss

(`--stat COLUMN` picks others, e.g. "Policy/Entropy"). Every run (and behavior, when a run has several)
is one coloured line, named by run id (`run/behavior` for several behaviors) in the legend.

Seeds: runs whose ids differ only by a seed-like suffix are drawn as ONE group: a line of their mean and
a band from their minimum to their maximum. The suffix is a separator (`-`, `_` or `.`), optionally `s`
or `seed`, then digits, at the end of the id: `ppo-s1`, `ppo-s2`, `ppo_seed3`, `ppo-4` form the group
`ppo`; `ppo1` (no separator) does not. A group needs at least two runs; otherwise the run is drawn on
its own. `--group LABEL=RUN1,RUN2` makes an explicit group (repeatable); `--no-group` turns the
automatic grouping off. At each step the group's mean/min/max are over the runs that cover that step,
each run linearly interpolated between its own summaries (never extrapolated).

`--smooth K` replaces each value by the mean of the last K summaries of its run (K = 1: raw values),
before grouping. The image is fixed-size: 12 x 8 inches at 100 dpi, 1200 x 800 pixels for a PNG, drawn
with matplotlib's Agg canvas (no display needed, the pyplot state is not touched).
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import math
import re
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fledge.errors import ConfigError, RunFolderError

__all__ = [
    "DEFAULT_STATS",
    "FIGURE_DPI",
    "FIGURE_SIZE",
    "PlotResult",
    "add_plot_arguments",
    "group_runs",
    "plot_runs",
    "read_run_logs",
    "run_plot",
    "seed_stem",
    "smooth",
]

DEFAULT_STATS: tuple[str, ...] = (
    "Environment/Cumulative Reward",
    "Environment/Episode Length",
    "Losses/Policy Loss",
    "Losses/Value Loss",
)
_TITLES = {
    "Environment/Cumulative Reward": ("Cumulative reward", "mean episode return"),
    "Environment/Episode Length": ("Episode length", "decisions per episode"),
    "Losses/Policy Loss": ("Policy loss", "loss"),
    "Losses/Value Loss": ("Value loss", "loss"),
    "Policy/Entropy": ("Policy entropy", "entropy"),
    "Policy/Learning Rate": ("Learning rate", "learning rate"),
}
FIGURE_SIZE = (12.0, 8.0)  # inches
FIGURE_DPI = 100
OUTPUT_EXTENSIONS = (".png", ".svg", ".pdf")
SEED_SUFFIX = re.compile(r"^(?P<stem>.+?)[-_.](?:s|seed)?(?P<seed>\d+)$", re.IGNORECASE)
STEP_COLUMN = "Step"

Curve = tuple[np.ndarray, np.ndarray]  # steps, values (no NaN)


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def read_run_logs(run_dir: Path, behavior: str | None = None) -> dict[str, dict[str, Curve]]:
    """behavior -> stat column -> (steps, values) of a run; RunFolderError when it has no summaries."""
    run_dir = Path(run_dir)
    logs = run_dir / "run_logs"
    files = sorted(logs.glob("*.csv")) if logs.is_dir() else []
    if not files:
        raise RunFolderError(
            f"Run '{run_dir.name}' has no training summaries: no {logs}/<behavior>.csv (a run writes one row "
            "every summary_freq steps; train longer or lower summary_freq)."
        )
    if behavior is not None:
        files = [f for f in files if f.stem == behavior]
        if not files:
            known = ", ".join(sorted(f.stem for f in logs.glob("*.csv")))
            raise ConfigError(f"Run '{run_dir.name}' has no behavior '{behavior}' (behaviors: {known}).")
    out: dict[str, dict[str, Curve]] = {}
    for path in files:
        curves = _read_csv(path)
        if curves:
            out[path.stem] = curves
    if not out:
        raise RunFolderError(
            f"Run '{run_dir.name}' has no training summaries yet: {', '.join(str(f) for f in files)} "
            "hold no rows (a run writes one every summary_freq steps)."
        )
    return out


def _read_csv(path: Path) -> dict[str, Curve]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = [c for c in (reader.fieldnames or []) if c != STEP_COLUMN]
            if reader.fieldnames is None or STEP_COLUMN not in reader.fieldnames:
                raise RunFolderError(f"{path} has no '{STEP_COLUMN}' column; it is not a fledge/ML-Agents run log.")
            rows = list(reader)
    except OSError as exc:
        raise RunFolderError(f"{path} cannot be read: {exc}") from None
    if not rows:
        return {}
    steps = np.array([_number(r.get(STEP_COLUMN)) for r in rows], dtype=np.float64)
    curves: dict[str, Curve] = {}
    for column in columns:
        values = np.array([_number(r.get(column)) for r in rows], dtype=np.float64)
        keep = np.isfinite(values) & np.isfinite(steps)
        if keep.any():
            order = np.argsort(steps[keep], kind="stable")
            curves[column] = (steps[keep][order], values[keep][order])
    return curves


def _number(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


# ----------------------------------------------------------------------------------------------
# Grouping and smoothing
# ----------------------------------------------------------------------------------------------


def seed_stem(run_id: str) -> str:
    """The run id without its seed-like suffix ("ppo-s2" -> "ppo"); the id itself when it has none."""
    m = SEED_SUFFIX.match(run_id)
    return m.group("stem") if m else run_id


def group_runs(
    run_ids: Sequence[str], explicit: Mapping[str, Sequence[str]] | None = None, *, auto: bool = True
) -> list[tuple[str, list[str]]]:
    """(label, run ids) in order of first appearance: explicit groups, seed groups (>= 2 runs), single runs."""
    explicit = dict(explicit or {})
    grouped: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for label, members in explicit.items():
        for run in members:
            if run not in run_ids:
                raise ConfigError(
                    f"--group {label}: run '{run}' is not one of the runs to plot ({', '.join(run_ids)})."
                )
            if run in owner:
                raise ConfigError(f"Run '{run}' is in two groups: '{owner[run]}' and '{label}'.")
            owner[run] = label
    stems: dict[str, list[str]] = {}
    if auto:
        for run in run_ids:
            if run not in owner:
                stems.setdefault(seed_stem(run), []).append(run)
    order: list[str] = []
    for run in run_ids:
        if run in owner:
            label = owner[run]
        elif auto and run != seed_stem(run) and len(stems[seed_stem(run)]) >= 2:
            label = seed_stem(run)
            if label in explicit or label in run_ids:
                label = f"{label} (seeds)"
        else:
            label = run
        if label not in grouped:
            grouped[label] = []
            order.append(label)
        grouped[label].append(run)
    return [(label, grouped[label]) for label in order]


def smooth(values: np.ndarray, k: int) -> np.ndarray:
    """Trailing moving average over k points (fewer at the start); k <= 1 returns the values."""
    values = np.asarray(values, dtype=np.float64)
    if k <= 1 or len(values) < 2:
        return values
    c = np.cumsum(np.concatenate([[0.0], values]))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - k, 0)
    return (c[idx] - c[lo]) / (idx - lo)


def _band(curves: Sequence[Curve]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """steps, mean, min, max over curves, each interpolated on the union of steps within its own range."""
    steps = np.unique(np.concatenate([c[0] for c in curves]))
    table = np.full((len(curves), len(steps)), np.nan)
    for i, (s, v) in enumerate(curves):
        inside = (steps >= s[0]) & (steps <= s[-1])
        table[i, inside] = np.interp(steps[inside], s, v)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return steps, np.nanmean(table, axis=0), np.nanmin(table, axis=0), np.nanmax(table, axis=0)


# ----------------------------------------------------------------------------------------------
# Plotting
# ----------------------------------------------------------------------------------------------


@dataclass
class PlotResult:
    path: Path
    panels: list[str]  # the stat columns drawn, in order
    lines: list[str] = field(default_factory=list)  # legend labels
    groups: list[tuple[str, list[str]]] = field(default_factory=list)  # (label, run ids)
    size_px: tuple[int, int] = (0, 0)  # width, height


def _layout(n: int) -> tuple[int, int]:
    if n <= 1:
        return 1, 1
    if n == 2:
        return 1, 2
    cols = 2 if n <= 4 else 3
    return int(math.ceil(n / cols)), cols


def plot_runs(
    run_dirs: Sequence[str | Path],
    output: str | Path = "plot.png",
    *,
    smooth_k: int = 1,
    stats: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    auto_group: bool = True,
    behavior: str | None = None,
    title: str | None = None,
) -> PlotResult:
    """Draw the runs' curves into `output` (PNG, SVG or PDF) and return what was drawn."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import EngFormatter
    except ImportError as exc:
        raise ConfigError("fledge plot needs matplotlib: pip install 'matplotlib>=3.7,<4'.") from exc
    output = Path(output)
    if output.suffix.lower() not in OUTPUT_EXTENSIONS:
        raise ConfigError(f"--output {output}: use a .png (or .svg, .pdf) file name.")
    if smooth_k < 1:
        raise ConfigError(f"--smooth must be at least 1, got {smooth_k}.")
    dirs = [Path(d) for d in run_dirs]
    if not dirs:
        raise ConfigError("fledge plot needs at least one run.")
    ids = [d.name for d in dirs]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"A run is named twice: {', '.join(ids)}.")
    for d in dirs:
        if not d.is_dir():
            raise RunFolderError(f"No run folder at {d}.")
    logs = {d.name: read_run_logs(d, behavior) for d in dirs}
    wanted = list(stats) if stats else list(DEFAULT_STATS)
    present = [s for s in wanted if any(s in curves for run in logs.values() for curves in run.values())]
    if not present:
        available = sorted({c for run in logs.values() for curves in run.values() for c in curves})
        raise ConfigError(
            f"None of the stats {', '.join(wanted)} is in the runs' logs; available: {', '.join(available)}."
        )
    grouping = group_runs(ids, groups, auto=auto_group)
    behaviors = sorted({b for run in logs.values() for b in run})
    several = len(behaviors) > 1

    fig = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    rows, cols = _layout(len(present))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(present) :]:
        ax.set_visible(False)
    colors = [f"C{i % 10}" for i in range(64)]
    labels: list[str] = []
    line_no = 0
    for label, members in grouping:
        for b in behaviors:
            member_logs = [logs[r][b] for r in members if b in logs[r]]
            if not member_logs:
                continue
            name = f"{label}/{b}" if several else label
            if len(members) > 1:
                name += f" (mean, min-max of {len(member_logs)})"
            color = colors[line_no % len(colors)]
            line_no += 1
            labels.append(name)
            for ax, stat in zip(axes, present):
                curves = [(c[stat][0], smooth(c[stat][1], smooth_k)) for c in member_logs if stat in c]
                if not curves:
                    continue
                if len(members) == 1:
                    s, v = curves[0]
                    ax.plot(s, v, color=color, linewidth=1.8, marker="o" if len(s) == 1 else None, label=name)
                else:
                    s, mean, lo, hi = _band(curves)
                    ax.fill_between(s, lo, hi, color=color, alpha=0.2, linewidth=0)
                    ax.plot(s, mean, color=color, linewidth=1.8, marker="o" if len(s) == 1 else None, label=name)
    for ax, stat in zip(axes, present):
        panel_title, ylabel = _TITLES.get(stat, (stat, stat.rsplit("/", 1)[-1]))
        ax.set_title(panel_title, fontsize=12)
        ax.set_xlabel("steps")
        ax.set_ylabel(ylabel)
        ax.xaxis.set_major_formatter(EngFormatter(sep=""))
        ax.grid(True, alpha=0.3)
    handles, legend_labels = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, legend_labels, fontsize=9, loc="best", framealpha=0.8)
    smooth_note = f", smoothed over {smooth_k} summaries" if smooth_k > 1 else ""
    fig.suptitle(title or f"Training curves: {', '.join(ids)}{smooth_note}", fontsize=14)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=FIGURE_DPI)
    width, height = (int(round(v * FIGURE_DPI)) for v in FIGURE_SIZE)
    return PlotResult(path=output, panels=present, lines=labels, groups=grouping, size_px=(width, height))


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def add_plot_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of `fledge plot`."""
    parser.description = (
        "Plot training curves (cumulative reward, episode length, policy and value loss) of one or more runs "
        "into one image. Runs named like ppo-s1, ppo-s2 are drawn as one group: mean line and min-max band."
    )
    parser.add_argument(
        "run_ids",
        nargs="+",
        metavar="RUN",
        help="runs to plot (folders under --results-dir); shell-style patterns such as 'ppo-s*' work",
    )
    parser.add_argument("--results-dir", default="results", help="base folder of the runs (default: results)")
    parser.add_argument("--output", default="plot.png", help="image to write (default: plot.png; .png, .svg or .pdf)")
    parser.add_argument(
        "--smooth",
        type=int,
        default=1,
        metavar="K",
        help="moving average over the last K summaries of each run (default 1: none)",
    )
    parser.add_argument(
        "--group",
        action="append",
        default=[],
        metavar="LABEL=RUN1,RUN2",
        help="draw these runs as one group named LABEL (repeatable)",
    )
    parser.add_argument("--no-group", action="store_true", help="do not group runs by seed-like suffix")
    parser.add_argument(
        "--stat",
        action="append",
        default=None,
        metavar="COLUMN",
        help="a stat column to plot instead of the defaults (repeatable), e.g. 'Policy/Entropy'",
    )
    parser.add_argument("--behavior", default=None, help="only this behavior (default: every behavior)")
    parser.add_argument("--title", default=None, help="figure title")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def _expand_runs(results_dir: Path, patterns: Sequence[str]) -> list[str]:
    runs: list[str] = []
    existing = sorted(p.name for p in results_dir.iterdir() if p.is_dir()) if results_dir.is_dir() else []
    for pattern in patterns:
        if any(ch in pattern for ch in "*?["):
            matches = [r for r in existing if fnmatch.fnmatchcase(r, pattern)]
            if not matches:
                raise RunFolderError(
                    f"No run matches '{pattern}' in {results_dir} (runs: {', '.join(existing) or 'none'})."
                )
        else:
            if not (results_dir / pattern).is_dir():
                known = f"runs there: {', '.join(existing)}" if existing else "no runs there"
                raise RunFolderError(f"No run '{pattern}' in {results_dir} ({known}).")
            matches = [pattern]
        runs.extend(m for m in matches if m not in runs)
    return runs


def _parse_groups(specs: Sequence[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for spec in specs:
        label, sep, members = spec.partition("=")
        runs = [m.strip() for m in members.split(",") if m.strip()]
        if not sep or not label.strip() or not runs:
            raise ConfigError(f"--group {spec!r}: expected LABEL=RUN1,RUN2.")
        groups[label.strip()] = runs
    return groups


def run_plot(args: argparse.Namespace) -> int:
    """`fledge plot` with parsed arguments; prints where the image went."""
    results_dir = Path(args.results_dir)
    runs = _expand_runs(results_dir, args.run_ids)
    result = plot_runs(
        [results_dir / r for r in runs],
        args.output,
        smooth_k=args.smooth,
        stats=args.stat,
        groups=_parse_groups(args.group),
        auto_group=not args.no_group,
        behavior=args.behavior,
        title=args.title,
    )
    grouped = [f"{label} = {', '.join(members)}" for label, members in result.groups if len(members) > 1]
    print(f"Wrote {result.path} ({result.size_px[0]}x{result.size_px[1]} px): {', '.join(result.panels)}")
    if grouped:
        print(f"Groups (mean and min-max band): {'; '.join(grouped)}")
    return 0


def command(argv: Sequence[str]) -> int:
    """`fledge plot` on its arguments."""
    from fledge.console_setup import setup_logging

    args = add_plot_arguments(argparse.ArgumentParser(prog="fledge plot")).parse_args(list(argv))
    setup_logging(args.debug)
    return run_plot(args)


def main(argv: list[str] | None = None) -> int:
    """`python -m fledge.plot ...` is `fledge plot ...`."""
    from fledge.console_setup import run_command

    return run_command(command, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
