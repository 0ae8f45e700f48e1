"""Where curiosity's training time goes: one PPO update's signal training on 3DBall, split into its parts.

The signal of `reward_signals.py` (curiosity with 128 hidden units, its models 256 units; 1 torch thread)
trains on 12,000 transitions of 3DBall's heuristic (with exploration noise) as PPO trains it after each
update: 3 epochs of 256-row minibatches. Each repeat times, on the thread's CPU clock:
- the whole training (the trainer's `RewardSignals.train`), per minibatch;
- of which the gradient pass (rewards/fast.py `curiosity_gradients`) and the Adam step;
- the matrix products of one minibatch alone (the same shapes, as one sequence of torch.mm calls): the
  floor that the arithmetic sets on this machine, and the rate it runs at;
- the rewards of the 12,000 transitions.
Repeats are interleaved; medians and ranges.

    .venv/bin/python benchmarks/curiosity_update.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fledge.envs import registry
from fledge.envs.api import ActionTuple
from fledge.envs.builtin.ball3d import heuristic
from fledge.rewards import SignalBatch, fast
from fledge.rewards.base import BodySettings
from fledge.rewards.curiosity import MODEL_UNITS, CuriositySignal
from fledge.rewards.signals import MIN_UPDATE_ROWS, RewardSignals

ENV = "3DBall"
EPOCHS = 3
ROWS = 12_000


def transitions(rows: int, seed: int) -> SignalBatch:
    """`rows` transitions of 3DBall's heuristic with Gaussian action noise (agents that are done are skipped)."""
    env = registry.make(ENV, seed=seed)
    env.reset()
    rng = np.random.default_rng(seed)
    obs, nxt, act = [], [], []
    count = 0
    while count < rows:
        decision, _ = env.get_steps(ENV)
        before = decision.obs[0]
        action = np.clip(heuristic(before) + rng.normal(0, 0.3, (len(before), 2)), -1, 1).astype(np.float32)
        env.set_actions(ENV, ActionTuple(continuous=action))
        env.step()
        after, _ = env.get_steps(ENV)
        if after.obs[0].shape == before.shape:
            obs.append(before)
            nxt.append(after.obs[0])
            act.append(action)
            count += len(before)
    env.close()
    o, n, a = (np.concatenate(x)[:rows] for x in (obs, nxt, act))
    return SignalBatch(
        obs=o,
        next_obs=n,
        continuous=a,
        discrete=np.zeros((rows, 0), np.int64),
        done=np.zeros(rows, np.bool_),
        env_rewards=np.zeros(rows, np.float32),
    )


def products(t: fast.CuriosityTensors, rows: int, actions: int) -> list[tuple[int, int, int]]:
    """(m, k, n) of every matrix product of one update on `rows` transitions: forward, then backward."""
    sizes = [(int(w.shape[0]), int(w.shape[1])) for w, _, _, _ in t.encoder]
    h = sizes[-1][1]
    heads = int(t.continuous[0].shape[0]) if t.continuous is not None else 0
    heads += int(t.discrete[0].shape[0]) if t.discrete is not None else 0
    u = MODEL_UNITS
    out = [(2 * rows, i, o) for i, o in sizes]  # encoder on s and s'
    out += [(rows, h + actions, u), (rows, u, h), (rows, 2 * h, u), (rows, u, heads)]  # models forward
    out += [(heads, rows, u), (rows, heads, u), (u, rows, 2 * h), (rows, u, 2 * h)]  # inverse backward
    out += [(h, rows, u), (rows, h, u), (u, rows, h + actions), (rows, u, h)]  # forward model backward
    for k, (i, o) in reversed(list(enumerate(sizes))):  # encoder backward
        out.append((i, 2 * rows, o))
        if k > 0:
            out.append((2 * rows, o, i))
    return out


def timed(fn: Callable[..., Any], clock: dict[str, float], key: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            clock[key] += time.thread_time() - start

    return wrapper


def summary(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):8.3f} {unit} (range {min(values):.3f} - {max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    spec = registry.make(ENV, seed=0).behavior_specs[ENV]
    signal = CuriositySignal(
        gamma=0.99,
        strength=0.02,
        learning_rate=3e-4,
        observation_specs=spec.observation_specs,
        action_spec=spec.action_spec,
        body=BodySettings(hidden_units=128, num_layers=2, normalize=False),
        seed=1,
        device=torch.device("cpu"),
    )
    signals = RewardSignals([signal])
    batch = transitions(ROWS, seed=3)
    clock: dict[str, float] = defaultdict(float)
    fast.curiosity_gradients = timed(fast.curiosity_gradients, clock, "gradients")
    signal.stepper.step = timed(signal.stepper.step, clock, "adam")  # type: ignore[method-assign]
    shapes = products(signal.tensors, MIN_UPDATE_ROWS, spec.action_spec.continuous_size)
    flop = sum(2 * m * k * n for m, k, n in shapes)
    operands = [(torch.randn(m, k), torch.randn(k, n)) for m, k, n in shapes]
    updates = EPOCHS * (ROWS // MIN_UPDATE_ROWS)
    figures: dict[str, list[float]] = defaultdict(list)
    signals.train(batch, epochs=1, batch_size=64, rng=np.random.default_rng(0))  # warm-up
    for rep in range(args.repeats):
        clock.clear()
        start = time.thread_time()
        signals.train(batch, epochs=EPOCHS, batch_size=64, rng=np.random.default_rng(rep))
        total = time.thread_time() - start
        figures["training"].append(total * 1e3 / updates)
        figures["gradients"].append(clock["gradients"] * 1e3 / updates)
        figures["adam"].append(clock["adam"] * 1e3 / updates)
        figures["rest"].append((total - clock["gradients"] - clock["adam"]) * 1e3 / updates)
        start = time.thread_time()
        for _ in range(updates):
            for a, b in operands:
                torch.mm(a, b)
        figures["products"].append((time.thread_time() - start) * 1e3 / updates)
        start = time.thread_time()
        signal.rewards(batch)
        figures["rewards"].append((time.thread_time() - start) * 1e3)
    share = statistics.median(figures["products"]) / statistics.median(figures["training"])
    rate = flop / statistics.median(figures["products"]) / 1e6
    print(f"curiosity on {ENV}: {updates} minibatches of {MIN_UPDATE_ROWS} rows per PPO update, {args.repeats} repeats")
    print(f"  training, per minibatch      {summary(figures['training'], 'ms')}")
    print(f"    gradient pass              {summary(figures['gradients'], 'ms')}")
    print(f"    Adam step                  {summary(figures['adam'], 'ms')}")
    print(f"    the rest (rows, inputs)    {summary(figures['rest'], 'ms')}")
    print(f"  its matrix products alone    {summary(figures['products'], 'ms')}")
    print(f"    {flop / 1e6:.0f} MFLOP per minibatch at {rate:.0f} GFLOP/s; {share:.0%} of the training time")
    print(f"  rewards of {ROWS} transitions {summary(figures['rewards'], 'ms')}")
    print(f"  per PPO update: {statistics.median(figures['training']) * updates / 1e3:.3f} s training")


if __name__ == "__main__":
    main()
