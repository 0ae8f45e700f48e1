"""SACTrainer: acting, the update's gradients and optimiser, the update rule, checkpoint state and files."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import drive_trainer as drive
from conftest import random_trajectory as trajectory
from fledge.config import build_run_options
from fledge.envs import registry
from fledge.envs.api import ActionSpec, BehaviorSpec, ObservationSpec
from fledge.errors import CheckpointError, ConfigError, TrainingDivergedError
from fledge.networks.acting import TorchActor
from fledge.networks.sac_numpy import NumpySACActor
from fledge.rollout.processor import StepOutcome, Trajectory
from fledge.stats import StatsReporter
from fledge.stats.reporter import StatSummary, StatsWriter
from fledge.trainers.base import TrainerState
from fledge.trainers.off_policy import REPLAY_BUFFER_FILE
from fledge.trainers.sac.losses import sac_losses
from fledge.trainers.sac.trainer import SACTrainer
from fledge.trainers.sac.update import MultiAdamStepper

HYBRID = BehaviorSpec([ObservationSpec.vector(3)], ActionSpec(2, (3, 2)))
CONTINUOUS = BehaviorSpec([ObservationSpec.vector(3)], ActionSpec(2, ()))
DISCRETE = BehaviorSpec([ObservationSpec.vector(3)], ActionSpec(0, (3, 2)))


def sac_settings(*, hyper: dict[str, Any] | None = None, network: dict[str, Any] | None = None, **extra: Any) -> Any:
    hp = {"batch_size": 16, "buffer_size": 500, "learning_rate": 1e-3, "init_entcoef": 0.3, "steps_per_update": 2}
    hp.update(hyper or {})
    settings = {
        "trainer_type": "sac",
        "hyperparameters": hp,
        "network_settings": {"hidden_units": 16, "num_layers": 2, "normalize": True, **(network or {})},
        "reward_signals": {"extrinsic": {"gamma": 0.9, "strength": 1.0}},
        "max_steps": 10**6,
        "time_horizon": 8,
        "summary_freq": 10**9,
    }
    settings.update(extra)
    return build_run_options({"default_settings": settings}).behavior_settings("B")


def make_trainer(
    spec: BehaviorSpec = HYBRID, seed: int = 0, stats: StatsReporter | None = None, **kwargs: Any
) -> SACTrainer:
    deterministic = kwargs.pop("deterministic", False)
    return SACTrainer(
        behavior_name="B",
        spec=spec,
        settings=sac_settings(**kwargs),
        stats=stats or StatsReporter([]),
        seed=seed,
        deterministic=deterministic,
    )


def outcome(trajectories: list[Trajectory]) -> StepOutcome:
    return StepOutcome(None, trajectories, np.zeros(0), np.zeros(0, np.int64))


# -- acting ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [CONTINUOUS, DISCRETE, HYBRID], ids=["continuous", "discrete", "hybrid"])
def test_act_shapes_ranges_and_env_actions(spec: BehaviorSpec) -> None:
    trainer = make_trainer(spec)
    obs = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32) * 10
    out = trainer.policy.act(obs, None)
    assert out.continuous.shape == (5, spec.action_spec.continuous_size) and out.continuous.dtype == np.float32
    assert np.all(np.abs(out.continuous) <= 1.0)
    assert out.discrete.shape == (5, len(spec.action_spec.discrete_branches)) and out.discrete.dtype == np.int32
    for b, n in enumerate(spec.action_spec.discrete_branches):
        assert out.discrete[:, b].max() < n
    assert np.isfinite(out.log_prob).all() and out.entropy.shape == (5,)
    assert trainer.policy.values(obs).shape == (5, 1)
    sent = trainer.policy.env_actions(out)
    np.testing.assert_array_equal(sent.continuous, out.continuous)  # tanh output unchanged
    np.testing.assert_array_equal(sent.discrete, out.discrete)


def test_deterministic_acting_is_tanh_of_the_mean_and_argmax() -> None:
    trainer = make_trainer(HYBRID, deterministic=True)
    trainer.nets.policy.normalizer.update(np.random.default_rng(1).standard_normal((50, 3)))  # type: ignore[union-attr]
    obs = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    out = trainer.policy.act(obs, None)
    with torch.no_grad():
        x = trainer.nets.normalize(torch.from_numpy(obs))
        mean, _, logits = trainer.nets.policy.heads(x)
    np.testing.assert_allclose(out.continuous, torch.tanh(mean).numpy(), rtol=1e-5, atol=1e-6)
    assert logits is not None
    np.testing.assert_array_equal(out.discrete[:, 0], logits[:, :3].argmax(1).numpy())
    np.testing.assert_array_equal(out.discrete[:, 1], logits[:, 3:].argmax(1).numpy())
    np.testing.assert_array_equal(trainer.policy.act(obs, None).continuous, out.continuous)


def test_numpy_acting_matches_the_torch_actor_and_squashed_log_prob() -> None:
    trainer = make_trainer(CONTINUOUS)
    obs = np.random.default_rng(3).standard_normal((6, 3)).astype(np.float32)
    state = trainer.policy.rng.bit_generator.state
    out = trainer.policy.act(obs, None)
    replay = np.random.default_rng()
    replay.bit_generator.state = state
    noise = replay.standard_normal((6, 2), dtype=np.float32)
    with torch.no_grad():
        mean, log_std, _ = trainer.nets.policy.heads(trainer.nets.normalize(torch.from_numpy(obs)))
        assert mean is not None and log_std is not None
        u = mean + log_std.exp() * torch.from_numpy(noise)
        base = torch.distributions.Normal(mean.double(), log_std.exp().double())
        dist = torch.distributions.TransformedDistribution(base, [torch.distributions.TanhTransform(cache_size=1)])
        ref_logp = (base.log_prob(u.double()) - dist.transforms[0].log_abs_det_jacobian(u.double(), None)).sum(-1)
    np.testing.assert_allclose(out.continuous, torch.tanh(u).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.log_prob, ref_logp.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.entropy, base.entropy().sum(-1).numpy(), rtol=1e-5, atol=1e-5)


def test_masked_actions_are_never_chosen() -> None:
    trainer = make_trainer(DISCRETE)
    obs = np.zeros((2000, 3), np.float32)
    allowed = np.ones((2000, 5), np.bool_)
    allowed[:, 1] = False
    allowed[:, 3] = False
    out = trainer.policy.act(obs, allowed)
    assert not np.any(out.discrete[:, 0] == 1) and not np.any(out.discrete[:, 1] == 0)
    assert set(out.discrete[:, 0].tolist()) == {0, 2}


def test_networks_the_numpy_actor_does_not_cover_act_and_train_through_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    numpy_path = make_trainer(HYBRID, seed=5, deterministic=True)
    monkeypatch.setattr(NumpySACActor, "covers", staticmethod(lambda nets: False))
    trainer = make_trainer(HYBRID, seed=5, deterministic=True)  # the same weights, acting through torch
    assert isinstance(trainer.policy.actor, TorchActor) and isinstance(numpy_path.policy.actor, NumpySACActor)
    obs = np.random.default_rng(0).standard_normal((2000, 3)).astype(np.float32) * 3
    allowed = np.ones((2000, 5), np.bool_)
    allowed[:, 1] = False
    allowed[:, 3] = False
    got, want = trainer.policy.act(obs, allowed), numpy_path.policy.act(obs, allowed)
    np.testing.assert_allclose(got.continuous, want.continuous, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(got.discrete, want.discrete)
    np.testing.assert_allclose(got.log_prob, want.log_prob, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.entropy, want.entropy, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(trainer.policy.values(obs), numpy_path.policy.values(obs), rtol=1e-5, atol=1e-6)
    trainer.policy.deterministic = False
    sampled = trainer.policy.act(obs, allowed)
    assert not np.any(sampled.discrete[:, 0] == 1) and not np.any(sampled.discrete[:, 1] == 0)
    assert set(sampled.discrete[:, 0].tolist()) == {0, 2} and np.all(np.abs(sampled.continuous) <= 1.0)
    # and a trainer acting through torch trains
    spec = registry.make("MoveToGoal2D-Hybrid", seed=0).behavior_specs["MoveToGoal2D-Hybrid"]
    learner = make_trainer(spec, seed=4, hyper={"batch_size": 32})
    assert isinstance(learner.policy.actor, TorchActor)
    before = [p.detach().clone() for p in learner.nets.parameters()]
    drive(learner, "MoveToGoal2D-Hybrid", 300, seed=2)
    after = list(learner.nets.parameters())
    assert learner.step >= 300 and all(torch.isfinite(p).all() for p in after)
    assert all(not torch.equal(a, b) for a, b in zip(before, after))


def test_same_seed_same_training() -> None:
    runs = []
    for _ in range(2):
        spec = registry.make("MoveToGoal2D-Hybrid", seed=0).behavior_specs["MoveToGoal2D-Hybrid"]
        trainer = make_trainer(spec, seed=4, hyper={"batch_size": 32})
        runs.append((drive(trainer, "MoveToGoal2D-Hybrid", 300, seed=2), trainer.get_state().tensors))
    assert runs[0][0] == runs[1][0]
    for key, value in runs[0][1].items():
        assert torch.equal(value, runs[1][1][key]), key


# -- the update ------------------------------------------------------------------------------------
def _reference_gradients(trainer: SACTrainer, batch: Any) -> dict[str, list[torch.Tensor]]:
    """The same losses written out plainly, one autograd.grad per optimiser (as ML-Agents' 3 backward passes)."""
    nets, up = trainer.nets, trainer.updater
    c, branches = trainer.shape.continuous_size, trainer.shape.branches
    mean, log_std, logits = nets.policy.heads(batch.x)
    penalty = torch.zeros(batch.x.shape[0])
    ent_loss = torch.zeros(())
    if c:
        u = mean + log_std.exp() * batch.noise
        action = torch.tanh(u)
        log_pi_c = (
            torch.distributions.Normal(mean, log_std.exp()).log_prob(u) - torch.log1p(-(action**2) + 1e-30)
        ).sum(-1)
        alpha_c = up.log_alpha_c.exp().detach()
        penalty = penalty + alpha_c * log_pi_c
        ent_loss = ent_loss - (up.log_alpha_c * (log_pi_c.detach() - c)).mean()
    q_stored = nets.q(torch.cat([batch.x, batch.action], 1) if c else batch.x)
    q_fresh = nets.q(torch.cat([batch.x, action], 1) if c else batch.x)  # WITH weights: grads to Q discarded below
    if branches:
        masked = torch.where(batch.allowed, logits, torch.full_like(logits, -1e8))
        probs_all, logp_all = [], []
        for i, part in enumerate(torch.split(masked, list(branches), 1)):
            lp = torch.log_softmax(part, 1)
            probs_all.append(lp.exp())
            logp_all.append(lp)
            e = (lp.exp() * lp).sum(1)
            alpha_b = up.log_alpha_d[i].exp().detach()
            penalty = penalty + alpha_b * e
            ent_loss = ent_loss - (up.log_alpha_d[i] * (e.detach() + 0.2 * math.log(branches[i]))).mean()
        probs = torch.cat(probs_all, 1)
        nb = len(branches)
        taken = (q_stored * batch.one_hot[None, :, None, :]).sum(-1) / nb
        exp_q1 = (q_fresh[0] * probs[:, None, :]).sum(-1) / nb
        q_min = torch.min(q_fresh[0], q_fresh[1]).detach()
        exp_min = (q_min * probs.detach()[:, None, :]).sum(-1) / nb
    else:
        taken = q_stored[..., 0]
        exp_q1 = q_fresh[0, ..., 0]
        exp_min = torch.min(q_fresh[0], q_fresh[1])[..., 0].detach()
    with torch.no_grad():
        y = batch.rewards + 0.9 * (1 - batch.done[:, None]) * nets.target_value(batch.next_x)
    v_target = (exp_min - penalty[:, None]).detach()
    q1_loss = 0.5 * ((y - taken[0]) ** 2).mean()
    q2_loss = 0.5 * ((y - taken[1]) ** 2).mean()
    v_loss = 0.5 * ((nets.value(batch.x) - v_target) ** 2).mean()
    policy_loss = (penalty - exp_q1.mean(-1)).mean()
    actor_params = list(nets.policy.parameters())
    critic_params = [*nets.q.parameters(), *nets.value.parameters()]
    return {
        "policy": list(torch.autograd.grad(policy_loss, actor_params, retain_graph=True)),
        "critic": list(torch.autograd.grad(q1_loss + q2_loss + v_loss, critic_params, retain_graph=True)),
        "entropy": list(torch.autograd.grad(ent_loss, up.entropy_parameters())),
    }


@pytest.mark.parametrize("spec", [CONTINUOUS, DISCRETE, HYBRID], ids=["continuous", "discrete", "hybrid"])
def test_one_backward_gives_every_parameter_exactly_its_own_loss_gradient(spec: BehaviorSpec) -> None:
    trainer = make_trainer(spec)
    rng = np.random.default_rng(0)
    trainer.observe(outcome([trajectory(spec, 40, rng, terminal=True, ends=True)]))  # fills and updates
    batch = trainer.sample_batches(1).get(0)
    if batch.allowed is not None:
        batch.allowed[:, 1] = False  # exercise a mask
    expected = _reference_gradients(trainer, batch)
    up = trainer.updater
    up.stepper.zero_grad()
    sac_losses(trainer.nets, up.coefficients, batch).total().backward()
    for name, opt in up.optimizers().items():
        params = [p for g in opt.param_groups for p in g["params"]]
        for p, g in zip(params, expected[name]):
            assert p.grad is not None
            torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6, msg=f"{name} {tuple(p.shape)}")


