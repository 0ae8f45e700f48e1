"""The signals' hand-derived gradients (rewards/fast.py) against autograd: same losses, same gradient of every
trained parameter, for curiosity (continuous, discrete, hybrid actions), RND and GAIL (with and without
actions), over 0 to 3 hidden layers, with and without the normaliser."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fledge.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from fledge.imitation.expert import ExpertData
from fledge.rewards import SignalBatch
from fledge.rewards.base import BodySettings, LearnedSignal
from fledge.rewards.curiosity import CuriositySignal
from fledge.rewards.gail import GAILSignal
from fledge.rewards.rnd import RNDSignal

ACTIONS = {
    "continuous": ActionSpec(continuous_size=2, discrete_branches=()),
    "discrete": ActionSpec(continuous_size=0, discrete_branches=(3, 2)),
    "hybrid": ActionSpec(continuous_size=2, discrete_branches=(3,)),
}


def spec_of(actions: str) -> BehaviorSpec:
    return BehaviorSpec(observation_specs=[ObservationSpec.vector(5, "VectorSensor")], action_spec=ACTIONS[actions])


def batch(spec: BehaviorSpec, n: int, seed: int, shift: float = 0.0) -> SignalBatch:
    rng = np.random.default_rng(seed)
    aspec = spec.action_spec
    obs = (rng.normal(size=(n, 5)) * 2.0 + shift).astype(np.float32)
    return SignalBatch(
        obs=obs,
        next_obs=(obs + 0.3 * rng.normal(size=obs.shape)).astype(np.float32),
        continuous=rng.uniform(-1, 1, size=(n, aspec.continuous_size)).astype(np.float32),
        discrete=np.stack([rng.integers(0, b, n) for b in aspec.discrete_branches], axis=1)
        if aspec.discrete_branches
        else np.zeros((n, 0), np.int64),
        done=rng.random(n) < 0.2,
        env_rewards=np.zeros(n, np.float32),
    )


def make(kind: str, spec: BehaviorSpec, layers: int, normalize: bool, *, use_actions: bool = True) -> LearnedSignal:
    common: dict[str, Any] = {
        "gamma": 0.99,
        "strength": 0.1,
        "learning_rate": 1e-2,
        "observation_specs": spec.observation_specs,
        "action_spec": spec.action_spec,
        "body": BodySettings(hidden_units=12, num_layers=layers, normalize=normalize),
        "seed": 5,
        "device": torch.device("cpu"),
    }
    if kind == "curiosity":
        return CuriositySignal(**common)
    if kind == "rnd":
        return RNDSignal(**common)
    expert = batch(spec, 50, seed=9, shift=1.0)
    data = ExpertData(
        spec=spec,
        obs=[expert.obs],
        continuous_actions=expert.continuous,
        discrete_actions=expert.discrete,
        rewards=expert.env_rewards,
        done=expert.done,
        action_masks=np.ones((50, sum(spec.action_spec.discrete_branches)), np.bool_),
    )
    return GAILSignal(expert=data, use_actions=use_actions, use_vail=False, **common)


CASES = [
    ("curiosity", "continuous", 2, True),
    ("curiosity", "discrete", 1, False),
    ("curiosity", "hybrid", 3, True),
    ("curiosity", "hybrid", 0, False),
    ("rnd", "continuous", 2, True),
    ("rnd", "discrete", 1, False),
    ("gail", "continuous", 2, True),
    ("gail", "hybrid", 1, False),
    ("gail", "discrete", 3, True),
    ("gail", "discrete", 0, False),
]


@pytest.mark.parametrize(("kind", "actions", "layers", "normalize"), CASES)
def test_hand_gradients_equal_autograd(kind: str, actions: str, layers: int, normalize: bool) -> None:
    spec = spec_of(actions)
    hand, auto = make(kind, spec, layers, normalize), make(kind, spec, layers, normalize)
    auto.autograd = True
    assert getattr(hand, "hand_gradients", True) and not getattr(auto, "hand_gradients", False)
    for step in range(3):  # later steps: trained weights, updated normalisers, Adam moments
        b = batch(spec, 40, seed=step)
        hand_stats, auto_stats = hand.update(b), auto.update(b)
        assert hand_stats.keys() == auto_stats.keys()
        for key, value in auto_stats.items():
            assert hand_stats[key] == pytest.approx(value, rel=1e-4, abs=1e-6), key
        for (name, p), q in zip(hand.module.named_parameters(), auto.module.parameters()):
            if q.grad is None:
                assert not q.requires_grad or name.startswith("target"), name
                continue
            assert p.grad is not None, name
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=1e-5, msg=name)
    check = batch(spec, 30, seed=7)
    np.testing.assert_allclose(hand.rewards(check), auto.rewards(check), rtol=1e-4, atol=1e-6)


def test_gail_without_actions_hand_gradients_equal_autograd() -> None:
    spec = spec_of("hybrid")
    hand, auto = (make("gail", spec, 2, True, use_actions=False) for _ in range(2))
    auto.autograd = True
    b = batch(spec, 40, seed=1)
    assert hand.update(b) == pytest.approx(auto.update(b), rel=1e-4)
    for p, q in zip(hand.module.parameters(), auto.module.parameters()):
        assert q.grad is not None and p.grad is not None
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6)
