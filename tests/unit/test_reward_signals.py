"""The reward signals (rewards/): what each one rewards, that its networks learn what they should, and
that a signal restored from its state carries on exactly as the original."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import toy_options
from fledge import api
from fledge.checkpoints.state_io import load_state
from fledge.config import build_run_options
from fledge.envs.api import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from fledge.errors import ConfigError
from fledge.imitation.expert import ExpertData
from fledge.rewards import RewardSignals, SignalBatch, build_signals
from fledge.rewards import losses as L
from fledge.rewards.base import BodySettings, LearnedSignal
from fledge.rewards.curiosity import REWARD_ROWS, CuriositySignal
from fledge.rewards.gail import GAILSignal, check_expert, load_expert_data
from fledge.rewards.rnd import RNDSignal
from fledge.trainers.on_policy import OnPolicyTrainer

CPU = torch.device("cpu")
VISUAL = (
    DimensionProperty.NONE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
)
VECTOR = BehaviorSpec(
    observation_specs=[ObservationSpec.vector(6, "VectorSensor")],
    action_spec=ActionSpec(continuous_size=2, discrete_branches=(3,)),
)


def batch(n: int, seed: int = 0, spec: BehaviorSpec = VECTOR, shift: float = 0.0) -> SignalBatch:
    rng = np.random.default_rng(seed)
    size = sum(int(np.prod(o.shape)) for o in spec.observation_specs)
    aspec = spec.action_spec
    obs = (rng.normal(size=(n, size)) + shift).astype(np.float32)
    return SignalBatch(
        obs=obs,
        next_obs=(obs + 0.1 * rng.normal(size=obs.shape)).astype(np.float32),
        continuous=rng.uniform(-1, 1, size=(n, aspec.continuous_size)).astype(np.float32),
        discrete=np.stack([rng.integers(0, b, n) for b in aspec.discrete_branches], axis=1)
        if aspec.discrete_branches
        else np.zeros((n, 0), np.int64),
        done=np.zeros(n, np.bool_),
        env_rewards=rng.normal(size=n).astype(np.float32),
    )


def common(spec: BehaviorSpec = VECTOR, *, seed: int = 3, lr: float = 3e-3, strength: float = 0.5) -> dict[str, Any]:
    return {
        "gamma": 0.9,
        "strength": strength,
        "learning_rate": lr,
        "observation_specs": spec.observation_specs,
        "action_spec": spec.action_spec,
        "body": BodySettings(hidden_units=16, num_layers=1),
        "seed": seed,
        "device": CPU,
    }


def expert_of(b: SignalBatch, spec: BehaviorSpec = VECTOR) -> ExpertData:
    n = len(b)
    return ExpertData(
        spec=spec,
        obs=[b.obs],
        continuous_actions=b.continuous,
        discrete_actions=b.discrete.astype(np.int64),
        rewards=b.env_rewards,
        done=b.done,
        action_masks=np.ones((n, sum(spec.action_spec.discrete_branches)), np.bool_),
    )


def settings_of(signals: dict[str, Any]) -> Any:
    raw = {"behaviors": {"B": {"trainer_type": "ppo", "reward_signals": signals}}}
    return build_run_options(raw).behavior_settings("B")


def test_build_signals_keeps_the_config_order_and_each_signal_settings() -> None:
    settings = settings_of(
        {
            "rnd": {"gamma": 0.5, "strength": 0.01},
            "extrinsic": {"gamma": 0.99, "strength": 2.0},
            "curiosity": {"gamma": 0.8, "strength": 0.1, "network_settings": {"hidden_units": 8, "num_layers": 1}},
        }
    )
    signals = build_signals(settings, VECTOR, where="behaviors.B", seed=0, device=CPU)
    assert signals.names == ("rnd", "extrinsic", "curiosity")
    np.testing.assert_allclose(signals.gammas, [0.5, 0.99, 0.8])
    np.testing.assert_allclose(signals.strengths, [0.01, 2.0, 0.1])
    assert signals.ignore_done.tolist() == [True, False, True]  # spec 8.6
    assert signals.learned and not signals.only_extrinsic
    assert signals.labels == ("RND", "Extrinsic", "Curiosity")
    b = batch(5)
    rewards = signals.rewards(b)
    np.testing.assert_allclose(rewards[:, 1], b.env_rewards * 2.0, rtol=1e-6)  # extrinsic x strength
    np.testing.assert_allclose(rewards[:, 2], 0.0)  # curiosity before its first update
    assert (rewards[:, 0] > 0).all()  # RND: the predictor starts away from the target
    curiosity = signals.signals[2]
    assert isinstance(curiosity, LearnedSignal)
    assert curiosity.module.body.hidden_units == 8 and curiosity.learning_rate == pytest.approx(3e-4)
    rnd = signals.signals[0]
    assert isinstance(rnd, LearnedSignal) and rnd.learning_rate == pytest.approx(1e-4)  # RND's own default


def test_memory_in_a_signal_network_settings_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_of(
        {"extrinsic": {}, "rnd": {"network_settings": {"memory": {"memory_size": 8, "sequence_length": 4}}}}
    )
    with caplog.at_level(logging.WARNING, logger="fledge"):
        build_signals(settings, VECTOR, where="behaviors.B", seed=0, device=CPU)
    assert "behaviors.B.reward_signals.rnd.network_settings.memory has no effect" in caplog.text


def test_curiosity_reward_is_clipped_and_falls_where_the_forward_model_learns() -> None:
    signal = CuriositySignal(**common(strength=0.5))
    b = batch(64)
    np.testing.assert_array_equal(signal.rewards(b), 0.0)  # not updated yet
    first = signal.update(b)
    assert set(first) == {"Losses/Curiosity Forward Loss", "Losses/Curiosity Inverse Loss"}
    before = signal.rewards(b)
    assert before.max() <= 1.0 / 0.5 + 1e-6 and before.mean() > 0
    for _ in range(60):
        last = signal.update(b)
    assert last["Losses/Curiosity Forward Loss"] < first["Losses/Curiosity Forward Loss"]
    assert last["Losses/Curiosity Inverse Loss"] < first["Losses/Curiosity Inverse Loss"]
    assert signal.rewards(b).mean() < before.mean()


def test_curiosity_rewards_of_many_rows_equal_the_networks_own_forward_pass() -> None:
    """On vector observations the rewards are computed REWARD_ROWS transitions at a time by rewards/fast.py:
    the same numbers, in the same order, as the networks' modules over the whole batch at once."""
    signal = CuriositySignal(**common(strength=0.05))
    signal.update(batch(64))
    b = batch(2 * REWARD_ROWS + 37, seed=4)
    assert signal.hand_gradients
    chunked = signal.rewards(b)
    signal.autograd = True  # the modules' own forward pass
    whole = signal.rewards(b)
    assert chunked.shape == (len(b),) and chunked.dtype == np.float32
    np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-7)


