"""POCA's centralised critic: one network giving the group's value and each agent's baseline (spec 8.5).

Entities are group members. Each member's observations are first encoded (spec 8.5): a behavior of
vector observations only is read as it is (the normalised flat row); any other (cameras, entities,
goal signals beside them) passes each member's row through the observation encoders of a network body
(networks/body.py's `Tower` without dense layers: a visual encoder per camera, the entity encoder for
variable-length observations, the vector observations as they are, goals concatenated like any other
observation), run once per present member. Two kinds of entity rows then enter one residual
self-attention block (the weights of networks/encoders/entity.py's EntityEncoder, its maths):
- observation entities: a member's encoding, then a 1.0 presence column;
- observation-action entities: a groupmate's encoding, its action (continuous samples, then one-hot
  discrete branches), then a 1.0 presence column.
Absent members (padding up to the widest group) are masked out of the attention (as keys) and of the
pooled average.

    value    V(s)   = heads(dense(pool(attention(obs entities of every member)), n))
    baseline b_i(s) = heads(dense(pool(attention(obs entity of i, obs-action entities of i's mates)), n))

with n = 2 * (present members) / (widest group seen) - 1 appended before the dense layers, and one head
per reward signal. The same weights serve both, as in ML-Agents.

The encoder's forward reads absence from all-zero rows and pads every entity list to a common length;
here the masks are given, each row attends only over its own M entities (M members for a value, self
plus M - 1 groupmates for a baseline), value and baseline rows share one pass, and the attention of the
few entities of a group is written as broadcast products rather than batches of tiny matrix products.
An absent entity gets the encoder's -1e6 logit, which is exactly 0 after the softmax, so the numbers
are those of the encoder over zero-padded rows (tests/unit/test_poca_losses.py compares them).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fledge.networks.body import Tower
from fledge.networks.dense import DenseStack
from fledge.networks.encoders.entity import HEADS, POOL_EPS, EntityEncoder
from fledge.networks.encoders.layout import ObservationLayout
from fledge.networks.group_attention import attention


def embedding_size(hidden_units: int) -> int:
    """The entity embedding: hidden_units when the attention heads divide it, else the next multiple."""
    return ((int(hidden_units) + HEADS - 1) // HEADS) * HEADS


def _present_linear(x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """`layer` (an nn.Linear) over x with a 1.0 presence column appended (as a bias term: no concatenated copy
    of x)."""
    assert isinstance(layer, nn.Linear)
    n = x.shape[-1]
    return F.linear(x, layer.weight[:, :n].contiguous(), layer.bias + layer.weight[:, n])


class GroupCritic(nn.Module):
    widest: torch.Tensor

    def __init__(
        self,
        *,
        obs_size: int,
        act_size: int,
        hidden_units: int,
        num_layers: int,
        n_values: int,
        layout: ObservationLayout | None = None,
        vis_encode_type: str = "simple",
    ) -> None:
        """`layout`: where each observation lies in a member's row (None: one vector observation of `obs_size`)."""
        super().__init__()
        self.obs_size = obs_size
        self.act_size = act_size
        self.layout = layout if layout is not None else ObservationLayout.vector(obs_size)
        if self.layout.size != obs_size:
            raise ValueError(f"obs_size {obs_size} does not match the layout's {self.layout.size}")
        size = embedding_size(hidden_units)
        # vector rows are read as they are (no module: the same weights for the same seed as ever)
        self.encoder: Tower | None = None
        encoded = obs_size
        if not self.layout.all_vector:
            self.encoder = Tower(
                self.layout, hidden_units=hidden_units, num_layers=0, vis_encode_type=vis_encode_type, conditioned=False
            )
            encoded = self.encoder.out_size
        self.entities = EntityEncoder((encoded + 1, encoded + act_size + 1), 0, embedding_size=size)
        self.dense = DenseStack(size + 1, hidden_units, max(int(num_layers), 1))
        self.heads = nn.Linear(self.dense.out_size, n_values)
        self.register_buffer("widest", torch.ones(()))  # the widest group seen: scales the member count

    def _qkv(self, embedded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Entity embeddings (R, N, d) -> their layer norm e (R, N, d) and queries, keys, values side by side (R, N, 3d)."""
        enc = self.entities
        e = F.layer_norm(embedded, (embedded.shape[-1],))
        weight = torch.cat([enc.q.weight, enc.k.weight, enc.v.weight])
        bias = torch.cat([enc.q.bias, enc.k.bias, enc.v.bias])
        return e, F.linear(e, weight, bias)

    def _attend(self, e: torch.Tensor, qkv: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The residual self-attention block and masked average over rows of N entities: e (R, N, d) the layer
        norm of the embeddings, qkv (R, N, 3d) from `_qkv`, mask (R, N) 1.0 present: (R, d)."""
        d = e.shape[2]
        mixed = attention(qkv, mask, heads=HEADS)
        out = F.layer_norm(self.entities.out(mixed) + e, (d,))
        present = mask.unsqueeze(2)
        return (out * present).sum(dim=1) / (present.sum(dim=1) + POOL_EPS)

    def _heads(self, pooled: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        count = 2.0 * present / torch.clamp(self.widest, min=1.0) - 1.0
        h = self.dense(torch.cat([pooled, count[:, None]], dim=1))[0]
        return self.heads(h)

    def _obs_entities(self, obs: torch.Tensor) -> torch.Tensor:
        return F.silu(_present_linear(obs, self.entities.embeddings[0]))

    def _act_entities(self, others: torch.Tensor) -> torch.Tensor:
        return F.silu(_present_linear(others, self.entities.embeddings[1]))

    @property
    def mates_observed(self) -> bool:
        """True when the baseline's groupmate rows carry the mates' observations before their actions (vector
        rows); False when they carry the actions alone and the mates' encodings come from `members`."""
        return self.encoder is None

    def encode(self, members: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Members' encodings (B, M, k) of their normalised rows (B, M, obs): the rows themselves for vector
        observations, else the observation encoders' output for present members and zeros for absent ones."""
        if self.encoder is None:
            return members
        b, m, width = members.shape
        present = mask.reshape(-1).nonzero().squeeze(1)
        enc = self.encoder(members.reshape(b * m, width).index_select(0, present))
        out = enc.new_zeros((b * m, enc.shape[1])).index_copy(0, present, enc)
        return out.view(b, m, -1)

    def value(self, members: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, S) values of groups: members (B, M, obs) normalised observations, mask (B, M) 1.0 present."""
        e, qkv = self._qkv(self._obs_entities(self.encode(members, mask)))
        return self._heads(self._attend(e, qkv, mask), mask.sum(dim=1))

    def baseline(self, own: torch.Tensor, others: torch.Tensor, others_mask: torch.Tensor) -> torch.Tensor:
        """(B, S) baselines: own (B, obs) normalised observation; others (B, M-1, obs + act) the groupmates'
        normalised observations and actions, others_mask (B, M-1). Vector observations only (`mates_observed`)."""
        if self.encoder is not None:
            raise ValueError("baseline() reads vector rows; use value_and_baseline() with encoded observations")
        embedded = torch.cat([self._obs_entities(own).unsqueeze(1), self._act_entities(others)], dim=1)
        mask = torch.cat([others_mask.new_ones((own.shape[0], 1)), others_mask], dim=1)
        e, qkv = self._qkv(embedded)
        return self._heads(self._attend(e, qkv, mask), mask.sum(dim=1))

    def value_and_baseline(
        self, members: torch.Tensor, mask: torch.Tensor, others: torch.Tensor, others_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`value(members, mask)` and `baseline(members[:, 0], others, others_mask)` of the same B rows in one
        pass (members[:, 0] is the agent itself). Without `mates_observed`, `others` (B, M-1, act) holds the
        mates' actions alone and their observations are members[:, 1:]. Each member is encoded once, each entity is embedded, normalised and projected to
        queries, keys and values once (the agent's own entity serves both), then the value rows and the
        baseline rows (M entities each) go through one attention block and one set of dense layers."""
        pooled, full_mask = self.attended_rows(members, mask, others, others_mask)
        out = self._heads(pooled, full_mask.sum(dim=1)).view(members.shape[0], 2, -1)
        return out[:, 0], out[:, 1]

    def attended_rows(
        self, members: torch.Tensor, mask: torch.Tensor, others: torch.Tensor, others_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The attention's output (2B, hidden) of the value rows (2i) and the baseline rows (2i + 1) of
        `value_and_baseline`, and their entity masks (2B, M)."""
        b, m, _ = members.shape
        if self.encoder is not None:
            members = self.encode(members, mask)
            others = torch.cat([members[:, 1:], others], dim=2)
        e, qkv = self._qkv(torch.cat([self._obs_entities(members), self._act_entities(others)], dim=1))
        # rows 2i: the value's M entities; rows 2i + 1: the baseline's (the agent's own, then its mates' actions)
        order = torch.tensor([*range(m), 0, *range(m, 2 * m - 1)], device=e.device)
        e = e.index_select(1, order).view(2 * b, m, -1)
        qkv = qkv.index_select(1, order).view(2 * b, m, -1)
        full_mask = torch.cat([mask, others_mask.new_ones((b, 1)), others_mask], dim=1).view(2 * b, m)
        return self._attend(e, qkv, full_mask), full_mask

    def see_width(self, width: int) -> None:
        """Remember the widest group seen (the member count's scale)."""
        if width > float(self.widest):
            self.widest.fill_(float(width))
