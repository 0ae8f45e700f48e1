"""Environments by name: the built-in numpy tasks, prefixed names ("gym:..."), Unity players.

`make("3DBall", seed=1)` builds a ready `BaseEnv`. Built-in names map to `VectorTask` factories and
give a `VectorTaskEnv`; `make("3DBall", num_areas=4)` gives 4 areas of 12 agents, one batch of 48.
A name of the form "prefix:rest" goes to the maker registered for that prefix (`register_prefix`);
"gym:" and "pettingzoo:" are registered at the end and imported only when used.
Any other name that is the path of an executable (found as `mlagents-learn --env` finds one, see
envs/unity/launcher.py) is a Unity player, and "unity-editor" waits for the Unity Editor; both give a
UnityEnvironment (envs/unity/factory.py, imported only when used).
Importing this module does not import torch or gRPC.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fledge.envs.api import BaseEnv, BehaviorSpec
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.ball3d import Ball3DTask
from fledge.envs.builtin.base import VectorTask, VectorTaskEnv
from fledge.envs.builtin.basic import BasicTask
from fledge.envs.builtin.dungeon import DungeonEscapeTask
from fledge.envs.builtin.gridworld import GridWorldTask
from fledge.envs.builtin.groups import GroupTask, GroupTaskEnv
from fledge.envs.builtin.hallway import HallwayTask
from fledge.envs.builtin.parameters import unknown_parameters_error
from fledge.envs.builtin.pyramids import PyramidsTask
from fledge.envs.builtin.soccer import SoccerTwosTask, StrikersVsGoalieTask
from fledge.envs.builtin.sorter import SorterTask
from fledge.envs.builtin.teams import TeamTask, TeamTaskEnv
from fledge.envs.builtin.tennis import TennisTask
from fledge.envs.builtin.toys import (
    MaskedChoiceTask,
    MoveToGoal1DContinuousTask,
    MoveToGoal1DDiscreteTask,
    MoveToGoal2DHybridTask,
)
from fledge.envs.builtin.visual3dball import Visual3DBallTask
from fledge.envs.builtin.visual_pyramids import VisualPyramidsTask
from fledge.envs.builtin.walljump import WallJumpEnv, WallJumpTask
from fledge.envs.unity.launcher import EDITOR_NAME, find_executable, is_unity_target
from fledge.errors import ConfigError, UnknownEnvironmentError

DEFAULT_ENV = "3DBall"

TaskFactory = Callable[..., VectorTask]


class PrefixMaker(Protocol):
    """Builds an environment for "prefix:rest" names; gets `rest` and make()'s keyword arguments."""

    def __call__(self, rest: str, *, seed: int, num_agents: int | None, **kwargs: Any) -> BaseEnv: ...


@dataclass(frozen=True)
class EnvironmentInfo:
    """What `describe` tells about an environment."""

    name: str
    description: str
    behavior_specs: str  # one line per behavior: observations and actions
    num_agents: int | None = None  # default number of agents (one area), where known
    max_episode_steps: int | None = None  # decisions before an interruption (0: no limit), where known
    optimal_return: float | None = None  # best mean episode return, where known


@dataclass(frozen=True)
class _Entry:
    factory: TaskFactory
    description: str
    trainer: str = "ppo"  # the trainer of the shipped config `fledge learn --env NAME` uses without a config


_BUILTINS: dict[str, _Entry] = {}
_PREFIXES: dict[str, tuple[PrefixMaker, str]] = {}


def register(name: str, factory: TaskFactory, *, description: str, trainer: str = "ppo") -> None:
    """Add a built-in environment: `factory(**kwargs)` returns its VectorTask. Names are unique. `trainer`
    names the folder of shipped configs (ppo, sac, poca) whose config for it is the default one."""
    if not name or ":" in name or name != name.strip():
        raise ValueError(f"Invalid environment name {name!r}: it must be non-empty, without ':' or outer spaces.")
    if name in _BUILTINS:
        raise ValueError(f"An environment named '{name}' is already registered.")
    _BUILTINS[name] = _Entry(factory, description, trainer)


