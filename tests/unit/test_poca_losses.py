"""POCA's formulas (trainers/poca/losses.py) against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fledge.trainers.poca import losses as L


def test_lambda_returns_by_hand() -> None:
    r = np.array([1.0, 0.0, 2.0], np.float32)
    v_next = np.array([0.5, 1.0, 3.0], np.float32)  # V after each step; the last: the bootstrap
    g, lam = 0.9, 0.8
    g2 = 2.0 + 0.9 * 3.0  # 4.7
    g1 = 0.0 + 0.9 * (0.2 * 1.0 + 0.8 * g2)  # 0.9 * 3.96 = 3.564
    g0 = 1.0 + 0.9 * (0.2 * 0.5 + 0.8 * g1)  # 1 + 0.9 * 2.9512 = 3.65608
    out = L.lambda_returns(r, v_next, gamma=g, lambd=lam)
    np.testing.assert_allclose(out, [g0, g1, g2], rtol=1e-6)


def test_lambda_returns_group_done_bootstrap_zero_and_td0() -> None:
    r = np.array([0.0, 1.0], np.float32)
    # the whole group is done: the bootstrap is 0
    np.testing.assert_allclose(L.lambda_returns(r, np.array([2.0, 0.0]), gamma=0.5, lambd=1.0), [0.5, 1.0])
    # lambda 0: one-step TD targets r + gamma V'
    np.testing.assert_allclose(L.lambda_returns(r, np.array([2.0, 4.0]), gamma=0.5, lambd=0.0), [1.0, 3.0])


def test_team_rewards_and_advantages() -> None:
    own_and_group = np.array([1.0, 0.5], np.float32)  # own + group reward, as the processor stores them
    mates = np.array([0.25, -1.0], np.float32)
    np.testing.assert_allclose(L.team_rewards(own_and_group, mates), [1.25, -0.5])
    returns = np.array([[3.0, 1.0], [0.0, 2.0]], np.float32)
    baselines = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
    np.testing.assert_allclose(L.advantages(returns, baselines), [1.5, 0.0])  # mean over signals of G - b


def test_total_loss_weights() -> None:
    p, v, b, e = (torch.tensor(x) for x in (0.3, 2.0, 4.0, 1.5))
    # 0.3 + 0.5 * (2 + 0.5 * 4) - 0.01 * 1.5 = 0.3 + 2 - 0.015
    assert float(L.total_loss(p, v, b, e, 0.01)) == pytest.approx(2.285)