def test_multi_adam_step_equals_three_torch_adam_steps() -> None:
    torch.manual_seed(0)
    sets_a = [[torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))] for _ in range(3)]
    sets_b = [[torch.nn.Parameter(p.detach().clone()) for p in s] for s in sets_a]
    opts_a = [torch.optim.Adam(s, lr=1e-2, fused=True) for s in sets_a]
    opts_b = [torch.optim.Adam(s, lr=1e-2, fused=True) for s in sets_b]
    stepper = MultiAdamStepper(opts_b)
    for i in range(6):
        grads = [[torch.randn_like(p) for p in s] for s in sets_a]
        for params, gs in ((sets_a, grads), (sets_b, grads)):
            for s, g in zip(params, gs):
                for p, gp in zip(s, g):
                    p.grad = gp.clone()
        for opt in opts_a:
            opt.step()
        stepper.step()
        lr = 1e-2 / (i + 2)
        for opt in opts_a:
            opt.param_groups[0]["lr"] = lr
        stepper.set_lr(lr)
    for sa, sb in zip(sets_a, sets_b):
        for pa, pb in zip(sa, sb):
            assert torch.equal(pa, pb)
    for oa, ob in zip(opts_a, opts_b):
        for pa, pb in zip(oa.param_groups[0]["params"], ob.param_groups[0]["params"]):
            for key in ("step", "exp_avg", "exp_avg_sq"):
                assert torch.equal(oa.state[pa][key], ob.state[pb][key])


