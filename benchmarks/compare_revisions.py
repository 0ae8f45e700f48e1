"""PPO throughput and SAC updates/s of this tree against another git revision, interleaved in one run.

Each contender runs its OWN copy of `benchmarks/ppo_throughput.py` and `benchmarks/sac_updates.py`
(the base revision is checked out into a temporary git worktree, removed afterwards) in a fresh
Python process with its own `src/` first on the path, so that both sides measure exactly what their
code does. Runs alternate between the two trees and the side that goes first alternates per round;
the figures are per-run agent steps/s (loop time, set-up excluded; wall-clock too) and the SAC
side's updates/s median, summarised as medians, ranges and the ratio this tree / base.

    .venv/bin/python benchmarks/compare_revisions.py --base REV [--rounds 3] [--ppo-steps 60000] [--sac-updates 200]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PPO_RUN = re.compile(r"(\d+) agent steps in ([\d.]+) s of loop \(([\d.]+) s wall\)")
SAC_FLEDGE = re.compile(r"^\s+fledge\s+([\d.]+)\s+\[", re.MULTILINE)


def run_script(tree: Path, script: str, args: list[str]) -> str:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    done = subprocess.run(
        [sys.executable, str(tree / "benchmarks" / script), *args],
        env=env,
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{script} failed in {tree}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def ppo_rate(tree: Path, steps: int, areas: int) -> tuple[float, float]:
    """(agent steps/s of loop time, agent steps/s of wall time) of one PPO training run."""
    out = run_script(tree, "ppo_throughput.py", ["--steps", str(steps), "--repeats", "1", "--num-areas", str(areas)])
    m = PPO_RUN.search(out)
    if m is None:
        raise SystemExit(f"no run line in ppo_throughput.py output of {tree}:\n{out}")
    n, loop, wall = int(m.group(1)), float(m.group(2)), float(m.group(3))
    return n / loop, n / wall


def sac_rate(tree: Path, updates: int) -> float:
    """Median SAC updates/s (1 torch thread) of one sac_updates.py process."""
    args = ["--updates", str(updates), "--repeats", "3", "--threads", "1", "--rows", "20000"]
    out = run_script(tree, "sac_updates.py", args)
    m = SAC_FLEDGE.search(out)
    if m is None:
        raise SystemExit(f"no fledge line in sac_updates.py output of {tree}:\n{out}")
    return float(m.group(1))


def summary(name: str, ours: list[float], base: list[float]) -> str:
    ratios = [a / b for a, b in zip(ours, base)]
    return (
        f"  {name:<30} this tree {statistics.median(ours):>10,.0f} [{min(ours):,.0f} .. {max(ours):,.0f}]   "
        f"base {statistics.median(base):>10,.0f} [{min(base):,.0f} .. {max(base):,.0f}]   "
        f"ratio {statistics.median(ratios):.3f} [{min(ratios):.3f} .. {max(ratios):.3f}]"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against (e.g. a commit or tag)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ppo-steps", type=int, default=60_000)
    parser.add_argument("--areas", type=int, default=1, help="3DBall training areas for the PPO runs")
    parser.add_argument("--sac-updates", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", str(base), args.base], check=True)
        try:
            trees = {"this tree": HERE, "base": base}
            figures: dict[str, dict[str, list[float]]] = {k: {"loop": [], "wall": [], "sac": []} for k in trees}
            for r in range(args.rounds):
                order = list(trees) if r % 2 == 0 else list(reversed(trees))
                for who in order:
                    loop, wall = ppo_rate(trees[who], args.ppo_steps, args.areas)
                    figures[who]["loop"].append(loop)
                    figures[who]["wall"].append(wall)
                    print(
                        f"round {r + 1} {who:<10} PPO {loop:,.0f} agent steps/s (loop), {wall:,.0f} (wall)", flush=True
                    )
                for who in order:
                    sac = sac_rate(trees[who], args.sac_updates)
                    figures[who]["sac"].append(sac)
                    print(f"round {r + 1} {who:<10} SAC {sac:,.1f} updates/s", flush=True)
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(base)], check=False)
    ours, theirs = figures["this tree"], figures["base"]
    print(f"\nthis tree vs {args.base}: {args.rounds} interleaved rounds, median [min .. max]")
    print(summary(f"PPO 3DBall steps/s (loop, {args.areas} area)", ours["loop"], theirs["loop"]))
    print(summary("PPO 3DBall steps/s (wall)", ours["wall"], theirs["wall"]))
    print(summary("SAC updates/s (1 thread)", ours["sac"], theirs["sac"]))


if __name__ == "__main__":
    main()
