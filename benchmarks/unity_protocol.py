"""What ML-Agents' wire protocol costs: the fake Unity player through gRPC next to the same task in-process.

Two measurements, interleaved and repeated (medians and ranges):
- Round trips: 1 and 4 fake players (tests/unity/fake_player.py, real processes on real sockets),
  `--agents` agents each, stepped by `UnityEnvironment` with random actions (several players at once
  from a thread pool), vector observations alone and with an 84x84 PNG camera; next to the player's
  own task code (tests/unity/fake_ball.py) stepped in this process with the same actions and the same
  observations, camera images included, without messages. Also the trainer process's CPU time per round
  trip (every thread: conversion and the gRPC server; the players' own processes excluded), which is the
  part of the protocol's cost that stays with a real Unity player, whose side runs in C#, and the fake
  players' own CPU time per round trip (their task, messages and gRPC client, all players together; read
  from /proc, Linux only). The protocol's share is 1 - (through the protocol) / (in-process), as measured;
  a second figure takes the mean player's CPU time out of the wall time through the protocol (an estimate
  of the share with a player whose own side costs nothing; it also takes out the task's own time, which
  the in-process side keeps).
- Training: PPO (the shipped 3DBall config) on the fake player through the protocol (1 player, and 4
  players with --num-envs 4, stepped at once by one pool) next to PPO on the same task as an in-process fledge
  environment with the same number of agents; agent steps/s of the training loop (set-up excluded). The
  protocol's share is 1 - (through the protocol) / (in-process), with the fake players' processes
  included: this is the figure the goal (under 20% for vector tasks) is judged on, as it is what a user
  of this machine sees. With 1 player a second figure takes the player's CPU time during the run out of
  the loop's time (an estimate for a player whose own side costs nothing, as the round trips' one).

    .venv/bin/python benchmarks/unity_protocol.py [--steps 300] [--repeats 3] [--agents 64] [--players 1 4]
        [--only round-trips|training] [--no-visual]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PLAYER = ROOT / "tests" / "unity" / "fake_player.py"
sys.path.insert(0, str(PLAYER.parent))

from fake_ball import BallPlatforms  # noqa: E402  (the fake player's task, for the in-process side)

from fledge import api  # noqa: E402
from fledge.config import build_run_options, load_config_file  # noqa: E402
from fledge.configs import shipped_config  # noqa: E402
from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec  # noqa: E402
from fledge.envs.builtin.base import VectorTask, VectorTaskEnv  # noqa: E402
from fledge.envs.unity.environment import UnityEnvironment  # noqa: E402

BEHAVIOR = "Ball3DFake"
EPISODE = 500  # the fake player's default decisions per episode


def free_port_block(count: int) -> int:
    """A base port whose next `count` ports are free now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            base = int(s.getsockname()[1])
        if base + count < 65000 and all(_free(base + i) for i in range(count)):
            return base
    raise RuntimeError("no block of free ports found")


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("localhost", port))
        except OSError:
            return False
    return True


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far, from /proc; NaN where there is no /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def players_cpu(envs: list[UnityEnvironment]) -> float:
    return sum(process_cpu(e._process.process.pid) for e in envs if e._process is not None)


def through_protocol(
    players: int, agents: int, steps: int, visual: bool, log_folder: Path
) -> tuple[float, float, float, float]:
    """(round trips/s, agent steps/s, this process's CPU ms per round trip, the players' CPU ms per round trip)
    of `players` fake players stepped in lockstep for `steps` steps. This process's CPU time counts every
    thread of the trainer's process (conversion, the gRPC server); the players' is all players together."""
    args = ["--agents", str(agents), "--max-steps", "0"] + (["--visual"] if visual else [])
    base = free_port_block(players)
    envs = [
        UnityEnvironment(
            str(PLAYER),
            worker_id=i,
            base_port=base,
            seed=i,
            no_graphics=True,
            timeout_wait=30,
            additional_args=args,
            log_folder=log_folder,
        )
        for i in range(players)
    ]
    rng = np.random.default_rng(0)
    try:
        with ThreadPoolExecutor(max_workers=players) as pool:
            list(pool.map(lambda e: e.reset(), envs))
            names = [next(iter(e.behavior_specs)) for e in envs]

            def one(i: int) -> int:
                env, name = envs[i], names[i]
                decision, _ = env.get_steps(name)
                n = len(decision)
                env.set_actions(name, ActionTuple(continuous=rng.uniform(-1, 1, (n, 2)).astype(np.float32)))
                env.step()
                return n

            list(pool.map(one, range(players)))  # warm-up
            done = 0
            started, cpu, player_cpu = time.perf_counter(), time.process_time(), players_cpu(envs)
            for _ in range(steps):
                done += sum(pool.map(one, range(players)))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            player_cpu = players_cpu(envs) - player_cpu
    finally:
        for env in envs:
            env.close()
    return steps / seconds, done / seconds, 1000.0 * cpu / steps, 1000.0 * player_cpu / steps


