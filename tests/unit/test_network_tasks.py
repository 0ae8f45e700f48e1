"""The built-in tasks made for visual, goal-signal, entity and memory networks: GridWorld, Hallway,
Visual3DBall, Sorter.

Specs, observation contents, rewards, masks, episode ends, known returns of reference policies and step
rates. (Seeding, step semantics, frames and areas of every built-in are tested with all of them in
test_envs.py, test_render.py and test_areas.py.)
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Callable

import numpy as np
import pytest

from fledge.envs import registry
from fledge.envs.api import ActionTuple, DecisionSteps, DimensionProperty, ObservationType, validate_steps
from fledge.envs.builtin import ball3d, gridworld, hallway
from fledge.envs.builtin.base import VectorTaskEnv
from fledge.envs.builtin.gridworld import GridWorldTask, scale_for_encoder
from fledge.envs.builtin.hallway import HallwayTask
from fledge.envs.builtin.sorter import SorterTask
from fledge.envs.builtin.visual3dball import Visual3DBallTask
from fledge.errors import ConfigError

Policy = Callable[[VectorTaskEnv, DecisionSteps, np.random.Generator], ActionTuple]


def returns_of(env: VectorTaskEnv, policy: Policy, steps: int, seed: int = 0) -> list[float]:
    """Returns of the episodes that end within `steps` steps of `policy` (validating every step)."""
    (name,) = env.behavior_specs
    spec = env.behavior_specs[name]
    rng = np.random.default_rng(seed)
    running: dict[int, float] = {}
    finished: list[float] = []
    env.reset()
    for _ in range(steps):
        d, t = env.get_steps(name)
        validate_steps(name, spec, d, t)
        for i, agent in enumerate(t.agent_id):
            finished.append(running.pop(int(agent), 0.0) + float(t.reward[i]))
        for i, agent in enumerate(d.agent_id):
            running[int(agent)] = running.get(int(agent), 0.0) + float(d.reward[i])
        env.set_actions(name, policy(env, d, rng))
        env.step()
    return finished


def random_policy(env: VectorTaskEnv, d: DecisionSteps, rng: np.random.Generator) -> ActionTuple:
    (spec,) = env.behavior_specs.values()
    return spec.action_spec.random_action(len(d), rng)


def masked_random_policy(env: VectorTaskEnv, d: DecisionSteps, rng: np.random.Generator) -> ActionTuple:
    assert d.action_mask is not None
    allowed = (~d.action_mask[0]).astype(np.float64)
    cumulative = np.cumsum(allowed / allowed.sum(axis=1, keepdims=True), axis=1)
    choice = (cumulative > rng.random((len(d), 1))).argmax(axis=1)
    return ActionTuple(discrete=choice[:, None].astype(np.int32))


def agent_steps_per_second(name: str, num_agents: int, steps: int = 100) -> float:
    env = registry.make(name, seed=0, num_agents=num_agents)
    (spec,) = env.behavior_specs.values()
    actions = spec.action_spec.random_action(num_agents, np.random.default_rng(0))
    env.reset()
    start = time.perf_counter()
    for _ in range(steps):
        env.get_steps(name)
        env.set_actions(name, actions)
        env.step()
    return steps * num_agents / (time.perf_counter() - start)


# -- GridWorld -------------------------------------------------------------------------------------------


def gridworld_env(**kwargs: object) -> tuple[VectorTaskEnv, GridWorldTask]:
    env = registry.make("GridWorld", seed=0, **kwargs)
    assert isinstance(env, VectorTaskEnv) and isinstance(env.task, GridWorldTask)
    env.reset()
    return env, env.task


def place(
    task: GridWorldTask, agent: tuple[int, int], plus: tuple[int, int], cross: tuple[int, int], target: int
) -> None:
    """Put agent 0 and its goals where a test wants them."""
    task._agent[0] = agent
    task._goals[0] = [plus, cross]
    task._target[0] = target
    task._board[0] = 0
    task._board[0][plus] = 2
    task._board[0][cross] = 3


def test_gridworld_spec() -> None:
    env, task = gridworld_env()
    camera, goal = env.behavior_specs["GridWorld"].observation_specs
    assert camera.shape == (3, 20, 20) and task.scale == 4  # smallest factor reaching simple's 20 pixels
    assert camera.dimension_property == (
        DimensionProperty.NONE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    )
    assert camera.observation_type == ObservationType.DEFAULT and camera.name == "CameraSensor"
    assert goal.shape == (2,) and goal.observation_type == ObservationType.GOAL_SIGNAL and goal.name == "GoalSignal"
    assert env.behavior_specs["GridWorld"].action_spec.discrete_branches == (5,)
    assert task.num_agents == 9 and task.max_episode_steps == 100
    _, small = gridworld_env(grid_size=7, scale=1)
    assert small.spec.observation_specs[0].shape == (3, 7, 7)


@pytest.mark.parametrize(
    ("encoder", "minimum"), [("simple", 20), ("nature_cnn", 36), ("resnet", 15), ("match3", 5), ("fully_connected", 1)]
)
@pytest.mark.parametrize("grid_size", [5, 7, 10])
def test_gridworld_scale_meets_each_encoders_minimum(encoder: str, minimum: int, grid_size: int) -> None:
    scale = scale_for_encoder(encoder, grid_size)
    assert scale * grid_size >= minimum and (scale == 1 or (scale - 1) * grid_size < minimum)
    _, task = gridworld_env(grid_size=grid_size, scale=scale)
    assert task.observe()[0].shape[2:] == (grid_size * scale, grid_size * scale)


def test_gridworld_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="grid_size"):
        registry.make("GridWorld", grid_size=2)
    with pytest.raises(ConfigError, match="scale"):
        registry.make("GridWorld", scale=0)
    with pytest.raises(ConfigError, match="mask_actions"):
        registry.make("GridWorld", mask_actions="yes")
    with pytest.raises(ConfigError, match="unknown vis_encode_type 'bogus'"):
        scale_for_encoder("bogus")


@pytest.mark.parametrize("scale", [1, 2, 3, 4, 5])
def test_gridworld_image_shows_agent_and_goals_in_their_channels(scale: int) -> None:
    env, task = gridworld_env(scale=scale)
    place(task, agent=(2, 1), plus=(0, 4), cross=(4, 0), target=gridworld.CROSS)
    image, goal = task.observe()
    np.testing.assert_array_equal(goal[0], [0.0, 1.0])
    assert image.dtype == np.float32 and set(np.unique(image)) <= {0.0, 1.0}
    cells = image[0].reshape(3, 5, scale, 5, scale).max(axis=(2, 4))
    expected = np.zeros((3, 5, 5))
    expected[0, 4, 0] = 1  # red x
    expected[1, 0, 4] = 1  # green plus
    expected[2, 2, 1] = 1  # blue agent
    np.testing.assert_array_equal(cells, expected)
    block = image[0, 2, 2 * scale : 3 * scale, scale : 2 * scale]
    assert block.all()  # the agent fills its block
    plus = image[0, 1, :scale, 4 * scale :]
    cross = image[0, 0, 4 * scale :, :scale]
    if scale >= 3:  # shapes: a plus has its middle row and column, an x its diagonals, neither fills the block
        assert not plus.all() and plus[scale // 2].all() and plus[:, scale // 2].all()
        assert not cross.all() and np.diag(cross).all() and np.diag(cross[:, ::-1]).all()
        assert not np.array_equal(plus, cross)
    assert (image[1:].reshape(8, 3, -1).sum(axis=2) > 0).all()  # every other agent sees its three objects


def test_gridworld_moves_masks_and_walls() -> None:
    env, task = gridworld_env(num_agents=1)
    place(task, agent=(0, 0), plus=(4, 4), cross=(4, 3), target=gridworld.PLUS)
    (mask,) = task.action_mask()  # type: ignore[misc]
    np.testing.assert_array_equal(mask[0], [False, True, False, True, False])  # up and left are walls
    place(task, agent=(4, 0), plus=(0, 4), cross=(0, 3), target=gridworld.PLUS)
    np.testing.assert_array_equal(task.action_mask()[0][0], [False, False, True, True, False])  # type: ignore[index]
    place(task, agent=(2, 2), plus=(0, 4), cross=(0, 3), target=gridworld.PLUS)
    assert not task.action_mask()[0].any()  # type: ignore[index]
    rng = np.random.default_rng(0)
    for action, where in [(1, (1, 2)), (3, (1, 1)), (2, (2, 1)), (4, (2, 2)), (0, (2, 2))]:
        reward, done = task.apply(ActionTuple(discrete=np.array([[action]], np.int32)), rng)
        assert tuple(task._agent[0]) == where and reward[0] == np.float32(-0.01) and not done[0]
    place(task, agent=(0, 0), plus=(4, 4), cross=(4, 3), target=gridworld.PLUS)
    task.apply(ActionTuple(discrete=np.array([[1]], np.int32)), rng)  # a masked move taken anyway: no move
    assert tuple(task._agent[0]) == (0, 0)
    _, hidden = gridworld_env(show_goal=False)
    assert (hidden.observe()[1] == 0).all()
    with pytest.raises(ConfigError, match="show_goal"):
        registry.make("GridWorld", show_goal=1)
    _, unmasked = gridworld_env(mask_actions=False)
    assert unmasked.action_mask() is None


@pytest.mark.parametrize(("target", "reward"), [(gridworld.PLUS, 1.0), (gridworld.CROSS, -1.0)])
def test_gridworld_goal_rewards_end_the_episode(target: int, reward: float) -> None:
    env, task = gridworld_env(num_agents=1)
    place(task, agent=(2, 2), plus=(2, 3), cross=(0, 0), target=target)
    env.set_actions("GridWorld", ActionTuple(discrete=np.array([[gridworld.RIGHT]], np.int32)))
    env.step()
    d, t = env.get_steps("GridWorld")
    assert list(t.agent_id) == [0] and t.reward[0] == np.float32(reward) and not t.interrupted[0]
    assert d.reward[0] == 0.0  # the next episode has started


def test_gridworld_interrupted_after_max_episode_steps() -> None:
    env, task = gridworld_env(num_agents=1, max_episode_steps=3)
    place(task, agent=(2, 2), plus=(0, 0), cross=(4, 4), target=gridworld.PLUS)
    stay = ActionTuple(discrete=np.zeros((1, 1), np.int32))
    for _ in range(3):
        env.set_actions("GridWorld", stay)
        env.step()
    _, t = env.get_steps("GridWorld")
    assert t.interrupted.tolist() == [True] and t.reward[0] == np.float32(-0.01)


def shortest_path(size: int, start: tuple[int, int], goal: tuple[int, int], blocked: tuple[int, int]) -> int:
    """Breadth-first search on the board (the reference for the closed form of optimal_return)."""
    seen, queue = {start}, deque([(start, 0)])
    while queue:
        (r, c), dist = queue.popleft()
        if (r, c) == goal:
            return dist
        for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < size and 0 <= nxt[1] < size and nxt != blocked and nxt not in seen:
                seen.add(nxt)
                queue.append((nxt, dist + 1))
    raise AssertionError("unreachable")


@pytest.mark.parametrize("size", [3, 4, 5])
def test_gridworld_optimal_return_matches_breadth_first_search(size: int) -> None:
    cells = list(itertools.product(range(size), repeat=2))
    values = [1.0 - 0.01 * (shortest_path(size, a, t, o) - 1) for a, t, o in itertools.permutations(cells, 3)]
    assert gridworld.expected_optimal_return(size) == pytest.approx(float(np.mean(values)), abs=1e-12)


def test_gridworld_reference_returns() -> None:
    """The shortest-path heuristic earns the optimal return; a random policy (masks respected) about -0.25."""
    env, task = gridworld_env()

    def best(env: VectorTaskEnv, d: DecisionSteps, rng: np.random.Generator) -> ActionTuple:
        return ActionTuple(discrete=gridworld.heuristic(d.obs[0], d.obs[1], task.scale))

    optimal = returns_of(env, best, 400)
    assert len(optimal) > 500
    assert np.mean(optimal) == pytest.approx(task.optimal_return(), abs=0.01)
    assert task.optimal_return() == pytest.approx(0.97638, abs=1e-5)
    rand = returns_of(gridworld_env()[0], masked_random_policy, 1500)
    assert -0.4 < np.mean(rand) < -0.1, np.mean(rand)


def test_gridworld_steps_fast() -> None:
    assert agent_steps_per_second("GridWorld", 512) > 20_000  # about 130,000 on a free core


# -- Hallway ---------------------------------------------------------------------------------------------


def hallway_env(**kwargs: object) -> tuple[VectorTaskEnv, HallwayTask]:
    env = registry.make("Hallway", seed=0, **kwargs)
    assert isinstance(env, VectorTaskEnv) and isinstance(env.task, HallwayTask)
    env.reset()
    return env, env.task


def test_hallway_spec_and_cue_seen_only_at_the_start() -> None:
    env, task = hallway_env(num_agents=4)
    spec = env.behavior_specs["Hallway"]
    assert [o.shape for o in spec.observation_specs] == [(9,)] and spec.action_spec.discrete_branches == (4,)
    d, _ = env.get_steps("Hallway")
    obs = d.obs[0]
    np.testing.assert_array_equal(obs[:, :6], np.tile(np.eye(6)[0], (4, 1)))
    np.testing.assert_array_equal(obs[:, 7:].argmax(axis=1), task._colour)
    assert (obs[:, 7:].sum(axis=1) == 1).all() and (obs[:, 6] == 0).all()
    forward = ActionTuple(discrete=np.zeros((4, 1), np.int32))
    for step in range(5):
        env.set_actions("Hallway", forward)
        env.step()
        obs = env.get_steps("Hallway")[0].obs[0]
        assert (obs[:, 7:] == 0).all()  # the symbol is out of sight
        np.testing.assert_array_equal(obs[:, step + 1], 1.0)
    assert (obs[:, 6] == 1).all()  # at the far end
    _, longer = hallway_env(cue_steps=3)
    for step in range(4):
        seen = longer.observe()[0][:, -2:].sum(axis=1)
        assert (seen == (1.0 if step < 3 else 0.0)).all()
        longer.apply(ActionTuple(discrete=np.ones((16, 1), np.int32)), np.random.default_rng(0))


def test_hallway_rewards() -> None:
    env, task = hallway_env(num_agents=4, corridor_length=3)
    task._colour[:] = [hallway.GREEN, hallway.GREEN, hallway.ORANGE, hallway.ORANGE]
    rng = np.random.default_rng(0)
    enter = ActionTuple(discrete=np.array([[2], [3], [2], [3]], np.int32))
    reward, done = task.apply(enter, rng)  # entering away from the end does nothing
    assert not done.any() and np.allclose(reward, -0.01) and (task._cell == 0).all()
    task.apply(ActionTuple(discrete=np.ones((4, 1), np.int32)), rng)  # back into the wall: no move
    assert (task._cell == 0).all()
    for _ in range(3):
        task.apply(ActionTuple(discrete=np.zeros((4, 1), np.int32)), rng)
    assert (task._cell == 2).all()  # the end, not beyond
    reward, done = task.apply(enter, rng)
    assert done.all()
    np.testing.assert_array_equal(reward, np.array([1.0, -0.1, -0.1, 1.0], np.float32))
    _, long = hallway_env(max_episode_steps=3000)
    assert long.step_reward == pytest.approx(-0.0003, rel=0.12)  # ML-Agents' -1/MaxStep


def test_hallway_reference_returns() -> None:
    """With the colour remembered: 0.95; guessing it at the end: 0.40; random actions: about -0.19."""
    env, task = hallway_env()

    def remembers(env: VectorTaskEnv, d: DecisionSteps, rng: np.random.Generator) -> ActionTuple:
        return ActionTuple(discrete=hallway.heuristic(d.obs[0], task._colour))

    def guesses(env: VectorTaskEnv, d: DecisionSteps, rng: np.random.Generator) -> ActionTuple:
        return ActionTuple(discrete=hallway.heuristic(d.obs[0], rng.integers(0, 2, len(d))))

    assert np.mean(returns_of(env, remembers, 120)) == pytest.approx(0.95, abs=1e-6) == task.optimal_return()
    assert np.mean(returns_of(hallway_env()[0], guesses, 600)) == pytest.approx(task.memoryless_return(), abs=0.05)
    assert task.memoryless_return() == pytest.approx(0.40)
    rand = returns_of(hallway_env()[0], random_policy, 2000)
    assert -0.3 < np.mean(rand) < -0.05, np.mean(rand)


def test_hallway_steps_fast() -> None:
    assert agent_steps_per_second("Hallway", 512) > 100_000  # about 1.8 million on a free core


# -- Visual3DBall ----------------------------------------------------------------------------------------


def test_visual3dball_spec() -> None:
    env = registry.make("Visual3DBall")
    (spec,) = env.behavior_specs.values()
    (camera,) = spec.observation_specs
    assert camera.shape == (3, 24, 24) and camera.name == "CameraSensor"
    assert camera.dimension_property[1:] == (DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,) * 2
    assert spec.action_spec.continuous_size == 2
    assert registry.make("Visual3DBall", resolution=36).behavior_specs["Visual3DBall"].observation_specs[0].shape == (
        3,
        36,
        36,
    )
    with pytest.raises(ConfigError, match="resolution"):
        registry.make("Visual3DBall", resolution=2)


def test_visual3dball_has_3dballs_dynamics() -> None:
    """Same seed and actions: the same rewards, ends and hidden state as 3DBall."""
    a, b = registry.make("3DBall", seed=4), registry.make("Visual3DBall", seed=4)
    assert isinstance(a, VectorTaskEnv) and isinstance(b, VectorTaskEnv)
    assert isinstance(b.task, ball3d.Ball3DTask)
    rng = np.random.default_rng(0)
    for _ in range(150):
        (da, ta), (db, tb) = a.get_steps("3DBall"), b.get_steps("Visual3DBall")
        np.testing.assert_array_equal(da.reward, db.reward)
        np.testing.assert_array_equal(ta.agent_id, tb.agent_id)
        np.testing.assert_array_equal(da.obs[0], b.task.vector_observation())  # type: ignore[attr-defined]
        actions = ActionTuple(rng.uniform(-1, 1, (12, 2)).astype(np.float32))
        a.set_actions("3DBall", actions)
        b.set_actions("Visual3DBall", actions)
        a.step()
        b.step()


def test_visual3dball_image_shows_tilt_and_ball() -> None:
    task = Visual3DBallTask(num_agents=2, resolution=30)
    task.reset_agents(np.arange(2), np.random.default_rng(0))
    task._phase[:] = ball3d._PHASE0  # level platforms
    task._update_trig()
    task._ball[:, 0, 0::2] = [[1.5, 0.0], [-1.0, -1.5]]  # ball x, z on the platform
    image = task.observe()[0]
    assert image.shape == (2, 3, 30, 30) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    platform = image[:, 2] > 0.99
    np.testing.assert_allclose(image[:, 0][platform], 0.5, atol=1e-5)  # level: mid grey everywhere
    side = 30 / 6.0  # pixels per world unit (the camera sees x, z in [-3, 3])
    assert platform[0].sum() == pytest.approx((5 * side) ** 2, rel=0.1)
    for i, (x, z) in enumerate([(1.5, 0.0), (-1.0, -1.5)]):
        ball = image[i, 1]
        assert ball.sum() == pytest.approx(np.pi * (0.5 * side) ** 2, rel=0.15)
        rows, cols = np.indices(ball.shape) + 0.5
        cx, cy = (ball * cols).sum() / ball.sum(), (ball * rows).sum() / ball.sum()
        assert cx == pytest.approx((x + 3) * side, abs=0.3) and cy == pytest.approx((3 - z) * side, abs=0.3)
    # tilting about z raises +x: the height channel grows to the right
    task._phase[:] = ball3d._PHASE0 + np.deg2rad([10.0, 0.0]) @ ball3d._PHASE_W
    task._update_trig()
    height = task.observe()[0][0, 0]
    row = height[15, 5:25]
    assert (np.diff(row) > 0).all()


def test_visual3dball_reference_returns() -> None:
    """3DBall's controller (on the hidden state) keeps every ball; random actions lose them quickly."""
    env = registry.make("Visual3DBall", seed=1, max_episode_steps=200)
    assert isinstance(env, VectorTaskEnv)

    def controller(env: VectorTaskEnv, d: DecisionSteps, rng: np.random.Generator) -> ActionTuple:
        return ActionTuple(ball3d.heuristic(env.task.vector_observation()))  # type: ignore[attr-defined]

    assert np.mean(returns_of(env, controller, 201)) == pytest.approx(20.0, abs=1e-4)
    rand = returns_of(registry.make("Visual3DBall", seed=1), random_policy, 400)  # type: ignore[arg-type]
    assert 0.5 < np.mean(rand) < 4.0, np.mean(rand)


