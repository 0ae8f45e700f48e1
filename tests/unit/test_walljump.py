"""WallJump: the rules of the wall, the block and the jump; behaviors switched per episode by the wall;
the heuristic clears every wall it can; wall heights are environment parameters."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from fledge.envs import registry
from fledge.envs.api import ActionTuple
from fledge.envs.builtin.walljump import BEHAVIORS, WALL_ROW, WIDTH, WallJumpTask, block_distance, heuristic
from fledge.errors import ConfigError

NONE, FORWARD, BACK, LEFT, RIGHT = range(5)


def const(value: float) -> dict[str, Any]:
    return {"sampler_type": "constant", "sampler_parameters": {"value": value}, "seed": 0}


def one_agent(*, row: int, col: int, block: tuple[int, int], height: float) -> WallJumpTask:
    task = WallJumpTask(num_agents=1)
    task.row[:], task.col[:] = row, col
    task.block_row[:], task.block_col[:] = block
    task.height[:] = height
    return task


def act(task: WallJumpTask, move: int, jump: int) -> tuple[np.ndarray, np.ndarray]:
    return task.apply(ActionTuple(discrete=np.array([[move, jump]], dtype=np.int32)), np.random.default_rng(0))


def test_a_low_wall_is_jumped_a_high_one_is_not() -> None:
    task = one_agent(row=WALL_ROW - 1, col=2, block=(1, 0), height=4.5)
    act(task, FORWARD, 0)
    assert task.row[0] == WALL_ROW - 1  # walking into a wall of 4.5
    act(task, FORWARD, 1)
    assert task.row[0] == WALL_ROW + 1  # jumped over
    reward, done = act(task, FORWARD, 0)
    assert done[0] and reward[0] == pytest.approx(0.995)
    high = one_agent(row=WALL_ROW - 1, col=2, block=(1, 0), height=4.6)
    act(high, FORWARD, 1)
    assert high.row[0] == WALL_ROW - 1
    no_wall = one_agent(row=WALL_ROW - 1, col=2, block=(1, 0), height=0.0)
    act(no_wall, FORWARD, 0)
    assert no_wall.row[0] == WALL_ROW + 1


def test_push_the_block_to_the_wall_climb_it_and_jump() -> None:
    last = WALL_ROW - 1
    task = one_agent(row=last - 2, col=2, block=(last - 1, 2), height=8.5)
    act(task, FORWARD, 0)  # push
    assert (task.row[0], task.block_row[0]) == (last - 1, last)
    act(task, FORWARD, 0)  # the block is against the wall: it does not move, nor does the agent
    assert (task.row[0], task.block_row[0]) == (last - 1, last)
    act(task, FORWARD, 1)  # climb
    assert task.on_block[0] and task.row[0] == last
    act(task, FORWARD, 0)  # 8.5 is above the block's 4
    assert task.row[0] == last and task.on_block[0]
    act(task, FORWARD, 1)  # 4 + 4.5
    assert task.row[0] == WALL_ROW + 1 and not task.on_block[0]


def test_the_block_stays_on_the_floor_before_the_wall() -> None:
    task = one_agent(row=2, col=1, block=(2, 0), height=8.0)
    act(task, LEFT, 0)  # the block would leave the floor
    assert (task.col[0], task.block_col[0]) == (1, 0)
    act(task, BACK, 0)
    act(task, LEFT, 0)
    assert (task.row[0], task.col[0]) == (1, 0)
    act(task, FORWARD, 0)  # a move into the block pushes it
    assert (task.block_row[0], task.row[0], task.on_block[0]) == (3, 2, False)
    act(task, FORWARD, 1)  # a jump into it, movable or not, lands on it
    assert (task.block_row[0], task.row[0], task.on_block[0]) == (3, 3, True)
    act(task, RIGHT, 0)  # step down
    assert not task.on_block[0] and (task.row[0], task.col[0]) == (3, 1)


def test_a_jump_from_the_block_clears_8_5_only_against_the_wall() -> None:
    # gap rows between the block and the wall: reach 4 + 4.5 - 4 x gap
    for gap, height, clears in [(0, 8.5, True), (0, 8.6, False), (1, 4.5, True), (1, 4.6, False), (2, 4.6, False)]:
        block_row = WALL_ROW - 1 - gap
        task = one_agent(row=block_row, col=3, block=(block_row, 3), height=height)
        task.on_block[:] = True
        reward, done = act(task, FORWARD, 1)
        if clears:
            assert task.row[0] == WALL_ROW + 1 and not task.on_block[0], (gap, height)
        else:  # lands on the floor ahead of the block (or stays on it, against the wall)
            assert (task.row[0], task.on_block[0]) == (block_row + int(gap > 0), gap == 0), (gap, height)
        assert not done[0] and reward[0] == pytest.approx(-0.005)
    task = one_agent(row=WALL_ROW - 2, col=3, block=(WALL_ROW - 2, 3), height=2.0)
    task.on_block[:] = True
    act(task, FORWARD, 0)  # walking off the block away from the wall: no leap
    assert (task.row[0], task.on_block[0]) == (WALL_ROW - 1, False)


def test_the_block_is_climbed_only_from_behind() -> None:
    for move, row, col in [(LEFT, 3, 3), (RIGHT, 3, 1), (BACK, 4, 2)]:
        task = one_agent(row=row, col=col, block=(3, 2), height=8.0)
        act(task, move, 1)
        assert (task.row[0], task.col[0], task.on_block[0]) == (row, col, False), move
        assert (task.block_row[0], task.block_col[0]) == (3, 2)
    task = one_agent(row=2, col=2, block=(3, 2), height=8.0)
    act(task, FORWARD, 1)
    assert (task.row[0], task.on_block[0], task.block_row[0]) == (3, True, 3)


def test_the_block_starts_farther_from_the_wall_the_higher_the_wall() -> None:
    heights = np.array([0.0, 4.5, 4.6, 5.25, 5.3, 6.0, 6.75, 7.5, 7.6, 8.0, 12.0])
    assert block_distance(heights).tolist() == [0, 0, 1, 1, 2, 2, 3, 4, 5, 5, 5]
    env = registry.make("WallJump", seed=2)
    env.set_environment_parameters({"small_wall_height": const(4.0), "big_wall_height": const(8.0)})
    env.reset()
    task: Any = env.task  # type: ignore[attr-defined]
    assert np.array_equal(task.block_row, np.where(task.agent_behavior == 0, WALL_ROW - 1, WALL_ROW - 6))
    assert not np.any((task.row == task.block_row) & (task.col == task.block_col))
    assert np.all(task.row < WALL_ROW)


def test_a_jump_on_the_open_floor_lands_where_it_started() -> None:
    task = one_agent(row=2, col=0, block=(4, 4), height=8.0)
    for move in (FORWARD, RIGHT, LEFT, BACK):  # LEFT would step off the edge: a jump does not
        reward, done = act(task, move, 1)
        assert (task.row[0], task.col[0], done[0]) == (2, 0, False)
        assert reward[0] == pytest.approx(-0.005)


def test_falling_off_the_floor_ends_the_episode_with_minus_one() -> None:
    for move, row, col in [(LEFT, 2, 0), (RIGHT, 2, WIDTH - 1), (BACK, 0, 3), (LEFT, WALL_ROW + 1, 0)]:
        task = one_agent(row=row, col=col, block=(3, 3), height=8.0)
        reward, done = act(task, move, 0)
        assert done[0] and reward[0] == pytest.approx(-1.005), (move, row, col)
    task = one_agent(row=2, col=0, block=(2, 0), height=8.0)
    task.on_block[:] = True
    reward, done = act(task, LEFT, 1)  # off the block and the floor
    assert done[0] and reward[0] == pytest.approx(-1.005)


def test_agents_switch_behaviors_between_episodes() -> None:
    env = registry.make("WallJump", seed=3)
    env.reset()
    seen_ended: dict[str, set[int]] = {b: set() for b in BEHAVIORS}
    seen_acting: dict[str, set[int]] = {b: set() for b in BEHAVIORS}
    for _ in range(300):
        for b in BEHAVIORS:
            decision, terminal = env.get_steps(b)
            seen_acting[b].update(decision.agent_id.tolist())
            seen_ended[b].update(terminal.agent_id.tolist())
            if len(decision):
                env.set_actions(b, ActionTuple(discrete=heuristic(decision.obs[0])))
        env.step()
    # the same agents play both behaviors over time, and end episodes under both
    assert seen_acting["SmallWallJump"] & seen_acting["BigWallJump"]
    assert seen_ended["SmallWallJump"] and seen_ended["BigWallJump"]


@pytest.mark.parametrize(("big", "clears"), [(8.0, True), (8.5, True), (9.0, False)])
def test_the_heuristic_clears_every_wall_it_can(big: float, clears: bool) -> None:
    env = registry.make("WallJump", seed=1)
    env.set_environment_parameters({"big_wall_height": const(big)})
    env.reset()
    returns: list[float] = []
    total = np.zeros(16)
    for _ in range(300):
        for b in BEHAVIORS:
            decision, terminal = env.get_steps(b)
            if b == "BigWallJump":
                returns.extend((total[terminal.agent_id] + terminal.reward).tolist())
            total[terminal.agent_id] = 0.0
            total[decision.agent_id] += decision.reward
            if len(decision):
                env.set_actions(b, ActionTuple(discrete=heuristic(decision.obs[0])))
        env.step()
    assert (np.mean(returns) > 0.9) == clears


def test_wall_heights_are_parameters() -> None:
    assert registry.parameter_names("WallJump") == {"small_wall_height", "big_wall_height"}
    env = registry.make("WallJump", seed=0)
    env.set_environment_parameters({"small_wall_height": const(1.5), "big_wall_height": const(6.0)})
    env.reset()
    task: Any = env.task  # type: ignore[attr-defined]
    expected = np.where(task.agent_behavior == 0, 1.5, 6.0)
    assert np.array_equal(task.height, expected)
    with pytest.raises(ConfigError, match="big_wall_height, small_wall_height"):
        env.set_environment_parameters({"wall": const(1.0)})
    frame = task.render()
    assert frame.ndim == 3 and frame.dtype == np.uint8
