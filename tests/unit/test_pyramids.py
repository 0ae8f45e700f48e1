"""The Pyramids task: its rules (switch, pyramid, gold brick), rewards, the rays against hand computations, that
nothing shows the pyramid before the press, seeding, resets, the heuristic's success rate, the renderer and the
visual variant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fledge.envs import registry
from fledge.envs.api import ActionTuple
from fledge.envs.builtin.base import VectorTaskEnv
from fledge.envs.builtin.pyramids import (
    GOLD_REWARD,
    MIN_PYRAMID_GAP,
    MIN_SWITCH_GAP,
    STEP_REWARD,
    TURN,
    PyramidsTask,
    heuristic,
)
from fledge.envs.builtin.pyramids_layout import (
    BACK,
    FORWARD,
    NUM_RAYS,
    NUM_TAGS,
    OBS_SIZE,
    PYRAMID,
    RAY_ANGLES,
    RAY_SIZE,
    SWITCH_OFF,
    SWITCH_ON,
    TURN_LEFT,
    TURN_RIGHT,
)
from fledge.envs.builtin.visual_pyramids import VisualPyramidsTask
from fledge.envs.render import render_rgb
from fledge.errors import ConfigError


def make(name: str = "Pyramids", **kwargs: object) -> tuple[VectorTaskEnv, PyramidsTask]:
    env = registry.make(name, **kwargs)  # type: ignore[arg-type]
    assert isinstance(env, VectorTaskEnv) and isinstance(env.task, PyramidsTask)
    return env, env.task


def act(n: int, action: int) -> ActionTuple:
    return ActionTuple(discrete=np.full((n, 1), action, dtype=np.int32))


def rays_of(obs: np.ndarray) -> np.ndarray:
    return obs[:, : NUM_RAYS * RAY_SIZE].reshape(len(obs), NUM_RAYS, RAY_SIZE)


def place(task: PyramidsTask, *, pos: tuple[float, float], heading: float, switch: tuple[float, float]) -> None:
    """Agent 0 at `pos` facing `heading` (radians), its switch at `switch`, not pressed."""
    task.pos[0] = pos
    task.heading[0] = heading
    task.switch[0] = switch
    task.pressed[0] = False


def test_specs_and_registry() -> None:
    env, task = make(seed=0)
    spec = env.behavior_specs["Pyramids"]
    assert [o.shape for o in spec.observation_specs] == [(OBS_SIZE,)] and OBS_SIZE == 24 * 5 + 1
    assert spec.action_spec.discrete_branches == (4,) and spec.action_spec.continuous_size == 0
    assert task.num_agents == 16 and task.max_episode_steps == 1000
    info = registry.describe("Pyramids")
    assert info.num_agents == 16 and "switch" in info.description
    visual = registry.make("VisualPyramids", seed=0)
    assert list(visual.behavior_specs) == ["VisualPyramids"]
    assert [o.shape for o in visual.behavior_specs["VisualPyramids"].observation_specs] == [(3, 56, 56)]


def test_rays_against_a_hand_computation() -> None:
    """In a room of 20, agent at the centre facing +x, switch 3 ahead: the forward ray's sphere cast (0.5) meets the switch's
    rim (0.5) at 3 - 1 = 2; the ray straight back meets the wall at 10, beyond the range of 7 (no tag,
    fraction 1); the rays to the sides at 90 degrees see no wall either; with the range across the whole room,
    the back ray meets the wall at 10 of 2 sqrt(2) 10."""
    _, task = make(seed=0, num_agents=1, room_half=10.0)
    place(task, pos=(0.0, 0.0), heading=0.0, switch=(3.0, 0.0))
    rays = rays_of(task.observe()[0])[0]
    assert RAY_ANGLES[0] == 0.0 and RAY_ANGLES[12] == 180.0 and RAY_ANGLES[6] == 90.0
    np.testing.assert_allclose(rays[0], [0, 1, 0, 0, 2.0 / 7.0], atol=1e-6)
    np.testing.assert_allclose(rays[12], [0, 0, 0, 0, 1.0], atol=1e-6)
    # ray 1 (15 degrees left) passes the switch centre at 3 sin(15) = 0.776 < 1.0: it hits at
    # 3 cos(15) - sqrt(1 - 0.776^2)
    a = math.radians(15.0)
    hit = 3 * math.cos(a) - math.sqrt(1 - (3 * math.sin(a)) ** 2)
    np.testing.assert_allclose(rays[1, NUM_TAGS], hit / 7, atol=1e-6)
    assert rays[1, SWITCH_OFF] == 1.0
    assert RAY_ANGLES[23] == -15.0 and rays[23, SWITCH_OFF] == 1.0  # 15 degrees right, by symmetry
    assert rays[2, SWITCH_OFF] == 0.0  # 30 degrees: 3 sin(30) = 1.5 > 1.0 passes by
    far = PyramidsTask(num_agents=1, ray_range=None, room_half=10.0)
    place(far, pos=(0.0, 0.0), heading=0.0, switch=(3.0, 0.0))
    back = rays_of(far.observe()[0])[0, 12]
    np.testing.assert_allclose(back, [1, 0, 0, 0, 10.0 / (2 * math.sqrt(2) * 10.0)], atol=1e-6)
    # near a wall: facing +z at z = 6, the wall at z = 10 is 4 away
    place(task, pos=(0.0, 6.0), heading=math.pi / 2, switch=(-8.0, -8.0))
    np.testing.assert_allclose(rays_of(task.observe()[0])[0, 0], [1, 0, 0, 0, 4.0 / 7.0], atol=1e-6)


def test_pressing_the_switch_raises_the_pyramid_and_the_gold_brick_ends_the_episode() -> None:
    env, task = make(seed=3, num_agents=1)
    env.reset()
    place(task, pos=(0.0, 0.0), heading=0.0, switch=(1.2, 0.0))
    env.set_actions("Pyramids", act(1, FORWARD))
    env.step()
    decision, terminal = env.get_steps("Pyramids")
    assert len(terminal) == 0 and task.pressed[0] and task.pressed_now[0]
    np.testing.assert_allclose(decision.reward, [STEP_REWARD])
    assert decision.obs[0][0, -1] == 1.0
    assert np.hypot(*(task.pyramid[0] - task.pos[0])) >= MIN_PYRAMID_GAP
    assert np.hypot(*(task.pyramid[0] - task.switch[0])) >= 0.5 + 0.75 + 1.0
    assert np.all(np.abs(task.pyramid[0]) <= task.room_half - 0.75)
    # walking over the pressed switch again changes nothing
    env.set_actions("Pyramids", act(1, BACK))
    env.step()
    assert task.pressed[0] and not task.pressed_now[0]
    # next to the pyramid, facing it: one step forward reaches the gold brick
    px, pz = task.pyramid[0]
    task.pos[0] = (px - 1.6, pz)
    task.heading[0] = 0.0
    env.set_actions("Pyramids", act(1, FORWARD))
    env.step()
    decision, terminal = env.get_steps("Pyramids")
    np.testing.assert_allclose(terminal.reward, [GOLD_REWARD])
    assert not terminal.interrupted[0]
    assert not task.pressed[0]  # a new episode has begun
    np.testing.assert_allclose(decision.reward, [0.0])


def test_nothing_shows_the_pyramid_before_the_press() -> None:
    env, task = make(seed=1, ray_range=None)
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(50):
        obs = task.observe()[0]
        unpressed = ~task.pressed
        saved = task.pyramid.copy()
        task.pyramid[:] = rng.uniform(-9, 9, size=saved.shape)  # wherever it would be, the rays do not see it
        np.testing.assert_array_equal(task.observe()[0][unpressed], obs[unpressed])
        task.pyramid[:] = saved
        assert not rays_of(obs[unpressed])[:, :, PYRAMID].any()
        assert not obs[unpressed, -1].any()
        env.set_actions("Pyramids", ActionTuple(discrete=rng.integers(0, 4, (16, 1)).astype(np.int32)))
        env.step()


def test_switch_tag_turns_on_once_pressed() -> None:
    _, task = make(seed=0, num_agents=1)
    place(task, pos=(0.0, 0.0), heading=0.0, switch=(3.0, 0.0))
    task.pressed[0] = True
    task.pyramid[0] = (-8.0, -8.0)
    rays = rays_of(task.observe()[0])[0]
    assert rays[0, SWITCH_ON] == 1.0 and rays[0, SWITCH_OFF] == 0.0


def test_turning_rotates_the_rays_by_one_and_walls_stop_the_agent() -> None:
    env, task = make(seed=2, num_agents=4, ray_range=None)
    env.reset()
    before = rays_of(task.observe()[0]).copy()
    heading = task.heading.copy()
    task.apply(act(4, TURN_LEFT), np.random.default_rng(0))
    np.testing.assert_allclose(np.cos(task.heading - heading), math.cos(TURN), atol=1e-9)
    after = rays_of(task.observe()[0])
    # the new ray k looks where the old ray k+1 (15 degrees further left) looked
    order = np.argsort(np.asarray(RAY_ANGLES) % 360.0)
    np.testing.assert_allclose(after[:, order], np.roll(before[:, order], -1, axis=1), atol=1e-6)
    task.apply(act(4, TURN_RIGHT), np.random.default_rng(0))
    np.testing.assert_allclose(rays_of(task.observe()[0]), before, atol=1e-6)
    task.heading[:] = 0.0
    task.switch[:] = (-9.0, -9.0)
    for _ in range(60):
        task.apply(act(4, FORWARD), np.random.default_rng(0))
    np.testing.assert_allclose(task.pos[:, 0], task.room_half - 0.5)


def test_step_penalty_and_interruption() -> None:
    env, _ = make(seed=0, num_agents=3, max_episode_steps=5)
    env.reset()
    for step in range(5):
        env.set_actions("Pyramids", act(3, TURN_LEFT))  # spinning never touches anything
        env.step()
        decision, terminal = env.get_steps("Pyramids")
        if step < 4:
            np.testing.assert_allclose(decision.reward, STEP_REWARD)
    assert terminal.interrupted.all() and len(terminal) == 3
    np.testing.assert_allclose(terminal.reward, STEP_REWARD)


def test_same_seed_same_episodes_and_resets_are_fresh() -> None:
    def trace(seed: int) -> list[np.ndarray]:
        env, task = make(seed=seed, num_agents=8, max_episode_steps=30)
        env.reset()
        rng = np.random.default_rng(7)
        out = []
        for _ in range(100):
            out.append(env.get_steps("Pyramids")[0].obs[0].copy())
            env.set_actions("Pyramids", ActionTuple(discrete=rng.integers(0, 4, (8, 1)).astype(np.int32)))
            env.step()
        out.append(task.switch.copy())
        return out

    a, b, c = trace(5), trace(5), trace(6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    env, task = make(seed=0, num_agents=64)
    env.reset()
    assert (np.hypot(*(task.switch - task.pos).T) >= MIN_SWITCH_GAP).all()
    assert not task.pressed.any()
    assert len(np.unique(task.switch[:, 0])) == 64  # every room is drawn anew


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="room_half"):
        registry.make("Pyramids", room_half=2)
    with pytest.raises(ConfigError, match="ray_range"):
        registry.make("Pyramids", ray_range=0)
    with pytest.raises(ConfigError, match="resolution"):
        registry.make("VisualPyramids", resolution=2)


def run_heuristic(env: VectorTaskEnv, steps: int, rng: np.random.Generator | None) -> np.ndarray:
    n = env.task.num_agents
    returns, finished = np.zeros(n), []
    for _ in range(steps):
        decision, terminal = env.get_steps("Pyramids")
        finished.extend(returns[terminal.agent_id] + terminal.reward)
        returns[terminal.agent_id] = 0.0
        returns[decision.agent_id] += decision.reward
        env.set_actions("Pyramids", ActionTuple(discrete=heuristic(decision.obs[0], rng)))
        env.step()
    return np.asarray(finished)


def test_the_heuristic_solves_it() -> None:
    env, _ = make(seed=11, num_agents=24)
    returns = run_heuristic(env, 1000, np.random.default_rng(0))
    assert len(returns) >= 50
    assert (returns > 0).mean() > 0.9, (returns > 0).mean()
    assert returns.mean() > 1.5
    deterministic = run_heuristic(make(seed=12, num_agents=24)[0], 1000, None)
    assert (deterministic > 0).mean() > 0.8  # without random turns it may circle a room whose switch it never sees


def test_render_draws_the_rooms_and_the_actions() -> None:
    env, task = make(seed=0, num_agents=3)
    env.reset()
    frame = render_rgb(env)
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    with_actions = render_rgb(env, act(3, FORWARD))
    assert with_actions.shape == frame.shape and not np.array_equal(with_actions, frame)
    task.pressed[0] = True
    task.pyramid[0] = (5.0, 5.0)
    assert not np.array_equal(render_rgb(env), frame)  # the pyramid appears, the switch turns green


def test_visual_variant_shows_agent_switch_and_pyramid_only_after_the_press() -> None:
    env = registry.make("VisualPyramids", seed=0, num_agents=2, resolution=40, room_half=10.0)
    assert isinstance(env, VectorTaskEnv) and isinstance(env.task, VisualPyramidsTask)
    task = env.task
    env.reset()
    task.pos[:] = (0.0, 0.0)
    task.heading[:] = 0.0
    task.switch[:] = (-5.0, 5.0)
    task.pyramid[:] = (5.0, -5.0)
    img = task.observe()[0]
    assert img.shape == (2, 3, 40, 40) and img.dtype == np.float32 and 0.0 <= img.min() and img.max() <= 1.0
    assert not img[:, 2].any()  # no pyramid before the press

    def brightest(channel: np.ndarray) -> tuple[int, int]:
        row, col = np.unravel_index(int(np.argmax(channel)), channel.shape)
        return int(row), int(col)

    # 2 pixels per unit: world (x, z) is at column (x + 10) * 2, row (10 - z) * 2
    assert img[0, 1].max() > 0.7 and brightest(img[0, 1]) in [(9, 9), (9, 10), (10, 9), (10, 10)]
    assert img[0, 0].max() > 0.7 and img[0, 0, :, 20:].sum() > 2 * img[0, 0, :, :20].sum()  # the nose is ahead (+x)
    assert img[0, 0, 19:21, 18:20].max() <= 0.5 + 1e-6 and img[0, 0, 19:21, 19:21].min() > 0.0  # the body
    before = float(img[0, 1].max())
    task.pressed[0] = True
    img = task.observe()[0]
    assert brightest(img[0, 2]) in [(29, 29), (29, 30), (30, 29), (30, 30)] and not img[1, 2].any()
    assert img[0, 1].max() == pytest.approx(0.4 * before, rel=1e-5)  # the switch dims once pressed
    env.set_actions("VisualPyramids", act(2, FORWARD))
    env.step()
    assert env.get_steps("VisualPyramids")[0].obs[0].shape == (2, 3, 40, 40)
