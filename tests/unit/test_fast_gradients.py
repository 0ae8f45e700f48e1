"""The hand-derived PPO gradients equal autograd's on the reference loss (losses.py), everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fledge.envs.api import ActionSpec
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.trainers.ppo import losses as L
from fledge.trainers.ppo.fast_gradients import Minibatch, loss_and_gradients

SPECS = {
    "continuous": ActionSpec(3, ()),
    "discrete": ActionSpec(0, (3, 2, 4)),
    "hybrid": ActionSpec(2, (3,)),
}


def make_batch(model: ActorCritic, spec: ActionSpec, n: int, seed: int) -> Minibatch:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, model.obs_size, generator=g)
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


def autograd_reference(model: ActorCritic, mb: Minibatch, eps: float, beta: float) -> tuple[float, float, dict]:
    model.zero_grad(set_to_none=True)
    logp, entropy, values = model.evaluate(mb.x, mb.continuous, mb.discrete, mb.allowed)
    p_loss = L.policy_loss(logp, mb.old_log_prob, mb.advantages, eps)
    v_loss = L.value_loss(values, mb.old_values, mb.returns, eps)
    (p_loss + 0.5 * v_loss - beta * entropy.mean()).backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    return p_loss.item(), v_loss.item(), grads


@pytest.mark.parametrize("kind", list(SPECS))
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("layers", [0, 1, 2, 3])
def test_gradients_match_autograd(kind: str, shared: bool, layers: int) -> None:
    torch.manual_seed(layers + 10 * shared)
    spec = SPECS[kind]
    model = ActorCritic(
        obs_size=6,
        action_spec=spec,
        shape=NetworkShape(12, layers, False),
        value_names=("a", "b"),
        shared_critic=shared,
    )
    model = model.double()
    mb = make_batch(model.float(), spec, 40, seed=layers)
    model = model.double()
    mb = Minibatch(
        **{k: (v.double() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in vars(mb).items()}
    )
    eps, beta = 0.2, 0.01
    p_ref, v_ref, grads = autograd_reference(model, mb, eps, beta)
    model.zero_grad(set_to_none=True)
    p_fast, v_fast = loss_and_gradients(model, mb, epsilon=eps, beta=beta)
    assert p_fast.item() == pytest.approx(p_ref, rel=1e-10, abs=1e-12)
    assert v_fast.item() == pytest.approx(v_ref, rel=1e-10, abs=1e-12)
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        torch.testing.assert_close(param.grad, grads[name], rtol=1e-8, atol=1e-10, msg=name)


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