def test_update_rule_follows_steps_per_update_and_buffer_init_steps() -> None:
    trainer = make_trainer(CONTINUOUS, hyper={"steps_per_update": 10, "batch_size": 8, "buffer_init_steps": 30})
    calls: list[int] = []
    original = trainer.updater.update
    trainer.updater.update = lambda b: calls.append(1) or original(b)  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    trainer.observe(outcome([trajectory(CONTINUOUS, 20, rng, terminal=False, ends=False)]))
    assert trainer.step == 20 and not calls  # step < buffer_init_steps
    trainer.observe(outcome([trajectory(CONTINUOUS, 80, rng, terminal=False, ends=False)]))
    # (100 - 30) / update_count > 10 holds for update_count 1..6: 6 updates
    assert len(calls) == 6 and trainer.update_count == 7
    trainer.observe(outcome([trajectory(CONTINUOUS, 25, rng, terminal=True, ends=True)]))
    assert len(calls) == 9 and trainer.update_count == 10  # (125 - 30) / 9 > 10 > 95 / 10


def test_transitions_bootstrap_through_interruptions_only() -> None:
    trainer = make_trainer(CONTINUOUS, hyper={"batch_size": 1000, "buffer_size": 1000})  # no updates
    rng = np.random.default_rng(0)
    cut = trajectory(CONTINUOUS, 4, rng, terminal=False, ends=False)  # time horizon reached
    interrupted = trajectory(CONTINUOUS, 3, rng, terminal=False, ends=True)  # max steps
    finished = trajectory(CONTINUOUS, 2, rng, terminal=True, ends=True)
    trainer.observe(outcome([cut, interrupted, finished]))
    data = trainer.buffer.view()
    np.testing.assert_array_equal(data["done"], [False] * 8 + [True])
    np.testing.assert_array_equal(data["next_obs"][:3], cut.obs[1:])
    np.testing.assert_array_equal(data["next_obs"][3], cut.next_obs)
    np.testing.assert_array_equal(data["next_obs"][6], interrupted.next_obs)  # the real terminal observation
    np.testing.assert_array_equal(data["next_obs"][8], finished.next_obs)
    np.testing.assert_array_equal(data["continuous"][4:7], interrupted.continuous)
    assert trainer.step == 9