def test_visual3dball_steps_fast() -> None:
    assert agent_steps_per_second("Visual3DBall", 256) > 10_000  # about 60,000 on a free core


# -- Sorter ----------------------------------------------------------------------------------------------


def sorter_env(**kwargs: object) -> tuple[VectorTaskEnv, SorterTask]:
    env = registry.make("Sorter", seed=0, **kwargs)
    assert isinstance(env, VectorTaskEnv) and isinstance(env.task, SorterTask)
    env.reset()
    return env, env.task


def lay_out(task: SorterTask, agent: tuple[int, int], tiles: list[tuple[int, tuple[int, int]]]) -> None:
    """Agent 0 at `agent`, with tiles (number, cell) in rows 0, 1, ..."""
    task._agent[0] = agent
    task._number[0] = 0
    task._visited[0] = False
    task._count[0] = len(tiles)
    for row, (number, cell) in enumerate(tiles):
        task._number[0, row] = number
        task._tile[0, row] = cell


def test_sorter_spec_and_entities() -> None:
    env, task = sorter_env(num_agents=3, num_tiles=5, min_tiles=2, board_size=7)
    vector, entities = env.behavior_specs["Sorter"].observation_specs
    assert vector.shape == (4,) and entities.shape == (20, 23) and entities.name == "BufferSensor"
    assert entities.dimension_property == (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE)
    lay_out(task, (3, 3), [(9, (0, 6)), (2, (6, 0)), (14, (3, 4))])
    vec, ent = task.observe()
    np.testing.assert_allclose(vec[0], [0.0, 0.0, 0.0, 3 / 20])
    assert ent.shape == (3, 20, 23) and ent.dtype == np.float32
    np.testing.assert_array_equal(ent[0, :3, :20].argmax(axis=1), [8, 1, 13])  # one-hot of 9, 2, 14
    np.testing.assert_allclose(ent[0, :3, 20:22], [[-0.5, 0.5], [0.5, -0.5], [0.0, 1 / 6]])
    assert (ent[0, 3:] == 0).all() and (ent[0, :3].sum(axis=1) > 0).all()  # absent tiles: all-zero rows
    counts = [int((ent[i].sum(axis=1) != 0).sum()) for i in (1, 2)]
    assert all(2 <= c <= 5 for c in counts)


