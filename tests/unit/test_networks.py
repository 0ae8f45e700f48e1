"""Normaliser, distributions and the numpy acting path against hand computations and torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fledge.envs.api import ActionSpec
from fledge.networks import distributions as D
from fledge.networks.acting import TorchActor, make_actor
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
    acts, _, _ = D.sample_categorical(logits, allowed, (4,), generator=g)
    assert not (acts == 2).any()
    counts = torch.bincount(acts[:, 0], minlength=4).float() / 2000
    assert counts[[0, 1, 3]].min() > 0.28


ACTOR_SPECS = {
    "continuous": ActionSpec(2, ()),
    "discrete": ActionSpec(0, (3, 2)),
    "hybrid": ActionSpec(1, (4,)),
}


def acting_model(kind: str, *, shared: bool, layers: int = 2) -> tuple[ActorCritic, np.ndarray, np.ndarray | None]:
    """A normalised model with moved weights, observations and masks (the first action of each row masked)."""
    torch.manual_seed(layers + 10 * shared)
    spec = ACTOR_SPECS[kind]
    model = ActorCritic(
        obs_size=5, action_spec=spec, shape=NetworkShape(16, layers, True), value_names=("a", "b"), shared_critic=shared
    )
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    model.normalizer.update(np.random.default_rng(0).normal(1.0, 2.0, size=(50, 5)))  # type: ignore[union-attr]
    obs = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32)
    n_mask = sum(spec.discrete_branches)
    allowed = None
    if n_mask:
        allowed = np.ones((7, n_mask), dtype=bool)
        allowed[:, 0] = False
    return model, obs, allowed


@pytest.mark.parametrize("kind", sorted(ACTOR_SPECS))
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_numpy_actor_matches_torch(kind: str, shared: bool, layers: int) -> None:
    model, obs, allowed = acting_model(kind, shared=shared, layers=layers)
    actor = make_actor(model, rng=np.random.default_rng(0))
    assert isinstance(actor, NumpyActor)
    spec = ACTOR_SPECS[kind]
    x_raw = torch.from_numpy(obs)
    t_allowed = torch.from_numpy(allowed) if allowed is not None else None
    # sampled actions: log-probs, entropies and values of the actions taken
    out = actor.act(obs, allowed)
    logp, ent, values = model.evaluate(
        model.normalize(x_raw),
        torch.from_numpy(out.continuous) if spec.continuous_size else None,
        torch.from_numpy(out.discrete).long() if spec.discrete_branches else None,
        t_allowed,
    )
    np.testing.assert_allclose(out.log_prob, logp.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.entropy, ent.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.values, values.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(actor.values(obs), model.values(x_raw).detach().numpy(), rtol=1e-4, atol=1e-5)
    if allowed is not None:
        assert not (out.discrete[:, 0] == 0).any()
    # deterministic actions equal the torch module's, and the torch path answers the same
    det = actor.act(obs, allowed, deterministic=True)
    ref = model.act(x_raw, t_allowed, generator=None, deterministic=True)
    via_torch = TorchActor(model, rng=np.random.default_rng(0)).act(obs, allowed, deterministic=True)
    for got in (det, via_torch):
        if spec.continuous_size:
            assert ref.continuous is not None
            np.testing.assert_allclose(got.continuous, ref.continuous.numpy(), rtol=1e-4, atol=1e-5)
        else:
            assert got.continuous.shape == (7, 0)
        if spec.discrete_branches:
            assert ref.discrete is not None
            np.testing.assert_array_equal(got.discrete, ref.discrete.numpy())
            assert got.discrete.dtype == np.int32
        else:
            assert got.discrete.shape == (7, 0)
        np.testing.assert_allclose(got.log_prob, ref.log_prob.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got.entropy, ref.entropy.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(got.values, ref.values.numpy(), rtol=1e-4, atol=1e-5)


def test_numpy_actor_follows_weight_updates_after_sync() -> None:
    model, obs, allowed = acting_model("hybrid", shared=False)
    actor = NumpyActor(model, rng=np.random.default_rng(0))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05)
    actor.sync()
    ref = model.act(torch.from_numpy(obs), torch.from_numpy(allowed), generator=None, deterministic=True)  # type: ignore[arg-type]
    got = actor.act(obs, allowed, deterministic=True)
    np.testing.assert_allclose(got.log_prob, ref.log_prob.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.values, ref.values.numpy(), rtol=1e-4, atol=1e-5)


def test_torch_actor_samples_follow_its_numpy_generator() -> None:
    model, obs, allowed = acting_model("hybrid", shared=False)
    a = TorchActor(model, rng=np.random.default_rng(3))
    b = TorchActor(model, rng=np.random.default_rng(3))
    first, second = a.act(obs, allowed), b.act(obs, allowed)
    np.testing.assert_array_equal(first.continuous, second.continuous)
    np.testing.assert_array_equal(first.discrete, second.discrete)
    assert not (first.discrete[:, 0] == 0).any()
    assert not np.array_equal(a.act(obs, allowed).continuous, first.continuous)


def test_models_the_accelerator_does_not_cover_act_through_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    model, _, _ = acting_model("continuous", shared=False)
    monkeypatch.setattr(NumpyActor, "covers", staticmethod(lambda model: False))
    assert isinstance(make_actor(model, rng=np.random.default_rng(0)), TorchActor)


def test_checkpoint_names_are_unchanged_and_load_back() -> None:
    model, obs, _ = acting_model("continuous", shared=False)
    state = model.state_dict()
    norm = [f"normalizer.{k}" for k in ("count", "mean", "m2", "offset", "scale")]
    body = ["body.w_in", "body.b_in", "body.w_hidden.0", "body.b_hidden.0"]
    heads = ["mu.weight", "mu.bias", "value_head.weight", "value_head.bias"]
    assert list(state) == ["log_std", *norm, *body, *heads]  # the names and order checkpoints have always had
    other, _, _ = acting_model("continuous", shared=False, layers=2)
    with torch.no_grad():
        for p in other.parameters():
            p.zero_()
    other.load_state_dict(state)
    x = torch.from_numpy(obs)
    torch.testing.assert_close(other.values(x), model.values(x))