# -- checkpoint state ------------------------------------------------------------------------------
def _assert_same_parameters(a: SACTrainer, b: SACTrainer) -> None:
    sa, sb = a.get_state().tensors, b.get_state().tensors
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def test_state_round_trip_gives_identical_actions_and_identical_next_update(tmp_path: Path) -> None:
    hyper = {"steps_per_update": 4, "save_replay_buffer": True}
    trained = make_trainer(HYBRID, seed=1, hyper=hyper)
    rng = np.random.default_rng(5)
    for _ in range(3):
        trained.observe(outcome([trajectory(HYBRID, 30, rng, terminal=True, ends=True)]))
    state = trained.get_state()
    meta = json.loads(json.dumps(state.meta))  # meta is plain JSON
    trained.save_auxiliary(tmp_path)
    fresh = make_trainer(HYBRID, seed=99, hyper=hyper)
    fresh.set_state(TrainerState(tensors={k: v.clone() for k, v in state.tensors.items()}, meta=meta))
    fresh.load_auxiliary(tmp_path)
    assert fresh.step == trained.step == 90 and fresh.update_count == trained.update_count
    for key, value in trained.entropy_coefficients().items():
        np.testing.assert_array_equal(fresh.entropy_coefficients()[key], value)
        assert not np.allclose(value, 0.3)  # they moved away from init_entcoef and came back exactly
    _assert_same_parameters(trained, fresh)
    obs = rng.standard_normal((7, 3)).astype(np.float32)
    a, b = trained.policy.act(obs, None), fresh.policy.act(obs, None)
    np.testing.assert_array_equal(a.continuous, b.continuous)
    np.testing.assert_array_equal(a.discrete, b.discrete)
    nxt = trajectory(HYBRID, 30, rng, terminal=True, ends=True)
    trained.observe(outcome([nxt]))
    fresh.observe(outcome([nxt]))
    assert trained.update_count > 23  # updates happened
    _assert_same_parameters(trained, fresh)


