"""Environment parameters reach environments: built-in tasks (per agent, per episode), unknown names,
copy pools in this process and in worker processes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import SideBySide
from fledge.envs import registry
from fledge.envs.api import ActionTuple
from fledge.envs.builtin.gridworld import DOWN, RIGHT, UP
from fledge.errors import ConfigError
from fledge.rollout.workers import EnvPool


def const(value: float) -> dict[str, Any]:
    return {"sampler_type": "constant", "sampler_parameters": {"value": value}, "seed": 0}


def uniform(low: float, high: float, seed: int = 1) -> dict[str, Any]:
    return {"sampler_type": "uniform", "sampler_parameters": {"min_value": low, "max_value": high}, "seed": seed}


def ball_height(env: Any) -> np.ndarray:
    decision, _ = env.get_steps("3DBall")
    return decision.obs[0][:, 3]  # ball y relative to the platform centre, world frame


def test_3dball_reads_scale_gravity_and_mass_at_episode_start() -> None:
    env = registry.make("3DBall", seed=0)
    assert env.environment_parameter_names() == {"scale", "gravity", "mass"}
    env.set_environment_parameters({"scale": const(2.0), "gravity": uniform(4.0, 20.0), "mass": const(3.0)})
    env.reset()
    task: Any = env.task  # type: ignore[attr-defined]
    assert np.allclose(task._ball[:, 0, 1], 1.0)  # the ball's centre is its radius (0.5 x 2) above the platform
    assert ball_height(env).mean() > 0.85  # in the world frame, with the platforms tilted
    gravity = task.parameters.values["gravity"].copy()
    assert gravity.min() >= 4.0 and gravity.max() <= 20.0 and len(np.unique(gravity)) == task.num_agents
    # agents that start a new episode draw again; the others keep their values
    task.parameters.draw(np.array([0]))
    assert task.parameters.values["gravity"][0] != gravity[0]
    assert np.array_equal(task.parameters.values["gravity"][1:], gravity[1:])


def test_3dball_defaults_give_the_plain_physics() -> None:
    plain, same = registry.make("3DBall", seed=4), registry.make("3DBall", seed=4)
    same.set_environment_parameters({"scale": const(1.0), "gravity": const(9.81), "mass": const(1.0)})
    for env in (plain, same):
        env.reset()
    rng = np.random.default_rng(0)
    for _ in range(50):
        action = ActionTuple(continuous=rng.uniform(-1, 1, size=(12, 2)).astype(np.float32))
        for env in (plain, same):
            env.set_actions("3DBall", action)
            env.step()
    assert np.allclose(plain.get_steps("3DBall")[0].obs[0], same.get_steps("3DBall")[0].obs[0], atol=1e-5)


def test_stronger_gravity_drops_the_ball_sooner() -> None:
    def mean_episode(gravity: float) -> float:
        env = registry.make("3DBall", seed=2)
        env.set_environment_parameters({"gravity": const(gravity)})
        env.reset()
        lengths, steps = [], np.zeros(12)
        for _ in range(300):
            env.set_actions("3DBall", ActionTuple(continuous=np.full((12, 2), 0.5, dtype=np.float32)))
            env.step()
            steps += 1
            _, terminal = env.get_steps("3DBall")
            for agent in terminal.agent_id:
                lengths.append(steps[agent])
                steps[agent] = 0
        return float(np.mean(lengths))

    assert mean_episode(40.0) < mean_episode(4.0)


def test_an_unknown_parameter_names_the_known_ones() -> None:
    env = registry.make("3DBall")
    with pytest.raises(ConfigError, match=r"has no parameter\(s\) wind.*reads are: gravity, mass, scale"):
        env.set_environment_parameters({"wind": const(1.0)})
    with pytest.raises(ConfigError, match=r"Basic' has no parameter\(s\) gravity.*reads are: none"):
        registry.check_parameters("Basic", ["gravity"])
    with pytest.raises(ConfigError, match="reads no environment parameters"):
        SideBySide({"a": registry.make("Basic")}).set_environment_parameters({"x": const(1.0)})


@pytest.mark.parametrize("processes", [False, True])
def test_copies_get_the_parameters_before_their_first_episode_and_after_a_change(processes: bool) -> None:
    pool = EnvPool(env_name="3DBall", copies=2, seed=0, processes=processes, draws={"scale": const(2.0)})
    try:
        assert pool.environment_parameter_names() == {"scale", "gravity", "mass"}
        assert ball_height(pool).mean() > 0.85  # radius 1.0 (plain: 0.5)
        pool.set_environment_parameters({"scale": const(0.5)})
        pool.reset()
        assert ball_height(pool).mean() < 0.4  # radius 0.25
        with pytest.raises(ConfigError, match="wind"):
            pool.set_environment_parameters({"wind": const(1.0)})
    finally:
        pool.close()


def test_copies_draw_from_their_own_streams() -> None:
    pool = EnvPool(env_name="3DBall", copies=2, seed=0, processes=False, draws={"scale": uniform(0.5, 3.0)})
    try:
        heights = ball_height(pool)
        assert not np.allclose(heights[:12], heights[12:])
    finally:
        pool.close()


def test_a_gymnasium_environment_gets_fresh_values_in_its_reset_options() -> None:
    gymnasium = pytest.importorskip("gymnasium")
    from fledge.envs.gymnasium import GymnasiumEnv

    class Recorder(gymnasium.Env):  # type: ignore[misc]
        observation_space = gymnasium.spaces.Box(-1.0, 1.0, (1,))
        action_space = gymnasium.spaces.Discrete(2)

        def __init__(self) -> None:
            self.seen: list[Any] = []
            self.t = 0

        def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
            super().reset(seed=seed)
            self.seen.append(options)
            self.t = 0
            return np.zeros(1, np.float32), {}

        def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
            self.t += 1
            return np.zeros(1, np.float32), 0.0, self.t >= 2, False, {}

    inner = Recorder()
    env = GymnasiumEnv(inner, env_id="Recorder-v0")
    assert env.environment_parameter_names() is None
    env.set_environment_parameters({"size": uniform(1.0, 2.0), "level": const(3.0)})
    env.reset()
    for _ in range(4):
        env.step()
    assert len(inner.seen) == 3  # the first reset and two episode ends
    sizes = [o["environment_parameters"]["size"] for o in inner.seen]
    assert all(1.0 <= s <= 2.0 for s in sizes) and len(set(sizes)) == 3
    assert all(o["environment_parameters"]["level"] == 3.0 for o in inner.seen)
    vector = GymnasiumEnv(gymnasium.vector.SyncVectorEnv([Recorder, Recorder]), env_id="Recorder-v0")
    with pytest.raises(ConfigError, match="vector environment"):
        vector.set_environment_parameters({"size": const(1.0)})


def test_gridworld_plays_each_episode_on_the_board_size_drawn_for_it() -> None:
    """grid_size shrinks the board inside the fixed camera: cells beyond it are grey walls, masked like the
    board's edge; draws are rounded and clipped to 3 .. the camera's board."""
    env = registry.make("GridWorld", seed=0, num_agents=64, grid_size=6, scale=1)
    assert env.environment_parameter_names() == {"grid_size", "num_goals"}
    env.reset()
    before, _ = env.get_steps("GridWorld")
    assert not (before.obs[0] == 0.5).any()  # no parameter set: the whole 6 x 6 board, no wall
    env.set_environment_parameters({"grid_size": const(4.2)})
    env.reset()
    decision, _ = env.get_steps("GridWorld")
    image, (mask,) = decision.obs[0], decision.action_mask  # type: ignore[misc]
    assert image.shape == (64, 3, 6, 6)  # the observation keeps its shape
    assert (image[:, :, 4:, :] == 0.5).all() and (image[:, :, :, 4:] == 0.5).all()
    inside = image[:, :, :4, :4]
    assert not (inside == 0.5).any() and (inside.sum(axis=(1, 2, 3)) > 0).all()  # objects on the 4 x 4 board
    task = env.task  # type: ignore[attr-defined]
    rows, cols = task._agent[:, 0], task._agent[:, 1]
    np.testing.assert_array_equal(mask[:, DOWN], rows == 3)
    np.testing.assert_array_equal(mask[:, RIGHT], cols == 3)
    rng = np.random.default_rng(0)
    for _ in range(20):  # moves taken into the wall anyway leave the agents on their board
        task.apply(ActionTuple(discrete=np.full((64, 1), RIGHT, np.int32)), rng)
        task.apply(ActionTuple(discrete=np.full((64, 1), DOWN, np.int32)), rng)
    assert (task._agent <= 3).all()
    env.set_environment_parameters({"grid_size": uniform(0.0, 30.0)})
    env.reset()
    assert set(np.unique(task._size)) <= {3, 4, 5, 6} and {3, 6} <= set(np.unique(task._size))
    env.close()


def test_gridworld_holds_the_number_of_goals_drawn_for_each_episode() -> None:
    """num_goals goals of each kind (clipped to what fits beside the agent); any goal of the signalled kind
    gives +1 and ends the episode, any of the other kind -1."""
    env = registry.make("GridWorld", seed=0, num_agents=32, grid_size=5, scale=1)
    env.set_environment_parameters({"num_goals": const(3.0)})
    env.reset()
    decision, _ = env.get_steps("GridWorld")
    image = decision.obs[0]
    assert ((image[:, 1] == 1.0).sum(axis=(1, 2)) == 3).all()  # three green plus
    assert ((image[:, 0] == 1.0).sum(axis=(1, 2)) == 3).all()  # three red x
    assert ((image[:, 2] == 1.0).sum(axis=(1, 2)) == 1).all()  # one agent
    task = env.task  # type: ignore[attr-defined]
    rng = np.random.default_rng(0)
    for agent, move, reward in (((1, 2), UP, 1.0), ((2, 1), RIGHT, -1.0)):  # not the first goal of its kind
        task._board[0] = 0
        for cell in ((0, 0), (0, 2), (4, 4)):
            task._board[0][cell] = 2  # plus
        for cell in ((4, 0), (2, 2), (3, 3)):
            task._board[0][cell] = 3  # x
        task._target[0], task._agent[0] = 0, agent  # the plus is the goal
        moves = np.zeros((32, 1), np.int32)
        moves[0] = move
        got, done = task.apply(ActionTuple(discrete=moves), rng)
        assert got[0] == np.float32(reward) and done[0]
    env.set_environment_parameters({"num_goals": const(50.0), "grid_size": const(3.0)})
    env.reset()
    assert (task._count == 4).all()  # 1 + 2 x 4 cells of a 3 x 3 board
    env.close()
