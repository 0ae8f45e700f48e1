"""POCA with memory (`network_settings.memory`): the actor is PPO's recurrent actor; the group critic has no
memory in this version (each row's value and baseline read that step's group rows alone).

- Each trajectory enters the buffer cut into sequences of `sequence_length` L (networks/memory.py: padded
  at the end; `masks` 1.0 on real rows, 0.0 on padding; allowed actions True on padding; padded rows have
  no member present), with the actor's memory before each decision.
- Each epoch shuffles whole sequences and slices minibatches of batch_size // L sequences (at least one);
  the actor is re-run over each sequence from the memory stored at its start, the critic reads the rows.
- Every term of the loss is a masked mean over real rows (trainers/ppo/losses.py's masked forms), and the
  advantages are normalised over real rows only.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from fledge.networks.actor_critic import ActorCritic
from fledge.networks.device import to_device
from fledge.networks.group_critic import GroupCritic
from fledge.networks.memory import pad_sequences, sequence_masks
from fledge.trainers.poca import losses as L
from fledge.trainers.ppo import losses as P

#: Buffer fields a minibatch holds one row per step of (the memories are read at sequence starts only).
STEP_FIELDS = ("log_prob", "old_values", "old_baselines", "returns", "members_mask", "others_mask", "masks")


def cut_into_sequences(fields: dict[str, np.ndarray], memory: np.ndarray, seq_len: int) -> dict[str, np.ndarray]:
    """One trajectory's buffer rows (n, ...) as whole sequences of `seq_len`: every field padded at its end
    (allowed actions with True, the rest with zeros, so padded rows have no member present), with `masks`
    and the actor's `memory` (n, memory_size) before each decision."""
    n = len(fields["log_prob"])
    out = {key: pad_sequences(value, seq_len, fill=key == "allowed") for key, value in fields.items()}
    out["masks"] = sequence_masks(n, seq_len)
    out["memory"] = pad_sequences(memory, seq_len)
    return out


def sequence_minibatches(
    tensors: dict[str, torch.Tensor],
    starts: torch.Tensor,
    *,
    seq_len: int,
    batch_size: int,
    rng: np.random.Generator,
) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
    """One epoch over whole sequences: the rows of `tensors` (N * L, ...) and the start memories `starts`
    (N, memory_size) of batch_size // L shuffled sequences (at least one) at a time; a remainder of fewer
    sequences than a minibatch is left out, as without memory."""
    n_seq = len(starts)
    seqs = min(max(1, batch_size // seq_len), n_seq)
    seq_perm = rng.permutation(n_seq)
    rows = (seq_perm[:, None] * seq_len + np.arange(seq_len)).reshape(-1)
    device = starts.device
    shuffled = {k: v.index_select(0, to_device(rows, device)) for k, v in tensors.items()}
    shuffled_starts = starts.index_select(0, to_device(seq_perm, device))
    for first in range(0, n_seq - seqs + 1, seqs):
        begin, end = first * seq_len, (first + seqs) * seq_len
        yield {k: v[begin:end] for k, v in shuffled.items()}, shuffled_starts[first : first + seqs]


def sequence_loss(
    model: ActorCritic,
    critic: GroupCritic,
    mb: dict[str, torch.Tensor],
    memory: torch.Tensor,
    *,
    seq_len: int,
    epsilon: float,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(policy, value, baseline, total) losses of a minibatch of whole sequences, masked means over real rows;
    the actor re-run from `memory` (N, memory_size), its memories at the sequence starts."""
    masks = mb["masks"]
    log_prob, entropy, _ = model.evaluate(
        mb["x"], mb.get("continuous"), mb.get("discrete"), mb.get("allowed"), memory=memory, seq_len=seq_len
    )
    p_loss = P.policy_loss(log_prob, mb["log_prob"], mb["advantages"], epsilon, masks)
    values, baselines = critic.value_and_baseline(mb["members"], mb["members_mask"], mb["others"], mb["others_mask"])
    v_loss = P.value_loss(values, mb["old_values"], mb["returns"], epsilon, masks)
    b_loss = P.value_loss(baselines, mb["old_baselines"], mb["returns"], epsilon, masks)
    total = L.total_loss(p_loss, v_loss, b_loss, P.masked_mean(entropy, masks), beta)
    return p_loss, v_loss, b_loss, total