def in_process(agents: int, steps: int, visual: bool) -> tuple[float, float, float]:
    """(steps/s, agent steps/s, CPU ms per step) of the same task for `agents` agents in this process,
    without messages."""
    task = BallPlatforms(agents)
    rng = np.random.default_rng(0)
    task.reset(np.arange(agents), rng)
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(steps):
        _, fell = task.step(rng.uniform(-1, 1, (agents, 2)).astype(np.float32))
        if fell.any():
            task.reset(np.flatnonzero(fell), rng)
        task.observe()
        if visual:
            task.camera()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return steps / seconds, agents * steps / seconds, 1000.0 * cpu / steps


class InProcessBall(VectorTask):
    """The fake player's task as a fledge environment in this process (the same numpy code)."""

    behavior_name = BEHAVIOR
    spec = BehaviorSpec([ObservationSpec.vector(8)], ActionSpec(2, ()))
    max_episode_steps = EPISODE

    def __init__(self, num_agents: int) -> None:
        self.num_agents = num_agents
        self.platforms = BallPlatforms(num_agents)

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self.platforms.reset(idx, rng)

    def observe(self) -> list[np.ndarray]:
        return [self.platforms.observe()]

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.platforms.step(actions.continuous)


def training_options(steps: int, results: Path, run_id: str, *, player_args: list[str], players: int) -> object:
    raw = load_config_file(shipped_config("3DBall"))  # type: ignore[arg-type]
    settings = raw["behaviors"].pop("3DBall")
    settings.update(max_steps=steps, summary_freq=10**9)
    raw["behaviors"] = {BEHAVIOR: settings}
    raw["checkpoint_settings"] = {"run_id": run_id, "results_dir": str(results), "force": True}
    env: dict[str, object] = {"seed": 7}
    if players > 1:
        env.update(env_path=str(PLAYER), num_envs=players, env_args=player_args, base_port=free_port_block(players))
    raw["env_settings"] = env
    if players > 1:
        raw["engine_settings"] = {"no_graphics": True}
    return build_run_options(raw)


def loop_rate(result: api.RunResult) -> float:
    """Agent steps per second of the training loop (environment, processing, trainer), set-up excluded."""
    ch = result.timers["children"]
    loop = sum(ch[k]["total"] for k in ("env_step", "process_steps", "trainer_observe") if k in ch)
    return result.behaviors[BEHAVIOR].steps / loop


def training(players: int, agents: int, steps: int, results: Path, *, unity: bool) -> tuple[float, float]:
    """Agent steps/s of a PPO run of `steps` agent steps, through the protocol or in-process; and through the
    protocol with 1 player, the same with the player's CPU time during the run taken out of the loop's time
    (NaN otherwise)."""
    args = ["--agents", str(agents), "--max-steps", str(EPISODE)]
    options = training_options(
        steps, results, f"{'unity' if unity else 'local'}{players}", player_args=args, players=players if unity else 1
    )
    env: object | None = None
    if not unity:
        env = VectorTaskEnv(InProcessBall(players * agents), seed=7)
    elif players == 1:
        port = free_port_block(1)
        env = UnityEnvironment(
            str(PLAYER), base_port=port, seed=7, no_graphics=True, additional_args=args, log_folder=results
        )
    pid = env._process.process.pid if isinstance(env, UnityEnvironment) and env._process is not None else None
    player_cpu = process_cpu(pid) if pid is not None else float("nan")
    try:
        result = api.run(options, env=env, display="none")  # type: ignore[arg-type]
        player_cpu = process_cpu(pid) - player_cpu if pid is not None else float("nan")
    finally:
        if env is not None:
            env.close()  # type: ignore[attr-defined]
    rate = loop_rate(result)
    done = result.behaviors[BEHAVIOR].steps
    lean = done / (done / rate - player_cpu) if done / rate > player_cpu else float("nan")
    return rate, lean


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):>10,.0f} [{min(values):,.0f} .. {max(values):,.0f}]"


