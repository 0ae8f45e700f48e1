"""Reward signals in whole runs: their stats under spec 10.3's names, an ONNX model that is still the actor
alone, and what they learn: on the sparse Pyramids task RND finds the gold brick on every seed while
extrinsic-only PPO mostly does not, and curiosity finds it with twice the budget; GAIL with an expert and
no extrinsic reward learns MaskedChoice, and does not with an expert that acts at random."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

from conftest import toy_options
from fledge import api
from fledge.envs import registry
from fledge.envs.api import ActionTuple
from fledge.envs.builtin.toys import masked_choice_heuristic

pytestmark = pytest.mark.learning

SMALL = {"network_settings": {"hidden_units": 16, "num_layers": 1}}


def test_a_run_with_every_signal_reports_their_stats_and_exports_the_actor_alone(tmp_path: Path) -> None:
    demo = record_masked_choice_demo(tmp_path / "expert.demo", 64)
    signals = {
        "extrinsic": {"gamma": 0.99, "strength": 1.0},
        "curiosity": {"gamma": 0.9, "strength": 0.02, **SMALL},
        "rnd": {"gamma": 0.9, "strength": 0.01, **SMALL},
        "gail": {"gamma": 0.9, "strength": 0.01, "demo_path": str(demo), "use_vail": True, **SMALL},
    }
    options = toy_options(
        tmp_path,
        "MaskedChoice",
        steps=600,
        extra={"reward_signals": signals, "summary_freq": 300},
        hyperparameters={"buffer_size": 256, "batch_size": 64},
    )
    api.run(options, display="none")
    run = tmp_path / "results" / "run"
    with open(run / "run_logs" / "MaskedChoice.csv") as f:
        columns = set(next(csv.reader(f)))
    for name in ("Extrinsic", "Curiosity", "RND", "GAIL"):
        assert f"Policy/{name} Reward" in columns and f"Policy/{name} Value Estimate" in columns, name
    assert {
        "Losses/Curiosity Forward Loss",
        "Losses/Curiosity Inverse Loss",
        "Losses/RND Loss",
        "Losses/GAIL Loss",
        "Policy/GAIL Policy Estimate",
        "Policy/GAIL Expert Estimate",
        "Policy/GAIL Grad Mag Loss",
        "Policy/GAIL Beta",
        "Losses/GAIL KL Loss",
    } <= columns
    model = onnx.load(str(run / "MaskedChoice.onnx"))
    outputs = {o.name for o in model.graph.output}
    assert "discrete_actions" in outputs and not any("value" in o or "signal" in o for o in outputs)
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    assert params < 2_000  # the 16-unit actor; the signals' networks would add thousands


# -- GAIL ------------------------------------------------------------------------------------------------
def record_masked_choice_demo(path: Path, episodes: int, *, random_actions: bool = False, seed: int = 0) -> Path:
    """A real .demo file of one-step MaskedChoice episodes: the expert picks the observed rewarded action, or
    (random_actions) any allowed action."""
    from fledge.imitation.demo_writer import DemoWriter

    env = registry.make("MaskedChoice", seed=seed)
    (name,) = env.behavior_specs
    writer = DemoWriter(path, name, env.behavior_specs[name])
    rng = np.random.default_rng(seed)
    env.reset()
    while writer.episodes < episodes:
        decisions, ends = env.get_steps(name)
        writer.terminal(ends)
        if random_actions:
            allowed = ~decisions.action_mask[0]  # type: ignore[index]
            choice = np.array([rng.choice(np.flatnonzero(row)) for row in allowed])
        else:
            choice = masked_choice_heuristic(decisions.obs[0])[:, 0]
        actions = ActionTuple(discrete=choice[:, None].astype(np.int32))
        writer.decided(decisions, actions)
        env.set_actions(name, actions)
        env.step()
    writer.close()
    env.close()
    return path


def gail_only_return(tmp_path: Path, demo: Path, steps: int) -> float:
    gail = {"gamma": 0.99, "strength": 1.0, "demo_path": str(demo), "use_actions": True, "learning_rate": 1e-2}
    gail["network_settings"] = {"hidden_units": 32}
    options = toy_options(tmp_path, "MaskedChoice", steps=steps, extra={"reward_signals": {"gail": gail}})
    (behavior,) = api.run(options, display="none").behaviors.values()
    return float(np.mean(behavior.episode_returns[-200:]))


def test_gail_without_extrinsic_reward_learns_from_an_expert(tmp_path: Path) -> None:
    demo = record_masked_choice_demo(tmp_path / "expert.demo", 400)
    # the environment's return is measured, never given to the learner; random choice among the allowed: 1/3
    assert gail_only_return(tmp_path, demo, 20_000) >= 0.8


def test_gail_does_not_learn_from_an_expert_that_acts_at_random(tmp_path: Path) -> None:
    demo = record_masked_choice_demo(tmp_path / "expert.demo", 400, random_actions=True)
    assert gail_only_return(tmp_path, demo, 20_000) <= 0.6


# -- sparse reward: Pyramids ---------------------------------------------------------------------------------
PYRAMIDS = {"room_half": 6.0, "max_episode_steps": 250}  # random actions find the gold brick in ~0.5% of episodes


def pyramids_success(
    tmp_path: Path, signal: str | None, seed: int, steps: int, room: dict[str, float] = PYRAMIDS
) -> float:
    """The share of episodes that reach the gold brick in the last quarter of a PPO run."""
    signals: dict[str, Any] = {"extrinsic": {"gamma": 0.99, "strength": 1.0}}
    if signal == "rnd":
        signals["rnd"] = {
            "gamma": 0.99,
            "strength": 0.01,
            "learning_rate": 1e-3,
            "network_settings": {"hidden_units": 64},
        }
    elif signal == "curiosity":
        signals["curiosity"] = {
            "gamma": 0.99,
            "strength": 0.005,
            "learning_rate": 1e-3,
            "network_settings": {"hidden_units": 64},
        }
    options = toy_options(
        tmp_path,
        "Pyramids",
        steps=steps,
        seed=seed,
        run_id=f"{signal}-{seed}",
        network={"hidden_units": 64},
        extra={"reward_signals": signals, "time_horizon": 128},
        hyperparameters={"learning_rate": 1e-3, "beta": 0.01, "buffer_size": 2048, "batch_size": 256},
    )
    env = registry.make("Pyramids", seed=seed, **room)
    (behavior,) = api.run(options, env=env, display="none").behaviors.values()
    returns = np.asarray(behavior.episode_returns)
    return float((returns[-len(returns) // 4 :] > 0).mean())


RND_ROOM = {"room_half": 10.0}  # a 20 x 20 room, 1000-decision episodes


@pytest.mark.slow
def test_on_sparse_pyramids_rnd_finds_the_gold_brick_far_more_often_than_extrinsic_alone(tmp_path: Path) -> None:
    """Measured at 100,000 steps (share of the last quarter's episodes at the brick), extrinsic-only / RND:
    seed 1 0.56 / 1.00, seed 2 0.08 / 0.98, seed 3 0.20 / 1.00. In the default 28 x 28 room extrinsic-only
    stays at 0.00 on all three seeds, but RND is not yet reliable there (0.46 / 0.04 / 0.24 at 100,000
    steps, 0.86 / 0.67 / 0.03 at 150,000); in a 12 x 12 room extrinsic-only often finds the brick itself."""
    alone: list[float] = []
    rnd: list[float] = []
    for seed in (1, 2, 3):
        alone.append(pyramids_success(tmp_path, None, seed, 100_000, RND_ROOM))
        rnd.append(pyramids_success(tmp_path, "rnd", seed, 100_000, RND_ROOM))
    assert min(rnd) >= 0.9, rnd
    assert float(np.median(alone)) <= 0.3, alone
    assert all(r >= a + 0.4 for r, a in zip(rnd, alone)), (rnd, alone)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_on_sparse_pyramids_curiosity_finds_the_gold_brick(tmp_path: Path, seed: int) -> None:
    """Curiosity needs twice RND's budget here; by then extrinsic-only PPO has often found the brick too
    (seed 1: 100% of the last quarter's episodes), so this shows that curiosity learns the task, not that
    it beats extrinsic-only on it."""
    assert pyramids_success(tmp_path, "curiosity", seed, 120_000) >= 0.3
