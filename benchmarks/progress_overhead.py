"""Cost of the live progress display: PPO 3DBall throughput with the display off, live and plain.

The live display is drawn as on a terminal (rich is told the output is one) into /dev/null, so its
full cost is measured. Runs are interleaved and repeated; medians and ranges are printed.

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

from ppo_throughput import options_for, parts  # noqa: E402

from fledge import api  # noqa: E402


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
