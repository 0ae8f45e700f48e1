"""POCA with memory (trainers/poca/recurrent.py): group rows cut into padded sequences with masks, minibatches
of whole sequences with their start memories, and the masked loss against the same loss over real rows alone."""

from __future__ import annotations

import numpy as np
import torch

from fledge.envs.api import ActionSpec
from fledge.networks.actor_critic import ActorCritic, NetworkShape
from fledge.networks.group_critic import GroupCritic
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
    out = R.cut_into_sequences(fields, memory, SEQ)
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
    # a trajectory of whole sequences gets no padding
    whole = R.cut_into_sequences(group_rows(8, rng), np.zeros((8, MEM), np.float32), SEQ)
    assert len(whole["masks"]) == 8 and whole["masks"].all()


def test_minibatches_are_whole_shuffled_sequences_with_their_start_memories() -> None:
    n_seq, rows = 5, 5 * SEQ
    tensors = {"row": torch.arange(rows, dtype=torch.float32)}
    starts = torch.arange(n_seq, dtype=torch.float32)[:, None].repeat(1, MEM)
    batches = list(
        R.sequence_minibatches(tensors, starts, seq_len=SEQ, batch_size=2 * SEQ, rng=np.random.default_rng(1))
    )
    assert len(batches) == 2  # 2 sequences per minibatch; the fifth is left out this epoch
    seen = []
    for mb, memory in batches:
        seqs = mb["row"].reshape(-1, SEQ)
        assert memory.shape == (2, MEM)
        for seq, start in zip(seqs, memory):
            first = int(seq[0])
            assert first % SEQ == 0 and seq.tolist() == list(range(first, first + SEQ))
            assert float(start[0]) == first // SEQ  # the memory stored at that sequence's start
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
    critic = GroupCritic(obs_size=OBS, act_size=ACT, hidden_units=8, num_layers=1, n_values=1)
    critic.see_width(MEMBERS)
    fields = group_rows(6, rng)
    memory = rng.normal(0.0, 0.3, size=(6, MEM)).astype(np.float32)
    data = R.cut_into_sequences(fields, memory, SEQ)
    mb = {k: torch.from_numpy(np.asarray(v)) for k, v in data.items() if k not in ("memory", "obs")}
    mb["x"] = torch.from_numpy(data["obs"])
    mb["discrete"] = mb["discrete"].long()
    del mb["continuous"]
    starts = torch.from_numpy(data["memory"][::SEQ])
    eps, beta = 0.2, 0.01
    p, v, b, total = R.sequence_loss(model, critic, mb, starts, seq_len=SEQ, epsilon=eps, beta=beta)

    # the same terms, unmasked, over the six real rows alone
    log_prob, entropy, _ = model.evaluate(mb["x"], None, mb["discrete"], mb["allowed"], memory=starts, seq_len=SEQ)
    real = slice(0, 6)
    want_p = P.policy_loss(log_prob[real], mb["log_prob"][real], mb["advantages"][real], eps)
    values, baselines = critic.value_and_baseline(
        mb["members"][real], mb["members_mask"][real], mb["others"][real], mb["others_mask"][real]
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
