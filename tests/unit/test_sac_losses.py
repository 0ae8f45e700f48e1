"""Every SAC formula against hand computations (and torch's own distributions where one exists)."""

from __future__ import annotations

import math

import pytest
import torch

from fledge.networks import distributions as D
from fledge.trainers.sac import losses as L


def test_q_target_uses_gamma_and_done_per_signal() -> None:
    rewards = torch.tensor([[1.0, 0.5], [0.0, -1.0]])
    done = torch.tensor([0.0, 1.0])
    next_v = torch.tensor([[2.0, 4.0], [3.0, 5.0]])
    gammas = torch.tensor([0.9, 0.5])
    y = L.q_target(rewards, done, next_v, gammas)
    expected = torch.tensor([[1.0 + 0.9 * 2.0, 0.5 + 0.5 * 4.0], [0.0, -1.0]])
    assert torch.allclose(y, expected)
    # bool done flags work the same
    assert torch.allclose(L.q_target(rewards, done.bool(), next_v, gammas), expected)


def test_masked_mean_is_per_element() -> None:
    x = torch.tensor([[1.0, 3.0], [5.0, 7.0], [100.0, 100.0]])
    assert L.masked_mean(x).item() == pytest.approx(216.0 / 6)
    mask = torch.tensor([1.0, 1.0, 0.0])
    assert L.masked_mean(x, mask).item() == pytest.approx(16.0 / 4)  # padded row excluded element by element
    assert L.masked_mean(x, torch.zeros(3)).item() == 0.0  # no division by zero


def test_squared_error_loss_is_half_mse() -> None:
    pred = torch.tensor([[1.0], [2.0]])
    target = torch.tensor([[2.0], [4.0]])
    assert L.squared_error_loss(pred, target).item() == pytest.approx(0.5 * (1.0 + 4.0) / 2)
    assert L.squared_error_loss(pred, target, torch.tensor([1.0, 0.0])).item() == pytest.approx(0.5)


def test_tanh_log_det_jacobian_is_exact_and_stable() -> None:
    u = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.0], dtype=torch.float64)
    naive = torch.log(1.0 - torch.tanh(u) ** 2)
    assert torch.allclose(D.tanh_log_det_jacobian(u), naive, rtol=1e-12)
    big = torch.tensor([20.0, -20.0, 60.0])  # 1 - tanh^2 underflows to 0 in float32
    out = D.tanh_log_det_jacobian(big)
    assert torch.isfinite(out).all()
    assert out[0].item() == pytest.approx(2 * (math.log(2) - 20.0), rel=1e-6)
    assert out[2].item() == pytest.approx(2 * (math.log(2) - 60.0), rel=1e-6)


def test_squashed_log_prob_matches_torch_transformed_distribution() -> None:
    torch.manual_seed(0)
    mean = torch.randn(6, 3, dtype=torch.float64)
    log_std = torch.randn(6, 3, dtype=torch.float64).clamp(-1.5, 0.5)
    base = torch.distributions.Normal(mean, log_std.exp())
    dist = torch.distributions.TransformedDistribution(base, [torch.distributions.TanhTransform(cache_size=1)])
    a = dist.rsample()  # cached, so log_prob uses the exact pre-tanh value
    expected = dist.log_prob(a).sum(-1)
    u = torch.atanh(a.clamp(-1 + 1e-12, 1 - 1e-12))
    assert torch.allclose(D.squashed_gaussian_log_prob(u, mean, log_std), expected, atol=1e-6)
    noise = (u - mean) / log_std.exp()
    assert torch.allclose(D.squashed_log_prob_from_noise(noise, log_std, u), expected, atol=1e-6)


def test_gaussian_entropy_is_joint_entropy_of_the_unsquashed_gaussian() -> None:
    log_std = torch.tensor([[0.2, -0.7]])
    ref = torch.distributions.Normal(torch.zeros(1, 2), log_std.exp()).entropy().sum(-1)
    assert torch.allclose(D.gaussian_entropy(log_std), ref)


def test_taken_and_expected_branch_values() -> None:
    # one sample, one signal, branches (2, 3): columns [a0 a1 | b0 b1 b2]
    q = torch.tensor([[[1.0, 2.0, 10.0, 20.0, 30.0]]])
    one_hot = torch.tensor([[0.0, 1.0, 0.0, 0.0, 1.0]])
    assert L.taken_action_values(q, one_hot, 2).item() == pytest.approx((2.0 + 30.0) / 2)
    probs = torch.tensor([[0.25, 0.75, 0.5, 0.5, 0.0]])
    expected = ((0.25 * 1 + 0.75 * 2) + (0.5 * 10 + 0.5 * 20)) / 2
    assert L.expected_branch_values(q, probs, 2).item() == pytest.approx(expected)
    # a leading twin dimension is carried through
    twin = torch.stack([q, 2 * q])
    assert L.taken_action_values(twin, one_hot, 2).shape == (2, 1, 1)


