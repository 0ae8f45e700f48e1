"""Cost of the live progress display: PPO 3DBall throughput with the display off, live and plain.

Two measurements:
1. direct: the time of the per-step `update()` calls and of one redraw of the live display (rich
   drawing into a terminal-like buffer), scaled to the training loop's own rates (steps per second,
   2 redraws per second): the display's share of training time, free of machine noise;
2. end to end: throughput with the display off, live (drawn as on a terminal into /dev/null) and
   plain, runs interleaved and repeated; on a shared machine this is noisier than the effect.

    .venv/bin/python benchmarks/progress_overhead.py [--steps 60000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TTY_COMPATIBLE", "1")  # rich draws as on a terminal
sys.path.insert(0, str(Path(__file__).parent))

from fledge import api
from ppo_throughput import options_for, parts


def direct_cost(steps_per_second: float) -> tuple[float, float, float]:
    """(update() seconds per call, seconds per redraw, share of training time) for one behavior."""
    import io
    import time

    import numpy as np
    from rich.console import Console

    from fledge.stats.progress import ProgressDisplay

    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    display = ProgressDisplay(mode="live", console=console)
    display.add("3DBall", max_steps=500_000)
    returns = np.array([1.0, 2.0])
    n = 200_000
    start = time.perf_counter()
    for i in range(n):
        display.update("3DBall", i, returns if i % 100 == 0 else None)
    per_update = (time.perf_counter() - start) / n
    redraws = 200
    start = time.perf_counter()
    for _ in range(redraws):
        display.refresh()
        display._rich.refresh()
    per_redraw = (time.perf_counter() - start) / redraws
    display.close()
    decisions_per_second = steps_per_second / 12  # update() runs once per environment step of 12 agents
    share = per_update * decisions_per_second + per_redraw * 2.0
    return per_update, per_redraw, share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("fledge").setLevel(logging.WARNING)
    modes = ["none", "live", "plain"]
    rates: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as sink:
        for rep in range(args.repeats):
            for mode in modes:
                with contextlib.redirect_stdout(sink):
                    result = api.run(options_for(args.steps, Path(tmp), f"p{mode}"), display=mode)
                split = parts(result.timers)
                rates[mode].append(result.behaviors["3DBall"].steps / sum(split.values()))
                print(f"run {rep + 1} display={mode}: {rates[mode][-1]:,.0f} steps/s", file=sys.stderr)
    base = statistics.median(rates["none"])
    per_update, per_redraw, share = direct_cost(base)
    print("direct measurement (live display):")
    print(
        f"  update() per environment step: {per_update * 1e6:.2f} us; one redraw: {per_redraw * 1e3:.2f} ms (2 per second)"
    )
    print(f"  share of training time at {base:,.0f} steps/s: {100 * share:.3f} %")
    print(f"PPO 3DBall, {args.steps} steps per run, {args.repeats} runs per display mode (interleaved)")
    for mode in modes:
        r = rates[mode]
        med = statistics.median(r)
        print(
            f"  display={mode:<5} median {med:,.0f} steps/s (range {min(r):,.0f} - {max(r):,.0f}); "
            f"cost vs none: {100 * (1 - med / base):+.2f} %"
        )


if __name__ == "__main__":
    main()
