"""Agent steps/s of 1, 2 and 4 Ray environment workers against 1, 2 and 4 worker processes.

Two kinds of Ray workers are measured: "ray", the default, whose steps go over a direct connection to
each actor (no Ray call per step), and "ray-calls", one Ray actor call per step and copy (the path a
copy falls back to where the trainer cannot reach its actor's port).

The environment is built-in 3DBall (12 agents per copy) made slow on purpose: every step of every copy
sleeps `--delay-ms` (2 ms by default) in the worker, after the real step (`EnvPool(step_delay_s=...)`,
which the worker processes and the Ray actors both honour). A slow simulation waits, so its copies
overlap even on a 2-core machine. The loop is a pool's lockstep rollout with the heuristic policy
(what the trainer would add is the same for every kind); every pool is started first, then the settings
are measured interleaved (each repeat runs every setting once, in turn), and medians and ranges over
the repeats are printed, with the speed-up over one worker of the same kind (the ratio of the medians,
and the range of the ratios within each repeat) and the CPU per lockstep
step of this process (the trainer's side) and of the workers' processes together (from /proc).

Where Ray's overhead sits: the same loop with no delay gives the round trip of one lockstep step per
kind (sending the actions, the worker's step, the steps coming back), next to the environment's own
step time in this process; their difference is the transport (pipe + raw arrays for processes; a TCP
connection + raw arrays for "ray"; an actor call + Ray's object store for "ray-calls").

    .venv/bin/python benchmarks/ray_workers.py [--steps 400] [--repeats 5] [--delay-ms 2] [--workers 1 2 4]
        [--kinds processes ray ray-calls]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from fledge.envs.api import ActionTuple
from fledge.envs.builtin import ball3d
from fledge.rollout.ray_connect import connect
from fledge.rollout.ray_workers import make_ray_pool
from fledge.rollout.workers import EnvPool

ENV = "3DBall"
RAY_CPUS = 0.5  # per actor: a sleeping environment needs little CPU
KINDS = ("processes", "ray", "ray-calls")
TRANSPORT = {
    "processes": "pipe, JSON header + raw arrays",
    "ray": "TCP connection to the actor, JSON header + raw arrays",
    "ray-calls": "Ray actor call + object store",
}


def worker_pids(pool: Any) -> list[int]:
    """The processes of a pool's copies: worker processes or Ray actors (none for in-process copies)."""
    pids = []
    for c in getattr(pool, "copies", []):
        if hasattr(c, "process"):
            pids.append(int(c.process.pid))
        elif hasattr(c, "pid"):
            pids.append(int(c.pid))
    return pids


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (Linux); 0 where it cannot be read."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rollout(pool: Any, steps: int) -> tuple[int, float, float, float]:
    """(agent steps, seconds, CPU seconds of this process, CPU seconds of the copies' processes together) of
    `steps` lockstep steps with the heuristic policy."""
    pool.reset()
    agents = 0
    pids = worker_pids(pool)
    workers = sum(process_cpu(p) for p in pids)
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        d, _ = pool.get_steps(ENV)
        agents += len(d)
        pool.set_actions(ENV, ActionTuple(continuous=ball3d.heuristic(d.obs[0])))
        pool.step()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return agents, seconds, cpu, sum(process_cpu(p) for p in pids) - workers


def make_pool(kind: str, n: int, delay_s: float) -> Any:
    if kind in ("ray", "ray-calls"):
        direct = kind == "ray"
        return make_ray_pool(env_name=ENV, copies=n, seed=0, num_cpus=RAY_CPUS, step_delay_s=delay_s, direct=direct)
    if kind == "processes":
        return EnvPool(env_name=ENV, copies=n, seed=0, processes=True, step_delay_s=delay_s)
    return EnvPool(env_name=ENV, copies=n, seed=0, processes=False, step_delay_s=delay_s)


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):>9.0f}  [{min(values):>7.0f} .. {max(values):>7.0f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="lockstep steps per measurement (default 400)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (default 5)")
    parser.add_argument("--delay-ms", type=float, default=2.0, help="sleep added to each env step (default 2 ms)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts (default 1 2 4)")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS, help="worker kinds (default all)")
    args = parser.parse_args()
    delay = args.delay_ms / 1000.0
    kinds = tuple(args.kinds)
    ray_pools = sum(args.workers) * sum(k != "processes" for k in kinds)
    connection = connect(None, cpus_needed=RAY_CPUS * (ray_pools + 1))  # one local Ray for every pool
    settings = [(kind, n) for n in args.workers for kind in kinds]
    pools = {s: make_pool(s[0], s[1], delay) for s in settings}
    rates: dict[tuple[str, int], list[float]] = {s: [] for s in settings}
    driver_ms: dict[tuple[str, int], list[float]] = {s: [] for s in settings}  # trainer-side CPU per step
    worker_ms: dict[tuple[str, int], list[float]] = {s: [] for s in settings}  # all workers' CPU per step
    try:
        for s in settings:
            rollout(pools[s], 20)  # warm-up
        for r in range(args.repeats):
            for s in settings:
                agents, seconds, cpu, workers_cpu = rollout(pools[s], args.steps)
                rates[s].append(agents / seconds)
                driver_ms[s].append(1000 * cpu / args.steps)
                worker_ms[s].append(1000 * workers_cpu / args.steps)
            print(f"repeat {r + 1}: " + ", ".join(f"{k} x{n} {rates[(k, n)][-1]:.0f}" for k, n in settings), flush=True)
    finally:
        for pool in pools.values():
            pool.close()

    print(
        f"\n3DBall (12 agents per copy), every step {args.delay_ms:g} ms slower; agent steps/s over {args.steps} "
        f"lockstep steps, median [min .. max] of {args.repeats} interleaved repeats"
    )
    print(
        f"{'workers':<14}{'agent steps/s':>28}   speed-up over 1 [per repeat]   CPU per lockstep step: trainer, workers"
    )
    for kind in kinds:
        base = statistics.median(rates[(kind, args.workers[0])])
        for n in args.workers:
            values = rates[(kind, n)]
            ratios = [v / b for v, b in zip(values, rates[(kind, args.workers[0])])]  # within each repeat
            cpu = statistics.median(driver_ms[(kind, n)])
            workers = statistics.median(worker_ms[(kind, n)])
            print(
                f"{kind + ' x' + str(n):<14}{median_range(values)}   {statistics.median(values) / base:>5.2f}x "
                f"[{min(ratios):.2f} .. {max(ratios):.2f}]   {cpu:.2f} ms, {workers:.2f} ms ({workers / n:.2f} ms each)"
            )

    # the round trip of one lockstep step, no delay: where the transport's cost sits
    print("\nOne lockstep step of one copy, no delay (median of 3 x 500 steps):")
    local = make_pool("local", 1, 0.0)
    base_ms = statistics.median(1000 * rollout(local, 500)[1] / 500 for _ in range(3))
    local.close()
    print(f"  in this process (the environment's step + the loop): {base_ms:.3f} ms")
    for kind in kinds:
        pool = make_pool(kind, 1, 0.0)
        rollout(pool, 50)
        ms = statistics.median(1000 * rollout(pool, 500)[1] / 500 for _ in range(3))
        pool.close()
        print(f"  {kind:<10} {ms:.3f} ms per step: {ms - base_ms:.3f} ms of transport ({TRANSPORT[kind]})")
    connection.close()


if __name__ == "__main__":
    main()
