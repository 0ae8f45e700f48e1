"""PPO training throughput on 3DBall with its default config: agent steps per second and where time goes.

Runs the real training loop (environment + inference + trajectory processing + updates) for a fixed
number of steps, several times, interleaving 1 and 2 torch threads, and prints medians and ranges.

    .venv/bin/python benchmarks/ppo_throughput.py [--steps 120000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
from pathlib import Path
from typing import Any

from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config


def options_for(steps: int, results: Path, run_id: str) -> Any:
    raw = load_config_file(shipped_config("3DBall"))  # type: ignore[arg-type]
    raw["behaviors"]["3DBall"]["max_steps"] = steps
    raw["behaviors"]["3DBall"]["summary_freq"] = 10**9  # no summaries: measure training only
    raw["checkpoint_settings"] = {"run_id": run_id, "results_dir": str(results), "force": True}
    raw["env_settings"] = {"seed": 7}
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
    parser.add_argument("--steps", type=int, default=120_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    logging.getLogger("fledge").setLevel(logging.WARNING)
    rates: dict[int, list[float]] = {t: [] for t in args.threads}
    shares: dict[int, list[dict[str, float]]] = {t: [] for t in args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for threads in args.threads:
                result = api.run(options_for(args.steps, Path(tmp), f"bench{threads}"), torch_threads=threads)
                split = parts(result.timers)
                loop = sum(split.values())
                steps = result.behaviors["3DBall"].steps
                rates[threads].append(steps / loop)
                shares[threads].append({k: v / loop for k, v in split.items()})
                print(f"run {rep + 1} threads={threads}: {steps} steps in {loop:.2f} s -> {steps / loop:,.0f} steps/s")
    print()
    print(f"PPO 3DBall default config (12 agents, batch 64, buffer 12000, 3 epochs, 128x2), {args.steps} steps/run")
    for threads in args.threads:
        r = rates[threads]
        print(
            f"  torch threads {threads}: median {statistics.median(r):,.0f} agent steps/s "
            f"(range {min(r):,.0f} - {max(r):,.0f}, {len(r)} runs)"
        )
        for key in shares[threads][0]:
            vals = [s[key] for s in shares[threads]]
            print(f"      {key:<30} {100 * statistics.median(vals):5.1f} %")


if __name__ == "__main__":
    main()
