"""Multi-agent training throughput: SoccerTwos with POCA and with PPO self-play next to 3DBall PPO.

The real training loop (in-process, `fledge.api.run`, 1 torch thread) runs a fixed number of trainer
steps per run with the shipped configs (configs/poca/SoccerTwos.yaml, configs/ppo/SoccerTwos.yaml,
configs/ppo/3DBall.yaml; summaries off); contenders are interleaved and repeated, and each gets the
median and range of its agent steps/s over the loop's own timers (set-up excluded). Trainer steps are
what max_steps counts: in self-play only the learning team's agents, half of SoccerTwos' agents, so the
environment steps twice as many agents (shown apart). The goal ratio compares trainer steps/s: POCA
SoccerTwos at >= 40% of 3DBall PPO. A contender whose trainer this installation refuses (POCA before it
is merged) is reported as unavailable. Also prints SoccerTwos' raw environment rate with random actions.

    .venv/bin/python benchmarks/multiagent.py [--steps 60000] [--repeats 3] [--env-steps 3000]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config
from fledge.envs import registry
from fledge.errors import ConfigError

POCA_GOAL = 0.40  # POCA SoccerTwos trainer steps/s over 3DBall PPO's, at least
CONTENDERS = {  # name -> (environment, trainer folder, brain, agents the environment steps per trainer step)
    "3DBall PPO": ("3DBall", "ppo", "3DBall", 1.0),
    "SoccerTwos PPO self-play": ("SoccerTwos", "ppo", "SoccerTwos", 2.0),
    "SoccerTwos POCA self-play": ("SoccerTwos", "poca", "SoccerTwos", 2.0),
}


def options(contender: str, steps: int, results: Path) -> Any:
    env, trainer, brain, _ = CONTENDERS[contender]
    path = shipped_config(env, trainer)
    if path is None:
        raise ConfigError(f"no shipped config {trainer}/{env}.yaml")
    raw = load_config_file(path)
    behavior = raw["behaviors"][brain]
    behavior["max_steps"] = steps
    behavior["summary_freq"] = 10**9  # no summaries: measure training only
    behavior["checkpoint_interval"] = 10**9
    raw.setdefault("env_settings", {}).update(env_path=env, seed=7)
    slug = contender.lower().replace(" ", "-")
    raw["checkpoint_settings"] = {"run_id": f"bench-{slug}", "results_dir": str(results), "force": True}
    return build_run_options(raw)


def loop_seconds(timers: dict[str, Any]) -> float:
    """Seconds inside the training loop: environment, processing (with inference) and trainer (with updates)."""
    ch = timers["children"]
    return float(ch["env_step"]["total"] + ch["process_steps"]["total"] + ch["trainer_observe"]["total"])


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):>9,.0f} (range {min(values):,.0f} - {max(values):,.0f}, {len(values)} runs)"
    )


def env_rate(steps: int, num_areas: int) -> float:
    """SoccerTwos' agent steps/s with random actions (all four agents of every match), no learning."""
    env = registry.make("SoccerTwos", seed=0, num_areas=num_areas)
    rng = np.random.default_rng(0)
    env.reset()
    specs = dict(env.behavior_specs)
    agents = sum(len(env.get_steps(b)[0]) for b in specs)
    started = time.perf_counter()
    for _ in range(steps):
        for b, spec in specs.items():
            env.set_actions(b, spec.action_spec.random_action(len(env.get_steps(b)[0]), rng))
        env.step()
    secs = time.perf_counter() - started
    env.close()
    return agents * steps / secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60_000, help="trainer steps per training run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--env-steps", type=int, default=3000, help="decisions for the raw environment rate")
    args = parser.parse_args()
    logging.getLogger("fledge").setLevel(logging.ERROR)
    rates: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    unavailable: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for contender in CONTENDERS:
                if contender in unavailable:
                    continue
                started = time.perf_counter()
                try:
                    result = api.run(options(contender, args.steps, Path(tmp)), torch_threads=1, display="none")
                except ConfigError as exc:
                    unavailable[contender] = str(exc).splitlines()[0]
                    print(f"run {rep + 1} {contender:<26}: unavailable ({unavailable[contender]})", flush=True)
                    continue
                wall = time.perf_counter() - started
                loop = loop_seconds(result.timers)
                done = result.behaviors[CONTENDERS[contender][2]].steps
                rates[contender].append(done / loop)
                print(
                    f"run {rep + 1} {contender:<26}: {done} trainer steps in {loop:.2f} s of loop "
                    f"({wall:.2f} s wall) -> {done / loop:,.0f} trainer steps/s",
                    flush=True,
                )
    print(f"\nTraining throughput, 1 torch thread, {args.steps} trainer steps per run (interleaved)")
    for contender, (_, _, _, factor) in CONTENDERS.items():
        if contender in unavailable:
            print(f"  {contender:<26} unavailable: {unavailable[contender]}")
            continue
        env_side = statistics.median(rates[contender]) * factor
        print(f"  {contender:<26} trainer steps/s {summary(rates[contender])}; env agent steps/s {env_side:,.0f}")
    print("\nRatios to 3DBall PPO (trainer steps/s, medians)")
    base = statistics.median(rates["3DBall PPO"]) if rates["3DBall PPO"] else float("nan")
    for contender in ("SoccerTwos PPO self-play", "SoccerTwos POCA self-play"):
        if contender in unavailable or not rates[contender]:
            print(f"  {contender:<26} unavailable (goal for POCA: >= {POCA_GOAL:.0%})")
            continue
        ratio = statistics.median(rates[contender]) / base
        goal = (
            f" (goal >= {POCA_GOAL:.0%}: {'met' if ratio >= POCA_GOAL else 'NOT met'})" if "POCA" in contender else ""
        )
        print(f"  {contender:<26} {ratio:.0%}{goal}")
    env_rates = [env_rate(args.env_steps, 16) for _ in range(args.repeats)]
    print(f"\nSoccerTwos environment alone, 16 matches (64 agents), random actions: agent steps/s {summary(env_rates)}")


if __name__ == "__main__":
    main()
