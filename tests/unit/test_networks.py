"""Normaliser, distributions and the numpy acting path against hand computations and torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fledge.envs.api import ActionSpec
from fledge.networks import distributions as D
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.networks.normalizer import CLIP, RunningNormalizer
from fledge.networks.numpy_actor import NumpyActor


def test_normalizer_matches_batch_statistics_in_chunks() -> None:
    rng = np.random.default_rng(1)
    data = rng.normal(3.0, 2.0, size=(1000, 3))
    norm = RunningNormalizer(3)
    for chunk in np.array_split(data, 7):
        norm.update(chunk)
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(norm.variance(), data.var(axis=0), rtol=1e-10)
    x = torch.tensor([[3.0, 3.0, 100.0]])
    out = norm(x).numpy()[0]
    expected = (np.array([3.0, 3.0, 100.0]) - data.mean(axis=0)) / np.sqrt(data.var(axis=0) + 1e-8)
    np.testing.assert_allclose(out[:2], expected[:2], rtol=1e-4, atol=1e-5)
    assert out[2] == pytest.approx(5.0)  # clipped


def test_normalizer_is_identity_before_updates_and_survives_state_dict() -> None:
    norm = RunningNormalizer(2)
    x = torch.tensor([[0.5, -2.0]])
    assert torch.allclose(norm(x), x)
    norm.update(np.array([[1.0, 2.0], [3.0, 4.0]]))
    other = RunningNormalizer(2)
    other.load_state_dict(norm.state_dict())
    assert torch.allclose(other(x), norm(x))


def numpy_reader(norm: RunningNormalizer, x: np.ndarray) -> np.ndarray:
    """What the numpy acting copies compute from the normaliser's shared arrays."""
    return np.clip(x * norm.arrays.scale - norm.arrays.offset, -CLIP, CLIP)


def test_normalizer_statistics_reach_numpy_readers_through_moves_and_loads() -> None:
    """The numpy acting copies keep references to the normaliser's arrays: updates, .to(cpu) and loaded
    states must all be seen through them, and forward() must agree with what they compute from them."""
    rng = np.random.default_rng(0)
    norm = RunningNormalizer(3)
    scale = norm.arrays.scale
    norm.update(rng.normal(2.0, 3.0, (50, 3)))
    assert norm.to("cpu") is norm
    norm.update(rng.normal(2.0, 3.0, (50, 3)))
    other = RunningNormalizer(3)
    other.update(rng.normal(-1.0, 0.5, (40, 3)))
    norm.load_state_dict(other.state_dict())
    assert scale is norm.arrays.scale
    np.testing.assert_allclose(scale, other.arrays.scale)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    np.testing.assert_allclose(norm(torch.from_numpy(x)).numpy(), numpy_reader(norm, x), rtol=1e-6)
    norm.double().float()  # buffers replaced by new tensors: the arrays follow and stay shared
    assert scale is norm.arrays.scale
    norm.update(rng.normal(5.0, 1.0, (30, 3)))
    np.testing.assert_allclose(norm(torch.from_numpy(x)).numpy(), numpy_reader(norm, x), rtol=1e-6)


def test_gaussian_log_prob_and_entropy_match_torch() -> None:
    mean = torch.tensor([[0.1, -0.3]])
    log_std = torch.tensor([0.2, -0.5])
    a = torch.tensor([[0.4, 0.0]])
    ref = torch.distributions.Normal(mean, log_std.exp())
    assert D.gaussian_log_prob(a, mean, log_std).item() == pytest.approx(ref.log_prob(a).sum().item(), rel=1e-6)
    assert D.gaussian_entropy(log_std).item() == pytest.approx(ref.entropy().sum().item(), rel=1e-6)


def test_categorical_with_mask() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0, 0.0, 0.0]])
    allowed = torch.tensor([[True, True, False, True, True]])
    actions = torch.tensor([[1, 0]])
    logp, ent = D.categorical_log_prob_entropy(logits, allowed, actions, (3, 2))
    p0 = torch.softmax(torch.tensor([0.0, 1.0]), 0)
    expected = math.log(p0[1].item()) + math.log(0.5)
    assert logp.item() == pytest.approx(expected, rel=1e-6)
    h = -(p0 * p0.log()).sum().item() + math.log(2)
    assert ent.item() == pytest.approx(h, rel=1e-6)


def test_masked_actions_are_never_sampled() -> None:
    logits = torch.zeros(2000, 4)
    allowed = torch.ones(2000, 4, dtype=torch.bool)
    allowed[:, 2] = False
    g = torch.Generator().manual_seed(0)
    acts, _ = D.sample_categorical(logits, allowed, (4,), generator=g)
    assert not (acts == 2).any()
    counts = torch.bincount(acts[:, 0], minlength=4).float() / 2000
    assert counts[[0, 1, 3]].min() > 0.28


@pytest.mark.parametrize(
    ("spec", "shared"),
    [
        (ActionSpec(2, ()), False),
        (ActionSpec(0, (3, 2)), False),
        (ActionSpec(1, (4,)), True),
    ],
)
def test_numpy_actor_matches_torch(spec: ActionSpec, shared: bool) -> None:
    torch.manual_seed(0)
    model = ActorCritic(obs_size=5, action_spec=spec, shape=NetworkShape(16, 2, True), shared_critic=shared)
    model.normalizer.update(np.random.default_rng(0).normal(size=(50, 5)))  # type: ignore[union-attr]
    actor = NumpyActor(model, rng=np.random.default_rng(0))
    obs = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32)
    n_mask = sum(spec.discrete_branches)
    allowed = np.ones((7, n_mask), dtype=bool)
    if n_mask:
        allowed[:, 0] = False
    out = actor.act(obs, allowed if n_mask else None)
    x = model.normalize(torch.from_numpy(obs))
    logp, ent, values = model.evaluate(
        x,
        torch.from_numpy(out.continuous) if spec.continuous_size else None,
        torch.from_numpy(out.discrete).long() if spec.discrete_branches else None,
        torch.from_numpy(allowed) if n_mask else None,
    )
    np.testing.assert_allclose(out.log_prob, logp.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.entropy, ent.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.values, values.detach().numpy(), rtol=1e-4, atol=1e-5)
    if n_mask:
        assert not (out.discrete[:, 0] == 0).any()
