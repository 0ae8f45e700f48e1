"""POCA's centralised critic: one network giving the group's value and each agent's baseline (spec 8.5).

Entities are group members. Two kinds of entity rows enter one residual self-attention block
(networks/encoders/entity.py):
- observation entities: a member's normalised flat observation, then a 1.0 presence column;
- observation-action entities: a groupmate's observation, its action (continuous samples, then one-hot
  discrete branches), then a 1.0 presence column.
The presence column keeps a present member from ever being an all-zero row, which the encoder reads as
absent; absent members (padding up to the widest group) are all zeros and so are masked out of the
attention and of the pooled average.

    value    V(s)   = heads(dense(pool(attention(obs entities of every member)), n))
    baseline b_i(s) = heads(dense(pool(attention(obs entity of i, obs-action entities of i's mates)), n))

with n = 2 * (present members) / (widest group seen) - 1 appended before the dense layers, and one head
per reward signal. The same weights serve both, as in ML-Agents.
"""

from __future__ import annotations

import torch
from torch import nn

from fledge.networks.dense import DenseStack
from fledge.networks.encoders.entity import HEADS, EntityEncoder


def embedding_size(hidden_units: int) -> int:
    """The entity embedding: hidden_units when the attention heads divide it, else the next multiple."""
    return ((int(hidden_units) + HEADS - 1) // HEADS) * HEADS


class GroupCritic(nn.Module):
    widest: torch.Tensor

    def __init__(self, *, obs_size: int, act_size: int, hidden_units: int, num_layers: int, n_values: int) -> None:
        super().__init__()
        self.obs_size = obs_size
        self.act_size = act_size
        size = embedding_size(hidden_units)
        self.entities = EntityEncoder((obs_size + 1, obs_size + act_size + 1), 0, embedding_size=size)
        self.dense = DenseStack(size + 1, hidden_units, max(int(num_layers), 1))
        self.heads = nn.Linear(self.dense.out_size, n_values)
        self.register_buffer("widest", torch.ones(()))  # the widest group seen: scales the member count

    def _value_of(self, obs_entities: torch.Tensor, act_entities: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        pooled = self.entities([obs_entities, act_entities], None)
        count = 2.0 * present / torch.clamp(self.widest, min=1.0) - 1.0
        h = self.dense(torch.cat([pooled, count[:, None]], dim=1))[0]
        return self.heads(h)

    def value(self, members: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, S) values of groups: members (B, M, obs) normalised observations, mask (B, M) 1.0 present."""
        ones = mask[:, :, None]
        obs_entities = torch.cat([members * ones, ones], dim=2)
        none = members.new_zeros((members.shape[0], 0, self.obs_size + self.act_size + 1))
        return self._value_of(obs_entities, none, mask.sum(dim=1))

    def baseline(self, own: torch.Tensor, others: torch.Tensor, others_mask: torch.Tensor) -> torch.Tensor:
        """(B, S) baselines: own (B, obs) normalised observation; others (B, M-1, obs + act) the groupmates'
        normalised observations and actions, others_mask (B, M-1)."""
        own_entity = torch.cat([own, own.new_ones((own.shape[0], 1))], dim=1)[:, None, :]
        ones = others_mask[:, :, None]
        act_entities = torch.cat([others * ones, ones], dim=2)
        return self._value_of(own_entity, act_entities, 1.0 + others_mask.sum(dim=1))

    def value_and_baseline(
        self,
        members: torch.Tensor,
        mask: torch.Tensor,
        own: torch.Tensor,
        others: torch.Tensor,
        others_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`value(members, mask)` and `baseline(own, others, others_mask)` of the same B rows in one pass of the
        attention (the value rows get no observation-action entities, the baseline rows only their own
        observation entity; the missing ones are absent rows, masked out exactly as padding is)."""
        b = members.shape[0]
        ones = mask[:, :, None]
        value_obs = torch.cat([members * ones, ones], dim=2)
        base_obs = torch.zeros_like(value_obs)
        base_obs[:, 0, : self.obs_size] = own
        base_obs[:, 0, self.obs_size] = 1.0
        act_ones = others_mask[:, :, None]
        base_act = torch.cat([others * act_ones, act_ones], dim=2)
        value_act = torch.zeros_like(base_act)
        present = torch.cat([mask.sum(dim=1), 1.0 + others_mask.sum(dim=1)])
        out = self._value_of(torch.cat([value_obs, base_obs]), torch.cat([value_act, base_act]), present)
        return out[:b], out[b:]

    def see_width(self, width: int) -> None:
        """Remember the widest group seen (the member count's scale)."""
        if width > float(self.widest):
            self.widest.fill_(float(width))
