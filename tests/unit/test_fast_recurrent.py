"""The hand-derived PPO gradients of policies with LSTM memory equal autograd's on the reference loss."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from fledge.envs.api import ActionSpec
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.trainers.fast_adam import AdamStepper, fused_if_possible
from fledge.trainers.ppo import fast_gradients, fast_recurrent, update
from fledge.trainers.ppo.losses import Minibatch

SPECS = {
    "continuous": ActionSpec(3, ()),
    "discrete": ActionSpec(0, (3, 2, 4)),
    "hybrid": ActionSpec(2, (3,)),
}
SEQ = 5
MEMORY = 8


def make_case(
    kind: str, *, shared: bool, layers: int, seqs: int = 4, padded: bool = True, dtype: torch.dtype = torch.float64
) -> tuple[ActorCritic, Minibatch]:
    """A model with memory and a minibatch of `seqs` sequences of SEQ rows, the last ones padded (masks 0 and
    garbage in the padded rows), random start memories, old log-probs and values near the current ones."""
    torch.manual_seed(layers + 10 * shared)
    spec = SPECS[kind]
    model = ActorCritic(
        obs_size=6,
        action_spec=spec,
        shape=NetworkShape(12, layers, True, memory_size=MEMORY),
        value_names=("a", "b"),
        shared_critic=shared,
    ).to(dtype)
    n = seqs * SEQ
    g = torch.Generator().manual_seed(layers + 3)
    x = (2.0 * torch.randn(n, 6, generator=g) + 1.0).to(dtype)
    masks = torch.ones(n, dtype=dtype)
    if padded:
        masks[SEQ - 2 : SEQ] = 0.0  # the first sequence ends two rows early
        masks[n - 1] = 0.0
        x[masks == 0] = 50.0  # padding content must not matter
    branches = spec.discrete_branches
    allowed = disc = None
    if branches:
        allowed = torch.rand(n, sum(branches), generator=g) > 0.3
        starts = np.cumsum((0,) + branches[:-1])
        cols = []
        for start, size in zip(starts, branches):
            allowed[:, start] = True
            cols.append(torch.multinomial(allowed[:, start : start + size].float(), 1, generator=g))
        disc = torch.cat(cols, dim=1)
    cont = torch.randn(n, spec.continuous_size, generator=g).to(dtype) if spec.continuous_size else None
    memory = (0.5 * torch.randn(seqs, MEMORY, generator=g)).to(dtype)
    critic_memory = (0.5 * torch.randn(seqs, MEMORY, generator=g)).to(dtype)
    with torch.no_grad():
        logp, _, values = model.evaluate(
            x, cont, disc, allowed, memory=memory, critic_memory=critic_memory, seq_len=SEQ
        )
    mb = Minibatch(
        x=x,
        continuous=cont,
        discrete=disc,
        allowed=allowed,
        old_log_prob=logp + 0.3 * torch.randn(n, generator=g).to(dtype),
        advantages=torch.randn(n, generator=g).to(dtype),
        old_values=values + 0.3 * torch.randn(values.shape, generator=g).to(dtype),
        returns=values + torch.randn(values.shape, generator=g).to(dtype),
        masks=masks,
        memory=memory,
        critic_memory=critic_memory,
        seq_len=SEQ,
    )
    return model, mb


def reference(
    model: ActorCritic, mb: Minibatch, eps: float, beta: float
) -> tuple[list[float], dict[str, torch.Tensor]]:
    losses = update.autograd_gradients(model, mb, epsilon=eps, beta=beta)
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return [t.item() for t in losses], grads


@pytest.mark.parametrize("kind", list(SPECS))
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("layers", [0, 1, 2])
def test_accelerator_matches_autograd(kind: str, shared: bool, layers: int) -> None:
    model, mb = make_case(kind, shared=shared, layers=layers)
    eps, beta = 0.2, 0.01
    assert fast_recurrent.covers(model) and not fast_gradients.covers(model)
    want, grads = reference(model, mb, eps, beta)
    got = update.ppo_gradients(model, mb, epsilon=eps, beta=beta)
    for name, g, w in zip(("total", "policy", "value"), got, want):
        assert g.item() == pytest.approx(w, rel=1e-10, abs=1e-12), name
    for name, param in model.named_parameters():
        assert param.grad is not None and name in grads, name
        torch.testing.assert_close(param.grad, grads[name], rtol=1e-8, atol=1e-10, msg=name)


def test_no_padding_and_one_sequence() -> None:
    for seqs, padded in ((1, False), (3, False), (1, True)):
        model, mb = make_case("hybrid", shared=False, layers=2, seqs=seqs, padded=padded)
        want, grads = reference(model, mb, 0.2, 0.01)
        got = fast_recurrent.loss_and_gradients(model, mb, epsilon=0.2, beta=0.01)
        assert [t.item() for t in got] == pytest.approx(want, rel=1e-10, abs=1e-12)
        for name, param in model.named_parameters():
            torch.testing.assert_close(param.grad, grads[name], rtol=1e-8, atol=1e-10, msg=name)


def test_the_gradient_reaches_back_through_time() -> None:
    """Guard: the loss of the last rows of a sequence depends on its first input through the memory, and the
    start memories change the gradients (so the tests above exercise the recurrence)."""
    model, mb = make_case("continuous", shared=False, layers=1, padded=False)
    fast_recurrent.loss_and_gradients(model, mb, epsilon=0.2, beta=0.01)
    first = model.body.memory[0].lstm.weight_hh_l0.grad.clone()  # type: ignore[union-attr, index]
    assert first.abs().sum() > 0
    mb.memory = torch.zeros_like(mb.memory)  # type: ignore[arg-type]
    fast_recurrent.loss_and_gradients(model, mb, epsilon=0.2, beta=0.01)
    assert not torch.allclose(model.body.memory[0].lstm.weight_hh_l0.grad, first)  # type: ignore[union-attr, index]


def test_several_adam_steps_follow_autograd_in_float32() -> None:
    """Five fused Adam steps from the hand gradients land where five from autograd land (float32 rounding)."""
    fast_model, mb = make_case("hybrid", shared=False, layers=2, dtype=torch.float32)
    ref_model, _ = make_case("hybrid", shared=False, layers=2, dtype=torch.float32)
    initial = [p.detach().clone() for p in fast_model.parameters()]
    steppers = []
    for model in (fast_model, ref_model):
        steppers.append(AdamStepper(torch.optim.Adam(model.parameters(), lr=3e-3, **fused_if_possible())))
    for _ in range(5):
        fast_recurrent.loss_and_gradients(fast_model, mb, epsilon=0.2, beta=0.01)
        steppers[0].step()
        update.autograd_gradients(ref_model, mb, epsilon=0.2, beta=0.01)
        steppers[1].step()
    for (name, got), want, before in zip(fast_model.named_parameters(), ref_model.parameters(), initial):
        assert not torch.equal(got, before), name
        torch.testing.assert_close(got, want, rtol=1e-4, atol=2e-5, msg=name)


def test_models_without_memory_or_off_the_cpu_are_not_covered() -> None:
    plain = ActorCritic(obs_size=6, action_spec=SPECS["hybrid"], shape=NetworkShape(12, 2, True))
    assert not fast_recurrent.covers(plain)
    model, _ = make_case("hybrid", shared=False, layers=1)
    assert fast_recurrent.covers(model)
    model.body.memory[0].lstm.weight_ih_l0.data = model.body.memory[0].lstm.weight_ih_l0.data.to(torch.float16)  # type: ignore[index, union-attr]
    assert not fast_recurrent.covers(model)


def test_overflow_gives_non_finite_losses_silently() -> None:
    """As with torch, an overflow yields inf or NaN for the trainer's divergence check, not numpy warnings."""
    model, mb = make_case("hybrid", shared=False, layers=1, dtype=torch.float32)
    mb.returns = torch.full_like(mb.returns, 1e30)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, _, value = fast_recurrent.loss_and_gradients(model, mb, epsilon=0.2, beta=0.01)
    assert not torch.isfinite(value)
