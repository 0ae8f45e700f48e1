"""RGB frames of environments, drawn with numpy only (no matplotlib, no display needed).

`render_rgb(env, actions=None)` returns one (H, W, 3) uint8 frame of any fledge environment:

* built-in environments (`VectorTaskEnv`): the task's own `render(actions)` method (3DBall, Basic,
  MoveToGoal, MaskedChoice, GridWorld, Hallway, Visual3DBall, Sorter and Pyramids draw themselves, next to their
  task in `fledge.envs.builtin`, with the helpers of `fledge.envs.drawing`); a task without one is
  drawn as bars of its observations. `actions`, when given, is the ActionTuple about to be applied
  (one row per agent): the frame then shows each agent's decision in that state (arrows, chosen boxes).
* Gymnasium / PettingZoo environments: the wrapped environment's `render()`, which needs the
  environment to be built with ``render_mode="rgb_array"``: build it with `make_for_rendering`.
  Vector environments give one frame per sub-environment; they are tiled into one image.

Built-in frames show at most `MAX_SHOWN` agents; agent 0 (the one `fledge play` follows) has a
yellow outline.

The drawing helpers (`Canvas`, `draw_text`, `caption`, `tile`) are small and vectorised: a frame of
the built-in environments costs 1-10 ms (3DBall's 12 shaded platforms about 20 ms).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fledge.envs.api import ActionTuple, BaseEnv
from fledge.envs.drawing import (
    AGENT,
    BACKGROUND,
    BAD,
    DIM_TEXT,
    GLYPH_H,
    GRID,
    HEADER,
    HIGHLIGHT,
    MAX_SHOWN,
    PAD,
    TEXT,
    Canvas,
    draw_text,
    draw_title,
    more_text,
    shown,
    text_width,
)
from fledge.errors import ConfigError, EnvironmentFault

__all__ = [
    "MAX_SHOWN",
    "Canvas",
    "caption",
    "draw_observations",
    "draw_text",
    "make_for_rendering",
    "render_rgb",
    "text_width",
    "tile",
]


def draw_observations(obs: np.ndarray, title: str = "observations") -> np.ndarray:
    """Any vector task: one row of bars per agent, bar height tanh(value) (up = positive)."""
    obs = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
    n_all, size = obs.shape
    n = shown(n_all)
    size = min(size, 64)
    bw, rh = max(4, min(24, 560 // max(size, 1))), 40
    width = max(2 * PAD + 36 + size * bw, 320)
    canvas = Canvas(width, HEADER + n * rh + PAD)
    draw_title(canvas, f"{title}  {n_all} agents{more_text(n_all)}", "bars = observations (tanh scaled)")
    x0 = PAD + 36
    for i in range(n):
        y = HEADER + i * rh
        mid = y + rh / 2
        canvas.text(PAD, mid - 7, str(i), HIGHLIGHT if i == 0 else TEXT, 2)
        canvas.rect(x0, mid, x0 + size * bw, mid + 1, GRID)
        for j in range(size):
            v = math.tanh(float(obs[i, j])) * (rh / 2 - 3)
            top, bottom = (mid - v, mid) if v >= 0 else (mid, mid - v)
            canvas.rect(x0 + j * bw + 1, top, x0 + (j + 1) * bw - 1, max(bottom, top + 1), AGENT if v >= 0 else BAD)
    return canvas.img


# ----------------------------------------------------------------------------------------------
# Frames of any environment
# ----------------------------------------------------------------------------------------------


def make_for_rendering(name: str, *, seed: int = 0, **kwargs: Any) -> BaseEnv:
    """An environment by registry name that `render_rgb` can draw.

    Built-in names are built as usual (they always render). "gym:<id>" and "pettingzoo:<module>" are
    built with ``render_mode="rgb_array"`` (passed to `gymnasium.make` / the PettingZoo constructor).
    """
    from fledge.envs import registry

    if ":" in name and "render_mode" not in kwargs:
        kwargs = {**kwargs, "render_mode": "rgb_array"}
    return registry.make(name, seed=seed, **kwargs)


def render_rgb(env: BaseEnv, actions: ActionTuple | Mapping[str, ActionTuple] | None = None) -> np.ndarray:
    """One (H, W, 3) uint8 frame of `env` in its current state.

    actions: the actions about to be applied (an ActionTuple, or a mapping behavior -> ActionTuple);
    built-in tasks draw them, other environments ignore them.
    """
    from fledge.envs.builtin.base import VectorTaskEnv

    if isinstance(env, VectorTaskEnv):
        task = env.task
        act = actions.get(task.behavior_name) if isinstance(actions, Mapping) else actions
        draw = getattr(task, "render", None)
        if callable(draw):
            takes_actions = bool(inspect.signature(draw).parameters)  # a user task may define render(self)
            return _as_rgb(draw(act) if takes_actions else draw(), type(task).__name__)
        return draw_observations(task.observe()[0], task.behavior_name)
    target = env if callable(getattr(env, "render", None)) else getattr(env, "env", None)
    draw = getattr(target, "render", None)
    if not callable(draw):
        raise ConfigError(f"{type(env).__name__} cannot be rendered: it has no render() method.")
    mode = getattr(target, "render_mode", "rgb_array")
    if mode != "rgb_array":
        raise ConfigError(
            f"{_env_label(env)} was built with render_mode={mode!r}; frames need render_mode='rgb_array'. "
            "Build it with fledge.envs.render.make_for_rendering(name, seed=...)."
        )
    try:
        frame = draw()
    except Exception as exc:
        if type(exc).__name__ == "DependencyNotInstalled":
            raise ConfigError(
                f"Rendering {_env_label(env)} needs an extra package: {exc}. "
                "For Gymnasium's classic-control and Box2D environments: pip install 'gymnasium[classic-control]' "
                "(or 'gymnasium[box2d]')."
            ) from exc
        raise
    if frame is None:
        raise ConfigError(
            f"{_env_label(env)} returned no frame from render(); build it with render_mode='rgb_array' "
            "(fledge.envs.render.make_for_rendering) and reset it first."
        )
    return _as_rgb(frame, _env_label(env))


def _env_label(env: BaseEnv) -> str:
    for attr in ("env_id", "name"):
        value = getattr(env, attr, None)
        if isinstance(value, str):
            return f"Environment '{value}'"
    return type(env).__name__


def _as_rgb(frame: Any, label: str) -> np.ndarray:
    """A frame (or a list of frames, tiled) as a contiguous (H, W, 3) uint8 array."""
    if isinstance(frame, (list, tuple)):
        frames = [_as_rgb(f, label) for f in frame if f is not None]
        if not frames:
            raise EnvironmentFault(f"{label}: render() returned no frames.")
        return frames[0] if len(frames) == 1 else tile(frames)
    arr = np.asarray(frame)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4) or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise EnvironmentFault(f"{label}: render() returned an array of shape {arr.shape}, not an (H, W, 3) image.")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    arr = arr[..., :3]
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and float(np.nanmax(arr, initial=0.0)) <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr)


def tile(frames: Sequence[np.ndarray], cols: int | None = None, gap: int = 4) -> np.ndarray:
    """Frames side by side in a grid (at most MAX_SHOWN), padded to the largest frame."""
    frames = [_as_rgb(f, "frame") for f in frames[:MAX_SHOWN]]
    cols = cols or int(math.ceil(math.sqrt(len(frames))))
    rows = int(math.ceil(len(frames) / cols))
    h = max(f.shape[0] for f in frames)
    w = max(f.shape[1] for f in frames)
    out = np.empty((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    for k, f in enumerate(frames):
        r, c = divmod(k, cols)
        y, x = r * (h + gap), c * (w + gap)
        out[y : y + f.shape[0], x : x + f.shape[1]] = f
    return out


def caption(frame: np.ndarray, text: str, *, lines: Sequence[str] = (), scale: int = 1) -> np.ndarray:
    """A new frame with a dark strip on top holding `text` (and further `lines`), same width."""
    all_lines = [text, *lines]
    line_h = (GLYPH_H + 4) * scale
    strip = 6 + line_h * len(all_lines)
    out = np.empty((frame.shape[0] + strip, frame.shape[1], 3), dtype=np.uint8)
    out[:strip] = (12, 13, 17)
    out[strip:] = frame
    for k, line in enumerate(all_lines):
        draw_text(out, 6, 4 + k * line_h, line, TEXT if k == 0 else DIM_TEXT, scale)
    return out
