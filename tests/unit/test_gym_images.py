"""Gymnasium image observation spaces become fledge's visual observations: (C, H, W) float32 in [0, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fledge.envs.api import DimensionProperty, validate_steps
from fledge.envs.gym_images import image_layout

gymnasium = pytest.importorskip("gymnasium")
spaces = gymnasium.spaces

from fledge.envs.gymnasium import GymnasiumEnv, ObservationConverter  # noqa: E402

VISUAL = (
    DimensionProperty.NONE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
)


@pytest.mark.parametrize(
    ("space", "chw"),
    [
        (spaces.Box(0, 255, (96, 96, 3), np.uint8), (3, 96, 96)),  # CarRacing
        (spaces.Box(0, 255, (210, 160, 3), np.uint8), (3, 210, 160)),  # Atari RGB
        (spaces.Box(0, 255, (210, 160), np.uint8), (1, 210, 160)),  # Atari grayscale
        (spaces.Box(0, 255, (4, 84, 84), np.uint8), (4, 84, 84)),  # 4 stacked frames, channels first
        (spaces.Box(0, 255, (84, 84, 4), np.uint8), (4, 84, 84)),  # 4 stacked frames, channels last
        (spaces.Box(0, 255, (8, 6, 1), np.uint8), (1, 8, 6)),
        (spaces.Box(0.0, 1.0, (3, 20, 20), np.float32), (3, 20, 20)),
        (spaces.Box(0.0, 255.0, (20, 20, 3), np.float32), (3, 20, 20)),
    ],
)
def test_image_spaces_become_visual_specs(space: Any, chw: tuple[int, int, int]) -> None:
    (spec,) = ObservationConverter(space).specs
    assert spec.shape == chw and spec.dimension_property == VISUAL


@pytest.mark.parametrize(
    "space",
    [
        spaces.Box(0, 2, (3, 3), np.uint8),  # a small board of codes, not a grayscale frame
        spaces.Box(-1.0, 1.0, (8, 8, 3), np.float32),  # floats outside [0, 1] / [0, 255]
        spaces.Box(0, 255, (12,), np.uint8),  # rank 1
        spaces.Box(0, 255, (2, 3, 4, 5), np.uint8),  # rank 4
        spaces.Box(0, 9, (5, 5, 3), np.int64),
    ],
)
def test_other_boxes_stay_vectors(space: Any) -> None:
    (spec,) = ObservationConverter(space).specs
    assert spec.shape == (int(np.prod(space.shape)),) and spec.dimension_property == (DimensionProperty.NONE,)


def test_conversion_values_and_layouts() -> None:
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    hwc[0, 0, 0, :2] = (255, 0)
    out = ObservationConverter(spaces.Box(0, 255, (5, 7, 3), np.uint8)).convert_batch(hwc, 2)[0]
    assert out.dtype == np.float32 and out.shape == (2, 3, 5, 7) and out.flags.c_contiguous
    np.testing.assert_allclose(out, hwc.transpose(0, 3, 1, 2) / 255.0, rtol=1e-6)
    assert out[hwc.transpose(0, 3, 1, 2) == 255].min() == 1.0 and out[hwc.transpose(0, 3, 1, 2) == 0].max() == 0.0
    chw = rng.integers(0, 256, (2, 4, 9, 9), dtype=np.uint8)
    out = ObservationConverter(spaces.Box(0, 255, (4, 9, 9), np.uint8)).convert_batch(chw, 2)[0]
    np.testing.assert_allclose(out, chw / 255.0, rtol=1e-6)
    gray = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    out = ObservationConverter(spaces.Box(0, 255, (9, 11), np.uint8)).convert_one(gray)[0]
    assert out.shape == (1, 1, 9, 11)
    np.testing.assert_allclose(out[0, 0], gray / 255.0, rtol=1e-6)
    unit = rng.random((1, 6, 6, 3)).astype(np.float32)
    out = ObservationConverter(spaces.Box(0.0, 1.0, (6, 6, 3), np.float32)).convert_batch(unit, 1)[0]
    np.testing.assert_array_equal(out, unit.transpose(0, 3, 1, 2))  # already in [0, 1]: unchanged
    assert image_layout((6, 6, 3), np.dtype(np.float64), np.zeros(1), np.full(1, 255.0)) is not None


def test_conversion_does_not_keep_the_callers_array() -> None:
    conv = ObservationConverter(spaces.Box(0.0, 1.0, (1, 4, 4), np.float32))
    src = np.zeros((1, 1, 4, 4), np.float32)
    out = conv.convert_batch(src, 1)[0]
    src[...] = 1.0
    assert (out == 0).all()


class SignalImageEnv(gymnasium.Env):  # type: ignore[misc,name-defined]
    """One decision per episode: a bright pixel in the left or right half of a 12 x 12 RGB image says which
    of two actions earns +1 (the other earns 0)."""

    def __init__(self, channels_first: bool = False) -> None:
        shape = (3, 12, 12) if channels_first else (12, 12, 3)
        self.channels_first = channels_first
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(2)
        self.side = 0

    def _obs(self) -> np.ndarray:
        img = np.zeros((12, 12, 3), np.uint8)
        row, col = self.np_random.integers(0, 12), self.np_random.integers(0, 6) + 6 * self.side
        img[row, col] = 255
        return img.transpose(2, 0, 1).copy() if self.channels_first else img

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self.side = int(self.np_random.integers(0, 2))
        return self._obs(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        reward = float(int(action) == self.side)
        return self._obs(), reward, True, False, {}


@pytest.mark.parametrize("channels_first", [False, True])
def test_image_env_end_to_end(channels_first: bool) -> None:
    env = GymnasiumEnv(SignalImageEnv(channels_first), seed=3)
    (name,) = env.behavior_specs
    spec = env.behavior_specs[name]
    assert spec.observation_specs[0].shape == (3, 12, 12)
    env.reset()
    for _ in range(5):
        d, t = env.get_steps(name)
        validate_steps(name, spec, d, t)
        image = d.obs[0][0]
        assert image.max() == 1.0 and (image > 0).sum() == 3  # one white pixel in all three channels
        _, row, col = np.argwhere(image > 0)[0]
        right = int(col >= 6)
        env.set_actions(name, spec.action_spec.empty_action(1))
        env.step()
        _, t = env.get_steps(name)
        assert t.reward[0] == float(right == 0)
