"""The SoccerTwos and StrikersVsGoalie built-ins: behavior ids and specs, group ids, goals and their group
rewards by hand, mirrored observations, seeding, rendering, and that the learning signal is real (a
scripted chase-and-kick team beats a random one)."""

from __future__ import annotations

import numpy as np
import pytest

from fledge.envs import registry
from fledge.envs.api import ActionTuple, validate_steps
from fledge.envs.builtin.soccer import (
    AGENT_RADIUS,
    BALL_RADIUS,
    HALF_LENGTH,
    KICK,
    SOCCER_MAX_STEPS,
    SOCCER_TEAMS,
    STEP_REWARD,
    STRIKERS_VS_GOALIE,
    SoccerTwosTask,
    StrikersVsGoalieTask,
)
from fledge.envs.builtin.teams import TeamTaskEnv
from fledge.envs.render import render_rgb
from fledge.errors import ConfigError


def chase_and_kick(obs: np.ndarray) -> np.ndarray:
    """Goes behind the ball (seen from the opponents' goal), turns toward it and runs it into the goal."""
    ball = obs[:, 6:8] * HALF_LENGTH
    goal = obs[:, -2:] * HALF_LENGTH
    d = goal - ball
    d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-6)
    target = ball - 0.7 * d
    close = np.linalg.norm(target, axis=1) < 0.4
    target = np.where(close[:, None], ball + d, target)
    angle = np.arctan2(target[:, 1], target[:, 0])
    a = np.zeros((len(obs), 3), dtype=np.int32)
    a[:, 0] = np.where(np.abs(angle) < 1.0, 1, 0)
    a[:, 2] = np.where(angle > 0.25, 1, np.where(angle < -0.25, 2, 0))
    return a


def step(env: TeamTaskEnv, actions: dict[str, np.ndarray]) -> None:
    for b, a in actions.items():
        env.set_actions(b, ActionTuple(discrete=a.astype(np.int32)))
    env.step()


def still(env: TeamTaskEnv) -> dict[str, np.ndarray]:
    return {b: np.zeros((len(env.get_steps(b)[0]), 3), np.int32) for b in env.behavior_specs}


def test_behavior_ids_specs_and_group_ids() -> None:
    env = registry.make("SoccerTwos", seed=0, num_areas=3)
    assert isinstance(env, TeamTaskEnv) and list(env.behavior_specs) == list(SOCCER_TEAMS)
    env.reset()
    d0, _ = env.get_steps(SOCCER_TEAMS[0])
    d1, _ = env.get_steps(SOCCER_TEAMS[1])
    np.testing.assert_array_equal(d0.agent_id, [0, 1, 4, 5, 8, 9])
    np.testing.assert_array_equal(d1.agent_id, [2, 3, 6, 7, 10, 11])
    np.testing.assert_array_equal(d0.group_id, [1, 1, 3, 3, 5, 5])
    np.testing.assert_array_equal(d1.group_id, [2, 2, 4, 4, 6, 6])
    for b in SOCCER_TEAMS:
        spec = env.behavior_specs[b]
        assert spec.action_spec.discrete_branches == (3, 3, 3) and spec.action_spec.continuous_size == 0
        assert spec.observation_specs[0].shape == (20,)
        d, t = env.get_steps(b)
        validate_steps(b, spec, d, t)
        assert d.obs[0].dtype == np.float32 and d.group_id.dtype == np.int32 and d.group_reward.dtype == np.float32
    svg = registry.make("StrikersVsGoalie", seed=0, num_areas=2)
    assert list(svg.behavior_specs) == list(STRIKERS_VS_GOALIE)
    svg.reset()
    ds, _ = svg.get_steps("Striker?team=0")
    dg, _ = svg.get_steps("Goalie?team=1")
    np.testing.assert_array_equal(ds.agent_id, [0, 1, 3, 4])
    np.testing.assert_array_equal(ds.group_id, [1, 1, 3, 3])
    np.testing.assert_array_equal(dg.agent_id, [2, 5])
    np.testing.assert_array_equal(dg.group_id, [2, 4])
    assert ds.obs[0].shape == (4, 18) and dg.obs[0].shape == (2, 18)
    with pytest.raises(ConfigError, match="multiple of 4"):
        registry.make("SoccerTwos", num_agents=6)
    with pytest.raises(ConfigError, match="multiple of 3"):
        registry.make("StrikersVsGoalie", num_agents=4)


