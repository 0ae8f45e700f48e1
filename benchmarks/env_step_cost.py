"""Cost of one built-in 3DBall env.step(), and of its task.apply and task.observe parts.

The heuristic policy acts (its time is not counted); each repeat times `--steps` calls of env.step()
and, inside them, the task's apply and observe methods. Prints, per repeat and as the median over the
repeats, microseconds per env.step() (apply, observe) and agent steps per second.

    .venv/bin/python benchmarks/env_step_cost.py [--steps 3000] [--repeats 3] [--num-areas 1]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from fledge.envs import registry
from fledge.envs.api import ActionTuple
from fledge.envs.builtin import ball3d
from fledge.envs.builtin.base import VectorTaskEnv


def measure(steps: int, num_areas: int) -> tuple[int, float, float, float]:
    """(agents, microseconds per env.step(), of which task.apply, of which task.observe)."""
    env = registry.make("3DBall", seed=0, num_areas=num_areas)
    assert isinstance(env, VectorTaskEnv)
    task = env.task
    spent = {"apply": 0.0, "observe": 0.0}

    def timed(method: Callable[..., object], key: str) -> Callable[..., object]:
        def wrapper(*args: object) -> object:
            start = time.perf_counter()
            out = method(*args)
            spent[key] += time.perf_counter() - start
            return out

        return wrapper

    task.apply = timed(task.apply, "apply")  # type: ignore[method-assign,assignment]
    task.observe = timed(task.observe, "observe")  # type: ignore[method-assign,assignment]
    env.reset()
    agents, step_s = 0, 0.0
    for _ in range(steps):
        d, _ = env.get_steps("3DBall")
        agents = len(d)
        env.set_actions("3DBall", ActionTuple(continuous=ball3d.heuristic(d.obs[0])))
        start = time.perf_counter()
        env.step()
        step_s += time.perf_counter() - start
    step_us, apply_us, observe_us = (1e6 * x / steps for x in (step_s, spent["apply"], spent["observe"]))
    return agents, step_us, apply_us, observe_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="env.step() calls per repeat (default 3000)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (default 3)")
    parser.add_argument("--num-areas", type=int, default=1, help="3DBall areas of 12 agents each (default 1)")
    args = parser.parse_args()
    results = []
    for repeat in range(args.repeats):
        agents, step_us, apply_us, observe_us = measure(args.steps, args.num_areas)
        results.append((step_us, apply_us, observe_us))
        print(
            f"repeat {repeat + 1}: 3DBall, {agents} agents, heuristic policy: env.step() {step_us:.1f} us "
            f"(task.apply {apply_us:.1f} us, task.observe {observe_us:.1f} us); "
            f"{agents * 1e6 / step_us:,.0f} agent-steps/s"
        )
    step_us, apply_us, observe_us = (statistics.median(column) for column in zip(*results))
    print(
        f"median of {args.repeats}: env.step() {step_us:.1f} us (task.apply {apply_us:.1f} us, "
        f"task.observe {observe_us:.1f} us); {agents * 1e6 / step_us:,.0f} agent-steps/s"
    )


if __name__ == "__main__":
    main()
