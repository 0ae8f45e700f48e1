"""The ghost trainer's schedule (snapshots, swaps, team changes), its ELO bookkeeping against hand
computations, the team controller, and the round trip of its state through a checkpoint."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fledge import api
from fledge.config import build_run_options
from fledge.envs import registry
from fledge.rollout.processor import StepOutcome, Trajectory
from fledge.stats import StatsReporter
from fledge.stats.timers import Timers
from fledge.trainers.ghost import GhostTrainer, TeamController
from fledge.trainers.ghost.elo import rating_change
from fledge.trainers.ghost.pool import SnapshotPool
from fledge.trainers.ghost.trainer import LATEST

TEAM0, TEAM1 = "Tennis?team=0", "Tennis?team=1"
TEAMS = (TEAM0, TEAM1)


def ghost(controller: TeamController | None = None, **self_play: Any) -> GhostTrainer:
    sp = {"save_steps": 100, "team_change": 300, "swap_steps": 50, "window": 3, "elo_k_factor": 16.0, **self_play}
    options = build_run_options(
        {
            "behaviors": {
                "Tennis": {
                    "trainer_type": "ppo",
                    "hyperparameters": {"batch_size": 32, "buffer_size": 10_000},
                    "network_settings": {"hidden_units": 8, "num_layers": 1},
                    "max_steps": 100_000,
                    "self_play": sp,
                }
            }
        }
    )
    env = registry.make("Tennis", seed=0)
    inner: Any = api.make_trainer(options, "Tennis", env, StatsReporter([]), 3, Timers())
    settings = options.behavior_settings("Tennis").self_play
    return GhostTrainer(inner, settings=settings, controller=controller or TeamController(), stats=inner.stats, seed=3)


def outcome(length: int, *, reward: float = 0.0, terminal: bool = False, source: str = TEAM0) -> StepOutcome:
    rewards = np.zeros(length, dtype=np.float32)
    rewards[-1] = reward
    traj = Trajectory(
        agent_id=0,
        obs=np.zeros((length, 9), np.float32),
        continuous=np.zeros((length, 3), np.float32),
        discrete=np.zeros((length, 0), np.int32),
        log_prob=np.zeros(length, np.float32),
        values=np.zeros((length, 1), np.float32),
        rewards=rewards,
        allowed=None,
        bootstrap=np.zeros(1, np.float32),
        next_obs=np.zeros(9, np.float32),
        terminal=terminal,
        ends_episode=terminal,
        source=source,
    )
    return StepOutcome(None, [traj], np.zeros(0), np.zeros(0, np.int64))


def test_controller_rotates_teams_and_keeps_the_newest_state() -> None:
    c = TeamController()
    g: Any = object.__new__(GhostTrainer)  # membership only: no calls reach it without a change
    g.name = "X"
    c.subscribe(0, g)
    c.subscribe(1, g)
    assert c.learning_team == 0 and list(c.queue) == [1]
    other: Any = object.__new__(GhostTrainer)
    other.name = "Y"
    c.subscribe(1, other)  # two brains with one team id learn and wait together
    assert c.members[1] == [g, other] and list(c.queue) == [1]
    saved = c.state()
    later = TeamController()
    later.changes = 3
    assert not later.load_state(saved)  # an older state never replaces a newer one
    assert later.changes == 3
    fresh = TeamController()
    assert fresh.load_state({"learning_team": 1, "queue": [0], "changes": 2})
    assert fresh.learning_team == 1 and list(fresh.queue) == [0] and fresh.changes == 2


def test_snapshot_ring_keeps_the_newest_window() -> None:
    pool = SnapshotPool(2)
    for i in range(4):
        pool.add({"w": torch.tensor([float(i)])}, 1000.0 + i)
    assert len(pool) == 2
    assert [float(s["w"]) for s in pool.snapshots] == [2.0, 3.0] and pool.elos == [1002.0, 1003.0]
    copy = SnapshotPool(2)
    copy.load(pool.tensors(), pool.meta())
    assert [float(s["w"]) for s in copy.snapshots] == [2.0, 3.0] and copy.next_slot == pool.next_slot


def test_seats_schedule_and_team_change() -> None:
    g = ghost()
    seat0, seat1 = g.seat(TEAM0), g.seat(TEAM1)
    assert g.controller.learning_team == 0
    assert seat0.policy.current is g.policy  # type: ignore[attr-defined]
    assert seat1.policy.current is g.opponents[1] and g.chosen[1] == 0  # type: ignore[attr-defined]
    assert len(g.pool) == 1  # the initial weights
    # opponents' steps count for swaps only: 60 > swap_steps (50) swaps once
    seat1.observe(outcome(60, source=TEAM1))
    assert g.ghost_step == 60 and g.last_swap == 60 and g.step == 0
    # learning steps: a snapshot once more than save_steps (100) passed
    for _ in range(3):
        seat0.observe(outcome(40))
    assert g.step == 120 and len(g.pool) == 2 and g.last_save == 120
    for _ in range(5):
        seat0.observe(outcome(40))
    assert g.step == 320 and len(g.pool) == 3
    # more than team_change (300) learning steps: team 1 learns, a reset is requested, opponents swapped
    assert g.controller.learning_team == 1 and g.controller.changes == 1
    assert g.controller.take_reset_request() and not g.controller.take_reset_request()
    assert seat1.policy.current is g.policy and seat0.policy.current is g.opponents[0]  # type: ignore[attr-defined]
    assert g.last_team_change == 320
    # team 0's outcomes no longer reach the learner
    seat0.observe(outcome(40, source=TEAM0))
    assert g.step == 320 and g.ghost_step == 100


def test_elo_of_finished_games_by_hand() -> None:
    g = ghost(play_against_latest_model_ratio=0.0)
    seat0, _ = g.seat(TEAM0), g.seat(TEAM1)
    g.pool.elos[0] = 1300.0  # the opponent snapshot in use (slot 0)
    seat0.observe(outcome(5, reward=1.0, terminal=True))
    change = 16.0 * (1.0 - 1.0 / (1.0 + 10 ** ((1300.0 - 1200.0) / 400.0)))
    assert g.elo == pytest.approx(1200.0 + change) and g.pool.elos[0] == pytest.approx(1300.0 - change)
    assert change == pytest.approx(rating_change(1200.0, 1300.0, 1.0, k_factor=16.0))
    elo = g.elo
    seat0.observe(outcome(5, reward=-1.0, terminal=False))  # interrupted: not a finished game
    seat0.observe(outcome(5, reward=0.0, terminal=True))  # a draw
    draw = rating_change(elo, 1300.0 - change, 0.5, k_factor=16.0)
    assert g.elo == pytest.approx(elo + draw) and g.games == 2
    # a copy of the learner's own latest weights: the game is not rated
    g.chosen[1] = LATEST
    before = g.elo
    seat0.observe(outcome(5, reward=1.0, terminal=True))
    assert g.elo == before and g.games == 2


def test_state_round_trip_restores_pool_opponents_elo_and_teams() -> None:
    g = ghost()
    seat0, seat1 = g.seat(TEAM0), g.seat(TEAM1)
    for i in range(12):
        seat0.observe(outcome(40, reward=1.0 if i % 3 else -1.0, terminal=True))
        seat1.observe(outcome(30, source=TEAM1))
    assert g.controller.changes == 1 and len(g.pool) == 3  # changed team, ring full
    for _ in range(3):
        seat1.observe(outcome(40, reward=1.0, terminal=True, source=TEAM1))
        seat0.observe(outcome(30, source=TEAM0))
    state = g.get_state()
    assert state.meta["status_entries"] == {"elo": g.elo}
    h = ghost()
    h.seat(TEAM0), h.seat(TEAM1)
    h.set_state(state)
    again = h.get_state()
    assert again.meta["ghost"] == state.meta["ghost"]
    assert set(again.tensors) == set(state.tensors)
    for name, value in state.tensors.items():
        assert torch.equal(again.tensors[name], value), name
    assert h.controller.learning_team == 1
    assert h.seats[1].current is h.policy and h.seats[0].current is h.opponents[0]
    # the restored opponent acts exactly like the saved one
    obs = np.random.default_rng(0).normal(size=(4, 9)).astype(np.float32)
    assert np.array_equal(h.opponents[0].act(obs, None).continuous, g.opponents[0].act(obs, None).continuous)


def test_self_play_without_teams_is_warned_as_having_no_effect() -> None:
    from fledge.config.effects import effect_warnings

    options = build_run_options({"behaviors": {"Tennis": {"trainer_type": "ppo", "self_play": {}}}})
    assert not effect_warnings(options, env_name="Tennis", worker_processes=False, behaviors=list(TEAMS))
    lines = effect_warnings(options, env_name="Tennis", worker_processes=False, behaviors=["Tennis"])
    assert len(lines) == 1 and lines[0].startswith("Behavior 'Tennis': self_play has no effect")


def test_a_smaller_window_on_resume_keeps_the_newest_snapshots() -> None:
    pool = SnapshotPool(3)
    for i in range(5):  # slots hold 3, 4, 2 (next slot 2 is the oldest)
        pool.add({"w": torch.tensor([float(i)])}, 1000.0 + i)
    assert [float(s["w"]) for s in pool.snapshots] == [3.0, 4.0, 2.0] and pool.next_slot == 2
    smaller = SnapshotPool(2)
    slots = smaller.load(pool.tensors(), pool.meta())
    assert [float(s["w"]) for s in smaller.snapshots] == [3.0, 4.0] and smaller.elos == [1003.0, 1004.0]
    assert slots == {0: 0, 1: 1}  # slot 2 (the oldest) is gone
    same = SnapshotPool(3)
    assert same.load(pool.tensors(), pool.meta()) == {0: 0, 1: 1, 2: 2} and same.next_slot == 2