def register_prefix(prefix: str, maker: PrefixMaker, *, description: str) -> None:
    """Route names "prefix:rest" to `maker(rest, seed=..., num_agents=..., **kwargs)`."""
    if not prefix or ":" in prefix:
        raise ValueError(f"Invalid environment prefix {prefix!r}.")
    if prefix in _PREFIXES:
        raise ValueError(f"The environment prefix '{prefix}:' is already registered.")
    _PREFIXES[prefix] = (maker, description)


def names() -> list[str]:
    """The built-in environment names, sorted."""
    return sorted(_BUILTINS)


def default_trainer(name: str) -> str:
    """The trainer whose shipped config is an environment's default: ppo unless its registration says otherwise."""
    entry = _BUILTINS.get(name)
    return entry.trainer if entry is not None else "ppo"


def is_unity(name: str) -> bool:
    """Whether `name` means a Unity player (an executable's path, not a built-in name) or the Editor."""
    return name not in _BUILTINS and is_unity_target(name)


def make(name: str, *, seed: int = 0, num_agents: int | None = None, num_areas: int = 1, **kwargs: Any) -> BaseEnv:
    """A new environment by name. Extra keyword arguments go to the task (e.g. max_episode_steps).

    Built-in environments: `num_areas` copies of the training area stepped as one batch, each with
    `num_agents` agents (the task's default when None), so `num_areas * num_agents` agents in all.
    Prefixed families ("gym:", "pettingzoo:") have no areas and refuse `num_areas` other than 1.
    Unity players take the keyword arguments of `fledge.envs.unity.factory.make_unity`.
    """
    if is_unity(name):
        try:
            from fledge.envs.unity.factory import make_unity
        except Exception as exc:  # a missing grpcio, or a protobuf runtime older than the generated code
            raise ConfigError(
                f"Environment '{name}' is a Unity player, and the Unity link cannot load: {exc}. Install its "
                "dependencies with: pip install 'fledge[unity]' (grpcio>=1.85.1, protobuf>=7.35.1)."
            ) from None
        return make_unity(name, seed=seed, num_agents=num_agents, num_areas=num_areas, **kwargs)
    prefix, sep, rest = name.partition(":")
    if sep:
        if check_count(name, "num_areas", num_areas) != 1:
            raise ConfigError(
                f"Environment '{name}' has no training areas; num_areas={num_areas} cannot apply to it "
                "(use num_envs for more copies)."
            )
        maker, _ = _prefix_entry(name, prefix)
        return maker(rest, seed=seed, num_agents=num_agents, **kwargs)
    areas = check_count(name, "num_areas", num_areas)
    task = _make_task(name, num_agents, kwargs, num_areas=areas)
    if isinstance(task, WallJumpTask):  # agents that change behavior between episodes
        return WallJumpEnv(task, seed=seed, num_areas=areas)
    if isinstance(task, TeamTask):  # agents of several behavior ids (teams)
        return TeamTaskEnv(task, seed=seed, num_areas=areas)
    if isinstance(task, GroupTask):  # agents in groups that leave their episode one by one
        return GroupTaskEnv(task, seed=seed, num_areas=areas)
    return VectorTaskEnv(task, seed=seed, num_areas=areas)


def describe(name: str) -> EnvironmentInfo:
    """Description and behavior specs of an environment (builds it once for prefixed names)."""
    prefix, sep, _ = name.partition(":")
    unity = is_unity(name)
    if sep or unity:
        description = "the Unity Editor" if name == EDITOR_NAME else f"the Unity player {name}"
        if not unity:
            _, description = _prefix_entry(name, prefix)
        env = make(name)
        try:
            return EnvironmentInfo(name, description, _specs_text(env.behavior_specs))
        finally:
            env.close()
    task = _make_task(name, None, {})
    return EnvironmentInfo(
        name=name,
        description=_BUILTINS[name].description,
        behavior_specs=_specs_text(task.specs if isinstance(task, TeamTask) else {task.behavior_name: task.spec}),
        num_agents=task.num_agents,
        max_episode_steps=task.max_episode_steps,
        optimal_return=task.optimal_return(),
    )


