"""Frames of environments (fledge.envs.render): every built-in environment, a Gymnasium one, the helpers."""

from __future__ import annotations

import numpy as np
import pytest

from fledge.envs import registry
from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin.base import VectorTask, VectorTaskEnv
from fledge.envs.builtin.teams import TeamTaskEnv
from fledge.envs.render import (
    Canvas,
    caption,
    draw_text,
    make_for_rendering,
    render_rgb,
    text_width,
    tile,
)
from fledge.errors import ConfigError

ALL_NAMES = [n for n in registry.names() if not isinstance(registry.make(n), TeamTaskEnv)]  # teams: test_tennis.py


def distinct_colors(frame: np.ndarray) -> int:
    packed = frame.reshape(-1, 3).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    return len(np.unique(packed))


def check_frame(frame: np.ndarray) -> None:
    assert isinstance(frame, np.ndarray)
    assert frame.dtype == np.uint8
    assert frame.ndim == 3 and frame.shape[2] == 3
    assert frame.flags.c_contiguous
    assert frame.min() != frame.max()  # not one value
    assert distinct_colors(frame) >= 5  # background, panels, agent, goal, text, ...


def random_actions(env: VectorTaskEnv, name: str, rng: np.random.Generator) -> ActionTuple:
    n = len(env.get_steps(name)[0])
    return env.behavior_specs[name].action_spec.random_action(n, rng)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_builtin_renders_a_readable_frame_that_changes(name: str) -> None:
    env = registry.make(name, seed=3)
    assert isinstance(env, VectorTaskEnv)
    env.reset()
    first = render_rgb(env)
    check_frame(first)
    h, w, _ = first.shape
    assert 256 <= w <= 700 and 64 <= h <= 800
    rng = np.random.default_rng(0)
    changed = False
    for _ in range(10):
        actions = random_actions(env, name, rng)
        with_actions = render_rgb(env, actions)  # the decision drawn in the current state
        check_frame(with_actions)
        assert with_actions.shape == first.shape  # constant size: frames make a video
        env.set_actions(name, actions)
        env.step()
        frame = render_rgb(env)
        assert frame.shape == first.shape
        changed = changed or not np.array_equal(frame, first)
    assert changed, f"{name}: the frame never changed in 10 random steps"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_rendering_reads_the_state_only(name: str) -> None:
    """Rendering does not change what the environment does next (same seed, with and without frames)."""

    def rollout(draw: bool) -> list[np.ndarray]:
        env = registry.make(name, seed=5)
        env.reset()
        rng = np.random.default_rng(1)
        seen = []
        for _ in range(5):
            actions = random_actions(env, name, rng)
            if draw:
                render_rgb(env, actions)
            env.set_actions(name, actions)
            env.step()
            seen.append(env.get_steps(name)[0].obs[0].copy())
        return seen

    for a, b in zip(rollout(True), rollout(False)):
        np.testing.assert_array_equal(a, b)


def test_same_state_same_frame_and_masked_choice_marks_the_choice() -> None:
    a, b = registry.make("MaskedChoice", seed=2), registry.make("MaskedChoice", seed=2)
    a.reset()
    b.reset()
    np.testing.assert_array_equal(render_rgb(a), render_rgb(b))
    chosen = ActionTuple(None, np.zeros((16, 1), np.int32))
    assert not np.array_equal(render_rgb(a, chosen), render_rgb(a))
    assert not np.array_equal(render_rgb(a, {"MaskedChoice": chosen}), render_rgb(a))


