"""The hand-derived PPO gradients (the accelerator) equal autograd's on the reference loss, everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fledge.envs.api import ActionSpec
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.trainers.ppo import fast_gradients, update
from fledge.trainers.ppo.losses import Minibatch, ppo_loss

SPECS = {
    "continuous": ActionSpec(3, ()),
    "discrete": ActionSpec(0, (3, 2, 4)),
    "hybrid": ActionSpec(2, (3,)),
}


def make_batch(model: ActorCritic, spec: ActionSpec, n: int, seed: int) -> Minibatch:
    g = torch.Generator().manual_seed(seed)
    raw = 2.0 * torch.randn(n, model.obs_size, generator=g) + 1.0
    if model.normalizer is not None:
        model.normalizer.update(raw.double().numpy())
    with torch.no_grad():
        x = model.normalize(raw)
    branches = spec.discrete_branches
    allowed = None
    disc = None
    if branches:
        allowed = torch.rand(n, sum(branches), generator=g) > 0.3
        starts = np.cumsum((0,) + branches[:-1])
        cols = []
        for start, size in zip(starts, branches):
            allowed[:, start] = True  # at least one action allowed per branch
            choice = torch.multinomial(allowed[:, start : start + size].float(), 1, generator=g)
            cols.append(choice)
        disc = torch.cat(cols, dim=1)
    cont = torch.randn(n, spec.continuous_size, generator=g) if spec.continuous_size else None
    with torch.no_grad():
        logp, _, values = model.evaluate(x, cont, disc, allowed)
    # old log-probs and values near the current ones, so that some ratios and values are clipped
    return Minibatch(
        x=x,
        continuous=cont,
        discrete=disc,
        allowed=allowed,
        old_log_prob=logp + 0.3 * torch.randn(n, generator=g),
        advantages=torch.randn(n, generator=g),
        old_values=values + 0.3 * torch.randn(values.shape, generator=g),
        returns=values + torch.randn(values.shape, generator=g),
    )


def double(mb: Minibatch) -> Minibatch:
    return Minibatch(
        **{k: (v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in vars(mb).items()}
    )


def make_model(kind: str, *, shared: bool, layers: int, normalize: bool) -> tuple[ActorCritic, Minibatch]:
    torch.manual_seed(layers + 10 * shared + 100 * normalize)
    spec = SPECS[kind]
    model = ActorCritic(
        obs_size=6,
        action_spec=spec,
        shape=NetworkShape(12, layers, normalize),
        value_names=("a", "b"),
        shared_critic=shared,
    )
    mb = make_batch(model, spec, 40, seed=layers)
    return model, mb


@pytest.mark.parametrize("kind", list(SPECS))
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("layers", [0, 1, 2, 3])
@pytest.mark.parametrize("normalize", [False, True])
def test_accelerator_matches_autograd(kind: str, shared: bool, layers: int, normalize: bool) -> None:
    model, mb = make_model(kind, shared=shared, layers=layers, normalize=normalize)
    model, mb = model.double(), double(mb)
    eps, beta = 0.2, 0.01
    assert fast_gradients.covers(model)
    ref = update.autograd_gradients(model, mb, epsilon=eps, beta=beta)
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    fast = update.ppo_gradients(model, mb, epsilon=eps, beta=beta)
    for name, got, want in zip(("total", "policy", "value"), fast, ref):
        assert got.item() == pytest.approx(want.item(), rel=1e-10, abs=1e-12), name
    for name, param in model.named_parameters():
        assert param.grad is not None and name in grads, name
        torch.testing.assert_close(param.grad, grads[name], rtol=1e-8, atol=1e-10, msg=name)


def test_reference_loss_is_the_documented_sum() -> None:
    model, mb = make_model("hybrid", shared=False, layers=2, normalize=False)
    total, p_loss, v_loss = ppo_loss(model, mb, epsilon=0.2, beta=0.03)
    with torch.no_grad():
        _, entropy, _ = model.evaluate(mb.x, mb.continuous, mb.discrete, mb.allowed)
    assert total.item() == pytest.approx((p_loss + 0.5 * v_loss - 0.03 * entropy.mean()).item(), rel=1e-6)


def test_uncovered_models_train_through_autograd(monkeypatch: pytest.MonkeyPatch) -> None:
    model, mb = make_model("discrete", shared=False, layers=2, normalize=True)
    monkeypatch.setattr(fast_gradients, "covers", lambda model: False)
    monkeypatch.setattr(fast_gradients, "loss_and_gradients", None)  # would fail if called
    total, _, _ = update.ppo_gradients(model, mb, epsilon=0.2, beta=0.01)
    assert not total.requires_grad
    assert all(p.grad is not None for p in model.parameters())


def test_some_ratios_and_values_were_clipped() -> None:
    """Guard: the batches above exercise both branches of both clipped losses."""
    torch.manual_seed(0)
    model = ActorCritic(obs_size=6, action_spec=SPECS["hybrid"], shape=NetworkShape(12, 2, False))
    mb = make_batch(model, SPECS["hybrid"], 40, seed=2)
    with torch.no_grad():
        logp, _, values = model.evaluate(mb.x, mb.continuous, mb.discrete, mb.allowed)
    ratio = torch.exp(logp - mb.old_log_prob)
    clipped = (ratio < 0.8) | (ratio > 1.2)
    assert clipped.any() and (~clipped).any()
    delta = (values - mb.old_values).abs()
    assert (delta > 0.2).any() and (delta <= 0.2).any()
