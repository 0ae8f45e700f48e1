"""PPO learns every action type to near the known optimum within small budgets, and does not learn
when a setting makes learning impossible. Seeds are fixed; thresholds leave room for noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config
from fledge.networks import acting
from fledge.networks.numpy_actor import NumpyActor
from fledge.trainers.ppo import fast_gradients, update

pytestmark = pytest.mark.learning


def tail_mean(result: api.RunResult, n: int = 200) -> float:
    (behavior,) = result.behaviors.values()
    returns = behavior.episode_returns
    assert len(returns) >= n, f"only {len(returns)} episodes finished"
    return float(np.mean(returns[-n:]))


@pytest.mark.parametrize(
    ("env", "steps", "threshold", "optimum"),
    [
        ("MoveToGoal1D-Continuous", 30_000, 0.90, 0.974),
        ("MoveToGoal1D-Discrete", 30_000, 0.90, 0.974),
        ("MoveToGoal2D-Hybrid", 80_000, 0.85, 0.9664),
        ("MaskedChoice", 20_000, 0.95, 1.0),
    ],
)
def test_ppo_reaches_near_optimal_return(
    make_options: Any, env: str, steps: int, threshold: float, optimum: float
) -> None:
    result = api.run(make_options(env, steps=steps))
    mean = tail_mean(result)
    assert threshold <= mean <= optimum + 0.01, f"{env}: mean return of the last 200 episodes {mean:.3f}"


def test_ppo_learns_through_the_reference_paths(make_options: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the accelerators switched off, PPO acts through the torch module and trains with autograd."""
    monkeypatch.setattr(NumpyActor, "covers", staticmethod(lambda model: False))
    monkeypatch.setattr(fast_gradients, "covers", lambda model: False)
    calls = {"act": 0, "gradients": 0}
    torch_act, autograd = acting.TorchActor.act, update.autograd_gradients

    def counted_act(self: acting.TorchActor, *args: Any, **kwargs: Any) -> Any:
        calls["act"] += 1
        return torch_act(self, *args, **kwargs)

    def counted_gradients(*args: Any, **kwargs: Any) -> Any:
        calls["gradients"] += 1
        return autograd(*args, **kwargs)

    monkeypatch.setattr(acting.TorchActor, "act", counted_act)
    monkeypatch.setattr(update, "autograd_gradients", counted_gradients)
    result = api.run(make_options("MaskedChoice", steps=20_000))
    assert calls["act"] > 1000 and calls["gradients"] > 100, calls
    mean = tail_mean(result)
    assert 0.95 <= mean <= 1.01, f"mean return of the last 200 episodes {mean:.3f}"


def test_masked_actions_are_never_taken(make_options: Any) -> None:
    result = api.run(make_options("MaskedChoice", steps=3_000, hyperparameters={"learning_rate": 1e-7}))
    (behavior,) = result.behaviors.values()
    assert min(behavior.episode_returns) > -1.0  # picking a masked action would return -1


def test_basic_learns_the_large_goal_with_its_shipped_config(tmp_path: Path) -> None:
    raw = load_config_file(shipped_config("Basic"))  # type: ignore[arg-type]
    raw["behaviors"]["Basic"]["max_steps"] = 20_000
    raw["env_settings"] = {"env_path": "Basic", "seed": 1}
    raw["checkpoint_settings"] = {"run_id": "basic", "results_dir": str(tmp_path)}
    assert tail_mean(api.run(build_run_options(raw)), 100) >= 0.85  # optimum 0.93


def test_basic_with_a_short_horizon_settles_for_the_small_goal(make_options: Any) -> None:
    """Negative case: with gamma 0.5 the small goal (+0.1 in 3 steps) is worth more than the large one
    (+1 in 7 steps: 0.5^6 < 0.1 * 0.5^2), so the agent must not learn the optimum."""
    result = api.run(
        make_options("Basic", steps=20_000, gamma=0.5, hyperparameters={"batch_size": 32, "buffer_size": 256})
    )
    mean = tail_mean(result, 100)
    assert mean < 0.2, mean


def test_no_learning_without_a_learning_rate(make_options: Any) -> None:
    """Negative case: a vanishing learning rate keeps the random policy (mean return ~0)."""
    result = api.run(make_options("MoveToGoal1D-Continuous", steps=20_000, hyperparameters={"learning_rate": 1e-8}))
    assert tail_mean(result) < 0.5


def test_3dball_default_config_reaches_90_within_300k_steps(tmp_path: Path) -> None:
    raw = load_config_file(shipped_config("3DBall"))  # type: ignore[arg-type]
    raw["behaviors"]["3DBall"]["max_steps"] = 300_000
    raw["env_settings"] = {"seed": 1}
    raw["checkpoint_settings"] = {"run_id": "ball", "results_dir": str(tmp_path)}
    result = api.run(build_run_options(raw))
    returns = result.behaviors["3DBall"].episode_returns
    # the mean over a window of 24 consecutive episodes (two summaries of 12 agents) reaches 90
    windows = np.convolve(returns, np.ones(24) / 24, mode="valid")
    assert windows.max() >= 90.0, f"best 24-episode mean {windows.max():.1f}"
