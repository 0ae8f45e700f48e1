"""The hand-derived SAC gradients equal the autograd reference (losses.sac_losses + one backward pass), and the
updater trains through the reference wherever the hand gradients do not cover the networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fledge.networks.distributions import MASKED_LOGIT
from fledge.networks.sac import SACNetworks, SACShape, TwinQ
from fledge.trainers.sac import fast_update
from fledge.trainers.sac.losses import sac_losses
from fledge.trainers.sac.records import Batches
from fledge.trainers.sac.update import AutogradGradients, SACUpdater, discrete_one_hot

ACTIONS = {  # (continuous size, branches)
    "continuous": (2, ()),
    "discrete-1": (0, (3,)),
    "discrete-3": (0, (3, 2, 4)),
    "hybrid": (2, (3, 2)),
}


def make(
    kind: str, *, layers: int = 2, normalize: bool = True, signals: int = 1, seed: int = 0, autograd: bool = False
) -> SACUpdater:
    c, branches = ACTIONS[kind]
    shape = SACShape(
        obs_size=5,
        continuous_size=c,
        branches=branches,
        hidden_units=12,
        num_layers=layers,
        normalize=normalize,
        n_signals=signals,
    )
    torch.manual_seed(seed)
    nets = SACNetworks(shape)
    if nets.policy.normalizer is not None:
        nets.policy.normalizer.update(np.random.default_rng(seed).normal(1.0, 3.0, (50, 5)))
    gammas = np.linspace(0.9, 0.99, signals).astype(np.float32)
    return SACUpdater(nets, gammas=gammas, tau=0.05, init_entcoef=0.3, lr=1e-2, autograd=autograd)


def batches(nets: SACNetworks, n: int, size: int = 16, seed: int = 1) -> Batches:
    """n minibatches of random experience, prepared as the trainer prepares them (half the rows masked)."""
    shape, rng = nets.shape, np.random.default_rng(seed)
    rows = n * size
    c, branches, signals = shape.continuous_size, shape.branches, shape.n_signals
    with torch.no_grad():
        x = nets.normalize(torch.from_numpy(rng.normal(1.0, 3.0, (rows, shape.obs_size)).astype(np.float32)))
        next_x = nets.normalize(torch.from_numpy(rng.normal(1.0, 3.0, (rows, shape.obs_size)).astype(np.float32)))
    done = torch.from_numpy((rng.random(rows) < 0.2).astype(np.float32))
    gammas = torch.linspace(0.9, 0.99, signals)
    action = torch.from_numpy(rng.uniform(-1, 1, (rows, c)).astype(np.float32)) if c else None
    one_hot = allowed = mask_add = None
    if branches:
        discrete = np.stack([rng.integers(0, b, rows) for b in branches], axis=1)
        one_hot = torch.from_numpy(discrete_one_hot(discrete, branches))
        allowed_np = np.ones((rows, shape.n_logits), np.bool_)
        allowed_np[::2, 1] = discrete[::2, 0] == 1  # mask an action of the first branch unless it was taken
        allowed = torch.from_numpy(allowed_np)
        mask_add = torch.from_numpy(np.where(allowed_np, np.float32(0.0), np.float32(MASKED_LOGIT)))
    return Batches(
        size=size,
        x=x,
        next_x=next_x,
        rewards=torch.from_numpy(rng.normal(0, 1, (rows, signals)).astype(np.float32)),
        done=done,
        discount=(1.0 - done)[:, None] * gammas,
        q_input=torch.cat([x, action], 1) if action is not None else x,
        action=action,
        noise=torch.randn(rows, c, generator=torch.Generator().manual_seed(seed)) if c else None,
        one_hot=one_hot,
        allowed=allowed,
        mask_add=mask_add,
    )


@pytest.mark.parametrize("signals", [1, 2])
@pytest.mark.parametrize("normalize", [True, False], ids=["normalize", "raw"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("kind", list(ACTIONS))
def test_hand_gradients_equal_the_autograd_reference(kind: str, layers: int, normalize: bool, signals: int) -> None:
    up = make(kind, layers=layers, normalize=normalize, signals=signals)
    assert isinstance(up.gradients, fast_update.HandGradients)
    nets = up.nets
    batch = batches(nets, 1).get(0)
    if nets.shape.continuous_size:  # some log-std pre-activations outside the clamp range: its gradient mask
        with torch.no_grad():
            nets.policy.head_b[2] = 30.0
    grads, stats = up.gradients(batch)
    up.stepper.zero_grad()
    reference = sac_losses(nets, up.coefficients, batch)
    reference.total().backward()
    for name, opt in up.optimizers().items():
        for p in (p for g in opt.param_groups for p in g["params"]):
            assert p.grad is not None
            torch.testing.assert_close(grads[p], p.grad, rtol=2e-4, atol=2e-6, msg=f"{name} {tuple(p.shape)}")
    assert set(grads) == set(up.stepper.params)
    ref_stats = reference.stats()
    for fast, ref in zip(
        (stats.policy_loss, stats.value_loss, stats.q1_loss, stats.q2_loss),
        (ref_stats.policy_loss, ref_stats.value_loss, ref_stats.q1_loss, ref_stats.q2_loss),
    ):
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["hybrid", "continuous", "discrete-3"])
def test_forced_autograd_updates_train_like_the_accelerated_ones(kind: str) -> None:
    fast, slow = make(kind, signals=2), make(kind, signals=2, autograd=True)
    assert isinstance(fast.gradients, fast_update.HandGradients)
    assert isinstance(slow.gradients, AutogradGradients)
    data = batches(fast.nets, 5)
    for i in range(5):
        fast.update(data.get(i))
        slow.update(data.get(i))
    a, b = fast.nets.state_dict(), slow.nets.state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)
    for p, q in zip(fast.entropy_parameters(), slow.entropy_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)
    for opt_a, opt_b in zip(fast.optimizers().values(), slow.optimizers().values()):
        for p, q in zip(opt_a.param_groups[0]["params"], opt_b.param_groups[0]["params"]):
            for key in ("step", "exp_avg", "exp_avg_sq"):
                torch.testing.assert_close(opt_a.state[p][key], opt_b.state[q][key], rtol=1e-4, atol=1e-5)


class _OtherTwinQ(TwinQ):
    """A Q network the hand gradients do not know (it could compute anything)."""


def test_networks_the_hand_gradients_do_not_cover_train_through_autograd() -> None:
    up = make("hybrid")
    assert fast_update.covers(up.nets)
    up.nets.q.__class__ = _OtherTwinQ
    assert not fast_update.covers(up.nets)
    no_layers = make("hybrid", layers=0)  # a body without dense layers: outside the hand gradients too
    assert not fast_update.covers(no_layers.nets)
    assert isinstance(no_layers.gradients, AutogradGradients)
    before = [p.detach().clone() for p in no_layers.stepper.params]
    data = batches(no_layers.nets, 2)
    for i in range(2):
        stats = no_layers.update(data.get(i))
        assert torch.isfinite(stats.q1_loss)
    assert all(not torch.equal(p, q) for p, q in zip(before, no_layers.stepper.params))
