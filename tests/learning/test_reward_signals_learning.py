"""Reward signals in whole runs: their stats under spec 10.3's names, an ONNX model that is still the actor
alone, and what they learn: on the sparse Pyramids task, in the default room with ML-Agents' settings, RND
finds the gold brick on every seed while extrinsic-only PPO does not, and curiosity finds it in a small
room; GAIL with an expert and
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
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config
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


def shipped_pyramids_success(tmp_path: Path, config: str, signal: str | None, seed: int, steps: int) -> float:
    """The share of the last quarter's episodes at the gold brick in a run of the shipped `config` (ML-Agents'
    Pyramids hyperparameters, the default 28 x 28 room) that keeps the extrinsic reward and `signal` only."""
    raw = load_config_file(shipped_config(config))  # type: ignore[arg-type]
    body = raw["behaviors"]["Pyramids"]
    body["reward_signals"] = {k: v for k, v in body["reward_signals"].items() if k in ("extrinsic", signal)}
    body.update(max_steps=steps, summary_freq=10**9)
    raw["env_settings"] = {"env_path": "Pyramids", "seed": seed}
    raw["checkpoint_settings"] = {"run_id": f"{config}-{signal}-{seed}", "results_dir": str(tmp_path)}
    returns = np.asarray(api.run(build_run_options(raw), display="none").behaviors["Pyramids"].episode_returns)
    return float((returns[-len(returns) // 4 :] > 0).mean())


@pytest.mark.slow
def test_in_the_default_room_rnd_finds_the_gold_brick_where_extrinsic_alone_does_not(tmp_path: Path) -> None:
    """The shipped PyramidsRND.yaml against the same PPO (Pyramids.yaml) with the extrinsic reward alone,
    200,000 steps each, share of the last quarter's episodes at the brick, seeds 1 / 2 / 3: RND 0.83 / 0.92 /
    0.65, extrinsic-only 0.00 / 0.04 / 0.00 (4.5 minutes in all on 2 cores, 11 when shared). Curiosity with the
    shipped Pyramids.yaml does not yet do as well here: 0.19 / 0.20 / 0.93 at 500,000 steps."""
    alone: list[float] = []
    rnd: list[float] = []
    for seed in (1, 2, 3):
        rnd.append(shipped_pyramids_success(tmp_path, "PyramidsRND", "rnd", seed, 200_000))
        alone.append(shipped_pyramids_success(tmp_path, "Pyramids", None, seed, 200_000))
    assert min(rnd) >= 0.5, rnd
    assert max(alone) <= 0.1, alone


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_on_sparse_pyramids_curiosity_finds_the_gold_brick(tmp_path: Path, seed: int) -> None:
    """In this 12 x 12 room extrinsic-only PPO often finds the brick too (seed 1: 100% of the last quarter's
    episodes at 120,000 steps), so this shows that curiosity learns the task, not that it beats extrinsic-only
    on it; in the default room it does not yet do so reliably (docs/rewards.md)."""
    assert pyramids_success(tmp_path, "curiosity", seed, 120_000) >= 0.3