def test_branch_expected_log_probs_are_negative_entropies() -> None:
    p = torch.tensor([[0.2, 0.8, 0.1, 0.3, 0.6]])
    lp = p.log()
    out = L.branch_expected_log_probs(p, lp, (2, 3))
    h0 = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8))
    h1 = -(0.1 * math.log(0.1) + 0.3 * math.log(0.3) + 0.6 * math.log(0.6))
    assert torch.allclose(out, torch.tensor([[-h0, -h1]]))


def test_entropy_penalty_soft_value_and_policy_loss_hybrid() -> None:
    alpha_c = torch.tensor([0.5])
    log_pi_c = torch.tensor([-1.0, 2.0])
    alpha_d = torch.tensor([0.1, 0.2])
    branch_lp = torch.tensor([[-0.5, -1.0], [-0.3, -0.2]])
    pen = L.entropy_penalty(alpha_c, log_pi_c, alpha_d, branch_lp)
    expected = torch.tensor([0.5 * -1.0 + 0.1 * -0.5 + 0.2 * -1.0, 0.5 * 2.0 + 0.1 * -0.3 + 0.2 * -0.2])
    assert torch.allclose(pen, expected)
    expected_q = torch.tensor([[3.0], [4.0]])
    # the continuous term is SUBTRACTED also for hybrid actions (1.1.0 added it)
    assert torch.allclose(L.soft_value(expected_q, pen), expected_q - expected.unsqueeze(-1))
    assert L.policy_loss(expected_q, pen).item() == pytest.approx(((expected[0] - 3) + (expected[1] - 4)).item() / 2)
    # continuous only / discrete only
    assert torch.allclose(L.entropy_penalty(alpha_c, log_pi_c, None, None), 0.5 * log_pi_c)
    assert torch.allclose(L.entropy_penalty(None, None, alpha_d, branch_lp), (branch_lp * alpha_d).sum(-1))


def test_policy_loss_averages_signals() -> None:
    q = torch.tensor([[1.0, 3.0]])
    assert L.policy_loss(q, torch.tensor([0.5])).item() == pytest.approx(0.5 - 2.0)


def test_entropy_coefficient_loss_and_its_direction() -> None:
    log_alpha_c = torch.tensor([math.log(0.5)], requires_grad=True)
    log_alpha_d = torch.tensor([0.0, math.log(2.0)], requires_grad=True)
    log_pi_c = torch.tensor([1.0, 3.0], requires_grad=True)
    branch_lp = torch.tensor([[-0.1, -1.0], [-0.3, -0.5]], requires_grad=True)
    t0, t1 = 0.2 * math.log(2), 0.2 * math.log(3)
    target_c, target_d = -2.0, torch.tensor([t0, t1])
    loss = L.entropy_coefficient_loss(log_alpha_c, log_pi_c, target_c, log_alpha_d, branch_lp, target_d)
    cont = -math.log(0.5) * ((1.0 - 2.0) + (3.0 - 2.0)) / 2
    d0 = -0.0 * (((-0.1 + t0) + (-0.3 + t0)) / 2)
    d1 = -math.log(2.0) * (((-1.0 + t1) + (-0.5 + t1)) / 2)
    assert loss.item() == pytest.approx(cont + d0 + d1, rel=1e-6)
    loss.backward()
    assert log_pi_c.grad is None and branch_lp.grad is None  # log-probabilities carry no gradient
    # log pi + target > 0 means entropy below target: gradient descent raises the coefficient
    low_entropy = L.entropy_coefficient_loss(log_alpha_c, torch.tensor([5.0]), target_c, None, None, None)
    (grad,) = torch.autograd.grad(low_entropy, log_alpha_c)
    assert grad.item() < 0


def test_target_entropies() -> None:
    cont, disc = L.target_entropies(2, (3, 2))
    assert cont == -2.0
    assert disc == pytest.approx([0.2 * math.log(3), 0.2 * math.log(2)])
    assert L.target_entropies(0, ()) == (-0.0, [])


def test_soft_update() -> None:
    target = [torch.tensor([0.0, 10.0])]
    source = [torch.tensor([1.0, 0.0])]
    L.soft_update(target, source, 0.1)
    assert torch.allclose(target[0], torch.tensor([0.1, 9.0]))


def test_learning_rate_schedules() -> None:
    assert L.decayed(3e-4, L.LEARNING_RATE_FLOOR, 500, 1000, "constant") == 3e-4
    assert L.decayed(1.0, 0.0, 250, 1000, "linear") == pytest.approx(0.75)
    assert L.decayed(1.0, 1e-10, 5000, 1000, "linear") == pytest.approx(1e-10)
    with pytest.raises(ValueError):
        L.decayed(1.0, 0.0, 0, 10, "cosine")