def test_a_goal_ends_all_four_episodes_with_the_group_rewards() -> None:
    task = SoccerTwosTask(num_agents=8)
    env = TeamTaskEnv(task, seed=0)
    env.reset()
    for _ in range(9):  # nobody moves, the balls lie still in the centre
        step(env, still(env))
        assert not len(env.get_steps(SOCCER_TEAMS[0])[1])
    # match 0: the ball is pushed into team 1's goal (team 0 scores) at the tenth decision; match 1 plays on
    task.ball[0] = [HALF_LENGTH - 0.3, 0.0, 6.0, 0.0]
    step(env, still(env))
    _, t0 = env.get_steps(SOCCER_TEAMS[0])
    _, t1 = env.get_steps(SOCCER_TEAMS[1])
    expected = 1.0 - 10 / SOCCER_MAX_STEPS
    np.testing.assert_array_equal(t0.agent_id, [0, 1])
    np.testing.assert_array_equal(t1.agent_id, [2, 3])
    np.testing.assert_allclose(t0.group_reward, [expected, expected], rtol=1e-6)
    np.testing.assert_array_equal(t1.group_reward, [-1.0, -1.0])
    assert not t0.reward.any() and not t1.reward.any()
    assert not t0.interrupted.any() and not t1.interrupted.any()
    np.testing.assert_array_equal(t0.group_id, [1, 1])
    np.testing.assert_array_equal(t1.group_id, [2, 2])
    d0, _ = env.get_steps(SOCCER_TEAMS[0])  # the new episode starts at once, without the reward
    assert not d0.group_reward.any() and task.steps[0] == 0 and task.steps[1] == 10


def placed(ball: list[float], pos: list[list[float]], heading: list[float]) -> SoccerTwosTask:
    """One SoccerTwos match with the ball and the four agents (standing still) placed by hand."""
    task = SoccerTwosTask(num_agents=4)
    task.reset_agents(np.arange(4), np.random.default_rng(0))
    task.ball[0] = ball
    task.pos[:] = pos
    task.heading[:] = heading
    task.vel[:] = 0.0
    return task


FAR = [[-3.0, 2.0], [3.0, 2.0], [3.0, -2.0]]


def test_a_front_touch_kicks_along_the_heading_and_a_side_touch_only_pushes() -> None:
    # agent 0 faces +y; the ball touches it 31 degrees off its heading: it leaves along the heading at KICK
    task = placed([0.3, 0.5, 0.0, 0.0], [[0.0, 0.0], *FAR], [np.pi / 2, 0.0, np.pi, np.pi])
    task._move_ball()
    np.testing.assert_allclose(task.ball[0, 2:], [0.0, KICK], atol=1e-12)
    unit = np.array([0.3, 0.5]) / np.hypot(0.3, 0.5)
    np.testing.assert_allclose(task.ball[0, :2], (AGENT_RADIUS + BALL_RADIUS) * unit, atol=1e-12)
    assert task.touched.tolist() == [True, False, False, False]
    # the same ball at its side (90 degrees off): a still agent only puts it back on its rim
    task = placed([0.6, 0.0, 0.0, 0.0], [[0.0, 0.0], *FAR], [np.pi / 2, 0.0, np.pi, np.pi])
    task._move_ball()
    np.testing.assert_allclose(task.ball[0], [AGENT_RADIUS + BALL_RADIUS, 0.0, 0.0, 0.0], atol=1e-12)


def test_simultaneous_kicks_favour_no_team_and_touches_earn_ball_touch_rewards() -> None:
    # agents 0 (team 0) and 2 (team 1) kick a still ball from opposite sides in the same decision: it stays
    pos = [[-0.5, 0.0], [-3.0, 2.0], [0.5, 0.0], [3.0, -2.0]]
    task = placed([0.0, 0.0, 0.0, 0.0], pos, [0.0, 0.0, np.pi, np.pi])
    task._move_ball()
    np.testing.assert_allclose(task.ball[0], [0.0, 0.0, 0.0, 0.0], atol=1e-12)
    assert task.touched.tolist() == [True, False, True, False]
    # the ball_touch parameter (default 0): 0.2 x ball_touch to each agent touching the ball
    still_actions = ActionTuple(discrete=np.zeros((4, 3), np.int32))
    task = placed([0.0, 0.0, 0.0, 0.0], pos, [0.0, 0.0, np.pi, np.pi])
    reward, _ = task.apply(still_actions, np.random.default_rng(0))
    assert not reward.any()
    task = placed([0.0, 0.0, 0.0, 0.0], pos, [0.0, 0.0, np.pi, np.pi])
    task.parameters.values["ball_touch"][:] = 1.5
    reward, _ = task.apply(still_actions, np.random.default_rng(0))
    np.testing.assert_allclose(reward, [0.3, 0.0, 0.3, 0.0], rtol=1e-6)