def test_weights_only_copies_the_whole_agent_but_not_optimisers_step_or_buffer(caplog: Any) -> None:
    """initialize-from: actor, normaliser, twin Q, value, target value and entropy coefficients."""
    trained = make_trainer(CONTINUOUS, seed=1)
    trained.observe(outcome([trajectory(CONTINUOUS, 40, np.random.default_rng(0), terminal=True, ends=True)]))
    source = trained.get_state().tensors
    fresh = make_trainer(CONTINUOUS, seed=2)
    before = fresh.get_state().tensors
    with caplog.at_level(logging.INFO, logger="fledge"):
        fresh.set_state(trained.get_state(), weights_only=True)
    after = fresh.get_state().tensors
    assert fresh.step == 0 and fresh.update_count == 1 and fresh.buffer.count == 0
    parts = {key.split(".", 1)[0] for key in after}
    assert parts == {"policy", "q", "value", "target_value", "entropy", "optimizer"}
    for key, value in after.items():
        if key.startswith("optimizer."):
            assert torch.equal(value, before[key]), key
        else:
            assert torch.equal(value, source[key]), key
    for part in ("policy.", "q.", "value.", "target_value.", "entropy."):  # each part differed before the copy
        assert any(not torch.equal(source[k], before[k]) for k in source if k.startswith(part)), part
    coefficient = fresh.entropy_coefficients()["continuous"]
    np.testing.assert_array_equal(coefficient, trained.entropy_coefficients()["continuous"])
    assert not np.allclose(coefficient, 0.3)
    obs = np.ones((2, 3), np.float32)
    np.testing.assert_allclose(fresh.policy.actor.normalize(obs), trained.policy.actor.normalize(obs))
    np.testing.assert_allclose(fresh.policy.values(obs), trained.policy.values(obs))
    assert "twin Q, value and target value networks and the entropy coefficients" in caplog.text


