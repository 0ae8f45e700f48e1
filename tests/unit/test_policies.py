"""Policies without a trainer: built from a spec and network settings, they act, give values, export an
ActorGraph, and load the policy tensors of a trainer's checkpoint state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fledge.config import build_run_options
from fledge.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from fledge.errors import CheckpointError, ConfigError
from fledge.networks.actor_graph import ActorGraph
from fledge.stats import StatsReporter
from fledge.trainers.ppo.policy import PPOPolicy
from fledge.trainers.ppo.trainer import PPOTrainer
from fledge.trainers.registry import policy_class_of, trainer_class_of
from fledge.trainers.sac.policy import SACPolicy
from fledge.trainers.sac.trainer import SACTrainer

HYBRID = BehaviorSpec([ObservationSpec.vector(3), ObservationSpec.vector(2)], ActionSpec(2, (3, 2)))
HYPER = {
    "ppo": {"batch_size": 16, "buffer_size": 64},
    "sac": {"batch_size": 16, "buffer_size": 500},
}


def settings(trainer_type: str, **network: Any) -> Any:
    raw = {
        "default_settings": {
            "trainer_type": trainer_type,
            "hyperparameters": HYPER[trainer_type],
            "network_settings": {"hidden_units": 16, "num_layers": 2, "normalize": True, **network},
            "reward_signals": {"extrinsic": {"gamma": 0.9, "strength": 1.0}},
            "max_steps": 1000,
            "time_horizon": 8,
        }
    }
    return build_run_options(raw).behavior_settings("B")


def trained_like(trainer_type: str) -> PPOTrainer | SACTrainer:
    """A trainer whose weights and normaliser differ from a fresh policy's."""
    cls = PPOTrainer if trainer_type == "ppo" else SACTrainer
    trainer = cls(behavior_name="B", spec=HYBRID, settings=settings(trainer_type), stats=StatsReporter([]), seed=3)
    rng = np.random.default_rng(0)
    assert trainer.policy.normalizer is not None
    trainer.policy.normalizer.update(rng.normal(2.0, 3.0, (40, 5)).astype(np.float32))
    with torch.no_grad():
        for p in trainer.policy.model.parameters() if isinstance(trainer, PPOTrainer) else trainer.nets.parameters():
            p.add_(torch.from_numpy(rng.normal(0, 0.1, tuple(p.shape)).astype(np.float32)))
    trainer.policy.sync()
    return trainer


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_a_policy_alone_acts_gives_values_and_exports(trainer_type: str) -> None:
    policy = policy_class_of(trainer_type).from_settings(
        behavior_name="B", spec=HYBRID, settings=settings(trainer_type), seed=1
    )
    assert isinstance(policy, PPOPolicy if trainer_type == "ppo" else SACPolicy)
    assert not any(hasattr(policy, name) for name in ("optimizer", "buffer", "stats", "updater"))
    obs = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    allowed = np.ones((6, 5), dtype=np.bool_)
    allowed[:, 0] = False
    out = policy.act(obs, allowed)
    assert out.continuous.shape == (6, 2) and out.discrete.shape == (6, 2) and out.log_prob.shape == (6,)
    assert (out.discrete[:, 0] != 0).all()  # the masked action is never chosen
    assert policy.values(obs).shape == (6, 1)
    sent = policy.env_actions(out)
    assert np.abs(sent.continuous).max() <= 1.0
    if trainer_type == "sac":
        np.testing.assert_array_equal(sent.continuous, out.continuous)  # already squashed
    else:
        np.testing.assert_allclose(sent.continuous, np.clip(out.continuous, -3, 3) / 3)
    graph = policy.actor_graph()
    assert isinstance(graph, ActorGraph)
    assert graph.observation_shapes == ((3,), (2,)) and graph.continuous_size == 2
    assert graph.discrete_branches == (3, 2)


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_a_policy_alone_loads_the_policy_tensors_of_a_trainer_state(trainer_type: str) -> None:
    trainer = trained_like(trainer_type)
    state = trainer.get_state()
    policy = policy_class_of(trainer_type).from_settings(
        behavior_name="B", spec=HYBRID, settings=settings(trainer_type), seed=7, deterministic=True
    )
    obs = np.random.default_rng(2).standard_normal((9, 5)).astype(np.float32) * 3 + 2
    assert not np.allclose(policy.values(obs), trainer.policy.values(obs))
    policy.load_policy_state(state.tensors)
    trainer.policy.deterministic = True
    np.testing.assert_allclose(policy.values(obs), trainer.policy.values(obs), rtol=1e-6, atol=1e-6)
    mine, theirs = policy.act(obs, None), trainer.policy.act(obs, None)
    np.testing.assert_allclose(mine.continuous, theirs.continuous, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(mine.discrete, theirs.discrete)
    for name, value in policy.policy_state().items():
        torch.testing.assert_close(value, state.tensors[name])
    a, b = policy.actor_graph(), trainer.policy.actor_graph()
    for (wa, ba), (wb, bb) in zip(a.hidden_layers, b.hidden_layers):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)
    assert a.norm_scale is not None and b.norm_scale is not None
    np.testing.assert_array_equal(a.norm_scale, b.norm_scale)


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_policy_tensors_of_other_networks_are_refused_and_change_nothing(trainer_type: str) -> None:
    state = trained_like(trainer_type).get_state()
    policy = policy_class_of(trainer_type).from_settings(
        behavior_name="B", spec=HYBRID, settings=settings(trainer_type, hidden_units=8), seed=7
    )
    before = policy.policy_state()
    with pytest.raises(CheckpointError, match="'B'"):
        policy.load_policy_state(state.tensors)
    for name, value in policy.policy_state().items():
        torch.testing.assert_close(value, before[name])


def test_the_registry_names_each_trainer_and_its_policy() -> None:
    assert trainer_class_of("ppo") is PPOTrainer and policy_class_of("ppo") is PPOPolicy
    assert trainer_class_of("sac") is SACTrainer and policy_class_of("sac") is SACPolicy
    with pytest.raises(ConfigError, match="'ppo2' is not available"):
        policy_class_of("ppo2", where="behaviors.B")
