"""Behavioral cloning's formulas against hand computations (imitation/losses.py)."""

from __future__ import annotations

import math

import pytest
import torch

from fledge.imitation import losses as L


def test_learning_rate_is_strength_times_policy_rate_decaying_linearly_to_the_floor() -> None:
    # lr 3e-4, strength 0.5: 1.5e-4 at step 0; steps 1000: at 250 three quarters of the way above the floor
    assert L.bc_learning_rate(3e-4, 0.5, 1000, 0) == pytest.approx(1.5e-4, rel=1e-12)
    assert L.bc_learning_rate(3e-4, 0.5, 1000, 250) == pytest.approx((1.5e-4 - 1e-10) * 0.75 + 1e-10, rel=1e-12)
    assert L.bc_learning_rate(3e-4, 0.5, 1000, 1000) == pytest.approx(1e-10)
    assert L.bc_learning_rate(3e-4, 0.5, 1000, 5000) == pytest.approx(1e-10)  # flat after `steps`
    assert L.bc_learning_rate(3e-4, 0.5, 0, 10**9) == pytest.approx(1.5e-4)  # steps 0: constant


def test_continuous_loss_is_the_mean_squared_error_over_rows_and_dimensions() -> None:
    policy = torch.tensor([[0.5, -1.0], [0.0, 0.25]])
    expert = torch.tensor([[1.0, -1.0], [-0.5, 0.75]])
    # squared errors 0.25, 0, 0.25, 0.25 -> mean 0.1875
    assert float(L.continuous_bc_loss(policy, expert)) == pytest.approx(0.1875)


def test_discrete_loss_is_the_mean_cross_entropy_over_branches_and_rows() -> None:
    # two branches (2 and 3 actions), two rows
    logits = torch.tensor([[0.0, math.log(3.0), 0.0, 0.0, 0.0], [1.0, 1.0, math.log(2.0), 0.0, 0.0]])
    expert = torch.tensor([[1, 2], [0, 0]])
    # row 0: branch 0 p(1) = 3/4; branch 1 p(2) = 1/3. row 1: branch 0 p(0) = 1/2; branch 1 p(0) = 2/4
    expected = (-math.log(0.75) - math.log(1 / 3) - math.log(0.5) - math.log(0.5)) / 4
    assert float(L.discrete_bc_loss(logits, expert, None, (2, 3))) == pytest.approx(expected, rel=1e-6)


def test_masked_actions_take_no_probability() -> None:
    logits = torch.tensor([[0.0, 0.0, 0.0]])
    allowed = torch.tensor([[True, True, False]])
    # the masked third action is out: p(0) = 1/2, not 1/3
    loss = L.discrete_bc_loss(logits, torch.tensor([[0]]), allowed, (3,))
    assert float(loss) == pytest.approx(math.log(2.0), rel=1e-6)


def test_losses_have_gradients_towards_the_expert() -> None:
    mean = torch.tensor([[0.2]], requires_grad=True)
    L.continuous_bc_loss(mean, torch.tensor([[1.0]])).backward()
    assert mean.grad is not None and float(mean.grad) == pytest.approx(2 * (0.2 - 1.0))
    logits = torch.zeros(1, 2, requires_grad=True)
    L.discrete_bc_loss(logits, torch.tensor([[1]]), None, (2,)).backward()
    assert logits.grad is not None
    assert torch.allclose(logits.grad, torch.tensor([[0.5, -0.5]]))  # softmax - one_hot