def test_non_finite_losses_raise_training_diverged_error() -> None:
    trainer = make_trainer(CONTINUOUS, seed=1)
    with torch.no_grad():
        trainer.nets.target_value.head_w.fill_(float("nan"))  # Q targets become NaN at the first update
    with pytest.raises(TrainingDivergedError, match=r"behavior 'B' \(SAC\) diverged at step 40: .*Q1 loss = nan"):
        trainer.observe(outcome([trajectory(CONTINUOUS, 40, np.random.default_rng(0), terminal=True, ends=True)]))


def test_buffer_smaller_than_a_minibatch_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"buffer_size \(16\) is smaller than batch_size \(32\)"):
        sac_settings(hyper={"batch_size": 32, "buffer_size": 16})
    sac_settings(hyper={"batch_size": 32, "buffer_size": 32})  # exactly one minibatch is enough


def test_mismatched_or_missing_tensors_raise_checkpoint_errors() -> None:
    small = make_trainer(CONTINUOUS, network={"hidden_units": 8})
    big = make_trainer(CONTINUOUS)
    state = small.get_state()
    with pytest.raises(CheckpointError, match=r"tensor 'policy\.head_w' has shape \(8, 4\).*needs \(16, 4\)"):
        big.set_state(state)
    with pytest.raises(CheckpointError, match="policy.head_w"):
        big.set_state(state, weights_only=True)
    good = big.get_state()
    del good.tensors["entropy.log_coef_continuous"]
    with pytest.raises(CheckpointError, match="lacks tensor.*entropy.log_coef_continuous"):
        big.set_state(good)
    other = make_trainer(HYBRID).get_state()
    with pytest.raises(CheckpointError):
        big.set_state(other)
    # nothing was changed by the failed attempts
    _assert_same_parameters(big, big)


def test_resume_without_update_count_uses_the_step_count() -> None:
    trainer = make_trainer(CONTINUOUS, hyper={"steps_per_update": 4})
    state = trainer.get_state()
    state.meta = {"step": 400}
    trainer.set_state(state)
    assert trainer.step == 400 and trainer.update_count == 100.0


