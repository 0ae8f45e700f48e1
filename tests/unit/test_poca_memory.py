"""POCA with memory (trainers/poca/recurrent.py, networks/group_critic_memory.py): group rows cut into padded
sequences with masks, minibatches of whole sequences with their start memories, the critic's value and
baseline memories carried across an agent's trajectories, and the masked loss against the same loss over
real rows alone."""

from __future__ import annotations

import numpy as np
import torch

from fledge.envs.api import ActionSpec
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.networks.group_critic_memory import RecurrentGroupCritic
from fledge.trainers.poca import losses as L
from fledge.trainers.poca import recurrent as R
from fledge.trainers.ppo import losses as P

OBS, ACT, MEMBERS, MEM, SEQ = 3, 3, 3, 8, 4


def group_rows(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {
        "obs": rng.normal(size=(n, OBS)).astype(np.float32),
        "continuous": np.zeros((n, 0), np.float32),
        "discrete": rng.integers(0, 3, size=(n, 1)).astype(np.int32),
        "allowed": rng.random((n, 3)) > 0.3,
        "log_prob": rng.normal(size=n).astype(np.float32),
        "old_values": rng.normal(size=(n, 1)).astype(np.float32),
        "old_baselines": rng.normal(size=(n, 1)).astype(np.float32),
        "returns": rng.normal(size=(n, 1)).astype(np.float32),
        "advantages": rng.normal(size=n).astype(np.float32),
        "members": rng.normal(size=(n, MEMBERS, OBS)).astype(np.float32),
        "members_mask": np.ones((n, MEMBERS), np.float32),
        "others": rng.normal(size=(n, MEMBERS - 1, OBS + ACT)).astype(np.float32),
        "others_mask": np.ones((n, MEMBERS - 1), np.float32),
    }


def test_group_rows_are_cut_into_sequences_padded_at_the_end() -> None:
    rng = np.random.default_rng(0)
    fields = group_rows(6, rng)
    memory = rng.normal(size=(6, MEM)).astype(np.float32)
    value_starts = rng.normal(size=(2, MEM)).astype(np.float32)
    out = R.cut_into_sequences(fields, memory, {"value_memory": value_starts}, SEQ)
    assert {len(v) for v in out.values()} == {8}  # two sequences of 4, two padded rows
    np.testing.assert_array_equal(out["masks"], [1, 1, 1, 1, 1, 1, 0, 0])
    for key, value in fields.items():
        np.testing.assert_array_equal(out[key][:6], value)
        assert out[key].dtype == value.dtype and out[key].shape[1:] == value.shape[1:]
    assert out["allowed"][6:].all()  # padding allows every action (its log-probs stay finite)
    assert not out["members_mask"][6:].any() and not out["others_mask"][6:].any()  # no member on padded rows
    assert not out["members"][6:].any() and not out["log_prob"][6:].any()
    np.testing.assert_array_equal(out["memory"][:6], memory)
    assert not out["memory"][6:].any()
    np.testing.assert_array_equal(out["value_memory"][::SEQ], value_starts)  # critic memories at the starts only
    assert not out["value_memory"][1:SEQ].any() and not out["value_memory"][SEQ + 1 :].any()
    # a trajectory of whole sequences gets no padding
    whole = R.cut_into_sequences(group_rows(8, rng), np.zeros((8, MEM), np.float32), {}, SEQ)
    assert len(whole["masks"]) == 8 and whole["masks"].all()


def test_minibatches_are_whole_shuffled_sequences_with_their_start_memories() -> None:
    n_seq, rows = 5, 5 * SEQ
    tensors = {"row": torch.arange(rows, dtype=torch.float32)}
    memory = torch.arange(n_seq, dtype=torch.float32)[:, None].repeat(1, MEM)
    starts = {"memory": memory, "value_memory": memory + 100.0}
    batches = list(
        R.sequence_minibatches(tensors, starts, seq_len=SEQ, batch_size=2 * SEQ, rng=np.random.default_rng(1))
    )
    assert len(batches) == 2  # 2 sequences per minibatch; the fifth is left out this epoch
    seen = []
    for mb, mb_starts in batches:
        seqs = mb["row"].reshape(-1, SEQ)
        assert mb_starts["memory"].shape == (2, MEM)
        for seq, start, value_start in zip(seqs, mb_starts["memory"], mb_starts["value_memory"]):
            first = int(seq[0])
            assert first % SEQ == 0 and seq.tolist() == list(range(first, first + SEQ))
            assert float(start[0]) == first // SEQ  # the memories stored at that sequence's start
            assert float(value_start[0]) == first // SEQ + 100.0
            seen.append(first // SEQ)
    assert len(set(seen)) == 4
    # batch_size under one sequence still takes one whole sequence
    small = list(R.sequence_minibatches(tensors, starts, seq_len=SEQ, batch_size=1, rng=np.random.default_rng(1)))
    assert len(small) == n_seq and all(len(mb["row"]) == SEQ for mb, _ in small)


@torch.no_grad()
def test_the_masked_loss_is_the_loss_over_real_rows_and_ignores_padding() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    model = ActorCritic(
        obs_size=OBS,
        action_spec=ActionSpec(0, (ACT,)),
        shape=NetworkShape(hidden_units=8, num_layers=1, normalize=False, memory_size=MEM),
        value_names=("extrinsic",),
        shared_critic=True,
    )
    critic = RecurrentGroupCritic(memory_size=MEM, obs_size=OBS, act_size=ACT, hidden_units=8, num_layers=1, n_values=1)
    critic.see_width(MEMBERS)
    fields = group_rows(6, rng)
    memory = rng.normal(0.0, 0.3, size=(6, MEM)).astype(np.float32)
    critic_starts = {k: rng.normal(0.0, 0.3, size=(2, MEM)).astype(np.float32) for k in R.MEMORY_FIELDS[1:]}
    data = R.cut_into_sequences(fields, memory, critic_starts, SEQ)
    mb = {k: torch.from_numpy(np.asarray(v)) for k, v in data.items() if k not in (*R.MEMORY_FIELDS, "obs")}
    mb["x"] = torch.from_numpy(data["obs"])
    mb["discrete"] = mb["discrete"].long()
    del mb["continuous"]
    starts = {k: torch.from_numpy(data[k][::SEQ]) for k in R.MEMORY_FIELDS}
    eps, beta = 0.2, 0.01
    p, v, b, total = R.sequence_loss(model, critic, mb, starts, seq_len=SEQ, epsilon=eps, beta=beta)

    # the same terms, unmasked, over the six real rows alone
    log_prob, entropy, _ = model.evaluate(
        mb["x"], None, mb["discrete"], mb["allowed"], memory=starts["memory"], seq_len=SEQ
    )
    real = slice(0, 6)
    want_p = P.policy_loss(log_prob[real], mb["log_prob"][real], mb["advantages"][real], eps)
    # the critic's LSTM run over each sequence's real rows alone, from its start memories
    hv, hb = critic.features(mb["members"], mb["members_mask"], mb["others"], mb["others_mask"])
    values = torch.cat(
        [critic.carry(hv[s : min(s + SEQ, 6)], starts["value_memory"][s // SEQ], SEQ)[0] for s in (0, 4)]
    )
    baselines = torch.cat(
        [critic.carry(hb[s : min(s + SEQ, 6)], starts["baseline_memory"][s // SEQ], SEQ)[0] for s in (0, 4)]
    )
    want_v = P.value_loss(values, mb["old_values"][real], mb["returns"][real], eps)
    want_b = P.value_loss(baselines, mb["old_baselines"][real], mb["returns"][real], eps)
    want = L.total_loss(want_p, want_v, want_b, entropy[real].mean(), beta)
    for got, expected in ((p, want_p), (v, want_v), (b, want_b), (total, want)):
        assert torch.isfinite(got) and abs(float(got) - float(expected)) < 1e-6

    # garbage in the padded rows changes nothing
    noisy = dict(mb)
    for key in ("log_prob", "advantages", "old_values", "old_baselines", "returns", "x", "members"):
        garbage = mb[key].clone()
        garbage[6:] = 1e3
        noisy[key] = garbage
    again = R.sequence_loss(model, critic, noisy, starts, seq_len=SEQ, epsilon=eps, beta=beta)
    for got, expected in zip(again, (p, v, b, total)):
        assert abs(float(got) - float(expected)) < 1e-6


@torch.no_grad()
def test_critic_memories_carry_across_an_agents_trajectories_and_drop_at_its_episode_end() -> None:
    torch.manual_seed(1)
    critic = RecurrentGroupCritic(memory_size=MEM, obs_size=OBS, act_size=ACT, hidden_units=8, num_layers=1, n_values=2)
    memories = R.CriticMemories(critic, SEQ)
    hidden = critic.dense.out_size
    hv, hb = torch.randn(11, hidden), torch.randn(10, hidden)  # one trajectory of 10 rows (+ the row after it)
    key = ("Team", 3)
    whole_v, whole_b, v_starts, b_starts = memories.run(key, hv, hb, ends_episode=True)
    assert whole_v.shape == (11, 2) and whole_b.shape == (10, 2) and v_starts.shape == b_starts.shape == (3, MEM)
    assert not memories.value and not memories.baseline  # dropped at the episode's end
    # the same rows as two trajectories of 4 and 6: the second starts from the memories the first left
    first_v, first_b, _, _ = memories.run(key, hv[:5], hb[:4], ends_episode=False)
    assert key in memories.value and key in memories.baseline
    second_v, second_b, second_starts, _ = memories.run(key, hv[4:], hb[4:], ends_episode=True)
    np.testing.assert_allclose(np.concatenate([first_v[:4], second_v]), whole_v, atol=1e-5)
    np.testing.assert_allclose(np.concatenate([first_b, second_b]), whole_b, atol=1e-5)
    assert np.abs(second_starts[0]).max() > 0.01  # the carried memory, not a zero one
    np.testing.assert_allclose(second_starts[0], v_starts[1], atol=1e-6)  # 4 rows in: the second sequence's start
    # another agent starts from zero memories
    other_v = memories.run(("Team", 4), hv[4:], hb[4:], ends_episode=True)[0]
    assert not np.allclose(other_v, second_v, atol=1e-4)