def parameter_names(name: str) -> frozenset[str]:
    """The environment parameters a built-in environment reads (names of `environment_parameters`)."""
    task = _make_task(name, None, {})
    return task.parameters.names if isinstance(task, VectorTask) else frozenset()


def check_parameters(name: str, given: list[str]) -> None:
    """A ConfigError naming the parameters a built-in environment does not read, and those it reads."""
    known = parameter_names(name)
    unknown = [p for p in given if p not in known]
    if unknown:
        raise unknown_parameters_error(name, unknown, sorted(known))


# -- helpers -----------------------------------------------------------------------------------------


def _make_task(name: str, num_agents: int | None, kwargs: dict[str, Any], *, num_areas: int = 1) -> VectorTask:
    """The task of a built-in environment; with areas, built for num_areas times the agents of one area."""
    entry = _BUILTINS.get(name)
    if entry is None:
        raise UnknownEnvironmentError(_unknown_message(name))
    if num_agents is not None:
        kwargs = {**kwargs, "num_agents": num_agents}
    params = inspect.signature(entry.factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            accepted = ", ".join(sorted(params)) or "(none)"
            raise ConfigError(
                f"Environment '{name}' does not accept the argument(s) {', '.join(unknown)}; it accepts: {accepted}."
            )
    if num_areas == 1:
        return entry.factory(**kwargs)
    if "num_agents" not in params and not takes_any:
        raise ConfigError(
            f"Environment '{name}' has a fixed number of agents, so it cannot be built with num_areas={num_areas}; "
            "use num_envs for more copies."
        )
    per_area = kwargs.get("num_agents")
    if per_area is None:
        default = params["num_agents"].default if "num_agents" in params else inspect.Parameter.empty
        per_area = default if default is not inspect.Parameter.empty else entry.factory(**kwargs).num_agents
    per_area = check_count(name, "num_agents", per_area)
    return entry.factory(**{**kwargs, "num_agents": per_area * num_areas})


def _prefix_entry(name: str, prefix: str) -> tuple[PrefixMaker, str]:
    entry = _PREFIXES.get(prefix)
    if entry is None:
        known = ", ".join(f"'{p}:'" for p in sorted(_PREFIXES)) or "none are available in this installation"
        raise UnknownEnvironmentError(
            f"Unknown environment '{name}': no environment family '{prefix}:' (prefixes: {known}). "
            f"Built-in environments: {', '.join(names())}."
        )
    return entry


def _unknown_message(name: str) -> str:
    if "/" in name or "\\" in name or Path(name).expanduser().exists():  # meant as a path: say what was tried
        try:
            find_executable(name)
        except UnknownEnvironmentError as exc:
            return str(exc)
    available = names()
    lowered = {n.lower(): n for n in available}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.5)
    hint = f" Did you mean '{lowered[close[0]]}'?" if close else ""
    return (
        f"Unknown environment '{name}': it is not a built-in environment and no Unity player executable was "
        f"found at that path.{hint} Available environments: {', '.join(available)}; 'gym:<id>', "
        f"'pettingzoo:<module>', the path of a Unity player, or '{EDITOR_NAME}' (the Unity Editor)."
    )


def _specs_text(specs: Mapping[str, BehaviorSpec]) -> str:
    lines = []
    for behavior, spec in specs.items():
        obs = ", ".join(f"{tuple(o.shape)}" + (f" '{o.name}'" if o.name else "") for o in spec.observation_specs)
        lines.append(f"{behavior}: observations [{obs}]; actions {spec.action_spec}")
    return "\n".join(lines)


# -- the built-in table ------------------------------------------------------------------------------