def test_signal_training_takes_each_epoch_in_shuffled_minibatches_and_drops_the_leftovers() -> None:
    b = batch(600, seed=2)
    trained_here, by_hand = CuriositySignal(**common()), CuriositySignal(**common())
    stats = RewardSignals([trained_here]).train(b, epochs=2, batch_size=64, rng=np.random.default_rng(5))
    rng = np.random.default_rng(5)
    seen = []
    for _ in range(2):
        perm = rng.permutation(600)
        for first in (0, 256):  # minibatches of max(64, 256) rows; each epoch's last 88 rows are dropped
            seen.append(by_hand.update(b.rows(perm[first : first + 256])))
    assert trained_here.update_count == by_hand.update_count == 4
    for p, q in zip(trained_here.module.parameters(), by_hand.module.parameters()):
        assert torch.equal(p, q)
    key = "Losses/Curiosity Forward Loss"
    assert stats[key] == pytest.approx(np.mean([s[key] for s in seen]))


def test_curiosity_reads_visual_observations_and_discrete_only_actions() -> None:
    spec = BehaviorSpec(
        observation_specs=[
            ObservationSpec((3, 20, 20), VISUAL, ObservationType.DEFAULT, "Camera"),
            ObservationSpec.vector(2, "VectorSensor"),
        ],
        action_spec=ActionSpec.create_discrete((2, 3)),
    )
    signal = CuriositySignal(**common(spec))
    b = batch(8, spec=spec)
    stats = signal.update(b)
    assert np.isfinite(list(stats.values())).all()
    assert signal.rewards(b).shape == (8,)


def test_rnd_trains_the_predictor_only_and_rewards_novel_observations_more() -> None:
    signal = RNDSignal(**common(lr=1e-2))
    target = {k: v.clone() for k, v in signal.module.target.state_dict().items()}
    seen, novel = batch(64, seed=1), batch(64, seed=2, shift=4.0)
    first = signal.update(seen)["Losses/RND Loss"]
    for _ in range(100):
        last = signal.update(seen)["Losses/RND Loss"]
    assert last < 0.2 * first
    for k, v in signal.module.target.state_dict().items():
        torch.testing.assert_close(v, target[k], rtol=0, atol=0)
    assert signal.rewards(novel).mean() > 5 * signal.rewards(seen).mean()
    # the reward is the error the loss averages
    b = batch(4, seed=3)
    with torch.no_grad():
        obs = torch.from_numpy(b.next_obs)
        expected = L.rnd_error(
            signal.module.predictor(obs)[0],
            signal.module.target(obs)[0],
        )
    np.testing.assert_allclose(signal.rewards(b), expected.numpy(), rtol=1e-5)


