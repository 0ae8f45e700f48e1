"""Where curiosity and RND pay on Pyramids: their mean reward by situation, after training on random play.

Uniformly random actions play the built-in Pyramids task (16 agents per episode round, 1000-decision
episodes); curiosity and RND, with ML-Agents' Pyramids signal settings (shipped configs/ppo/Pyramids.yaml
and PyramidsRND.yaml), train on minibatches of 128 of those transitions, and every `--every` updates the
script prints each signal's mean reward (already multiplied by its strength) on the transitions of each
situation, and its ratio to the situation where nothing of the task is in sight. Compare the figures
with the +2 of the gold brick and the -0.001 of a decision.

    .venv/bin/python benchmarks/pyramids_signal_map.py [--room-half 12] [--every 200] [--rounds 6]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from fledge.envs.api import ActionTuple
from fledge.envs.builtin.pyramids import PyramidsTask
from fledge.envs.builtin.pyramids_layout import NUM_RAYS, PYRAMID, RAY_SIZE, SWITCH_OFF
from fledge.rewards.base import BodySettings, LearnedSignal, SignalBatch
from fledge.rewards.curiosity import CuriositySignal
from fledge.rewards.rnd import RNDSignal

MINIBATCH = 128
SHOWN = 4000  # transitions per situation scored at each report


def random_play(task: PyramidsTask, decisions: int, rng: np.random.Generator) -> SignalBatch:
    """`decisions` rounds of uniformly random actions for all agents; episodes restart at the brick or the
    time limit. Returns every transition; `done` marks the transitions that pressed the switch."""
    n = task.num_agents
    task.reset_agents(np.arange(n), rng)
    age = np.zeros(n, dtype=np.int64)
    obs, nxt, act, pressed = [], [], [], []
    for _ in range(decisions):
        before = task.ray_observation()
        a = rng.integers(0, 4, size=n)
        _, gold = task.apply(ActionTuple(discrete=a[:, None].astype(np.int32)), rng)
        obs.append(before)
        nxt.append(task.ray_observation())
        act.append(a)
        pressed.append(task.pressed_now.copy())
        age += 1
        over = gold | (age >= task.max_episode_steps)
        task.reset_agents(np.flatnonzero(over), rng)
        age[over] = 0
    count = n * decisions
    return SignalBatch(
        obs=np.concatenate(obs),
        next_obs=np.concatenate(nxt),
        continuous=np.zeros((count, 0), dtype=np.float32),
        discrete=np.concatenate(act)[:, None],
        done=np.concatenate(pressed),
        env_rewards=np.zeros(count, dtype=np.float32),
    )


def situations(data: SignalBatch) -> dict[str, np.ndarray]:
    """Row indices of each situation, judged on the observation after the transition."""
    rays = data.next_obs[:, : NUM_RAYS * RAY_SIZE].reshape(len(data), NUM_RAYS, RAY_SIZE)
    on = data.next_obs[:, -1] > 0.5
    sees_switch = rays[:, :, SWITCH_OFF].max(axis=1) > 0.5
    sees_pyramid = rays[:, :, PYRAMID].max(axis=1) > 0.5
    press = data.done
    return {
        "nothing of the task in sight": np.flatnonzero(~on & ~sees_switch),
        "switch (off) in sight": np.flatnonzero(~on & sees_switch),
        "the press itself": np.flatnonzero(press),
        "pressed, pyramid in sight": np.flatnonzero(on & sees_pyramid & ~press),
        "pressed, pyramid not in sight": np.flatnonzero(on & ~sees_pyramid & ~press),
    }


def build(kind: str, task: PyramidsTask, seed: int) -> LearnedSignal:
    specs, actions, cpu = task.spec.observation_specs, task.spec.action_spec, torch.device("cpu")
    if kind == "curiosity":
        return CuriositySignal(
            gamma=0.99,
            strength=0.02,
            learning_rate=3e-4,
            body=BodySettings(hidden_units=256),
            observation_specs=specs,
            action_spec=actions,
            seed=seed,
            device=cpu,
        )
    return RNDSignal(
        gamma=0.99,
        strength=0.01,
        learning_rate=1e-4,
        body=BodySettings(hidden_units=64, num_layers=3),
        observation_specs=specs,
        action_spec=actions,
        seed=seed,
        device=cpu,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--room-half", type=float, default=12.0)
    parser.add_argument("--decisions", type=int, default=2000, help="rounds of random play (x 64 agents)")
    parser.add_argument("--every", type=int, default=200, help="signal updates between reports")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(args.seed)
    task = PyramidsTask(num_agents=64, room_half=args.room_half)
    data = random_play(task, args.decisions, rng)
    where = situations(data)
    print(f"{len(data)} random transitions in a room of {2 * args.room_half:g}:")
    print("  " + ", ".join(f"{name} {len(rows)}" for name, rows in where.items()))
    for kind in ("curiosity", "rnd"):
        signal = build(kind, task, args.seed + 1)
        print(f"\n{kind} (strength {signal.strength:g}): mean reward per transition x strength (ratio to the first)")
        for r in range(args.rounds):
            for _ in range(args.every):
                signal.update(data.rows(rng.integers(0, len(data), size=MINIBATCH)))
            means = {
                name: float(signal.rewards(data.rows(rows[:SHOWN])).mean()) * signal.strength
                if len(rows)
                else float("nan")
                for name, rows in where.items()
            }
            base = means["nothing of the task in sight"]
            cells = ", ".join(f"{name} {m:.5f} ({m / base:.1f})" for name, m in means.items())
            print(f"  after {(r + 1) * args.every} updates: {cells}", flush=True)


if __name__ == "__main__":
    main()
