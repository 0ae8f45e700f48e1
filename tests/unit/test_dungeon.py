"""DungeonEscape's rules, scripted: the agent on the guard leaves with nothing, the key is picked up, the
holder at the door ends the group's episode with the group reward for those still on the board, and the
group restarts in the next step; an interruption ends the group without group reward."""

from __future__ import annotations

import numpy as np

from fledge.envs import registry
from fledge.envs.api import ActionTuple
from fledge.envs.builtin.dungeon import DungeonEscapeTask
from fledge.envs.builtin.groups import GroupTaskEnv

STAY, UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3, 4


def act(env: GroupTaskEnv, moves: dict[int, int]) -> None:
    d, _ = env.get_steps("DungeonEscape")
    env.set_actions(
        "DungeonEscape", ActionTuple(discrete=np.array([[moves.get(a, STAY)] for a in d.agent_id.tolist()]))
    )
    env.step()


def scripted() -> tuple[GroupTaskEnv, DungeonEscapeTask]:
    env = registry.make("DungeonEscape", seed=0, num_areas=2)
    assert isinstance(env, GroupTaskEnv)
    env.reset()
    task = env.group_task
    assert isinstance(task, DungeonEscapeTask)
    task.guard[0] = (2, 0)
    task.pos[0] = [(3, 0), (1, 1), (4, 4)]  # agent 0 next to the guard, agent 1 below the guard's left
    return env, task


def test_sacrifice_key_escape_and_restart() -> None:
    env, task = scripted()
    d, _ = env.get_steps("DungeonEscape")
    assert d.group_id.tolist() == [1, 1, 1, 2, 2, 2]
    act(env, {0: LEFT})  # agent 0 steps onto the guard
    d, t = env.get_steps("DungeonEscape")
    assert t.agent_id.tolist() == [0] and not t.interrupted[0] and t.reward[0] == 0.0 and t.group_reward[0] == 0.0
    assert 0 not in d.agent_id.tolist() and task.key_on_floor[0]
    act(env, {1: UP})  # agent 1 to (1, 0)
    act(env, {1: RIGHT})  # onto the key at (2, 0)
    assert task.holder[0] == 1
    d, _ = env.get_steps("DungeonEscape")
    row = d.agent_id_to_index[2]
    assert d.obs[0][row, 9] == 1.0 and d.obs[0][row, 10] == 0.0  # agent 2 sees a mate holding the key, agent 0 gone
    act(env, {1: LEFT})
    act(env, {1: LEFT})  # the holder reaches the door (0, 0)
    d, t = env.get_steps("DungeonEscape")
    assert sorted(t.agent_id.tolist()) == [1, 2]
    np.testing.assert_array_equal(t.group_reward, [1.0, 1.0])
    assert not t.interrupted.any() and not any(a in d.agent_id.tolist() for a in (0, 1, 2))
    act(env, {})  # the group restarts in the next step, all three on the board
    d, _ = env.get_steps("DungeonEscape")
    assert {0, 1, 2} <= set(d.agent_id.tolist())
    assert env.get_stats()["DungeonEscape/Escaped"][0][0] == 1.0


def test_time_limit_interrupts_the_group_without_reward() -> None:
    env = registry.make("DungeonEscape", seed=0, max_episode_steps=3)
    env.reset()
    for _ in range(3):
        act(env, {})  # nobody moves: nobody meets the guard
    _, t = env.get_steps("DungeonEscape")
    assert sorted(t.agent_id.tolist()) == [0, 1, 2] and t.interrupted.all() and not t.group_reward.any()


def test_camera_shows_the_agent_its_groupmates_the_guard_and_the_dropped_key() -> None:
    env = registry.make("DungeonEscape", seed=0, num_areas=2, camera=2)
    assert isinstance(env, GroupTaskEnv)
    assert [tuple(o.shape) for o in env.behavior_specs["DungeonEscape"].observation_specs] == [(16,), (4, 10, 10)]
    env.reset()
    task = env.group_task
    assert isinstance(task, DungeonEscapeTask)
    task.guard[0] = (2, 0)
    task.pos[0] = [(3, 0), (1, 1), (4, 4)]
    act(env, {0: LEFT})  # agent 0 is taken; the guard drops the key on (2, 0)
    d, _ = env.get_steps("DungeonEscape")
    assert d.agent_id.tolist()[:2] == [1, 2]
    image = d.obs[1][0]  # agent 1's camera, 2 x 2 pixels per cell, row = y
    cells = image[:, ::2, ::2]
    np.testing.assert_array_equal(image[:, ::2, ::2], image[:, 1::2, 1::2])  # each cell a uniform 2 x 2 block
    assert np.argwhere(cells[0]).tolist() == [[1, 1]]  # itself at (x 1, y 1)
    assert np.argwhere(cells[1]).tolist() == [[4, 4]]  # agent 2; agent 0 has left the board
    assert not cells[2].any()  # the guard is gone
    assert np.argwhere(cells[3]).tolist() == [[0, 2]]  # the key on the floor at (x 2, y 0)
    np.testing.assert_array_equal(d.obs[0][0], task._observe()[1])  # the vector observation is unchanged