def test_3dball_shows_the_tilt_and_a_falling_ball() -> None:
    env = registry.make("3DBall", seed=0, num_agents=4)
    env.reset()
    level = render_rgb(env)
    env.set_actions("3DBall", ActionTuple(np.ones((4, 2), np.float32)))
    env.step()
    assert not np.array_equal(render_rgb(env), level)  # tilting changes the shading at once
    task = env.task
    red = np.array([231, 76, 60])
    for _ in range(200):  # a constant full tilt drops every ball
        env.set_actions("3DBall", ActionTuple(np.ones((4, 2), np.float32)))
        env.step()
        if task._falling.any():
            break
    assert task._falling.any()
    frame = render_rgb(env)
    assert (np.abs(frame.astype(int) - red).sum(axis=2) == 0).sum() > 50  # red ball / border


class _PlainTask(VectorTask):
    """A task without a render method: drawn as observation bars."""

    behavior_name = "Plain"

    def __init__(self) -> None:
        self.num_agents = 3
        self.max_episode_steps = 0
        self.spec = BehaviorSpec([ObservationSpec.vector(5)], ActionSpec.create_continuous(1))
        self._x = np.zeros((3, 5), np.float32)

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self._x[idx] = rng.normal(size=(len(idx), 5))

    def observe(self) -> list[np.ndarray]:
        return [self._x.copy()]

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        self._x += actions.continuous
        return np.zeros(3, np.float32), np.zeros(3, bool)


def test_a_task_without_render_is_drawn_as_observation_bars() -> None:
    env = VectorTaskEnv(_PlainTask(), seed=0)
    env.reset()
    first = render_rgb(env)
    check_frame(first)
    env.set_actions("Plain", ActionTuple(np.ones((3, 1), np.float32)))
    env.step()
    assert not np.array_equal(render_rgb(env), first)


class _SelfDrawnTask(_PlainTask):
    def render(self) -> np.ndarray:  # a user task's own render, without the actions argument
        return np.full((8, 8, 3), 200, np.uint8)


def test_a_task_with_its_own_render_without_actions() -> None:
    env = VectorTaskEnv(_SelfDrawnTask(), seed=0)
    env.reset()
    frame = render_rgb(env, ActionTuple(np.zeros((3, 1), np.float32)))
    assert frame.shape == (8, 8, 3) and frame.dtype == np.uint8


def test_gymnasium_cartpole_frame() -> None:
    pytest.importorskip("gymnasium")
    pytest.importorskip("pygame", reason="Gymnasium's classic-control rendering needs pygame")
    env = make_for_rendering("gym:CartPole-v1", seed=0)
    try:
        env.reset()
        first = render_rgb(env)
        check_frame(first)
        assert first.shape == (400, 600, 3)
        (behavior,) = env.behavior_specs
        for _ in range(5):
            env.set_actions(behavior, ActionTuple(None, np.ones((1, 1), np.int32)))
            env.step()
        assert not np.array_equal(render_rgb(env), first)
    finally:
        env.close()


def test_gymnasium_env_without_rgb_array_mode_is_refused_clearly() -> None:
    pytest.importorskip("gymnasium")
    env = registry.make("gym:CartPole-v1", seed=0)
    try:
        env.reset()
        with pytest.raises(ConfigError, match="make_for_rendering"):
            render_rgb(env)
    finally:
        env.close()


def test_helpers_text_caption_tile() -> None:
    img = np.zeros((20, 100, 3), np.uint8)
    draw_text(img, 2, 2, "Step 12: ok", (255, 255, 255))
    assert img.any() and text_width("ab", 2) == 22
    draw_text(img, 95, 15, "clipped at the border")  # no error outside the image
    framed = caption(img, "hello", lines=["world"])
    assert framed.shape[1] == 100 and framed.shape[0] > 20
    np.testing.assert_array_equal(framed[-20:], img)
    grid = tile([img, img[:10], img])
    assert grid.dtype == np.uint8 and grid.shape[0] >= 40
    canvas = Canvas(50, 40)
    canvas.disc(25, 20, 8, (255, 0, 0))
    canvas.arrow(5, 5, 45, 35, (0, 255, 0))
    canvas.polygon([(0, 0), (10, 0), (0, 10)], (0, 0, 255))
    assert distinct_colors(canvas.img) >= 4
