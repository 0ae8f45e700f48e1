"""SAC's networks: built from the network body, initialised as documented, and the numpy actor equal to the
torch reference (`SACNetworks.act`/`values`)."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from fledge.networks.acting import TorchActor, make_actor
from fledge.networks.body import DenseStack, NetworkBody
from fledge.networks.sac import SACNetworks, SACShape, SquashedActor, TwinQ
from fledge.networks.sac_numpy import NumpySACActor

HYBRID = SACShape(obs_size=6, continuous_size=2, branches=(3, 2), hidden_units=64, num_layers=2, normalize=True)
SHAPES = {
    "continuous": replace(HYBRID, branches=()),
    "discrete": replace(HYBRID, continuous_size=0),
    "hybrid": HYBRID,
}


def test_networks_are_built_from_the_body_with_one_normaliser() -> None:
    nets = SACNetworks(HYBRID)
    assert isinstance(nets.policy.body, NetworkBody) and nets.policy.body.dense.copies == 1
    assert isinstance(nets.q.dense, DenseStack) and nets.q.dense.copies == 2 and nets.q.dense.n_in == 8
    assert isinstance(nets.value.dense, DenseStack) and nets.value.dense.copies == 1
    normalizers = [m for m in nets.modules() if type(m).__name__ == "RunningNormalizer"]
    assert normalizers == [nets.policy.normalizer]
    assert all(torch.equal(a, b) for a, b in zip(nets.value.parameters(), nets.target_value.parameters()))
    assert not any(p.requires_grad for p in nets.target_value.parameters())
    x = torch.randn(7, 6)
    assert nets.q(torch.cat([x, torch.zeros(7, 2)], 1)).shape == (2, 7, 1, 5)
    assert nets.value(x).shape == (7, 1)


def test_initialisation_statistics() -> None:
    torch.manual_seed(0)
    shape = SACShape(obs_size=40, continuous_size=30, branches=(40,), hidden_units=256, num_layers=2, n_signals=2)
    nets = SACNetworks(shape).requires_grad_(False)
    h = 256
    dense = nets.policy.body.dense
    assert abs(float(dense.w_in.std()) - 1 / math.sqrt(40)) < 0.05 / math.sqrt(40)  # He-normal, gain 1
    assert abs(float(dense.w_hidden[0].std()) - 1 / math.sqrt(h)) < 0.05 / math.sqrt(h)
    head = nets.policy.head_w
    for columns, gain in ((slice(0, 30), 0.2), (slice(30, 60), 0.2), (slice(60, 100), 0.1)):  # mean, log-std, logits
        assert abs(float(head[:, columns].std()) - gain / math.sqrt(h)) < 0.1 * gain / math.sqrt(h)
    for w, n_out in ((nets.q.head_w, 2 * 40), (nets.value.head_w, 2)):  # critic heads: Xavier-uniform, gain 0.1
        bound = 0.1 * math.sqrt(6 / (h + n_out))
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.9 * bound
    biases = [nets.policy.head_b, nets.q.head_b, nets.value.head_b, dense.b_in, nets.q.dense.b_hidden[0]]
    assert all(not b.any() for b in biases)


def test_numpy_actor_equals_the_torch_modules() -> None:
    torch.manual_seed(1)
    nets = SACNetworks(replace(HYBRID, n_signals=2))
    assert nets.policy.normalizer is not None
    nets.policy.normalizer.update(np.random.default_rng(0).normal(2.0, 3.0, (100, 6)))
    actor = NumpySACActor(nets, rng=np.random.default_rng(0))
    obs = np.random.default_rng(1).normal(2.0, 3.0, (9, 6)).astype(np.float32)
    allowed = np.ones((9, 5), np.bool_)
    allowed[:, 0] = False
    with torch.no_grad():
        x = nets.normalize(torch.from_numpy(obs))
        mean, _, logits = nets.policy.heads(x)
        values = nets.value(x)
    assert mean is not None and logits is not None
    np.testing.assert_allclose(actor.values(obs), values.numpy(), rtol=1e-5, atol=1e-6)
    out = actor.act(obs, allowed, deterministic=True)
    np.testing.assert_allclose(out.continuous, torch.tanh(mean).numpy(), rtol=1e-5, atol=1e-6)
    masked = logits.numpy().copy()
    masked[:, 0] = -1e8
    np.testing.assert_array_equal(out.discrete[:, 0], masked[:, :3].argmax(1))
    np.testing.assert_array_equal(out.discrete[:, 1], masked[:, 3:].argmax(1))
    with torch.no_grad():  # the views follow in-place updates of the parameters
        nets.value.head_b.add_(1.0)
    np.testing.assert_allclose(actor.values(obs), values.numpy() + 1.0, rtol=1e-5, atol=1e-5)


def test_each_twin_draws_its_first_layer_as_one_block() -> None:
    """As two separate networks would: the same seed gives the same weights as before the twins were fused."""
    shape = SACShape(obs_size=5, continuous_size=2, branches=(), hidden_units=8, num_layers=2)
    torch.manual_seed(0)
    q = TwinQ(shape)
    torch.manual_seed(0)
    blocks = torch.empty(2, 7, 8).normal_(std=1 / math.sqrt(7))
    assert torch.equal(q.dense.w_in.detach()[:, :8], blocks[0])
    assert torch.equal(q.dense.w_in.detach()[:, 8:], blocks[1])


def _acting_nets(kind: str) -> tuple[SACNetworks, np.ndarray, np.ndarray | None]:
    """Networks with non-trivial weights and normaliser, observations, and masks that forbid each row's
    most likely action of the first branch (so that a mask ignored would show)."""
    torch.manual_seed(2)
    nets = SACNetworks(replace(SHAPES[kind], n_signals=2))
    with torch.no_grad():
        for p in nets.parameters():
            p.add_(0.3 * torch.randn_like(p))
    assert nets.policy.normalizer is not None
    nets.policy.normalizer.update(np.random.default_rng(0).normal(2.0, 3.0, (100, 6)))
    obs = np.random.default_rng(1).normal(2.0, 3.0, (64, 6)).astype(np.float32)
    if not nets.shape.branches:
        return nets, obs, None
    with torch.no_grad():
        _, _, logits = nets.policy.heads(nets.normalize(torch.from_numpy(obs)))
    assert logits is not None
    allowed = np.ones((64, nets.shape.n_logits), np.bool_)
    allowed[np.arange(64), logits[:, :3].argmax(1).numpy()] = False
    return nets, obs, allowed


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_numpy_actor_equals_the_torch_reference(kind: str) -> None:
    nets, obs, allowed = _acting_nets(kind)
    actor = make_actor(nets, rng=np.random.default_rng(0))
    assert isinstance(actor, NumpySACActor) and NumpySACActor.covers(nets)
    x = torch.from_numpy(obs)
    t_allowed = torch.from_numpy(allowed) if allowed is not None else None
    ref = nets.act(x, t_allowed, generator=None, deterministic=True)
    via_torch = TorchActor(nets, rng=np.random.default_rng(0))
    np.testing.assert_allclose(actor.values(obs), nets.values(x).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(via_torch.values(obs), nets.values(x).numpy(), rtol=1e-6, atol=1e-6)
    for got in (actor.act(obs, allowed, deterministic=True), via_torch.act(obs, allowed, deterministic=True)):
        if nets.shape.continuous_size:
            assert ref.continuous is not None
            np.testing.assert_allclose(got.continuous, ref.continuous.numpy(), rtol=1e-5, atol=1e-6)
        else:
            assert ref.continuous is None and got.continuous.shape == (64, 0)
        if nets.shape.branches:
            assert ref.discrete is not None and allowed is not None
            np.testing.assert_array_equal(got.discrete, ref.discrete.numpy())
            assert got.discrete.dtype == np.int32 and allowed[np.arange(64), got.discrete[:, 0]].all()
        else:
            assert ref.discrete is None and got.discrete.shape == (64, 0)
        np.testing.assert_allclose(got.log_prob, ref.log_prob.numpy(), rtol=1e-4, atol=1e-4)  # of tanh(mean)
        np.testing.assert_allclose(got.entropy, ref.entropy.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(got.values, np.zeros((64, 2), np.float32))
    if allowed is not None:  # sampled actions respect the masks on both paths
        offsets = np.concatenate([[0], np.cumsum(nets.shape.branches)[:-1]])
        for sampled in (actor.act(obs, allowed), via_torch.act(obs, allowed)):
            assert allowed[np.arange(64)[:, None], sampled.discrete + offsets].all()


def test_torch_reference_log_prob_is_that_of_the_sampled_squashed_action() -> None:
    torch.manual_seed(3)
    nets = SACNetworks(SHAPES["continuous"])  # std near 1: u rounded to float32 keeps (u - mean) / std exact enough
    obs = np.random.default_rng(1).normal(0.0, 3.0, (64, 6)).astype(np.float32)
    generator = torch.Generator().manual_seed(0)
    x = torch.from_numpy(obs)
    out = nets.act(x, None, generator=generator, deterministic=False)
    noise = torch.randn((64, 2), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean, log_std, _ = nets.policy.heads(nets.normalize(x))
        assert mean is not None and log_std is not None
        u = (mean + log_std.exp() * noise).double()
        base = torch.distributions.Normal(mean.double(), log_std.exp().double())
        tanh = torch.distributions.TanhTransform()
        expected = (base.log_prob(u) - tanh.log_abs_det_jacobian(u, torch.tanh(u))).sum(-1)
    assert out.continuous is not None
    np.testing.assert_allclose(out.continuous.numpy(), torch.tanh(u).float().numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out.log_prob.numpy(), expected.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.entropy.numpy(), base.entropy().sum(-1).numpy(), rtol=1e-5, atol=1e-5)


def test_networks_the_numpy_actor_does_not_cover_act_through_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    nets = SACNetworks(HYBRID)
    assert NumpySACActor.covers(nets) and not NumpySACActor.covers(object())
    monkeypatch.setattr(SquashedActor, "vector_mlp", property(lambda self: False))
    assert not NumpySACActor.covers(nets)
    assert isinstance(make_actor(nets, rng=np.random.default_rng(0)), TorchActor)
