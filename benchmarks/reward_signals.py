"""What each reward signal costs: PPO agent steps/s on 3DBall with extrinsic only, + curiosity, + RND, + GAIL.

The real training loop (in-process, `fledge.api.run`, 1 torch thread) runs a fixed number of agent steps
per run with the shipped 3DBall config (configs/ppo/3DBall.yaml; summaries and checkpoints off), the
signals added with ML-Agents' example strengths (curiosity 0.02, RND 0.01, GAIL 0.01 with use_actions).
GAIL's expert is 3DBall's scripted heuristic (envs/builtin/ball3d.py `heuristic`), rolled out here and
recorded as a .demo file. Contenders are interleaved and repeated; each gets the median and range of its
agent steps/s over the loop's own timers (wall clock, set-up excluded), and its ratio to extrinsic-only
measured in the same run. Goal: each added signal keeps >= 65% of it. On a machine shared with other work
the wall clock also counts the time other processes held the core, so each run also reports its
CPU-time rate: agent steps per second of the main thread's CPU time (`time.thread_time`) between the
first and the last environment step (the loop runs on that one thread), and the ratios of both.

    .venv/bin/python benchmarks/reward_signals.py [--steps 48000] [--repeats 3]

The shipped config updates every 12000 steps (buffer_size): a run of 12000 steps or fewer trains neither the
policy nor the signals, and each run says so. Each run prints where its learning time went (the signals'
rewards, the policy updates, the signals' training).
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
from fledge.envs.api import ActionTuple
from fledge.envs.builtin.ball3d import heuristic
from fledge.errors import ConfigError

GOAL = 0.65  # agent steps/s with a signal over extrinsic-only, at least
ENV = "3DBall"
SEED = 7
EXTRINSIC = {"extrinsic": {"gamma": 0.99, "strength": 1.0}}
BLOCKS = {"reward_signals": "rewards", "update_policy": "policy update", "update_reward_signals": "signal training"}
CONTENDERS: dict[str, dict[str, Any]] = {
    "extrinsic": {},
    "+ curiosity": {"curiosity": {"gamma": 0.99, "strength": 0.02, "network_settings": {"hidden_units": 128}}},
    "+ rnd": {"rnd": {"gamma": 0.99, "strength": 0.01, "network_settings": {"hidden_units": 64}}},
    "+ gail": {"gail": {"gamma": 0.99, "strength": 0.01, "use_actions": True, "demo_path": "<expert>"}},
}


def record_expert(path: Path, decisions: int) -> Path:
    """A .demo file of 3DBall's heuristic: `decisions` steps of its 12 agents (GAIL's expert)."""
    from fledge.imitation.demo_writer import DemoWriter

    env = registry.make(ENV, seed=3)
    env.reset()
    writer = DemoWriter(path, ENV, env.behavior_specs[ENV])
    for _ in range(decisions):
        decision, terminal = env.get_steps(ENV)
        writer.terminal(terminal)
        action = ActionTuple(continuous=heuristic(decision.obs[0]).astype(np.float32))
        writer.decided(decision, action)
        env.set_actions(ENV, action)
        env.step()
    env.close()
    writer.close()
    return path


def options(contender: str, steps: int, results: Path, demo: Path) -> Any:
    path = shipped_config(ENV, "ppo")
    if path is None:
        raise ConfigError(f"no shipped config ppo/{ENV}.yaml")
    raw = load_config_file(path)
    behavior = raw["behaviors"][ENV]
    behavior["max_steps"] = steps
    behavior["summary_freq"] = 10**9
    behavior["checkpoint_interval"] = 10**9
    signals = {**EXTRINSIC, **CONTENDERS[contender]}
    if "gail" in signals:
        signals["gail"] = {**signals["gail"], "demo_path": str(demo)}
    behavior["reward_signals"] = signals
    raw.setdefault("env_settings", {}).update(env_path=ENV, seed=SEED)
    slug = contender.strip("+ ").replace(" ", "-")
    raw["checkpoint_settings"] = {"run_id": f"bench-{slug}", "results_dir": str(results), "force": True}
    return build_run_options(raw)


class CpuClock:
    """Times a run's loop on the main thread's CPU clock: from the start of the environment's first step to
    the end of its last (the loop steps, acts and learns in between)."""

    def __init__(self, env: Any) -> None:
        self.first: float | None = None
        self.last = 0.0
        self._step = env.step
        env.step = self.step

    def step(self) -> None:
        now = time.thread_time()
        if self.first is None:
            self.first = now
        self._step()
        self.last = time.thread_time()

    @property
    def seconds(self) -> float:
        return self.last - (self.first if self.first is not None else self.last)


def loop_seconds(timers: dict[str, Any]) -> float:
    ch = timers["children"]
    return float(ch["env_step"]["total"] + ch["process_steps"]["total"] + ch["trainer_observe"]["total"])


def breakdown(timers: dict[str, Any]) -> str:
    """Where a run's learning time went: signal rewards (per trajectory), policy updates, signal training."""
    blocks = timers["children"]["trainer_observe"].get("children", {})
    parts = [f"{label} {blocks[key]['total']:.2f} s" for key, label in BLOCKS.items() if key in blocks]
    if "update_policy" not in blocks:
        parts.append("NO UPDATE RAN: --steps must exceed the config's buffer_size")
    return ", ".join(parts)


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):>8,.0f} (range {min(values):,.0f} - {max(values):,.0f}, {len(values)} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=48_000, help="agent steps per training run")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("fledge").setLevel(logging.ERROR)
    rates: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    cpu_rates: dict[str, list[float]] = {c: [] for c in CONTENDERS}
    with tempfile.TemporaryDirectory() as tmp:
        demo = record_expert(Path(tmp) / "expert.demo", 400)
        for rep in range(args.repeats):
            for contender in CONTENDERS:
                run_options = options(contender, args.steps, Path(tmp), demo)
                started = time.perf_counter()
                env = api.make_environment(run_options, SEED)
                clock = CpuClock(env)
                try:
                    result = api.run(run_options, env=env, torch_threads=1, display="none")
                finally:
                    env.close()
                wall = time.perf_counter() - started
                loop = loop_seconds(result.timers)
                done = result.behaviors[ENV].steps
                rates[contender].append(done / loop)
                cpu_rates[contender].append(done / clock.seconds)
                print(
                    f"run {rep + 1} {contender:<12}: {done} agent steps in {loop:.2f} s of loop ({wall:.2f} s wall, "
                    f"{clock.seconds:.2f} s CPU) -> {done / loop:,.0f} agent steps/s ({done / clock.seconds:,.0f} "
                    f"per CPU s); {breakdown(result.timers)}",
                    flush=True,
                )
    print(f"\nPPO {ENV} training throughput, 1 torch thread, {args.steps} agent steps per run (interleaved)")
    for label, table in (("agent steps/s", rates), ("per CPU s", cpu_rates)):
        for contender in CONTENDERS:
            print(f"  {contender:<12} {label:<14}{summary(table[contender])}")
    print(f"\nRatios to extrinsic only (medians; goal >= {GOAL:.0%})")
    for contender in list(CONTENDERS)[1:]:
        ratio = statistics.median(rates[contender]) / statistics.median(rates["extrinsic"])
        cpu = statistics.median(cpu_rates[contender]) / statistics.median(cpu_rates["extrinsic"])
        print(
            f"  {contender:<12} {ratio:.0%} ({'met' if ratio >= GOAL else 'NOT met'}); "
            f"CPU time {cpu:.0%} ({'met' if cpu >= GOAL else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