@pytest.mark.parametrize("use_actions", [False, True])
def test_gail_tells_the_expert_from_the_policy(use_actions: bool) -> None:
    expert, policy = batch(128, seed=1, shift=1.5), batch(128, seed=2)
    signal = GAILSignal(expert=expert_of(expert), use_actions=use_actions, use_vail=False, **common(lr=1e-2))
    for _ in range(80):
        stats = signal.update(policy)
    assert stats["Policy/GAIL Expert Estimate"] > 0.6 > 0.4 > stats["Policy/GAIL Policy Estimate"]
    assert {"Losses/GAIL Loss", "Policy/GAIL Grad Mag Loss"} <= set(stats)
    assert signal.rewards(expert).mean() > 2 * signal.rewards(policy).mean()
    x = signal.module.body
    assert x.extra_inputs == (2 + 3 + 1 if use_actions else 0)  # continuous, one-hot branch, done flag


def test_vail_reports_and_updates_beta_by_the_rule() -> None:
    expert, policy = batch(32, seed=1, shift=1.0), batch(32, seed=2)
    signal = GAILSignal(expert=expert_of(expert), use_actions=False, use_vail=True, **common())
    beta = 0.0
    for _ in range(3):
        stats = signal.update(policy)
        assert stats["Policy/GAIL Beta"] == beta  # the beta this update used
        beta = L.vail_beta_update(beta, stats["Losses/GAIL KL Loss"])
        assert signal.beta == pytest.approx(beta)
    assert stats["Losses/GAIL KL Loss"] >= 0.0
    signal.beta = 0.25  # a beta above 0 enters the loss: the next update reports it and moves it by the rule
    stats = signal.update(policy)
    assert stats["Policy/GAIL Beta"] == 0.25
    assert signal.beta == pytest.approx(L.vail_beta_update(0.25, stats["Losses/GAIL KL Loss"]))


def test_gail_refuses_demonstrations_of_another_behavior() -> None:
    other = BehaviorSpec(
        observation_specs=[ObservationSpec.vector(5, "VectorSensor")], action_spec=ActionSpec.create_discrete((3,))
    )
    b = batch(4, spec=other)
    with pytest.raises(ConfigError, match=r"behaviors\.B\.reward_signals\.gail: the demonstrations do not fit") as info:
        check_expert(expert_of(b, other), VECTOR, "behaviors.B.reward_signals.gail")
    assert "observation shapes [(5,)]" in str(info.value) and "continuous 0, branches (3,)" in str(info.value)
    with pytest.raises(ConfigError, match=r"gail\.demo_path: no demonstration at /nonexistent/expert\.demo"):
        load_expert_data("/nonexistent/expert.demo", VECTOR, "behaviors.B.reward_signals.gail")


def test_gail_from_config_uses_the_expert_loader_and_checks_it() -> None:
    settings = settings_of({"gail": {"demo_path": "expert.demo", "use_actions": True}})
    seen: list[str] = []

    def loader(path: str, spec: BehaviorSpec, where: str) -> ExpertData:
        seen.append(f"{path} {where}")
        return expert_of(batch(16))

    signals = build_signals(settings, VECTOR, where="behaviors.B", seed=0, device=CPU, expert_loader=loader)
    assert signals.names == ("gail",) and seen == ["expert.demo behaviors.B.reward_signals.gail"]


def trained(signals: RewardSignals, steps: int) -> None:
    for i in range(steps):
        signals.update(batch(16, seed=10 + i))


@pytest.mark.parametrize("kind", ["curiosity", "rnd", "gail", "vail"])
def test_state_restores_a_signal_exactly(kind: str) -> None:
    def make(seed: int) -> RewardSignals:
        if kind == "curiosity":
            return RewardSignals([CuriositySignal(**common(seed=seed))])
        if kind == "rnd":
            return RewardSignals([RNDSignal(**common(seed=seed))])
        expert = expert_of(batch(40, seed=5, shift=1.0))
        return RewardSignals(
            [GAILSignal(expert=expert, use_actions=True, use_vail=kind == "vail", **common(seed=seed))]
        )

    original, copy = make(1), make(2)
    trained(original, 3)
    tensors, meta = original.state()
    assert tensors and all(k.startswith("signal.") for k in tensors)
    assert any(".optimizer." in k for k in tensors)
    assert copy.check_state(tensors, meta) == []
    copy.load_state(tensors, meta)
    probe = batch(8, seed=99)
    np.testing.assert_array_equal(copy.rewards(probe), original.rewards(probe))
    # the next updates (optimiser moments, generators, VAIL beta) are the same too
    a, b = original.update(batch(16, seed=50)), copy.update(batch(16, seed=50))
    assert a == b
    np.testing.assert_array_equal(copy.rewards(probe), original.rewards(probe))


