"""POCA with memory (`network_settings.memory`): the actor is PPO's recurrent actor, the group critic has an
LSTM after its dense layers (networks/group_critic_memory.py) with a value memory and a baseline memory.

- When a trajectory is processed, its values (and the bootstrap after its last row) and its baselines are
  computed by running the critic's LSTM sequence by sequence from the value and baseline memories the
  agent's previous trajectory left (`CriticMemories`: zero when its episode starts, dropped when it ends).
- Each trajectory enters the buffer cut into sequences of `sequence_length` L (networks/memory.py: padded
  at the end; `masks` 1.0 on real rows, 0.0 on padding; allowed actions True on padding; padded rows have
  no member present), with the actor's memory before each decision and the critic's two memories at each
  sequence start.
- Each epoch shuffles whole sequences and slices minibatches of batch_size // L sequences (at least one);
  the actor and the critic's LSTM are re-run over each sequence from the memories stored at its start.
- Every term of the loss is a masked mean over real rows (trainers/ppo/losses.py's masked forms), and the
  advantages are normalised over real rows only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from fledge.networks.actor_critic import ActorCritic
from fledge.networks.device import to_device
from fledge.networks.group_critic_memory import RecurrentGroupCritic
from fledge.networks.memory import pad_sequences, sequence_masks
from fledge.trainers.poca import losses as L
from fledge.trainers.ppo import losses as P

#: Buffer fields a minibatch holds one row per step of (the memories are read at sequence starts only).
STEP_FIELDS = ("log_prob", "old_values", "old_baselines", "returns", "members_mask", "others_mask", "masks")
#: Buffer fields read at sequence starts: the actor's memory, the critic's value and baseline memories.
MEMORY_FIELDS = ("memory", "value_memory", "baseline_memory")


class CriticMemories:
    """The value and baseline memories each agent's next trajectory starts from (by agent key)."""

    def __init__(self, critic: RecurrentGroupCritic, seq_len: int) -> None:
        self.critic = critic
        self.seq_len = seq_len
        self.value: dict[tuple[str, int], torch.Tensor] = {}
        self.baseline: dict[tuple[str, int], torch.Tensor] = {}

    def run(
        self, key: tuple[str, int], hv: torch.Tensor, hb: torch.Tensor, *, ends_episode: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One trajectory of n rows: hv (n + 1, hidden) the value features (the row after the last included),
        hb (n, hidden) the baseline features. Returns values (n + 1, S): the last the bootstrap, from the
        memory after the n rows), baselines (n, S), and the value and baseline memories at each sequence start
        (ceil(n / L), memory_size)."""
        zero = hv.new_zeros(self.critic.memory_size)
        n, critic = len(hb), self.critic
        values, v_starts, v_final = critic.carry(hv[:n], self.value.get(key, zero), self.seq_len)
        after = critic.carry(hv[n:], v_final, self.seq_len)[0]
        baselines, b_starts, b_final = critic.carry(hb, self.baseline.get(key, zero), self.seq_len)
        if ends_episode:
            self.value.pop(key, None)
            self.baseline.pop(key, None)
        else:
            self.value[key], self.baseline[key] = v_final, b_final
        return (
            torch.cat([values, after]).cpu().numpy(),
            baselines.cpu().numpy(),
            v_starts.cpu().numpy(),
            b_starts.cpu().numpy(),
        )

    def forget(self) -> None:
        self.value.clear()
        self.baseline.clear()


def cut_into_sequences(
    fields: dict[str, np.ndarray], memory: np.ndarray, critic_starts: dict[str, np.ndarray], seq_len: int
) -> dict[str, np.ndarray]:
    """One trajectory's buffer rows (n, ...) as whole sequences of `seq_len`: every field padded at its end
    (allowed actions with True, the rest with zeros, so padded rows have no member present), with `masks`,
    the actor's `memory` (n, memory_size) before each decision and each of `critic_starts` (ceil(n / L),
    memory_size) at the sequence starts (zeros on the other rows)."""
    n = len(fields["log_prob"])
    out = {key: pad_sequences(value, seq_len, fill=key == "allowed") for key, value in fields.items()}
    out["masks"] = sequence_masks(n, seq_len)
    out["memory"] = pad_sequences(memory, seq_len)
    for key, starts in critic_starts.items():
        rows = np.zeros((len(out["masks"]), starts.shape[1]), dtype=np.float32)
        rows[::seq_len] = starts
        out[key] = rows
    return out


def sequence_minibatches(
    tensors: dict[str, torch.Tensor],
    starts: dict[str, torch.Tensor],
    *,
    seq_len: int,
    batch_size: int,
    rng: np.random.Generator,
) -> Iterator[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
    """One epoch over whole sequences: the rows of `tensors` (N * L, ...) and the start memories `starts`
    (each (N, memory_size)) of batch_size // L shuffled sequences (at least one) at a time; a remainder of
    fewer sequences than a minibatch is left out, as without memory."""
    n_seq = len(next(iter(starts.values())))
    seqs = min(max(1, batch_size // seq_len), n_seq)
    seq_perm = rng.permutation(n_seq)
    rows = (seq_perm[:, None] * seq_len + np.arange(seq_len)).reshape(-1)
    device = next(iter(starts.values())).device
    shuffled = {k: v.index_select(0, to_device(rows, device)) for k, v in tensors.items()}
    seq_index = to_device(seq_perm, device)
    shuffled_starts = {k: v.index_select(0, seq_index) for k, v in starts.items()}
    for first in range(0, n_seq - seqs + 1, seqs):
        begin, end = first * seq_len, (first + seqs) * seq_len
        yield (
            {k: v[begin:end] for k, v in shuffled.items()},
            {k: v[first : first + seqs] for k, v in shuffled_starts.items()},
        )


def sequence_loss(
    model: ActorCritic,
    critic: RecurrentGroupCritic,
    mb: dict[str, torch.Tensor],
    starts: dict[str, torch.Tensor],
    *,
    seq_len: int,
    epsilon: float,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(policy, value, baseline, total) losses of a minibatch of whole sequences, masked means over real rows;
    the actor and the critic's LSTM re-run from `starts` (MEMORY_FIELDS, each (N, memory_size)), their
    memories at the sequence starts."""
    masks = mb["masks"]
    log_prob, entropy, _ = model.evaluate(
        mb["x"], mb.get("continuous"), mb.get("discrete"), mb.get("allowed"), memory=starts["memory"], seq_len=seq_len
    )
    p_loss = P.policy_loss(log_prob, mb["log_prob"], mb["advantages"], epsilon, masks)
    values, baselines = critic.sequences(
        mb["members"],
        mb["members_mask"],
        mb["others"],
        mb["others_mask"],
        value_starts=starts["value_memory"],
        baseline_starts=starts["baseline_memory"],
        seq_len=seq_len,
    )
    v_loss = P.value_loss(values, mb["old_values"], mb["returns"], epsilon, masks)
    b_loss = P.value_loss(baselines, mb["old_baselines"], mb["returns"], epsilon, masks)
    total = L.total_loss(p_loss, v_loss, b_loss, P.masked_mean(entropy, masks), beta)
    return p_loss, v_loss, b_loss, total