def test_the_ball_into_the_own_goal_rewards_the_other_team_and_the_time_limit_interrupts() -> None:
    task = SoccerTwosTask(num_agents=4, max_episode_steps=20)
    env = TeamTaskEnv(task, seed=1)
    env.reset()
    task.ball[0] = [-HALF_LENGTH + 0.3, 0.0, -6.0, 0.0]
    step(env, still(env))
    _, t0 = env.get_steps(SOCCER_TEAMS[0])
    _, t1 = env.get_steps(SOCCER_TEAMS[1])
    np.testing.assert_array_equal(t0.group_reward, [-1.0, -1.0])
    np.testing.assert_allclose(t1.group_reward, [1.0 - 1 / 20] * 2, rtol=1e-6)
    task.ball[0] = [0.0, 0.0, 0.0, 0.0]
    task.pos[:, 1] = [3.0, -3.0, 3.0, -3.0]
    for _ in range(19):
        step(env, still(env))
        assert not len(env.get_steps(SOCCER_TEAMS[0])[1])
    step(env, still(env))
    for b in SOCCER_TEAMS:
        _, t = env.get_steps(b)
        assert len(t) == 2 and t.interrupted.all() and not t.group_reward.any()


def test_strikers_score_and_the_shot_clock_ends_the_game() -> None:
    task = StrikersVsGoalieTask(num_agents=3, shot_clock=30)
    env = TeamTaskEnv(task, seed=0)
    env.reset()
    task.pos[2] = [HALF_LENGTH - 1.0, 3.0]  # the goalie out of the way
    task.ball[0] = [HALF_LENGTH - 0.3, 0.0, 6.0, 0.0]
    step(env, still(env))
    _, ts = env.get_steps("Striker?team=0")
    _, tg = env.get_steps("Goalie?team=1")
    np.testing.assert_array_equal(ts.group_reward, [1.0, 1.0])
    np.testing.assert_allclose(ts.reward, [-STEP_REWARD] * 2)
    np.testing.assert_array_equal(tg.group_reward, [-1.0])
    np.testing.assert_allclose(tg.reward, [STEP_REWARD])
    # the strikers' own end is a wall: the ball bounces back
    task.ball[0] = [-HALF_LENGTH + 0.3, 0.0, -6.0, 0.0]
    step(env, still(env))
    assert task.ball[0, 2] > 0 and not len(env.get_steps("Striker?team=0")[1])
    task.ball[0] = [0.0, 0.0, 0.0, 0.0]
    for _ in range(28):  # decisions 2 to 29 of the new game
        step(env, still(env))
        assert not len(env.get_steps("Goalie?team=1")[1])
    step(env, still(env))
    _, ts = env.get_steps("Striker?team=0")
    _, tg = env.get_steps("Goalie?team=1")
    assert len(ts) == 2 and len(tg) == 1
    assert not ts.interrupted.any() and not tg.interrupted.any()  # the goalie held out: a real end
    assert not ts.group_reward.any() and not tg.group_reward.any()


def test_observations_are_the_same_for_both_teams_in_a_mirrored_game() -> None:
    task = SoccerTwosTask(num_agents=8)
    task.reset_agents(np.arange(8), np.random.default_rng(0))
    rng = np.random.default_rng(5)
    # match 1 is match 0 turned by half a turn with the teams swapped
    task.pos[:4] = rng.uniform(-3, 3, (4, 2))
    task.heading[:4] = rng.uniform(-np.pi, np.pi, 4)
    task.vel[:4] = rng.uniform(-2, 2, (4, 2))
    task.ball[0] = rng.uniform(-2, 2, 4)
    swap = [2, 3, 0, 1]
    task.pos[4:] = -task.pos[swap]
    task.vel[4:] = -task.vel[swap]
    task.heading[4:] = task.heading[swap] + np.pi
    task.ball[1] = -task.ball[0]
    obs = task.observe()[0]
    np.testing.assert_allclose(obs[4:], obs[swap], atol=1e-5)


