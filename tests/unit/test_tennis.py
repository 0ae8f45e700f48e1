"""The Tennis built-in: two behavior ids (teams) over one vectorised task, its rules by hand, seeding,
areas, rendering, and that its learning signal is real (a scripted player beats a random one)."""

from __future__ import annotations

import numpy as np
import pytest

from fledge.envs import registry
from fledge.envs.api import ActionTuple, validate_steps
from fledge.envs.builtin.teams import TeamTaskEnv
from fledge.envs.builtin.tennis import HALF, TEAMS, TennisTask
from fledge.envs.render import render_rgb
from fledge.errors import ActionError, ConfigError, UnknownBehaviorError


def step_all(env: TeamTaskEnv, act: dict[str, np.ndarray]) -> None:
    for b in TEAMS:
        env.set_actions(b, ActionTuple(continuous=act[b].astype(np.float32)))
    env.step()


def follower(obs: np.ndarray) -> np.ndarray:
    """Moves its paddle under the ball, low paddle, middle angle."""
    a = np.zeros((len(obs), 3))
    a[:, 0] = np.clip((obs[:, 3] + 0.1 * obs[:, 5] - obs[:, 0]) * 5, -1, 1)
    a[:, 1] = -1.0
    return a


def test_two_teams_of_one_brain_with_unique_agent_ids() -> None:
    env = registry.make("Tennis", seed=0, num_areas=3)
    assert isinstance(env, TeamTaskEnv) and list(env.behavior_specs) == list(TEAMS)
    env.reset()
    d0, _ = env.get_steps(TEAMS[0])
    d1, _ = env.get_steps(TEAMS[1])
    np.testing.assert_array_equal(d0.agent_id, [0, 2, 4])
    np.testing.assert_array_equal(d1.agent_id, [1, 3, 5])
    for b in TEAMS:
        validate_steps(b, env.behavior_specs[b], *env.get_steps(b))
    assert registry.describe("Tennis").behavior_specs.count("Tennis?team=") == 2
    with pytest.raises(UnknownBehaviorError, match="Tennis\\?team=0"):
        env.get_steps("Tennis")
    with pytest.raises(ActionError):
        env.set_action_for_agent(TEAMS[0], 1, ActionTuple(continuous=np.zeros((1, 3), np.float32)))
    with pytest.raises(ConfigError, match="even"):
        registry.make("Tennis", num_agents=3)


def test_a_serve_not_returned_loses_the_point_for_the_receiver() -> None:
    task = TennisTask(num_agents=2)
    env = TeamTaskEnv(task, seed=0)
    env.reset()
    # put the serve on the left side, far from the left paddle
    task.ball[0] = [-0.05, 2.5, -2.0, 0.0]
    task.paddle[0, 0] = -HALF + 0.2
    for _ in range(40):
        step_all(env, {b: np.zeros((1, 3)) for b in TEAMS})
        _, t0 = env.get_steps(TEAMS[0])
        if len(t0):
            break
    _, t1 = env.get_steps(TEAMS[1])
    assert t0.reward.tolist() == [-1.0] and t1.reward.tolist() == [1.0]
    assert not t0.interrupted.any() and not t1.interrupted.any()


def test_a_follower_beats_a_random_player_and_the_same_seed_repeats() -> None:
    def play(seed: int) -> tuple[int, int]:
        env = registry.make("Tennis", seed=seed, num_agents=64)
        assert isinstance(env, TeamTaskEnv)
        env.reset()
        rng = np.random.default_rng(seed)
        wins = losses = 0
        for _ in range(600):
            d0, t0 = env.get_steps(TEAMS[0])
            d1, _ = env.get_steps(TEAMS[1])
            wins += int((t0.reward > 0).sum())
            losses += int((t0.reward < 0).sum())
            step_all(env, {TEAMS[0]: follower(d0.obs[0]), TEAMS[1]: rng.uniform(-1, 1, (len(d1), 3))})
        return wins, losses

    wins, losses = play(3)
    assert wins > 2 * losses and wins + losses > 500
    assert play(3) == (wins, losses)


def test_tennis_renders_and_the_frame_changes() -> None:
    env = registry.make("Tennis", seed=1, num_areas=2)
    env.reset()
    first = render_rgb(env)
    assert first.dtype == np.uint8 and first.ndim == 3 and len(np.unique(first.reshape(-1, 3), axis=0)) >= 5
    step_all(env, {b: np.ones((2, 3)) for b in TEAMS})
    frame = render_rgb(env)
    assert frame.shape == first.shape and not np.array_equal(frame, first)