def spread_ms(values: list[float]) -> str:
    return f"{statistics.median(values):>10.3f} [{min(values):.3f} .. {max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="round trips per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--agents", type=int, default=64, help="agents per player")
    parser.add_argument("--players", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--train-steps", type=int, default=30_000, help="agent steps per training run")
    parser.add_argument("--log-folder", type=Path, default=Path("results") / "unity_protocol_benchmark")
    parser.add_argument("--only", choices=("round-trips", "training"), help="one of the two measurements")
    parser.add_argument("--no-visual", action="store_true", help="round trips with vector observations alone")
    args = parser.parse_args()
    logging.getLogger("fledge").setLevel(logging.WARNING)
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    args.log_folder.mkdir(parents=True, exist_ok=True)
    settings = [(p, v) for v in ((False,) if args.no_visual else (False, True)) for p in args.players]
    proto: dict[tuple[int, bool], list[tuple[float, float, float, float]]] = {s: [] for s in settings}
    local: dict[tuple[int, bool], list[tuple[float, float, float]]] = {s: [] for s in settings}
    trained: dict[tuple[int, bool], list[tuple[float, float]]] = {
        (p, u): [] for p in args.players for u in (True, False)
    }
    if args.only == "training":
        settings = []
    players_trained = [] if args.only == "round-trips" else args.players
    for rep in range(args.repeats):
        for players, visual in settings:
            proto[players, visual].append(through_protocol(players, args.agents, args.steps, visual, args.log_folder))
            local[players, visual].append(in_process(players * args.agents, args.steps, visual))
            print(
                f"repeat {rep + 1} players={players} {'visual+vector' if visual else 'vector'} round trips: "
                f"{proto[players, visual][-1][1]:,.0f} agent steps/s through the protocol, "
                f"{local[players, visual][-1][1]:,.0f} in-process",
                flush=True,
            )
        for players in players_trained:
            for unity in (True, False):
                trained[players, unity].append(
                    training(players, args.agents, args.train_steps, args.log_folder, unity=unity)
                )
            print(
                f"repeat {rep + 1} players={players} PPO training: {trained[players, True][-1][0]:,.0f} agent steps/s "
                f"through the protocol, {trained[players, False][-1][0]:,.0f} in-process",
                flush=True,
            )
    if settings:
        print(f"\nfake 3DBall, {args.agents} agents per player, {args.steps} round trips per run, median [min .. max]")
    for players, visual in settings:
        kind = "vector + 84x84 PNG" if visual else "vector"
        trips = [p[0] for p in proto[players, visual]]
        rate = [p[1] for p in proto[players, visual]]
        here = [p[1] for p in local[players, visual]]
        share = [1.0 - r / h for r, h in zip(rate, here)]
        # the wall time per round trip less the mean player's CPU time (the players run side by side)
        lean = [
            1.0 - (p[1] / (1.0 - p[0] * p[3] / 1000.0 / players)) / h
            for p, h in zip(proto[players, visual], here)
            if p[0] * p[3] / 1000.0 / players < 1.0
        ]
        print(f"  {players} player(s), {kind}:")
        print(f"    round trips/s through the protocol   {spread(trips)}")
        print(f"    agent steps/s through the protocol   {spread(rate)}")
        print(f"    agent steps/s in-process (same task) {spread(here)}")
        print(f"    protocol's share of the time         {100 * statistics.median(share):9.1f} %")
        if lean:
            print(f"    ... less the mean player's CPU time  {100 * statistics.median(lean):9.1f} % (estimate)")
        print(f"    trainer's CPU ms per round trip      {spread_ms([p[2] for p in proto[players, visual]])}")
        print(f"    players' CPU ms per round trip       {spread_ms([p[3] for p in proto[players, visual]])}")
        print(f"    CPU ms per step in-process           {spread_ms([p[2] for p in local[players, visual]])}")
    if players_trained:
        print(f"\nPPO training on the fake 3DBall (shipped 3DBall config), {args.train_steps} agent steps per run:")
    for players in players_trained:
        unity = [u for u, _ in trained[players, True]]
        local_rate = [h for h, _ in trained[players, False]]
        cost = [1.0 - u / h for u, h in zip(unity, local_rate)]
        lean = [1.0 - u / h for (_, u), h in zip(trained[players, True], local_rate) if u == u]
        print(f"  {players} player(s) x {args.agents} agents:")
        print(f"    agent steps/s through the protocol   {spread(unity)}")
        print(f"    agent steps/s in-process             {spread(local_rate)}")
        print(
            f"    throughput lost to the protocol      {100 * statistics.median(cost):9.1f} % ["
            + " ".join(f"{100 * c:.0f}" for c in cost)
            + "]"
        )
        if lean:
            print(f"    ... less the player's CPU time       {100 * statistics.median(lean):9.1f} % (estimate)")


if __name__ == "__main__":
    main()