def test_the_same_seed_repeats_the_same_games() -> None:
    def play(seed: int) -> list[float]:
        env = registry.make("SoccerTwos", seed=seed, num_areas=8)
        assert isinstance(env, TeamTaskEnv)
        rng = np.random.default_rng(seed)
        env.reset()
        out = []
        for _ in range(150):
            for b in SOCCER_TEAMS:
                d, t = env.get_steps(b)
                out.append(float(t.group_reward.sum()) + float(d.obs[0].sum()))
            step(env, {b: rng.integers(0, 3, (16, 3)) for b in SOCCER_TEAMS})
        return out

    assert play(4) == play(4) != play(5)


def goals_for_and_against(name: str, scripted: str | None, *, seed: int, decisions: int) -> tuple[int, int]:
    """Goals of team 0 and team 1 over many games; the behavior `scripted` chases and kicks, others move randomly."""
    env = registry.make(name, seed=seed, num_areas=32)
    assert isinstance(env, TeamTaskEnv)
    env.reset()
    rng = np.random.default_rng(seed)
    first = list(env.behavior_specs)[0]
    scored = conceded = 0
    for _ in range(decisions):
        actions = {}
        for b in env.behavior_specs:
            d, t = env.get_steps(b)
            if b == first:
                scored += int((t.group_reward > 0).sum())
                conceded += int((t.group_reward < 0).sum())
            actions[b] = chase_and_kick(d.obs[0]) if b == scripted else rng.integers(0, 3, (len(d), 3))
        step(env, actions)
    return scored, conceded


def test_a_chase_and_kick_team_beats_a_random_team() -> None:
    scored, conceded = goals_for_and_against("SoccerTwos", SOCCER_TEAMS[0], seed=2, decisions=600)
    assert scored > 3 * max(conceded, 1) and scored > 200, (scored, conceded)  # about 820 to 46
    # both teams random: no side is favoured
    a, b = goals_for_and_against("SoccerTwos", None, seed=2, decisions=600)
    assert abs(a - b) < 0.5 * (a + b), (a, b)
    # the mirrored frame: the same script plays as team 1
    scored1, conceded1 = goals_for_and_against("SoccerTwos", SOCCER_TEAMS[1], seed=2, decisions=600)
    assert conceded1 > 3 * max(scored1, 1), (scored1, conceded1)


def test_chasing_strikers_score_far_more_than_random_ones() -> None:
    scripted, _ = goals_for_and_against("StrikersVsGoalie", STRIKERS_VS_GOALIE[0], seed=3, decisions=600)
    random_goals, _ = goals_for_and_against("StrikersVsGoalie", None, seed=3, decisions=600)
    assert scripted > 3 * max(random_goals, 1), (scripted, random_goals)  # about 700 to 16
    # a chasing goalie (it runs at the ball) concedes fewer goals to chasing strikers than a random one
    env = registry.make("StrikersVsGoalie", seed=3, num_areas=32)
    assert isinstance(env, TeamTaskEnv)
    env.reset()
    against_chaser = 0
    for _ in range(600):
        actions = {b: chase_and_kick(env.get_steps(b)[0].obs[0]) for b in STRIKERS_VS_GOALIE}
        against_chaser += int((env.get_steps(STRIKERS_VS_GOALIE[0])[1].group_reward > 0).sum())
        step(env, actions)
    assert against_chaser < scripted, (against_chaser, scripted)


@pytest.mark.parametrize("name", ["SoccerTwos", "StrikersVsGoalie"])
def test_soccer_renders_and_the_frame_changes(name: str) -> None:
    env = registry.make(name, seed=1, num_areas=2)
    assert isinstance(env, TeamTaskEnv)
    env.reset()
    first = render_rgb(env)
    assert first.dtype == np.uint8 and first.ndim == 3 and len(np.unique(first.reshape(-1, 3), axis=0)) >= 5
    step(env, {b: np.ones((len(env.get_steps(b)[0]), 3), np.int32) for b in env.behavior_specs})
    frame = render_rgb(env)
    assert frame.shape == first.shape and not np.array_equal(frame, first)
