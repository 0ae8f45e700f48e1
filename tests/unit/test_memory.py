"""LSTM memory: the [h, c] packing, sequence cutting, padding and masks, the masked PPO losses (by hand),
acting and training computing the same numbers, per-agent memories in the processor, and critic
memories kept per agent by the PPO trainer."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fledge.config import build_run_options
from fledge.envs.api import ActionSpec, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from fledge.errors import CheckpointError
from fledge.networks import acting
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.networks.memory import (
    LSTMMemory,
    carry_through,
    pad_sequences,
    padded_length,
    sequence_masks,
    sequence_starts,
)
from fledge.networks.numpy_actor import ActOutput, NumpyActor
from fledge.networks.numpy_recurrent import NumpyRecurrentActor
from fledge.rollout.processor import AgentProcessor, Trajectory
from fledge.stats import StatsReporter
from fledge.trainers.ppo import fast_gradients, fast_recurrent
from fledge.trainers.ppo import losses as L
from fledge.trainers.ppo.trainer import PPOTrainer

HYBRID = ActionSpec(2, (3, 2))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


# -- the LSTM -----------------------------------------------------------------------------------------
def test_memory_is_h_then_c_and_one_step_matches_the_lstm_equations() -> None:
    torch.manual_seed(0)
    lstm = LSTMMemory(3, 8)
    assert (lstm.hidden, lstm.out_size, lstm.memory_size) == (4, 4, 8)
    x = torch.randn(2, 3)
    memory = torch.randn(2, 8)
    out, new = lstm.step(x, memory)
    # by hand: gates i, f, g, o from W_ih x + b_ih + W_hh h + b_hh; c' = f c + i g; h' = o tanh(c')
    w_ih, w_hh = lstm.lstm.weight_ih_l0.detach().numpy(), lstm.lstm.weight_hh_l0.detach().numpy()
    b = (lstm.lstm.bias_ih_l0 + lstm.lstm.bias_hh_l0).detach().numpy()
    h, c = memory[:, :4].numpy(), memory[:, 4:].numpy()
    z = x.numpy() @ w_ih.T + h @ w_hh.T + b
    i, f, g, o = sigmoid(z[:, :4]), sigmoid(z[:, 4:8]), np.tanh(z[:, 8:12]), sigmoid(z[:, 12:])
    c_new = f * c + i * g
    h_new = o * np.tanh(c_new)
    np.testing.assert_allclose(new[:, :4].detach().numpy(), h_new, atol=1e-6)
    np.testing.assert_allclose(new[:, 4:].detach().numpy(), c_new, atol=1e-6)
    np.testing.assert_allclose(out.detach().numpy(), h_new, atol=1e-6)


def test_lstm_initialisation_zero_biases_and_forget_gate_one() -> None:
    lstm = LSTMMemory(5, 6)
    np.testing.assert_array_equal(lstm.lstm.bias_ih_l0.detach().numpy(), [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    assert not lstm.lstm.bias_hh_l0.detach().any()
    for bad in (0, 7, -2):
        with pytest.raises(ValueError, match="even"):
            LSTMMemory(5, bad)


# -- sequences ----------------------------------------------------------------------------------------
def test_sequences_are_padded_at_the_end_with_masks() -> None:
    arr = np.arange(10, dtype=np.float32).reshape(5, 2)
    padded = pad_sequences(arr, 4)
    assert padded.shape == (8, 2) and padded_length(5, 4) == 8 and padded_length(8, 4) == 8
    np.testing.assert_array_equal(padded[:5], arr)
    np.testing.assert_array_equal(padded[5:], 0.0)
    allowed = pad_sequences(np.zeros((5, 3), np.bool_), 4, fill=True)
    assert allowed[:5].sum() == 0 and allowed[5:].all()
    np.testing.assert_array_equal(sequence_masks(5, 4), [1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(sequence_masks(4, 4), [1, 1, 1, 1])
    np.testing.assert_array_equal(sequence_starts(8, 4), [0, 4])
    assert pad_sequences(arr[:4], 4) is not None and pad_sequences(arr[:4], 4).shape == (4, 2)
    with pytest.raises(ValueError, match="whole sequences"):
        sequence_starts(6, 4)


@pytest.mark.parametrize("n", [7, 2, 3, 6, 10])
def test_carry_through_gives_the_step_by_step_outputs_and_the_memory_at_each_sequence_start(n: int) -> None:
    torch.manual_seed(1)
    lstm = LSTMMemory(3, 6)
    x = torch.randn(n, 3)
    initial = torch.randn(6)
    out, starts, final = carry_through(lstm, x, initial, 3)
    m = initial.reshape(1, -1)
    steps, before = [], []
    for t in range(n):
        before.append(m[0])
        o, m = lstm.step(x[t : t + 1], m)
        steps.append(o[0])
    torch.testing.assert_close(out, torch.stack(steps).detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(starts, torch.stack(before[::3]).detach(), atol=1e-6, rtol=0)
    torch.testing.assert_close(final, m[0].detach(), atol=1e-6, rtol=0)


@pytest.mark.parametrize("shared", [False, True])
def test_training_on_padded_sequences_reproduces_the_acting_log_probs(shared: bool) -> None:
    """Log-probs of acting step by step equal those of evaluating the sequences from the stored start memories,
    whatever the padding holds."""
    torch.manual_seed(2)
    model = ActorCritic(
        obs_size=3,
        action_spec=HYBRID,
        shape=NetworkShape(hidden_units=8, num_layers=1, normalize=False, memory_size=6),
        shared_critic=shared,
    )
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(5, 3)
    memory = torch.zeros(1, 6)
    stored, logps, conts, discs = [], [], [], []
    for t in range(5):
        stored.append(memory[0])
        d = model.act(obs[t : t + 1], None, generator=gen, memory=memory)
        assert d.memory is not None
        memory = d.memory
        logps.append(d.log_prob[0])
        conts.append(d.continuous[0])  # type: ignore[index]
        discs.append(d.discrete[0])  # type: ignore[index]
    seq = 4
    x = torch.from_numpy(pad_sequences(obs.numpy(), seq))
    x[5:] = 1e3  # padding content must not change the real rows
    cont = torch.from_numpy(pad_sequences(torch.stack(conts).numpy(), seq))
    disc = torch.from_numpy(pad_sequences(torch.stack(discs).numpy(), seq))
    starts = torch.stack(stored)[::seq]
    logp, _, _ = model.evaluate(x, cont, disc, None, memory=starts, critic_memory=torch.zeros_like(starts), seq_len=seq)
    torch.testing.assert_close(logp[:5], torch.stack(logps), atol=1e-5, rtol=0)


def test_memory_networks_take_the_recurrent_accelerators() -> None:
    model = ActorCritic(obs_size=3, action_spec=HYBRID, shape=NetworkShape(8, 1, True, memory_size=4))
    assert not model.vector_mlp and not fast_gradients.covers(model) and not NumpyActor.covers(model)
    assert fast_recurrent.covers(model)
    assert isinstance(acting.make_actor(model, rng=np.random.default_rng(0)), NumpyRecurrentActor)
    names = set(model.state_dict())
    assert any(n.startswith("memory.0.lstm.") for n in names) and any(n.startswith("memory.1.lstm.") for n in names)
    again = ActorCritic(obs_size=3, action_spec=HYBRID, shape=NetworkShape(8, 1, True, memory_size=4))
    again.load_state_dict(model.state_dict())  # the stored names load back


# -- masked losses ------------------------------------------------------------------------------------
def test_masked_mean_by_hand() -> None:
    x = torch.tensor([1.0, 2.0, 3.0, 4.0])
    m = torch.tensor([1.0, 1.0, 0.0, 1.0])
    assert float(L.masked_mean(x, m)) == pytest.approx((1 + 2 + 4) / 3)
    assert float(L.masked_mean(x, torch.zeros(4))) == 0.0  # max(1, sum(mask)) in the denominator
    x2 = torch.tensor([[1.0, 3.0], [2.0, 2.0], [9.0, 9.0]])
    assert float(L.masked_mean(x2, torch.tensor([1.0, 1.0, 0.0]))) == pytest.approx((1 + 3 + 2 + 2) / 4)
    assert float(L.masked_mean(x, None)) == pytest.approx(2.5)


def test_masked_policy_and_value_losses_by_hand() -> None:
    eps = 0.2
    logp = torch.tensor([-1.0, -0.5, 50.0])  # the padded row's log-prob would overflow exp()
    old = torch.tensor([-1.2, -0.4, -50.0])
    adv = torch.tensor([1.0, -2.0, 3.0])
    masks = torch.tensor([1.0, 1.0, 0.0])
    r0, r1 = np.exp(0.2), np.exp(-0.1)
    want = -(min(r0 * 1.0, 1.2 * 1.0) + min(r1 * -2.0, max(r1, 0.8) * -2.0)) / 2
    got = L.policy_loss(logp, old, adv, eps, masks)
    assert float(got) == pytest.approx(want, rel=1e-6) and torch.isfinite(got)

    values = torch.tensor([[1.0], [0.0], [7.0]])
    old_v = torch.tensor([[0.5], [0.1], [0.0]])
    returns = torch.tensor([[2.0], [1.0], [0.0]])
    # row 0: V-V_old = 0.5 -> clipped 0.7; max((2-1)^2, (2-0.7)^2) = 1.69; row 1: max(1, (1-0.1)^2) = 1
    assert float(L.value_loss(values, old_v, returns, eps, masks)) == pytest.approx((1.69 + 1.0) / 2, rel=1e-6)

    logp.requires_grad_(True)
    L.policy_loss(logp, old, adv, eps, masks).backward()
    assert logp.grad is not None and torch.isfinite(logp.grad).all() and float(logp.grad[2]) == 0.0


def test_advantages_are_normalised_over_real_rows() -> None:
    adv = np.array([1.0, 3.0, 0.0, 0.0], np.float32)
    out = L.normalize_advantages(adv, np.array([1, 1, 0, 0], np.float32))
    np.testing.assert_allclose(out[:2], [-1.0, 1.0], atol=1e-6)


# -- the processor keeps a memory per agent --------------------------------------------------------------
SPEC = BehaviorSpec([ObservationSpec.vector(2)], ActionSpec.create_discrete((2,)))


def decision(ids: list[int]) -> DecisionSteps:
    n = len(ids)
    return DecisionSteps(
        [np.full((n, 2), 1.0, np.float32)], np.zeros(n, np.float32), np.array(ids, np.int32), None,
        np.zeros(n, np.int32), np.zeros(n, np.float32),
    )  # fmt: skip


def terminal(ids: list[int]) -> TerminalSteps:
    n = len(ids)
    return TerminalSteps(
        [np.zeros((n, 2), np.float32)], np.ones(n, np.float32), np.zeros(n, bool), np.array(ids, np.int32),
        np.zeros(n, np.int32), np.zeros(n, np.float32),
    )  # fmt: skip


def out_for(n: int, memory: np.ndarray) -> ActOutput:
    return ActOutput(
        np.zeros((n, 0), np.float32), np.zeros((n, 1), np.int32), np.zeros(n, np.float32),
        np.zeros((n, 1), np.float32), np.zeros(n, np.float32), memory=memory,
    )  # fmt: skip


def test_processor_records_memory_before_each_decision_and_resets_it_at_episode_end() -> None:
    proc = AgentProcessor(spec=SPEC, time_horizon=10, n_values=1, memory_size=2)
    no_end = terminal([])
    step_memory = [np.array([[1.0, 1.0], [5.0, 5.0]]), np.array([[2.0, 2.0], [6.0, 6.0]])]
    for k in range(2):
        before = proc.memories(np.array([7, 8]), no_end.agent_id)
        expected_before = np.zeros((2, 2)) if k == 0 else step_memory[0]
        np.testing.assert_array_equal(before, expected_before)
        proc.process(decision([7, 8]), no_end, obs=np.ones((2, 2), np.float32), allowed=None,
                     out=out_for(2, step_memory[k].astype(np.float32)), terminal_obs=None, bootstrap=None,
                     memory=before)  # fmt: skip
    # agent 7 ends and starts again in the same step: its new decision starts from a zero memory
    end = terminal([7])
    before = proc.memories(np.array([7, 8]), end.agent_id)
    np.testing.assert_array_equal(before, [[0.0, 0.0], [6.0, 6.0]])
    result = proc.process(decision([7, 8]), end, obs=np.ones((2, 2), np.float32), allowed=None,
                          out=out_for(2, np.full((2, 2), 3.0, np.float32)), terminal_obs=np.zeros((1, 2), np.float32),
                          bootstrap=np.zeros((1, 1), np.float32), memory=before)  # fmt: skip
    (traj,) = result.trajectories
    assert traj.agent_id == 7 and traj.memory is not None
    np.testing.assert_array_equal(traj.memory, [[0.0, 0.0], [1.0, 1.0]])  # memory before each of its decisions
    proc.forget(np.array([8]))
    np.testing.assert_array_equal(proc.memories(np.array([8]), no_end.agent_id), [[0.0, 0.0]])


def test_more_new_agents_than_free_slots_get_zero_memories() -> None:
    proc = AgentProcessor(spec=SPEC, time_horizon=10, n_values=1, memory_size=2)
    ids = np.arange(40)  # more than the first allocation: the memory table grows while slots are found
    np.testing.assert_array_equal(proc.memories(ids, terminal([]).agent_id), np.zeros((40, 2)))


# -- the trainer keeps critic memories per agent ----------------------------------------------------------
def ppo_trainer(*, shared: bool = False, seq: int = 4) -> PPOTrainer:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 8, "buffer_size": 16, "shared_critic": shared},
            "network_settings": {
                "hidden_units": 8,
                "num_layers": 1,
                "memory": {"memory_size": 6, "sequence_length": seq},
            },
            "max_steps": 10**6,
            "time_horizon": 5,
            "summary_freq": 10**9,
        }
    }
    settings = build_run_options(raw).behavior_settings("B")
    spec = BehaviorSpec([ObservationSpec.vector(3)], HYBRID)
    return PPOTrainer(behavior_name="B", spec=spec, settings=settings, stats=StatsReporter([]), seed=0)


def trajectory(agent: int, n: int, rng: np.random.Generator, *, ends: bool) -> Trajectory:
    return Trajectory(
        agent_id=agent,
        obs=rng.standard_normal((n, 3)).astype(np.float32),
        continuous=rng.standard_normal((n, 2)).astype(np.float32),
        discrete=np.zeros((n, 2), np.int32),
        log_prob=np.zeros(n, np.float32),
        values=np.zeros((n, 1), np.float32),
        rewards=rng.standard_normal(n).astype(np.float32),
        allowed=np.ones((n, 5), np.bool_),
        bootstrap=np.zeros(1, np.float32),
        next_obs=rng.standard_normal(3).astype(np.float32),
        terminal=ends,
        ends_episode=ends,
        memory=rng.standard_normal((n, 6)).astype(np.float32),
    )


def values_from(trainer: PPOTrainer, traj: Trajectory, initial: torch.Tensor) -> np.ndarray:
    x = trainer.model.normalize(torch.from_numpy(traj.obs))
    return trainer.model.critic_trajectory(x, initial, 4)[0].numpy()


def test_critic_memories_are_kept_per_agent_and_dropped_at_episode_end() -> None:
    trainer = ppo_trainer()
    rng = np.random.default_rng(0)
    a1, b1, a2 = trajectory(1, 5, rng, ends=False), trajectory(2, 5, rng, ends=False), trajectory(1, 3, rng, ends=True)
    zero = torch.zeros(6)
    v_a1, boot_a1, starts_a1 = trainer.recurrent_values(a1)
    np.testing.assert_allclose(v_a1, values_from(trainer, a1, zero), atol=1e-6)
    assert starts_a1.shape == (2, 6) and not starts_a1[0].any()
    assert boot_a1.shape == (1,) and boot_a1[0] != 0.0  # interrupted: bootstrapped
    v_b1, _, _ = trainer.recurrent_values(b1)  # another agent starts from its own (zero) memory
    np.testing.assert_allclose(v_b1, values_from(trainer, b1, zero), atol=1e-6)
    a1_final = trainer.critic_memories[("", 1)]
    other_team = trajectory(1, 5, rng, ends=True)
    other_team.source = "B?team=1"  # the same agent id under another behavior id of this trainer
    v_other, _, _ = trainer.recurrent_values(other_team)
    np.testing.assert_allclose(v_other, values_from(trainer, other_team, zero), atol=1e-6)
    v_a2, boot_a2, _ = trainer.recurrent_values(a2)  # agent 1 goes on from where its trajectory left it
    np.testing.assert_allclose(v_a2, values_from(trainer, a2, a1_final), atol=1e-6)
    assert boot_a2[0] == 0.0 and ("", 1) not in trainer.critic_memories and ("", 2) in trainer.critic_memories


def test_memory_buffer_holds_whole_padded_sequences_and_an_update_runs() -> None:
    trainer = ppo_trainer()
    rng = np.random.default_rng(1)
    for agent in range(4):
        traj = trajectory(agent, 5, rng, ends=True)
        (rewards,), _ = trainer.signal_rewards([traj])
        trainer._add_trajectory(traj, rewards)
    assert trainer.buffer.count == 4 * 8 and trainer.step == 20
    data = trainer.buffer.view()
    np.testing.assert_array_equal(data["masks"][:8], [1, 1, 1, 1, 1, 0, 0, 0])
    assert not data["obs"][5:8].any() and data["allowed"][5:8].all()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    trainer._update()
    assert trainer.buffer.count == 0 and trainer.update_count == 1
    lstm_moved = [
        not torch.equal(b, p.detach())
        for (name, p), b in zip(trainer.model.named_parameters(), before)
        if "memory" in name
    ]
    assert any(lstm_moved)


# -- SAC ----------------------------------------------------------------------------------------------------
def sac_trainer(seq: int = 4, buffer_size: int = 64) -> Any:
    from fledge.trainers.sac.trainer import SACTrainer

    raw = {
        "default_settings": {
            "trainer_type": "sac",
            "hyperparameters": {"batch_size": 8, "buffer_size": buffer_size, "buffer_init_steps": 0},
            "network_settings": {
                "hidden_units": 8,
                "num_layers": 1,
                "normalize": True,
                "memory": {"memory_size": 6, "sequence_length": seq},
            },
            "max_steps": 10**6,
            "time_horizon": 5,
            "summary_freq": 10**9,
        }
    }
    settings = build_run_options(raw).behavior_settings("B")
    spec = BehaviorSpec([ObservationSpec.vector(3)], HYBRID)
    return SACTrainer(behavior_name="B", spec=spec, settings=settings, stats=StatsReporter([]), seed=0)


def test_replay_buffer_takes_whole_sequences_samples_them_and_truncates_to_whole_sequences(tmp_path: Any) -> None:
    from fledge.trainers.sac import fast_update

    trainer = sac_trainer(seq=4, buffer_size=30)
    assert not fast_update.covers(trainer.nets) and isinstance(trainer.policy.actor, acting.TorchActor)
    assert trainer.buffer.keep == 24  # int(0.8 x 30) = 24, a multiple of 4
    rng = np.random.default_rng(0)
    a = trajectory(1, 5, rng, ends=False)
    a.continuous = np.tanh(a.continuous)
    trainer._append_sequences([a])
    data = trainer.buffer.view()
    assert trainer.buffer.count == 8
    np.testing.assert_array_equal(data["masks"], [1, 1, 1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(data["next_obs"][:4], a.obs[1:5])
    np.testing.assert_array_equal(data["next_obs"][4], a.next_obs)
    np.testing.assert_array_equal(data["memory"][:5], a.memory)  # type: ignore[arg-type]
    assert not data["done"].any() and data["allowed"][5:].all()
    assert data["critic_memory"][4].any() and not data["critic_memory"][[1, 2, 3, 5, 6, 7]].any()
    assert ("", 1) in trainer.critic_memories
    idx = trainer.buffer.sample_sequences(np.random.default_rng(1), 3)
    assert idx.shape == (12,) and set(idx[::4].tolist()) <= {0, 4} and np.all(np.diff(idx.reshape(3, 4)) == 1)
    for agent in range(2, 6):
        trainer._append_sequences([trajectory(agent, 7, rng, ends=True)])
    assert trainer.buffer.count % 4 == 0 and trainer.buffer.count <= 30
    assert ("", 2) not in trainer.critic_memories  # dropped at episode end
    path = trainer.buffer.save(tmp_path / "buffer.hdf5")  # the memory fields travel with the file
    again = sac_trainer(seq=4, buffer_size=30)
    again.buffer.load(path)
    for key, value in trainer.buffer.view().items():
        np.testing.assert_array_equal(again.buffer.view()[key], value)
    assert trainer.buffer.count == 24
    with pytest.raises(CheckpointError, match="sequence_length"):
        sac_trainer(seq=5, buffer_size=30).buffer.load(path)


def test_sac_losses_on_sequences_ignore_what_padding_holds() -> None:
    from fledge.trainers.sac.losses import sac_losses

    trainer = sac_trainer(seq=4)
    rng = np.random.default_rng(3)
    for agent in range(4):
        t = trajectory(agent, 3, rng, ends=True)
        t.continuous = np.tanh(t.continuous)
        trainer._append_sequences([t])
    b = trainer.sample_batches(1).get(0)
    assert b.seq_len == 4 and b.masks is not None and b.memory is not None and b.size == 8
    first = sac_losses(trainer.nets, trainer.updater.coefficients, b)
    pad = b.masks == 0
    b.x[pad] = 50.0
    b.next_x[pad] = -50.0
    b.rewards[pad] = 1e3
    second = sac_losses(trainer.nets, trainer.updater.coefficients, b)
    for name in ("q1", "q2", "value", "policy", "entropy"):
        torch.testing.assert_close(getattr(first, name), getattr(second, name), atol=1e-5, rtol=1e-5, msg=name)
    before = [p.detach().clone() for p in trainer.nets.q.memory.parameters()]  # type: ignore[union-attr]
    trainer.updater.update(b)  # one update over sequences (autograd) moves the Q networks' LSTMs too
    after = list(trainer.nets.q.memory.parameters())  # type: ignore[union-attr]
    assert any(not torch.equal(x, y.detach()) for x, y in zip(before, after))


def test_a_memory_checkpoint_does_not_load_into_a_network_without_memory() -> None:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 8, "buffer_size": 16},
            "network_settings": {"hidden_units": 8, "num_layers": 1},
            "max_steps": 10**6,
            "time_horizon": 5,
            "summary_freq": 10**9,
        }
    }
    settings = build_run_options(raw).behavior_settings("B")
    spec = BehaviorSpec([ObservationSpec.vector(3)], HYBRID)
    plain = PPOTrainer(behavior_name="B", spec=spec, settings=settings, stats=StatsReporter([]), seed=0)
    state = ppo_trainer().get_state()
    assert state.meta["fingerprint"]["memory"] == [6, 4]
    with pytest.raises(CheckpointError, match=r"memory is \[6, 4\] in the checkpoint but not set in this run"):
        plain.set_state(state)
    with pytest.raises(CheckpointError):
        ppo_trainer().set_state(plain.get_state())
