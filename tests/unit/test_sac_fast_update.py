"""The hand-derived SAC gradients equal autograd's on the same losses, for every action type and depth."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from conftest import random_trajectory
from fledge.config import build_run_options
from fledge.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from fledge.rollout.processor import StepOutcome
from fledge.stats import StatsReporter
from fledge.trainers.sac import fast_update
from fledge.trainers.sac.trainer import SACTrainer

SPECS = {
    "continuous": BehaviorSpec([ObservationSpec.vector(3)], ActionSpec(2, ())),
    "discrete-1": BehaviorSpec([ObservationSpec.vector(3)], ActionSpec(0, (3,))),
    "discrete-3": BehaviorSpec([ObservationSpec.vector(3)], ActionSpec(0, (3, 2, 4))),
    "hybrid": BehaviorSpec([ObservationSpec.vector(3)], ActionSpec(2, (3, 2))),
}


def sac_settings(layers: int) -> Any:
    settings = {
        "trainer_type": "sac",
        "hyperparameters": {
            "batch_size": 16,
            "buffer_size": 500,
            "learning_rate": 1e-3,
            "init_entcoef": 0.3,
            "steps_per_update": 2,
        },
        "network_settings": {"hidden_units": 12, "num_layers": layers, "normalize": True},
        "reward_signals": {"extrinsic": {"gamma": 0.9}},
        "time_horizon": 8,
    }
    return build_run_options({"default_settings": settings}).behavior_settings("B")


def experience(spec: BehaviorSpec, n: int, rng: np.random.Generator) -> StepOutcome:
    """One finished trajectory of random data."""
    traj = random_trajectory(spec, n, rng, terminal=True, ends=True)
    return StepOutcome(None, [traj], np.zeros(0), np.zeros(0, np.int64))


def trained(spec: BehaviorSpec, layers: int) -> SACTrainer:
    trainer = SACTrainer(
        behavior_name="B",
        spec=spec,
        settings=sac_settings(layers),
        stats=StatsReporter([]),
        seed=layers,
    )
    trainer.observe(experience(spec, 40, np.random.default_rng(layers)))
    return trainer


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("kind", list(SPECS))
def test_hand_gradients_equal_autograd(kind: str, layers: int) -> None:
    trainer = trained(SPECS[kind], layers)
    up = trainer.updater
    batch = trainer.sample_batches(1).get(0)
    if batch.allowed is not None:  # mask one action of the first branch in half of the rows
        batch.allowed[::2, 1] = False
        batch.mask_add[::2, 1] = -1e8
    # push some log-std pre-activations outside the clamp range to exercise its gradient mask
    if trainer.shape.continuous_size:
        with torch.no_grad():
            trainer.nets.policy.head_b[2] = 30.0
    grads, stats = fast_update.gradients(up, batch)
    up.stepper.zero_grad()
    losses = up.losses(batch)
    losses.total.backward()
    for name, opt in up.optimizers().items():
        for p in (p for g in opt.param_groups for p in g["params"]):
            assert p.grad is not None
            torch.testing.assert_close(grads[p], p.grad, rtol=2e-4, atol=2e-6, msg=f"{name} {tuple(p.shape)}")
    for fast, ref in zip(
        (stats.policy_loss, stats.value_loss, stats.q1_loss, stats.q2_loss),
        (losses.stats.policy_loss, losses.stats.value_loss, losses.stats.q1_loss, losses.stats.q2_loss),
    ):
        torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)


def test_fast_and_autograd_updates_train_the_same_way() -> None:
    a, b = trained(SPECS["hybrid"], 2), trained(SPECS["hybrid"], 2)
    batches = a.sample_batches(5)
    for i in range(5):
        a.updater.update(batches.get(i))
        b.updater.update_autograd(batches.get(i))
    sa, sb = a.get_state().tensors, b.get_state().tensors
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=1e-4, atol=1e-5, msg=key)
