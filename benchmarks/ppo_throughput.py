"""PPO training throughput on 3DBall with its default config: agent steps per second and where time goes.

Runs the real training loop (environment + inference + trajectory processing + updates) for a fixed
number of agent steps, several times, interleaving the settings (training areas x torch threads), and
prints per run the steps and seconds, then per setting the median and range of agent steps/s.
Rates use the time inside the loop (set-up excluded); wall-clock seconds per run are shown too.

    .venv/bin/python benchmarks/ppo_throughput.py [--steps 120000] [--repeats 3] [--num-areas 1 4 16] [--threads 1]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config


def options_for(steps: int, results: Path, run_id: str, num_areas: int = 1) -> Any:
    raw = load_config_file(shipped_config("3DBall"))  # type: ignore[arg-type]
    raw["behaviors"]["3DBall"]["max_steps"] = steps
    raw["behaviors"]["3DBall"]["summary_freq"] = 10**9  # no summaries: measure training only
    raw["checkpoint_settings"] = {"run_id": run_id, "results_dir": str(results), "force": True}
    raw["env_settings"] = {"seed": 7, "num_areas": num_areas}
    return build_run_options(raw)


def parts(timers: dict[str, Any]) -> dict[str, float]:
    """Seconds in env stepping, inference, processing (without inference), trainer (without update), update."""
    ch = timers["children"]
    env = ch["env_step"]["total"]
    proc = ch["process_steps"]
    act = proc.get("children", {}).get("policy_act", {}).get("total", 0.0)
    obs = ch["trainer_observe"]
    upd = obs.get("children", {}).get("update_policy", {}).get("total", 0.0)
    return {
        "environment": env,
        "inference": act,
        "processing": proc["total"] - act,
        "trainer (GAE, buffer, stats)": obs["total"] - upd,
        "updates": upd,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=120_000, help="agent steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-areas", type=int, nargs="+", default=[1, 4, 16], help="3DBall areas of 12 agents")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="torch threads (e.g. 1 2)")
    args = parser.parse_args()
    logging.getLogger("fledge").setLevel(logging.WARNING)
    settings = [(areas, threads) for areas in args.num_areas for threads in args.threads]
    rates: dict[tuple[int, int], list[float]] = {s: [] for s in settings}
    counts: dict[tuple[int, int], list[tuple[int, float, float]]] = {s: [] for s in settings}
    shares: dict[tuple[int, int], list[dict[str, float]]] = {s: [] for s in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for areas, threads in settings:
                started = time.perf_counter()
                options = options_for(args.steps, Path(tmp), f"bench{areas}x{threads}", areas)
                result = api.run(options, torch_threads=threads, display="none")
                wall = time.perf_counter() - started
                split = parts(result.timers)
                loop = sum(split.values())
                steps = result.behaviors["3DBall"].steps
                rates[areas, threads].append(steps / loop)
                counts[areas, threads].append((steps, loop, wall))
                shares[areas, threads].append({k: v / loop for k, v in split.items()})
                print(
                    f"run {rep + 1} areas={areas} ({12 * areas} agents) threads={threads}: {steps} agent steps in "
                    f"{loop:.2f} s of loop ({wall:.2f} s wall) -> {steps / loop:,.0f} agent steps/s"
                )
    print()
    print(f"PPO 3DBall default config (batch 64, buffer 12000, 3 epochs, 128x2), {args.steps} agent steps/run")
    for areas, threads in settings:
        r = rates[areas, threads]
        c = counts[areas, threads]
        print(
            f"  {areas:>3} area(s) = {12 * areas:>3} agents, torch threads {threads}: "
            f"median {statistics.median(r):,.0f} agent steps/s (range {min(r):,.0f} - {max(r):,.0f}, {len(r)} runs; median "
            f"{statistics.median(x[0] for x in c):,.0f} steps in {statistics.median(x[1] for x in c):.2f} s of loop, "
            f"{statistics.median(x[2] for x in c):.2f} s wall)"
        )
        for key in shares[areas, threads][0]:
            vals = [s[key] for s in shares[areas, threads]]
            print(f"      {key:<30} {100 * statistics.median(vals):5.1f} %")


if __name__ == "__main__":
    main()
