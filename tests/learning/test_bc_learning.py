"""Behavioral cloning alone (the extrinsic reward at strength 0, so PPO's own update learns nothing) reaches
most of a recorded heuristic demonstration's return in a few thousand steps; the same run without the
demonstration does not. Seeds are fixed; thresholds leave room for noise."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import toy_options
from fledge import api
from fledge.config import build_run_options
from fledge.imitation.demo_file import read_demo_file
from fledge.play import play

pytestmark = pytest.mark.learning


def record(tmp_path: Path, env: str, steps: int) -> tuple[Path, float]:
    path = tmp_path / f"Expert{env}.demo"
    play(None, heuristic=env, record_demo=path, record_demo_steps=steps, out=io.StringIO())
    return path, float(read_demo_file(path).meta.mean_reward)


def tail(result: api.RunResult, n: int = 20) -> float:
    (behavior,) = result.behaviors.values()
    assert len(behavior.episode_returns) >= n
    return float(np.mean(behavior.episode_returns[-n:]))


def ppo(tmp_path: Path, env: str, steps: int, demo: Path | None, seed: int = 1) -> Any:
    extra: dict[str, Any] = {"reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 0.0}}}
    if demo is not None:
        extra["behavioral_cloning"] = {"demo_path": str(demo), "strength": 1.0}
    name = "bc" if demo is not None else "plain"
    return toy_options(
        tmp_path / name,
        env,
        steps=steps,
        seed=seed,
        extra=extra,
        hyperparameters={"buffer_size": 256, "batch_size": 64, "learning_rate": 3e-3},
    )


@pytest.mark.parametrize(
    ("env", "demo_steps", "steps"),
    [("Basic", 300, 2000), ("MoveToGoal1D-Continuous", 400, 3000)],
)
def test_ppo_bc_alone_reaches_most_of_the_demo_return(tmp_path: Path, env: str, demo_steps: int, steps: int) -> None:
    demo, demo_return = record(tmp_path, env, demo_steps)
    assert demo_return > 0.9
    cloned = tail(api.run(ppo(tmp_path, env, steps, demo), display="none"))
    plain = tail(api.run(ppo(tmp_path, env, steps, None), display="none"))
    assert cloned >= 0.8 * demo_return, (cloned, demo_return)
    assert plain < 0.5 * demo_return, plain  # nothing else teaches it: extrinsic strength 0


@pytest.mark.slow  # three seeds of both tasks, about 30 s
@pytest.mark.parametrize("seed", [2, 3, 4])
def test_ppo_bc_alone_holds_over_seeds(tmp_path: Path, seed: int) -> None:
    for env, demo_steps, steps in (("Basic", 300, 2000), ("MoveToGoal1D-Continuous", 400, 3000)):
        demo, demo_return = record(tmp_path / env, env, demo_steps)
        cloned = tail(api.run(ppo(tmp_path / env, env, steps, demo, seed=seed), display="none"))
        assert cloned >= 0.8 * demo_return, (env, seed, cloned, demo_return)


@pytest.mark.slow  # about 20 s on 2 busy cores: one BC call per SAC update loop, and Basic's loops are many
def test_sac_bc_alone_reaches_most_of_the_demo_return(tmp_path: Path) -> None:
    demo, demo_return = record(tmp_path, "Basic", 300)
    settings = {
        "trainer_type": "sac",
        "hyperparameters": {
            "batch_size": 64,
            "buffer_size": 10_000,
            "buffer_init_steps": 0,
            "learning_rate": 3e-3,
            "steps_per_update": 10,
            "init_entcoef": 0.05,
        },
        "network_settings": {"hidden_units": 64, "num_layers": 2},
        "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 0.0}},
        "behavioral_cloning": {"demo_path": str(demo)},
        "max_steps": 3000,
        "time_horizon": 64,
        "summary_freq": 10**9,
    }
    options = build_run_options(
        {
            "default_settings": settings,
            "env_settings": {"env_path": "Basic", "seed": 1},
            "checkpoint_settings": {"run_id": "sac", "results_dir": str(tmp_path / "results")},
        }
    )
    assert tail(api.run(options, display="none")) >= 0.8 * demo_return
