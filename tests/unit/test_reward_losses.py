"""The reward signals' formulas (rewards/losses.py) against hand computations on tiny inputs."""

from __future__ import annotations

import math

import pytest
import torch

from fledge.rewards import losses as L


def t(*rows: list[float]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_curiosity_forward_error_reward_clip_and_zero_strength() -> None:
    phi_next = t([1.0, 2.0], [0.0, 0.0])
    predicted = t([0.0, 0.0], [3.0, 4.0])
    # row 0: 0.5 * (1 + 4) = 2.5; row 1: 0.5 * (9 + 16) = 12.5
    torch.testing.assert_close(L.forward_error(phi_next, predicted), torch.tensor([2.5, 12.5]))
    # strength 0.1: clipped at 1 / 0.1 = 10
    torch.testing.assert_close(L.curiosity_reward(phi_next, predicted, 0.1), torch.tensor([2.5, 10.0]))
    # strength 0.5: clipped at 2
    torch.testing.assert_close(L.curiosity_reward(phi_next, predicted, 0.5), torch.tensor([2.0, 2.0]))
    # strength 0: no clip
    torch.testing.assert_close(L.curiosity_reward(phi_next, predicted, 0.0), torch.tensor([2.5, 12.5]))


def test_inverse_loss_continuous_and_discrete_by_hand() -> None:
    pred = t([0.5, -1.0], [0.0, 0.0])
    act = t([1.0, 1.0], [0.0, 1.0])
    # squared errors summed over dims: 0.25 + 4 = 4.25 and 1; mean 2.625
    cont = L.inverse_loss(predicted_continuous=pred, continuous=act, logits=[], discrete=None)
    assert float(cont) == pytest.approx(2.625)
    logits = [t([0.0, math.log(3.0)], [0.0, 0.0])]  # softmax row 0: [1/4, 3/4]; row 1: [1/2, 1/2]
    disc = torch.tensor([[1], [0]])
    # cross-entropy: -log(3/4) and -log(1/2)
    expected = (-math.log(0.75) - math.log(0.5)) / 2
    assert float(L.inverse_loss(predicted_continuous=None, continuous=None, logits=logits, discrete=disc)) == (
        pytest.approx(expected, rel=1e-6)
    )
    both = L.inverse_loss(predicted_continuous=pred, continuous=act, logits=logits, discrete=disc)
    assert float(both) == pytest.approx(2.625 + expected, rel=1e-6)
    # masks: only row 0 counts
    masked = L.inverse_loss(
        predicted_continuous=pred, continuous=act, logits=[], discrete=None, masks=torch.tensor([1.0, 0.0])
    )
    assert float(masked) == pytest.approx(4.25)
    with pytest.raises(ValueError, match="continuous or a discrete"):
        L.inverse_loss(predicted_continuous=None, continuous=None, logits=[], discrete=None)


def test_curiosity_total_loss_weights() -> None:
    # 10 * (0.2 * 3 + 0.8 * 0.5) = 10 * 1.0
    assert float(L.curiosity_loss(torch.tensor(3.0), torch.tensor(0.5))) == pytest.approx(10.0)


def test_rnd_error_by_hand() -> None:
    # (1 - 0)^2 + (2 - 4)^2 = 5; (0.5 - 0)^2 = 0.25
    torch.testing.assert_close(
        L.rnd_error(t([1.0, 2.0], [0.5, 0.0]), t([0.0, 4.0], [0.0, 0.0])), torch.tensor([5.0, 0.25])
    )


def test_gail_reward_by_hand() -> None:
    d = torch.tensor([0.0, 0.5, 0.9])
    expected = torch.tensor([0.0, -math.log(1 - 0.5 * (1 - 1e-7)), -math.log(1 - 0.9 * (1 - 1e-7))])
    torch.testing.assert_close(L.gail_reward(d), expected, rtol=1e-5, atol=1e-6)
    # D = 1: the 1e-7 keeps it finite, about -log(1e-7) (float32 rounds 1 - 1e-7)
    assert float(L.gail_reward(torch.tensor(1.0))) == pytest.approx(-math.log(1e-7), rel=0.02)


def test_discriminator_loss_by_hand() -> None:
    expert = torch.tensor([0.8, 0.5])
    policy = torch.tensor([0.2, 0.5])
    # -mean(log(0.8) + log(0.8), log(0.5) + log(0.5)) with the 1e-7 inside each log
    e = 1e-7
    expected = -((math.log(0.8 + e) + math.log(0.8 + e)) + (math.log(0.5 + e) + math.log(0.5 + e))) / 2
    assert float(L.discriminator_loss(expert, policy)) == pytest.approx(expected, rel=1e-6)


def test_interpolation_and_gradient_penalty_by_hand() -> None:
    expert, policy = t([1.0, 1.0], [4.0, 0.0]), t([3.0, -1.0], [0.0, 0.0])
    w = torch.tensor([0.25, 0.5])
    torch.testing.assert_close(L.interpolate(expert, policy, w), t([2.5, -0.5], [2.0, 0.0]))
    # gradient rows: ||(3, 4)|| = 5 -> (5 - 1)^2 = 16; ||(0, 0)|| = 0 -> 1; joined with a second input of (0,)/(1,):
    g1 = t([3.0, 4.0], [0.0, 0.0])
    assert float(L.gradient_penalty([g1])) == pytest.approx((16.0 + 1.0) / 2)
    g2 = t([0.0], [1.0])  # row 1's norm becomes 1: no penalty
    assert float(L.gradient_penalty([g1, g2])) == pytest.approx(16.0 / 2)


def test_gradient_penalty_of_a_linear_discriminator() -> None:
    """D(x) = w . x has gradient w everywhere: the penalty is (||w|| - 1)^2."""
    w = torch.tensor([0.6, 0.8, 1.0])
    x = torch.randn(4, 3, requires_grad=True)
    (grad,) = torch.autograd.grad((x @ w).sum(), [x])
    expected = (math.sqrt(0.36 + 0.64 + 1.0) - 1.0) ** 2
    assert float(L.gradient_penalty([grad])) == pytest.approx(expected, rel=1e-6)


def test_vail_kl_by_hand() -> None:
    # standard normal code: KL 0
    assert float(L.vail_kl(torch.zeros(3, 2), torch.ones(2))) == pytest.approx(0.0)
    # mu = (1, 0), sigma = (1, 2): 0.5 * (1 + 1 - 1 - 0) + 0.5 * (0 + 4 - 1 - log 4)
    mu = t([1.0, 0.0])
    expected = 0.5 + 0.5 * (3.0 - math.log(4.0))
    assert float(L.vail_kl(mu, torch.tensor([1.0, 2.0]))) == pytest.approx(expected, rel=1e-6)
    # the mean over rows
    mu2 = t([1.0, 0.0], [0.0, 0.0])
    assert float(L.vail_kl(mu2, torch.tensor([1.0, 1.0]))) == pytest.approx(0.25)


def test_vail_beta_update_and_loss_term_by_hand() -> None:
    assert L.vail_beta_update(0.0, 2.5) == pytest.approx(0.001)  # 0 + 0.0005 * 2
    assert L.vail_beta_update(0.001, 0.5) == pytest.approx(0.001)  # at the constraint: unchanged
    assert L.vail_beta_update(0.0001, 0.0) == 0.0  # 0.0001 - 0.00025 < 0: floored at 0
    assert float(L.vail_loss_term(torch.tensor(1.5), 0.2)) == pytest.approx(0.2)  # 0.2 * (1.5 - 0.5)


def test_masked_mean() -> None:
    x = torch.tensor([1.0, 2.0, 6.0])
    assert float(L.masked_mean(x, None)) == pytest.approx(3.0)
    assert float(L.masked_mean(x, torch.tensor([1.0, 1.0, 0.0]))) == pytest.approx(1.5)
    assert float(L.masked_mean(x, torch.zeros(3))) == 0.0