register(
    "3DBall",
    Ball3DTask,
    description=(
        "12 agents each tilt a platform to balance a ball: 8 observations (rotation, ball position and "
        "velocity), 2 continuous actions; +0.1 per decision, -1 when the ball falls; 1000 decisions "
        "(best return 100)."
    ),
)
register(
    "Basic",
    BasicTask,
    description=(
        "Walk on a line from 10 to a small goal at 7 (+0.1) or a large goal at 17 (+1.0); one-hot "
        "observation of size 20, one discrete branch of 3 (left, stay, right); -0.01 per decision "
        "(best return 0.93)."
    ),
)
register(
    "MoveToGoal1D-Continuous",
    MoveToGoal1DContinuousTask,
    description="Toy: move on a line to the goal (within 0.1), 1 continuous action, 50 decisions (best 0.974).",
)
register(
    "MoveToGoal1D-Discrete",
    MoveToGoal1DDiscreteTask,
    description="Toy: move on a line to the goal (within 0.1), left/stay/right, 50 decisions (best 0.974).",
)
register(
    "MoveToGoal2D-Hybrid",
    MoveToGoal2DHybridTask,
    description=(
        "Toy: move on a plane (2 continuous) and grab (discrete branch of 2) at the goal; grabbing "
        "elsewhere costs 0.05; 50 decisions (best 0.9664)."
    ),
)
register(
    "MaskedChoice",
    MaskedChoiceTask,
    description=(
        "Toy: one decision, pick the observed rewarded action out of 4 (+1); one other action is masked "
        "and gives -1 if picked anyway (best 1.0)."
    ),
)

register(
    "GridWorld",
    GridWorldTask,
    description=(
        "9 agents on 5 x 5 boards reach the goal their goal signal names (green plus or red x): a top-down "
        "camera (3, 20, 20) and a one-hot goal signal (GOAL_SIGNAL), one discrete branch of 5 (stay and 4 moves, "
        "wall moves masked); -0.01 per decision, +1 at the named goal, -1 at the other; 100 decisions. Needs a "
        "visual encoder (vis_encode_type); options grid_size, scale, mask_actions. Environment parameters grid_size "
        "(a smaller board inside the camera's) and num_goals (goals of each kind), for curricula."
    ),
)
register(
    "Hallway",
    HallwayTask,
    description=(
        "16 agents walk a corridor of 6 cells and enter the goal whose colour a symbol showed at the first "
        "decision only: vector of 9 (cell, end flag, symbol colour), one discrete branch of 4; +1 right goal, "
        "-0.1 wrong goal, -0.01 per decision; 100 decisions (best 0.95, 0.40 without memory). Needs memory."
    ),
)
register(
    "Pyramids",
    PyramidsTask,
    description=(
        "16 agents, each in its own 28 x 28 room, must touch a switch, which raises a pyramid at a random place, "
        "then touch the pyramid's gold brick: vector of 121 (24 ray casts seeing 7 units: wall, switch off/on, "
        "pyramid, distance; switch state), one discrete branch of 4 (forward, back, turn left, turn right); +2 at "
        "the gold brick (ends), -0.001 per decision; 1000 decisions. Sparse: random actions succeed in about 0.6 % "
        "of episodes (for curiosity, RND, GAIL); options room_half (14), ray_range (7), max_episode_steps."
    ),
)
register(
    "VisualPyramids",
    VisualPyramidsTask,
    description=(
        "Pyramids seen through a camera above each room only: 16 agents, one (3, 56, 56) image each (agent with "
        "its nose, switch bright while off, pyramid once raised), one discrete branch of 4; rewards and limits as "
        "Pyramids. Needs a visual encoder; options resolution, room_half, max_episode_steps."
    ),
)
register(
    "Visual3DBall",
    Visual3DBallTask,
    description=(
        "3DBall seen through a camera only: 12 agents, one (3, 24, 24) top-down image each (platform height, "
        "ball, platform), 2 continuous actions; rewards and limits as 3DBall. Needs a visual encoder; option "
        "resolution."
    ),
)

register(
    "Sorter",
    SorterTask,
    description=(
        "16 agents on 7 x 7 boards step on numbered tiles in increasing order: vector of 4 and the tiles as "
        "variable-length entities (20, 23) (one-hot number, relative position, visited; absent rows zero), one "
        "discrete branch of 5 (wall moves masked); +1 per tile in order, -1 for a wrong tile (ends), -0.005 per "
        "decision; 200 decisions. Needs the entity encoder; options num_tiles (2, up to 20), min_tiles, "
        "board_size."
    ),
)