def test_replay_buffer_is_saved_and_loaded_with_the_checkpoint(tmp_path: Path, caplog: Any) -> None:
    trainer = make_trainer(HYBRID, hyper={"save_replay_buffer": True})
    trainer.observe(outcome([trajectory(HYBRID, 30, np.random.default_rng(0), terminal=True, ends=True)]))
    paths = trainer.save_auxiliary(tmp_path)
    assert paths == [tmp_path / REPLAY_BUFFER_FILE] and paths[0].is_file()
    fresh = make_trainer(HYBRID, hyper={"save_replay_buffer": True})
    fresh.load_auxiliary(tmp_path)
    for key, value in trainer.buffer.view().items():
        np.testing.assert_array_equal(fresh.buffer.view()[key], value)
    with caplog.at_level(logging.WARNING, logger="fledge"):
        make_trainer(HYBRID, hyper={"save_replay_buffer": True}).load_auxiliary(tmp_path / "elsewhere")
    assert "starts empty" in caplog.text
    caplog.clear()
    off = make_trainer(HYBRID)
    assert off.save_auxiliary(tmp_path / "off") == [] and not (tmp_path / "off").exists()
    with caplog.at_level(logging.WARNING, logger="fledge"):
        off.load_auxiliary(tmp_path)
    assert "save_replay_buffer is false" in caplog.text and len(off.buffer) == 0
    (tmp_path / REPLAY_BUFFER_FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match=REPLAY_BUFFER_FILE):
        fresh.load_auxiliary(tmp_path)


def test_actor_graph_describes_the_squashed_actor() -> None:
    trainer = make_trainer(HYBRID, deterministic=True)
    trainer.nets.policy.normalizer.update(np.random.default_rng(1).standard_normal((50, 3)))  # type: ignore[union-attr]
    graph = trainer.policy.actor_graph()
    assert graph.continuous_transform == "tanh" and graph.log_std is None and graph.log_std_head is not None
    assert graph.discrete_branches == (3, 2) and graph.observation_shapes == ((3,),)
    obs = np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32)
    x = np.clip(obs * graph.norm_scale - graph.norm_offset, -5, 5)
    for w, b in graph.hidden_layers:
        z = x @ w + b
        x = z / (1 + np.exp(-z))
    assert graph.mu is not None and graph.logits is not None
    np.testing.assert_allclose(
        np.tanh(x @ graph.mu[0] + graph.mu[1]), trainer.policy.act(obs, None).continuous, rtol=1e-5, atol=1e-6
    )
    logits = x @ graph.logits[0] + graph.logits[1]
    np.testing.assert_array_equal(logits[:, :3].argmax(1), trainer.policy.act(obs, None).discrete[:, 0])


def test_unsupported_settings_are_refused() -> None:
    settings = sac_settings(reward_signals={"gail": {"strength": 0.1, "demo_path": "/nonexistent/expert.demo"}})
    with pytest.raises(ConfigError, match=r"reward_signals\.gail\.demo_path: no demonstration at /nonexistent/expert"):
        SACTrainer(behavior_name="B", spec=CONTINUOUS, settings=settings, stats=StatsReporter([]), seed=0)


class Capture(StatsWriter):
    def __init__(self) -> None:
        self.written: list[dict[str, StatSummary]] = []

    def write_stats(self, category: str, summaries: Any, step: int) -> None:
        self.written.append(dict(summaries))


def test_sac_reports_ml_agents_stat_names() -> None:
    capture = Capture()
    trainer = SACTrainer(
        behavior_name="MoveToGoal2D-Hybrid",
        spec=registry.make("MoveToGoal2D-Hybrid", seed=0).behavior_specs["MoveToGoal2D-Hybrid"],
        settings=sac_settings(summary_freq=300, network={"normalize": False}),
        stats=StatsReporter([capture]),
        seed=0,
    )
    drive(trainer, "MoveToGoal2D-Hybrid", 700)
    assert len(capture.written) >= 2
    names = set().union(*capture.written)
    for key in (
        "Environment/Cumulative Reward",
        "Environment/Episode Length",
        "Policy/Entropy",
        "Policy/Extrinsic Reward",
        "Policy/Extrinsic Value",
        "Losses/Policy Loss",
        "Losses/Value Loss",
        "Losses/Q1 Loss",
        "Losses/Q2 Loss",
        "Policy/Continuous Entropy Coeff",
        "Policy/Discrete Entropy Coeff",
        "Policy/Learning Rate",
        "Is Training",
        "Step",
    ):
        assert key in names, key
    assert "Policy/Extrinsic Value Estimate" not in names
    assert trainer.mean_reward_since_update is None or math.isfinite(trainer.mean_reward_since_update)
