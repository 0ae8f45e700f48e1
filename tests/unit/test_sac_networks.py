"""SAC's networks: built from the network body, initialised as documented, and the numpy actor equal to them."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from fledge.networks.body import DenseStack, NetworkBody
from fledge.networks.sac import SACNetworks, SACShape, TwinQ
from fledge.networks.sac_numpy import NumpySACActor

HYBRID = SACShape(obs_size=6, continuous_size=2, branches=(3, 2), hidden_units=64, num_layers=2, normalize=True)


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