def test_a_state_of_other_networks_is_refused_by_name() -> None:
    small = RewardSignals([RNDSignal(**common())])
    wide_args = common()
    wide_args["body"] = BodySettings(hidden_units=32, num_layers=1)
    wide = RewardSignals([RNDSignal(**wide_args)])
    tensors, meta = small.state()
    problems = wide.check_state(tensors, meta)
    assert problems and "this run's rnd network needs" in problems[0]
    assert RewardSignals([CuriositySignal(**common())]).check_state(tensors, meta) == [
        "the checkpoint has no state of the curiosity reward signal"
    ]


def test_sac_q_target_bootstraps_through_episode_ends_for_signals_that_ignore_done() -> None:
    from fledge.trainers.sac.losses import q_target

    rewards = torch.tensor([[1.0, 0.5]])
    next_values = torch.tensor([[2.0, 4.0]])
    gammas = torch.tensor([0.9, 0.5])
    # an episode end: extrinsic (done) stops there, curiosity (ignores done) bootstraps: 0.5 + 0.5 * 4
    done = torch.tensor([[1.0, 0.0]])
    torch.testing.assert_close(q_target(rewards, done, next_values, gammas), torch.tensor([[1.0, 2.5]]))
    torch.testing.assert_close(q_target(rewards, torch.tensor([1.0]), next_values, gammas), rewards)


def test_ppo_bootstraps_signals_that_ignore_done_from_the_terminal_observation() -> None:
    from fledge.rollout.processor import Trajectory
    from fledge.stats import StatsReporter
    from fledge.trainers.ppo.trainer import PPOTrainer

    settings = settings_of({"extrinsic": {}, "curiosity": {"strength": 0.1}})
    trainer = PPOTrainer(behavior_name="B", spec=VECTOR, settings=settings, stats=StatsReporter([]), seed=0)
    b = batch(3)
    traj = Trajectory(
        agent_id=0,
        obs=b.obs,
        continuous=b.continuous,
        discrete=b.discrete.astype(np.int32),
        log_prob=np.zeros(3, np.float32),
        values=np.zeros((3, 2), np.float32),
        rewards=b.env_rewards,
        allowed=None,
        bootstrap=np.zeros(2, np.float32),
        next_obs=b.next_obs[-1],
        terminal=True,
        ends_episode=True,
    )
    boot = trainer.signal_bootstrap(traj, traj.bootstrap)
    expected = trainer.policy.values(b.next_obs[-1:])[0]
    assert boot[0] == 0.0 and boot[1] == pytest.approx(float(expected[1])) and boot[1] != 0.0
    # rewards: the extrinsic column is the environment's reward, curiosity's 0 before its first update
    rewards, transitions = trainer.signal_rewards([traj])
    np.testing.assert_allclose(rewards[0][:, 0], b.env_rewards)
    np.testing.assert_array_equal(rewards[0][:, 1], 0.0)
    assert transitions is not None and transitions.done.tolist() == [False, False, True]
    np.testing.assert_allclose(transitions.continuous, np.clip(b.continuous, -3, 3) / 3)  # as the environment got them


def test_ppo_rewards_computed_once_per_flush_equal_those_computed_per_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PPO holds trajectories back and computes learned signals' rewards in one batch before a summary
    closes or an update: the run is the same as one computing them as each step's trajectories arrive
    (every stat of every summary period, every tensor of the final checkpoint)."""
    signals = {
        "extrinsic": {"gamma": 0.99, "strength": 1.0},
        "curiosity": {"gamma": 0.9, "strength": 0.02, "network_settings": {"hidden_units": 16, "num_layers": 1}},
        "rnd": {"gamma": 0.9, "strength": 0.01, "network_settings": {"hidden_units": 16, "num_layers": 1}},
    }

    def run(folder: Path) -> tuple[str, dict[str, torch.Tensor]]:
        options = toy_options(
            folder,
            "MaskedChoice",
            steps=600,
            extra={"reward_signals": signals, "summary_freq": 200},
            hyperparameters={"buffer_size": 256, "batch_size": 64},
        )
        api.run(options, display="none")
        out = folder / "results" / "run"
        (unit,) = sorted((out / "MaskedChoice").glob("MaskedChoice-*.pt"))[-1:]
        return (out / "run_logs" / "MaskedChoice.csv").read_text(), load_state(unit)[0].tensors

    deferred = run(tmp_path / "deferred")
    monkeypatch.setattr(OnPolicyTrainer, "defer_rewards", property(lambda self: False))
    immediate = run(tmp_path / "immediate")
    assert deferred[0] == immediate[0]
    assert deferred[1].keys() == immediate[1].keys()
    for key, value in deferred[1].items():
        assert torch.equal(value, immediate[1][key]), key
