"""Network costs: training throughput with memory and visual encoders, and update time per minibatch per encoder.

Training: the real PPO training loop for a fixed number of agent steps (set-up excluded, timed by the
run's own timers) on 3DBall (shipped config, MLP), 3DBall with memory (same config plus
network_settings.memory sequence_length 16, memory_size 64) and GridWorld (shipped config) with
vis_encode_type simple and resnet, the camera upsampled (env_args scale) to each encoder's minimum.
Updates: one optimiser step of PPO's loss (ActorCritic + ppo_loss, Adam) on a minibatch of 256 rows
of real observations (GridWorld at each visual encoder's minimum side, Sorter's entities, 3DBall's
vector), with torch threads 1 and 2. Contenders are interleaved and repeated; medians and ranges.

    .venv/bin/python benchmarks/networks.py [--steps 60000] [--repeats 3] [--updates 30] [--only train|update]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config
from fledge.envs import registry
from fledge.envs.builtin.gridworld import scale_for_encoder
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.networks.encoders.visual import MIN_RESOLUTION
from fledge.trainers.ppo.losses import Minibatch, ppo_loss

BATCH = 256
MEMORY = {"sequence_length": 16, "memory_size": 64}
MEMORY_COST_GOAL = 2.5  # MLP rate / memory rate, at most
GRIDWORLD_SIMPLE_GOAL = 3000.0  # agent steps/s, at least


def training_options(contender: str, steps: int, results: Path) -> tuple[Any, str]:
    """Run options and behavior name for a training contender (3dball, 3dball-memory, gridworld-simple/-resnet)."""
    env = "GridWorld" if contender.startswith("gridworld") else "3DBall"
    raw = load_config_file(shipped_config(env))  # type: ignore[arg-type]
    behavior = raw["behaviors"][env]
    behavior["max_steps"] = steps
    behavior["summary_freq"] = 10**9  # no summaries: measure training only
    settings: dict[str, Any] = {"env_path": env, "seed": 7}
    if contender == "3dball-memory":
        behavior.setdefault("network_settings", {})["memory"] = dict(MEMORY)
    if env == "GridWorld":
        encoder = contender.split("-", 1)[1]
        behavior.setdefault("network_settings", {})["vis_encode_type"] = encoder
        settings["env_args"] = [f"scale={scale_for_encoder(encoder)}"]
    raw["checkpoint_settings"] = {"run_id": f"bench-{contender}", "results_dir": str(results), "force": True}
    raw["env_settings"] = settings
    return build_run_options(raw), env


def loop_seconds(timers: dict[str, Any]) -> float:
    """Seconds inside the training loop: environment, processing (with inference) and trainer (with updates)."""
    ch = timers["children"]
    return float(ch["env_step"]["total"] + ch["process_steps"]["total"] + ch["trainer_observe"]["total"])


def real_rows(env_name: str, rows: int, **env_args: Any) -> tuple[Any, np.ndarray, np.ndarray | None]:
    """(behavior spec, (rows, obs) flat observations, (rows, sum(branches)) bool masks or None) from random play."""
    env = registry.make(env_name, seed=3, **env_args)
    env.reset()
    name = next(iter(env.behavior_specs))
    spec = env.behavior_specs[name]
    obs_rows: list[np.ndarray] = []
    mask_rows: list[np.ndarray] = []
    rng = np.random.default_rng(0)
    while sum(len(o) for o in obs_rows) < rows:
        steps, _ = env.get_steps(name)
        n = len(steps)
        if n:
            obs_rows.append(np.concatenate([o.reshape(n, -1) for o in steps.obs], axis=1).astype(np.float32))
            if steps.action_mask is not None:
                mask_rows.append(~np.concatenate(steps.action_mask, axis=1))
            env.set_actions(name, spec.action_spec.random_action(n, rng))
        env.step()
    env.close()
    masks = np.concatenate(mask_rows)[:rows] if mask_rows else None
    return spec, np.concatenate(obs_rows)[:rows], masks


def update_contenders(goal_conditioning: str = "hyper") -> dict[str, Callable[[], tuple[ActorCritic, Minibatch]]]:
    """Encoder name -> builder of (model, minibatch of BATCH rows) at the minimum size it accepts."""

    def build(env_name: str, encoder: str, **env_args: Any) -> Callable[[], tuple[ActorCritic, Minibatch]]:
        def make() -> tuple[ActorCritic, Minibatch]:
            torch.manual_seed(0)
            spec, x, allowed = real_rows(env_name, BATCH, **env_args)
            shape = NetworkShape(
                hidden_units=128, num_layers=2, vis_encode_type=encoder, goal_conditioning_type=goal_conditioning
            )
            model = ActorCritic(
                action_spec=spec.action_spec, shape=shape, observation_specs=list(spec.observation_specs)
            )
            a = spec.action_spec
            g = torch.Generator().manual_seed(1)
            mb = Minibatch(
                x=torch.from_numpy(x),
                continuous=torch.randn(BATCH, a.continuous_size, generator=g) if a.continuous_size else None,
                discrete=(
                    torch.stack([torch.randint(0, b, (BATCH,), generator=g) for b in a.discrete_branches], 1)
                    if a.discrete_size
                    else None
                ),
                allowed=torch.from_numpy(allowed) if allowed is not None else None,
                old_log_prob=torch.randn(BATCH, generator=g),
                advantages=torch.randn(BATCH, generator=g),
                old_values=torch.randn(BATCH, 1, generator=g),
                returns=torch.randn(BATCH, 1, generator=g),
            )
            return model, mb

        return make

    out = {
        enc: build("GridWorld", enc, scale=scale_for_encoder(enc))
        for enc in ("simple", "nature_cnn", "resnet", "match3", "fully_connected")
    }
    out["entity (Sorter)"] = build("Sorter", "simple")
    out["mlp (3DBall)"] = build("3DBall", "simple")
    return out


def time_updates(make: Callable[[], tuple[ActorCritic, Minibatch]], updates: int, threads: int) -> tuple[int, float]:
    """(updates, seconds) of `updates` optimiser steps of PPO's loss after 3 untimed ones."""
    torch.set_num_threads(threads)
    model, mb = make()
    opt = torch.optim.Adam(model.parameters(), lr=3e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss, _, _ = ppo_loss(model, mb, epsilon=0.2, beta=5e-3)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    started = time.perf_counter()
    for _ in range(updates):
        step()
    return updates, time.perf_counter() - started


def summary(values: list[float], fmt: str) -> str:
    return f"median {statistics.median(values):{fmt}} (range {min(values):{fmt}} - {max(values):{fmt}}, {len(values)} runs)"


def run_training(steps: int, repeats: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Per contender: agent steps per second of loop (wall clock) and per CPU second of the whole run."""
    contenders = ["3dball", "3dball-memory", "gridworld-simple", "gridworld-resnet"]
    rates: dict[str, list[float]] = {c: [] for c in contenders}
    cpu_rates: dict[str, list[float]] = {c: [] for c in contenders}
    with tempfile.TemporaryDirectory() as tmp:
        options, _ = training_options("3dball", 500, Path(tmp))  # untimed: first-use costs (imports, kernels)
        api.run(options, torch_threads=1, display="none")
        for rep in range(repeats):
            for contender in contenders:
                started, cpu_started = time.perf_counter(), time.process_time()
                options, behavior = training_options(contender, steps, Path(tmp))
                result = api.run(options, torch_threads=1, display="none")
                wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
                loop = loop_seconds(result.timers)
                done = result.behaviors[behavior].steps
                rates[contender].append(done / loop)
                cpu_rates[contender].append(done / cpu)
                print(
                    f"run {rep + 1} {contender:<17}: {done} agent steps in {loop:.2f} s of loop "
                    f"({wall:.2f} s wall, {cpu:.2f} s CPU) -> {done / loop:,.0f} agent steps/s",
                    flush=True,
                )
    print(f"\nTraining throughput, PPO, 1 torch thread, {steps} agent steps per run")
    for contender in contenders:
        print(f"  {contender:<17} agent steps/s {summary(rates[contender], ',.0f')}")
    print("Agent steps per CPU second of the whole run (set-up included; steadier than wall clock on a busy machine)")
    for contender in contenders:
        print(f"  {contender:<17} {summary(cpu_rates[contender], ',.0f')}")
    return rates, cpu_rates


def run_updates(updates: int, repeats: int, threads: list[int], goal_conditioning: str) -> None:
    contenders = update_contenders(goal_conditioning)
    times: dict[tuple[str, int], list[float]] = {(c, t): [] for c in contenders for t in threads}
    before = torch.get_num_threads()
    try:
        for rep in range(repeats):
            for name, make in contenders.items():
                for t in threads:
                    n, secs = time_updates(make, updates, t)
                    times[name, t].append(1000 * secs / n)
                    print(f"run {rep + 1} {name:<16} threads={t}: {n} updates in {secs:.3f} s", flush=True)
    finally:
        torch.set_num_threads(before)
    print(
        f"\nUpdate time per minibatch of {BATCH} rows (ms; PPO loss + backward + Adam, 128 x 2 dense, GridWorld goal conditioning {goal_conditioning})"
    )
    for name in contenders:
        side = MIN_RESOLUTION.get(name)
        label = f"{name} (3x{5 * scale_for_encoder(name)}x{5 * scale_for_encoder(name)}, min {side})" if side else name
        for t in threads:
            print(f"  {label:<30} threads {t}: {summary(times[name, t], '.2f')} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60_000, help="agent steps per training run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--updates", type=int, default=30, help="timed optimiser steps per update run")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads for the update timing")
    parser.add_argument(
        "--goal-conditioning",
        choices=["hyper", "none"],
        default="hyper",
        help="goal_conditioning_type of the update networks (GridWorld has a goal observation; hyper is the default)",
    )
    parser.add_argument("--only", choices=["train", "update"], help="run one part only")
    args = parser.parse_args()
    logging.getLogger("fledge").setLevel(logging.WARNING)
    if args.only != "update":
        rates, cpu_rates = run_training(args.steps, args.repeats)
        mlp = statistics.median(rates["3dball"])
        mem = statistics.median(rates["3dball-memory"])
        grid = statistics.median(rates["gridworld-simple"])
        print("\nGoals")
        ok = "met" if mlp / mem <= MEMORY_COST_GOAL else "NOT met"
        print(f"  memory's step rate cost (MLP / memory): {mlp / mem:.2f} (goal <= {MEMORY_COST_GOAL}): {ok}")
        cpu_cost = statistics.median(cpu_rates["3dball"]) / statistics.median(cpu_rates["3dball-memory"])
        print(f"  the same in CPU seconds of the whole run: {cpu_cost:.2f}")
        ok = "met" if grid >= GRIDWORLD_SIMPLE_GOAL else "NOT met"
        print(f"  GridWorld simple agent steps/s: {grid:,.0f} (goal >= {GRIDWORLD_SIMPLE_GOAL:,.0f}): {ok}")
    if args.only != "train":
        print()
        run_updates(args.updates, args.repeats, args.threads, args.goal_conditioning)


if __name__ == "__main__":
    main()