register(
    "Tennis",
    TennisTask,
    description=(
        "Two agents per match (teams Tennis?team=0 and Tennis?team=1 of one behavior) hit a ball over a net in "
        "a 2-D side view, for self-play: vector of 9 (own paddle, ball, opponent, in the agent's own frame), 3 "
        "continuous actions (move, paddle height, hit angle); +1 to the winner of a point, -1 to the loser; a "
        "point is an episode, 100 decisions at most. Option num_agents (2 per match)."
    ),
)
register(
    "SoccerTwos",
    SoccerTwosTask,
    description=(
        "2 v 2 soccer on a walled 2-D field (teams SoccerTwos?team=0 and SoccerTwos?team=1 of one behavior), for "
        "self-play with groups: egocentric vector of 20 (own motion, ball, teammate, opponents, both goals, "
        "mirrored per team), 3 discrete branches of 3 (forward/back, sideways, rotation); group rewards "
        "1 - time penalty to the scorers and -1 to the conceders; a goal ends the episode of all four, 300 "
        "decisions at most. Option num_agents (4 per match)."
    ),
)
register(
    "StrikersVsGoalie",
    StrikersVsGoalieTask,
    description=(
        "Two strikers (Striker?team=0, one group) against a goalie (Goalie?team=1) on SoccerTwos' field with one "
        "open goal, for asymmetric self-play: egocentric vector of 18, 3 discrete branches of 3; strikers +1 group "
        "reward on a goal and -0.001 per decision, the goalie -1 and +0.001; the game ends at a goal or after "
        "the shot clock (200 decisions). Options num_agents (3 per match), shot_clock."
    ),
)

register(
    "WallJump",
    WallJumpTask,
    description=(
        "16 agents, one per area, cross a wall to the goal row of a 5 x 11 floor: a wall up to 4.5 high is jumped "
        "over, a higher one only from the block pushed against it, which starts farther from the wall the higher "
        "the wall (one row per 0.75 above 4.5, five rows for 8); each episode is a small wall (behavior "
        "SmallWallJump) or a big one (BigWallJump): vector of 8, discrete branches move (5) and jump (2); +1 at "
        "the goal, -1 on falling off, -0.005 per decision; 50 decisions. Environment parameters "
        "small_wall_height (4), big_wall_height (8), for curricula."
    ),
)
register(
    "DungeonEscape",
    DungeonEscapeTask,
    description=(
        "Three agents per area form one group on a 5 x 5 board: one must step onto the guard (it leaves the "
        "board, the guard drops a key) so that another can carry the key to the door, which gives every agent "
        "still on the board the group reward +1 (individual rewards are always 0); for POCA: vector of 16, one "
        "discrete branch of 5 moves, 40 decisions at most. Options num_agents (3 per group), grid_size, camera "
        "(k > 0 adds a top-down image of 4 channels, k pixels per cell)."
    ),
    trainer="poca",  # the group reward needs POCA's group critic; independent PPO does not solve it
)


# -- optional families: imported only when a "gym:" / "pettingzoo:" name is used ---------------------


def _lazy_prefix(module: str, function: str) -> PrefixMaker:
    def maker(rest: str, **kwargs: Any) -> BaseEnv:
        return getattr(importlib.import_module(module), function)(rest, **kwargs)

    return maker


register_prefix(
    "gym",
    _lazy_prefix("fledge.envs.gymnasium", "make_gymnasium"),
    description="A Gymnasium environment by id, e.g. 'gym:CartPole-v1' (needs: pip install 'fledge[gym]').",
)
register_prefix(
    "pettingzoo",
    _lazy_prefix("fledge.envs.pettingzoo", "make_pettingzoo"),
    description=(
        "A PettingZoo environment by module, e.g. 'pettingzoo:pettingzoo.butterfly.pistonball_v6' "
        "(needs: pip install 'fledge[pettingzoo]')."
    ),
)