def test_sorter_tile_counts_vary_between_min_and_max() -> None:
    _, task = sorter_env(num_agents=400, num_tiles=6, min_tiles=3)
    counts = (task._number > 0).sum(axis=1)
    assert set(counts.tolist()) == {3, 4, 5, 6}
    numbers = task._number[task._number > 0]
    assert numbers.min() >= 1 and numbers.max() <= 20
    assert all(len(set(row[row > 0].tolist())) == len(row[row > 0]) for row in task._number)  # distinct
    assert task.board_size == 7 and SorterTask(num_tiles=20).board_size == 11


def test_sorter_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="min_tiles <= num_tiles <= 20"):
        registry.make("Sorter", num_tiles=21)
    with pytest.raises(ConfigError, match="min_tiles <= num_tiles"):
        registry.make("Sorter", num_tiles=2, min_tiles=3)
    with pytest.raises(ConfigError, match="no room"):
        registry.make("Sorter", num_tiles=5, board_size=2)


def test_sorter_rewards_in_order_wrong_tile_and_visited_tiles() -> None:
    env, task = sorter_env(num_agents=1, board_size=5)
    rng = np.random.default_rng(0)
    lay_out(task, (2, 2), [(7, (2, 4)), (3, (2, 3)), (11, (0, 2))])
    right = ActionTuple(discrete=np.array([[gridworld.RIGHT]], np.int32))
    reward, done = task.apply(right, rng)  # tile 3: the first in order
    assert reward[0] == pytest.approx(1.0 - 0.005) and not done[0] and task._visited[0, 1]
    assert task.observe()[0][0, 2] == pytest.approx(1 / 3)
    reward, done = task.apply(right, rng)  # tile 7: next in order
    assert reward[0] == pytest.approx(0.995) and not done[0]
    left = ActionTuple(discrete=np.array([[gridworld.LEFT]], np.int32))
    reward, done = task.apply(left, rng)  # back over visited tile 3: nothing
    assert reward[0] == pytest.approx(-0.005) and not done[0]
    lay_out(task, (1, 2), [(7, (2, 2)), (3, (4, 4))])
    reward, done = task.apply(ActionTuple(discrete=np.array([[gridworld.DOWN]], np.int32)), rng)
    assert reward[0] == -1.0 and done[0]  # 7 before 3
    lay_out(task, (0, 0), [(5, (0, 1))])
    np.testing.assert_array_equal(task.action_mask()[0][0], [False, True, False, True, False])
    env.set_actions("Sorter", right)
    env.step()
    _, t = env.get_steps("Sorter")
    assert list(t.agent_id) == [0] and t.reward[0] == pytest.approx(0.995) and not t.interrupted[0]


def test_sorter_reference_returns() -> None:
    """The breadth-first planner earns the optimal return (about 1.95 with 2 tiles); random moves about 0."""
    env, task = sorter_env()

    def plan(env: VectorTaskEnv, d: DecisionSteps, rng: np.random.Generator) -> ActionTuple:
        return ActionTuple(discrete=task.plan())

    planned = returns_of(env, plan, 150)
    assert np.mean(planned) == pytest.approx(task.optimal_return(), abs=0.02)
    assert task.optimal_return() == pytest.approx(1.953, abs=0.01)
    rand = returns_of(sorter_env()[0], masked_random_policy, 1500)
    assert -0.3 < np.mean(rand) < 0.2, np.mean(rand)


def test_sorter_steps_fast() -> None:
    assert agent_steps_per_second("Sorter", 512) > 30_000  # about 300,000 on a free core
