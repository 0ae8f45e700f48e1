"""POCA's formulas (trainers/poca/losses.py) against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fledge.envs.api import DimensionProperty as D
from fledge.envs.api import ObservationSpec, ObservationType
from fledge.networks.encoders.layout import ObservationLayout
from fledge.trainers.poca import losses as L


def test_lambda_returns_by_hand() -> None:
    r = np.array([1.0, 0.0, 2.0], np.float32)
    v_next = np.array([0.5, 1.0, 3.0], np.float32)  # V after each step; the last: the bootstrap
    g, lam = 0.9, 0.8
    g2 = 2.0 + 0.9 * 3.0  # 4.7
    g1 = 0.0 + 0.9 * (0.2 * 1.0 + 0.8 * g2)  # 0.9 * 3.96 = 3.564
    g0 = 1.0 + 0.9 * (0.2 * 0.5 + 0.8 * g1)  # 1 + 0.9 * 2.9512 = 3.65608
    out = L.lambda_returns(r, v_next, gamma=g, lambd=lam)
    np.testing.assert_allclose(out, [g0, g1, g2], rtol=1e-6)


def test_lambda_returns_group_done_bootstrap_zero_and_td0() -> None:
    r = np.array([0.0, 1.0], np.float32)
    # the whole group is done: the bootstrap is 0
    np.testing.assert_allclose(L.lambda_returns(r, np.array([2.0, 0.0]), gamma=0.5, lambd=1.0), [0.5, 1.0])
    # lambda 0: one-step TD targets r + gamma V'
    np.testing.assert_allclose(L.lambda_returns(r, np.array([2.0, 4.0]), gamma=0.5, lambd=0.0), [1.0, 3.0])


def test_team_rewards_and_advantages() -> None:
    own_and_group = np.array([1.0, 0.5], np.float32)  # own + group reward, as the processor stores them
    mates = np.array([0.25, -1.0], np.float32)
    np.testing.assert_allclose(L.team_rewards(own_and_group, mates), [1.25, -0.5])
    returns = np.array([[3.0, 1.0], [0.0, 2.0]], np.float32)
    baselines = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
    np.testing.assert_allclose(L.advantages(returns, baselines), [1.5, 0.0])  # mean over signals of G - b


def test_total_loss_weights() -> None:
    p, v, b, e = (torch.tensor(x) for x in (0.3, 2.0, 4.0, 1.5))
    # 0.3 + 0.5 * (2 + 0.5 * 4) - 0.01 * 1.5 = 0.3 + 2 - 0.015
    assert float(L.total_loss(p, v, b, e, 0.01)) == pytest.approx(2.285)


def _encoder_value(
    critic: torch.nn.Module, obs_entities: torch.Tensor, act_entities: torch.Tensor, present: torch.Tensor
) -> torch.Tensor:
    """The critic's formula through the entity encoder's own forward (absence read from all-zero rows)."""
    pooled = critic.entities([obs_entities, act_entities], None)
    count = 2.0 * present / critic.widest - 1.0
    return critic.heads(critic.dense(torch.cat([pooled, count[:, None]], dim=1))[0])


def test_critic_equals_the_entity_encoder_over_zero_padded_entities() -> None:
    from fledge.networks.group_critic import GroupCritic

    torch.manual_seed(0)
    critic = GroupCritic(obs_size=4, act_size=3, hidden_units=16, num_layers=2, n_values=2)
    critic.see_width(3)
    members = torch.randn(5, 3, 4)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 0, 1]], dtype=torch.float32)
    others = torch.randn(5, 2, 7)
    others_mask = mask[:, 1:]
    ones = mask[:, :, None]
    obs_entities = torch.cat([members * ones, ones], dim=2)
    act_entities = torch.cat([others * others_mask[:, :, None], others_mask[:, :, None]], dim=2)
    none = torch.zeros(5, 0, 8)
    own = torch.cat([members[:, :1], torch.ones(5, 1, 1)], dim=2)
    want_v = _encoder_value(critic, obs_entities, none, mask.sum(dim=1))
    want_b = _encoder_value(critic, own, act_entities, mask.sum(dim=1))
    torch.testing.assert_close(critic.value(members, mask), want_v)
    torch.testing.assert_close(critic.baseline(members[:, 0], others, others_mask), want_b)
    v, b = critic.value_and_baseline(members, mask, others, others_mask)
    torch.testing.assert_close(v, want_v)
    torch.testing.assert_close(b, want_b)
    # an absent member changes nothing: its padding values are ignored
    noisy, noisy_others = members.clone(), others.clone()
    noisy[1, 2] = 100.0
    noisy_others[1, 1] = -50.0
    v2, b2 = critic.value_and_baseline(noisy, mask, noisy_others, others_mask)
    torch.testing.assert_close(v2[1], v[1])
    torch.testing.assert_close(b2[1], b[1])


def test_gradients_of_the_one_pass_equal_the_two_passes() -> None:
    from fledge.networks.group_critic import GroupCritic

    torch.manual_seed(1)
    critic = GroupCritic(obs_size=4, act_size=3, hidden_units=16, num_layers=2, n_values=2)
    critic.see_width(2)
    members = torch.randn(6, 2, 4)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1], [1, 1], [1, 0], [1, 1]], dtype=torch.float32)
    others = torch.randn(6, 1, 7)
    weights = torch.randn(6, 2)

    def grads(one_pass: bool) -> list[torch.Tensor]:
        critic.zero_grad()
        if one_pass:
            v, b = critic.value_and_baseline(members, mask, others, mask[:, 1:])
        else:
            v, b = critic.value(members, mask), critic.baseline(members[:, 0], others, mask[:, 1:])
        ((v * weights).sum() + (b * b).sum()).backward()
        return [p.grad.clone() for p in critic.parameters()]  # type: ignore[union-attr]

    for got, want in zip(grads(True), grads(False)):
        torch.testing.assert_close(got, want)


def test_group_bootstrap_rule() -> None:
    after = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    np.testing.assert_array_equal(L.group_bootstrap(after, group_done=True), [[1.0, 2.0], [0.0, 0.0]])
    np.testing.assert_array_equal(L.group_bootstrap(after, group_done=False), after)  # the group goes on
    assert after[1, 0] == 3.0  # the input is left alone


def test_numpy_attention_and_its_gradients_equal_the_torch_formulas() -> None:
    from fledge.networks.group_attention import attention

    torch.manual_seed(2)
    qkv = torch.randn(7, 3, 24, requires_grad=True)
    mask = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 0, 0], [1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 1, 1]]).float()
    weights = torch.randn(7, 3, 8)
    got = attention(qkv, mask, heads=2, use_numpy=True)
    want = attention(qkv, mask, heads=2, use_numpy=False)
    torch.testing.assert_close(got, want)
    (g_got,) = torch.autograd.grad((got * weights).sum(), qkv)
    (g_want,) = torch.autograd.grad((want * weights).sum(), qkv)
    torch.testing.assert_close(g_got, g_want)
    # an absent key gets no attention: its values never reach the output
    moved = qkv.detach().clone()
    moved[1, 1, 16:] += 5.0
    torch.testing.assert_close(attention(moved, mask, heads=2)[1, 0], got[1, 0].detach())


def _mixed_layout() -> ObservationLayout:
    return ObservationLayout.of(
        [
            ObservationSpec.vector(3),
            ObservationSpec((2, 6, 6), (D.NONE, D.TRANSLATIONAL_EQUIVARIANCE, D.TRANSLATIONAL_EQUIVARIANCE)),
            ObservationSpec((4, 2), (D.VARIABLE_SIZE, D.NONE)),
            ObservationSpec((2,), (D.NONE,), ObservationType.GOAL_SIGNAL),
        ]
    )


def _encoded_by_hand(critic: torch.nn.Module, row: torch.Tensor) -> torch.Tensor:
    """One member's encoding from its flat row (3 vector + 72 image + 8 entity + 2 goal columns), the pieces' own
    forwards joined by hand: [vector, camera encoding, goal, entity block over the entities given the rest]."""
    tower = critic.encoder
    vector, image, entities, goal = row[:, :3], row[:, 3:75], row[:, 75:83], row[:, 83:85]
    camera = tower.visual[0](image.reshape(-1, 2, 6, 6))
    fixed = torch.cat([vector, camera, goal], dim=1)
    return torch.cat([fixed, tower.entity([entities.reshape(-1, 4, 2)], fixed)], dim=1)


def test_critic_with_camera_entity_and_goal_rows_equals_the_encoders_by_hand_and_ignores_absent_members() -> None:
    from fledge.networks.group_critic import GroupCritic

    torch.manual_seed(3)
    layout = _mixed_layout()
    critic = GroupCritic(
        obs_size=85,
        act_size=3,
        hidden_units=8,
        num_layers=2,
        n_values=2,
        layout=layout,
        vis_encode_type="fully_connected",
    )
    assert not critic.mates_observed
    critic.see_width(3)
    members = torch.randn(4, 3, 85)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0], [1, 0, 0], [1, 0, 1]], dtype=torch.float32)
    members[2:, :, 77:83] = 0.0  # some entities absent (all-zero rows) in some members' entity observations
    actions = torch.randn(4, 2, 3)
    enc = torch.stack([_encoded_by_hand(critic, members[:, i]) for i in range(3)], dim=1)  # (4, 3, k)
    k = enc.shape[2]
    assert k == 3 + 8 + 2 + 128  # vector, camera encoding (hidden_units), goal, entity block
    ones = mask[:, :, None]
    obs_entities = torch.cat([enc * ones, ones], dim=2)
    mates = mask[:, 1:, None]
    act_entities = torch.cat([torch.cat([enc[:, 1:], actions], dim=2) * mates, mates], dim=2)
    own = torch.cat([enc[:, :1], torch.ones(4, 1, 1)], dim=2)
    want_v = _encoder_value(critic, obs_entities, torch.zeros(4, 0, k + 4), mask.sum(dim=1))
    want_b = _encoder_value(critic, own, act_entities, mask.sum(dim=1))
    v, b = critic.value_and_baseline(members, mask, actions, mask[:, 1:])
    torch.testing.assert_close(v, want_v)
    torch.testing.assert_close(b, want_b)
    torch.testing.assert_close(critic.value(members, mask), want_v)
    # an absent member's row never reaches the encoders (not even NaN spreads) and its action is ignored
    noisy, noisy_actions = members.clone(), actions.clone()
    noisy[1, 2] = float("nan")
    noisy[2, 1:] = 1e3
    noisy_actions[1, 1] = 50.0
    v2, b2 = critic.value_and_baseline(noisy, mask, noisy_actions, mask[:, 1:])
    torch.testing.assert_close(v2, v)
    torch.testing.assert_close(b2, b)
    # the gradients of every weight (encoders included) are those of the hand-joined formula
    weights = torch.randn(4, 2)

    def grads(one_pass: bool) -> list[torch.Tensor]:
        critic.zero_grad()
        if one_pass:
            v, b = critic.value_and_baseline(members, mask, actions, mask[:, 1:])
        else:
            enc = torch.stack([_encoded_by_hand(critic, members[:, i]) for i in range(3)], dim=1)
            obs_e = torch.cat([enc * ones, ones], dim=2)
            act_e = torch.cat([torch.cat([enc[:, 1:], actions], dim=2) * mates, mates], dim=2)
            own = torch.cat([enc[:, :1], torch.ones(4, 1, 1)], dim=2)
            v = _encoder_value(critic, obs_e, torch.zeros(4, 0, k + 4), mask.sum(dim=1))
            b = _encoder_value(critic, own, act_e, mask.sum(dim=1))
        ((v * weights).sum() + (b * b).sum()).backward()
        return [p.grad.clone() for p in critic.parameters()]  # type: ignore[union-attr]

    for got, want in zip(grads(True), grads(False)):
        torch.testing.assert_close(got, want)
