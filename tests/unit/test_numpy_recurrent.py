"""The numpy acting path of policies with LSTM memory decides as the torch module does (same draws)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fledge.envs.api import ActionSpec
from fledge.networks import acting
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.networks.numpy_actor import NumpyActor
from fledge.networks.numpy_recurrent import NumpyRecurrentActor

SPECS = {"continuous": ActionSpec(3, ()), "discrete": ActionSpec(0, (3, 2)), "hybrid": ActionSpec(2, (4,))}


def make(kind: str, *, shared: bool, layers: int) -> ActorCritic:
    torch.manual_seed(layers + 10 * shared)
    model = ActorCritic(
        obs_size=5,
        action_spec=SPECS[kind],
        shape=NetworkShape(16, layers, True, memory_size=10),
        value_names=("a", "b"),
        shared_critic=shared,
    )
    assert model.normalizer is not None
    model.normalizer.update(np.random.default_rng(1).normal(1.0, 2.0, (50, 5)))
    with torch.no_grad():  # non-zero biases and a larger log-std, so that every term shows
        for p in model.parameters():
            p.add_(0.1 * torch.randn(p.shape))
    return model


@pytest.mark.parametrize("kind", list(SPECS))
@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("layers", [0, 1, 2])
@pytest.mark.parametrize("deterministic", [False, True])
def test_numpy_acting_with_memory_matches_the_torch_module(
    kind: str, shared: bool, layers: int, deterministic: bool
) -> None:
    model = make(kind, shared=shared, layers=layers)
    fast = acting.make_actor(model, rng=np.random.default_rng(5))
    ref = acting.TorchActor(model, rng=np.random.default_rng(5))
    assert isinstance(fast, NumpyRecurrentActor) and not NumpyActor.covers(model)
    rng = np.random.default_rng(0)
    memory = None
    allowed = None
    for step in range(4):  # memories carried from one decision to the next, the first from None
        obs = rng.normal(1.0, 2.0, (6, 5)).astype(np.float32)
        if SPECS[kind].discrete_branches:
            allowed = rng.random((6, sum(SPECS[kind].discrete_branches))) > 0.3
            allowed[:, 0] = True
            allowed[:, 3 if kind == "discrete" else 0] = True
        got = fast.act(obs, allowed, deterministic=deterministic, memory=memory)
        want = ref.act(obs, allowed, deterministic=deterministic, memory=memory)
        for field in ("continuous", "log_prob", "values", "entropy", "memory"):
            np.testing.assert_allclose(getattr(got, field), getattr(want, field), rtol=1e-4, atol=1e-5, err_msg=field)
        np.testing.assert_array_equal(got.discrete, want.discrete)
        assert got.memory is not None and got.memory.dtype == np.float32
        if step:
            assert not np.allclose(got.memory, memory)  # type: ignore[arg-type]
        memory = got.memory
    np.testing.assert_allclose(fast.values(obs), ref.values(obs), rtol=1e-4, atol=1e-5)


def test_numpy_acting_follows_weight_changes_after_sync() -> None:
    model = make("hybrid", shared=False, layers=2)
    fast = acting.make_actor(model, rng=np.random.default_rng(5))
    obs = np.ones((2, 5), np.float32)
    before = fast.values(obs)
    with torch.no_grad():
        model.critic_memory.lstm.bias_hh_l0.add_(0.5)
    fast.sync()
    after = fast.values(obs)
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, acting.TorchActor(model, rng=np.random.default_rng(0)).values(obs), atol=1e-5)


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("n", [1, 4, 9, 16])
def test_critic_trajectory_in_numpy_matches_the_torch_module(shared: bool, n: int) -> None:
    model = make("continuous", shared=shared, layers=2)
    fast = acting.make_actor(model, rng=np.random.default_rng(5))
    assert isinstance(fast, NumpyRecurrentActor)
    rng = np.random.default_rng(3)
    rows = rng.normal(1.0, 2.0, (n + 1, 5)).astype(np.float32)
    initial = (0.5 * rng.normal(size=10)).astype(np.float32)
    values, starts, final = fast.critic_trajectory(rows, initial, 4)
    with torch.no_grad():
        x = model.normalize(torch.from_numpy(rows))
        want_values, want_starts, want_final = model.critic_trajectory(x[:-1], torch.from_numpy(initial), 4)
        bootstrap = model.critic_trajectory(x[-1:], want_final, 4)[0][0]
    assert values.shape == (n + 1, 2) and starts.shape == (-(-n // 4), 10)
    np.testing.assert_allclose(values[:-1], want_values.numpy(), atol=1e-5)
    np.testing.assert_allclose(values[-1], bootstrap.numpy(), atol=1e-5)
    np.testing.assert_allclose(starts, want_starts.numpy(), atol=1e-5)
    np.testing.assert_allclose(final, want_final.numpy(), atol=1e-5)
