"""PPO formulas against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fledge.trainers import returns as R
from fledge.trainers.ppo import losses as L


def test_gae_matches_hand_computation() -> None:
    r = np.array([1.0, 0.0, 2.0])
    v = np.array([0.5, 1.0, 1.5])
    boot, g, lam = 2.0, 0.9, 0.8
    d2 = 2.0 + g * boot - 1.5
    d1 = 0.0 + g * 1.5 - 1.0
    d0 = 1.0 + g * 1.0 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    adv, ret = R.gae(r, v, boot, gamma=g, lambd=lam)
    np.testing.assert_allclose(adv, [a0, a1, a2], rtol=1e-6)
    np.testing.assert_allclose(ret, [a0 + 0.5, a1 + 1.0, a2 + 1.5], rtol=1e-6)


def test_gae_with_lambda_one_gives_discounted_returns() -> None:
    rng = np.random.default_rng(0)
    r, v = rng.normal(size=50), rng.normal(size=50)
    _, ret = R.gae(r, v, 0.7, gamma=0.95, lambd=1.0)
    np.testing.assert_allclose(ret, R.discounted_returns(r, 0.7, gamma=0.95), rtol=1e-5, atol=1e-5)


def test_gae_terminal_uses_zero_bootstrap() -> None:
    adv, ret = R.gae(np.array([1.0]), np.array([0.25]), 0.0, gamma=0.99, lambd=0.95)
    assert adv[0] == pytest.approx(0.75)
    assert ret[0] == pytest.approx(1.0)


def test_discounted_cumsum_long_trajectory_is_stable() -> None:
    x = np.ones(5000)
    y = R.discounted_cumsum(x, 0.5)
    assert np.isfinite(y).all()
    assert y[0] == pytest.approx(2.0)


def test_discounted_returns() -> None:
    np.testing.assert_allclose(R.discounted_returns(np.array([1.0, 1.0]), 10.0, gamma=0.5), [1 + 0.5 * 6, 6.0])


@pytest.mark.parametrize(
    ("schedule", "step", "expected"),
    [("constant", 50, 1.0), ("linear", 0, 1.0), ("linear", 50, 0.55), ("linear", 100, 0.1), ("linear", 1000, 0.1)],
)
def test_schedules(schedule: str, step: int, expected: float) -> None:
    assert L.decayed(1.0, 0.1, step, 100, schedule) == pytest.approx(expected)


def test_unknown_schedule() -> None:
    with pytest.raises(ValueError, match="unknown schedule"):
        L.decayed(1.0, 0.1, 0, 10, "cosine")


def test_policy_loss_clips_ratio() -> None:
    old = torch.zeros(2)
    new = torch.tensor([math.log(1.5), math.log(0.5)])
    adv = torch.tensor([1.0, -1.0])
    # sample 0: ratio 1.5, A>0 -> min(1.5, 1.2) = 1.2; sample 1: ratio 0.5, A<0 -> min(-0.5, -0.8) = -0.8
    assert L.policy_loss(new, old, adv, 0.2).item() == pytest.approx(-(1.2 - 0.8) / 2)


def test_value_loss_uses_old_values_for_clipping() -> None:
    values = torch.tensor([[2.0]])
    old = torch.tensor([[1.0]])
    ret = torch.tensor([[1.0]])
    # unclipped (1-2)^2 = 1; clipped value 1.2 -> (1-1.2)^2 = 0.04; max = 1
    assert L.value_loss(values, old, ret, 0.2).item() == pytest.approx(1.0)
    ret2 = torch.tensor([[3.0]])
    # unclipped (3-2)^2 = 1; clipped (3-1.2)^2 = 3.24 -> 3.24
    assert L.value_loss(values, old, ret2, 0.2).item() == pytest.approx(3.24)


def test_normalize_advantages() -> None:
    a = L.normalize_advantages(np.array([1.0, 2.0, 3.0]))
    assert a.mean() == pytest.approx(0.0, abs=1e-6)
    assert a.std() == pytest.approx(1.0, abs=1e-5)
