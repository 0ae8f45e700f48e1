"""Built-in environments and the registry: specs, seeding, step semantics, errors, known optimal returns."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest

from fledge.envs import registry
from fledge.envs.api import (
    ActionTuple,
    BaseEnv,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    validate_steps,
)
from fledge.envs.builtin import ball3d, basic, toys
from fledge.envs.builtin.base import VectorTaskEnv
from fledge.envs.builtin.gridworld import VISUAL_PROPERTIES
from fledge.envs.builtin.teams import TeamTaskEnv
from fledge.errors import ActionError, ConfigError, UnknownBehaviorError, UnknownEnvironmentError

ALL_NAMES = registry.names()
# environments with one behavior named as the environment (those with teams: tests/unit/test_tennis.py)
ONE_BEHAVIOR = [n for n in ALL_NAMES if not isinstance(registry.make(n), TeamTaskEnv)]
Policy = Callable[[DecisionSteps], ActionTuple]


def _behavior(env: BaseEnv) -> tuple[str, BehaviorSpec]:
    (name, spec), *rest = env.behavior_specs.items()
    assert not rest
    return name, spec


def random_policy(spec: BehaviorSpec, seed: int = 123, respect_mask: bool = False) -> Policy:
    rng = np.random.default_rng(seed)

    def act(d: DecisionSteps) -> ActionTuple:
        a = spec.action_spec.random_action(len(d), rng)
        if respect_mask and d.action_mask is not None:
            for b, m in enumerate(d.action_mask):
                p = (~m).astype(np.float64)
                p /= p.sum(axis=1, keepdims=True)
                a.discrete[:, b] = (rng.random((len(d), 1)) > np.cumsum(p, axis=1)).sum(axis=1)
        return a

    return act


@dataclass
class Episodes:
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    interrupted: list[bool] = field(default_factory=list)
    first_obs: list[np.ndarray] = field(default_factory=list)  # first observation of each finished episode
    agent_ids: list[int] = field(default_factory=list)


def run(env: BaseEnv, policy: Policy, steps: int) -> Episodes:
    """Step `env` with `policy`, collecting finished episodes per agent id (agents act every step)."""
    name, _ = _behavior(env)
    env.reset()
    eps = Episodes()
    ret: dict[int, float] = {}
    length: dict[int, int] = {}
    first: dict[int, np.ndarray] = {}
    d, t = env.get_steps(name)
    for aid in d.agent_id:
        first[int(aid)] = d[int(aid)].obs[0].copy()
    for _ in range(steps):
        env.set_actions(name, policy(d))
        env.step()
        d, t = env.get_steps(name)
        for i, aid in enumerate(t.agent_id.tolist()):
            eps.returns.append(ret.get(aid, 0.0) + float(t.reward[i]))
            eps.lengths.append(length.get(aid, 0) + 1)
            eps.interrupted.append(bool(t.interrupted[i]))
            eps.first_obs.append(first[aid])
            eps.agent_ids.append(aid)
            ret[aid], length[aid] = 0.0, -1
            first[aid] = d.obs[0][d.agent_id_to_index[aid]].copy()
        for i, aid in enumerate(d.agent_id.tolist()):
            ret[aid] = ret.get(aid, 0.0) + float(d.reward[i])
            length[aid] = length.get(aid, 0) + 1
    return eps


# -- registry ------------------------------------------------------------------------------------------


def test_registered_names() -> None:
    assert set(ALL_NAMES) == {
        "3DBall",
        "Basic",
        "DungeonEscape",
        "MoveToGoal1D-Continuous",
        "MoveToGoal1D-Discrete",
        "MoveToGoal2D-Hybrid",
        "MaskedChoice",
        "GridWorld",
        "Hallway",
        "Pyramids",
        "SoccerTwos",
        "Sorter",
        "StrikersVsGoalie",
        "Tennis",
        "Visual3DBall",
        "WallJump",
        "VisualPyramids",
    }
    assert registry.DEFAULT_ENV == "3DBall" and registry.DEFAULT_ENV in ALL_NAMES


def test_unknown_name_lists_names_and_suggests() -> None:
    with pytest.raises(UnknownEnvironmentError) as err:
        registry.make("3dbal")
    msg = str(err.value)
    assert "Did you mean '3DBall'?" in msg
    for name in ALL_NAMES:
        assert name in msg
    with pytest.raises(UnknownEnvironmentError, match="Available environments"):
        registry.describe("nothing-like-it")


def test_unknown_prefixes_are_refused_with_the_name() -> None:
    with pytest.raises(UnknownEnvironmentError, match="nope:"):
        registry.make("nope:Thing")


def test_make_arguments() -> None:
    env = registry.make("Basic", seed=3, num_agents=5, max_episode_steps=7)
    assert isinstance(env, VectorTaskEnv)
    d, _ = env.get_steps("Basic")
    assert len(d) == 5 and env.task.max_episode_steps == 7
    with pytest.raises(ConfigError, match="Basic.*colour"):
        registry.make("Basic", colour="red")
    with pytest.raises(ConfigError, match="num_agents"):
        registry.make("3DBall", num_agents=0)


def test_register_rejects_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        registry.register("3DBall", ball3d.Ball3DTask, description="again")


@pytest.mark.parametrize("name", ALL_NAMES)
def test_describe(name: str) -> None:
    info = registry.describe(name)
    assert info.name == name and info.description
    first = next(iter(registry.make(name).behavior_specs))
    several = ("StrikersVsGoalie", "WallJump")  # brains Striker, Goalie; SmallWallJump, BigWallJump
    assert first in (name, f"{name}?team=0") or name in several
    assert info.behavior_specs.startswith(f"{first}: observations [")
    assert info.num_agents is not None
    # no single best return there; Pyramids: partly observed (the heuristic's return is in the docs)
    assert info.optimal_return is not None or name in (*several, "Pyramids", "VisualPyramids")


def test_registry_import_does_not_import_torch() -> None:
    code = "import sys, fledge.envs.registry as r; r.make('3DBall').step(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- specs, steps, seeding -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ONE_BEHAVIOR)
def test_specs_shapes_and_dtypes(name: str) -> None:
    env = registry.make(name, seed=0)
    behavior, spec = _behavior(env)
    assert behavior == name
    policy = random_policy(spec)
    env.reset()
    for _ in range(60):
        d, t = env.get_steps(behavior)
        validate_steps(behavior, spec, d, t)
        for obs, ospec in zip(d.obs, spec.observation_specs):
            assert obs.dtype == np.float32 and obs.shape == (len(d),) + ospec.shape
            if len(ospec.shape) == 3:  # cameras (GridWorld, Visual3DBall): channels first, values in [0, 1]
                assert ospec.dimension_property == VISUAL_PROPERTIES and ospec.name == "CameraSensor"
                assert obs.min() >= 0.0 and obs.max() <= 1.0
            elif len(ospec.shape) == 2:  # entities (Sorter): absent ones are all-zero rows
                assert ospec.dimension_property == (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE)
                assert ospec.name == "BufferSensor"
            else:
                assert ospec.dimension_property == (DimensionProperty.NONE,) * len(ospec.shape)
                assert ospec.name in ("VectorSensor", "GoalSignal")
        assert d.reward.dtype == np.float32 and d.agent_id.dtype == np.int32
        assert t.interrupted.dtype == np.bool_
        if spec.action_spec.discrete_size and d.action_mask is not None:
            assert [m.shape for m in d.action_mask] == [(len(d), b) for b in spec.action_spec.discrete_branches]
        env.set_actions(behavior, policy(d))
        env.step()


@pytest.mark.parametrize("name", ONE_BEHAVIOR)
def test_observations_are_new_arrays(name: str) -> None:
    env = registry.make(name, seed=0)
    behavior, spec = _behavior(env)
    task = env.task
    first = task.observe()
    again = task.observe()
    for a, b in zip(first, again):
        assert a is not b and not np.shares_memory(a, b)
    d0, _ = env.get_steps(behavior)
    kept = [o.copy() for o in d0.obs]
    policy = random_policy(spec)
    for _ in range(5):
        env.set_actions(behavior, policy(env.get_steps(behavior)[0]))
        env.step()
    for o, k in zip(d0.obs, kept):
        np.testing.assert_array_equal(o, k)


def _trace(name: str, seed: int, steps: int = 200) -> list[np.ndarray]:
    env = registry.make(name, seed=seed)
    behavior, spec = _behavior(env)
    policy = random_policy(spec, seed=7)
    out = []
    env.reset()
    for _ in range(steps):
        d, t = env.get_steps(behavior)
        out += [*d.obs, d.reward, *t.obs, t.reward, t.agent_id, t.interrupted.astype(np.float32)]
        env.set_actions(behavior, policy(d))
        env.step()
    return out


@pytest.mark.parametrize("name", ONE_BEHAVIOR)
def test_seeding(name: str) -> None:
    a, b, c = _trace(name, 11), _trace(name, 11), _trace(name, 12)
    assert len(a) == len(b)
    assert all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))
    if name == "Basic":  # Basic has no randomness: every episode starts at position 10
        return
    assert len(a) != len(c) or not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, c))


def test_seed_method_restarts_the_sequence() -> None:
    env = registry.make("3DBall", seed=5)
    env.reset()
    first = env.get_steps("3DBall")[0].obs[0].copy()
    env.seed(5)
    env.reset()
    np.testing.assert_array_equal(env.get_steps("3DBall")[0].obs[0], first)


def test_terminal_and_decision_semantics() -> None:
    """Basic with 3 agents: agent 0 walks right (ends after 7), agent 1 left (ends after 3), agent 2 stays."""
    env = registry.make("Basic", num_agents=3, max_episode_steps=10)
    env.reset()
    acts = ActionTuple(discrete=np.array([[basic.RIGHT], [basic.LEFT], [basic.STAY]], dtype=np.int32))
    seen: dict[int, list[tuple[int, float, bool]]] = {0: [], 1: [], 2: []}
    for step in range(1, 21):
        env.set_actions("Basic", acts)
        env.step()
        d, t = env.get_steps("Basic")
        assert sorted(d.agent_id.tolist()) == [0, 1, 2]  # every agent always asks for a decision
        for aid in t:
            seen[aid].append((step, t[aid].reward, t[aid].interrupted))
            assert aid in d and d[aid].reward == 0.0  # the new episode has no reward yet
            assert d[aid].obs[0][basic.START_POSITION] == 1.0  # and starts at the start position
        for aid in d:
            if aid not in t:
                assert d[aid].reward == pytest.approx(-0.01)
    assert [(s, i) for s, _, i in seen[0]] == [(7, False), (14, False)]
    assert seen[0][0][1] == pytest.approx(0.99)
    assert [(s, i) for s, _, i in seen[1]] == [(k, False) for k in (3, 6, 9, 12, 15, 18)]
    assert seen[1][0][1] == pytest.approx(0.09)
    assert [(s, i) for s, _, i in seen[2]] == [(10, True), (20, True)]  # interrupted exactly at the limit
    assert seen[2][0][1] == pytest.approx(-0.01)


def test_interruption_at_max_episode_steps_3dball() -> None:
    env = registry.make("3DBall", max_episode_steps=40)
    eps = run(env, lambda d: ActionTuple(continuous=ball3d.heuristic(d.obs[0])), 120)
    assert len(eps.lengths) == 36 and set(eps.lengths) == {40} and all(eps.interrupted)
    assert eps.returns == pytest.approx([4.0] * 36, abs=1e-4)


def test_first_step_without_reset_resets() -> None:
    env = registry.make("MoveToGoal1D-Discrete")
    env.step()
    d, t = env.get_steps("MoveToGoal1D-Discrete")
    assert len(d) == 16 and len(t) == 0 and not d.reward.any()


# -- errors -----------------------------------------------------------------------------------------------


def test_action_errors_name_the_behavior() -> None:
    env = registry.make("3DBall")
    env.reset()
    with pytest.raises(ActionError, match="3DBall.*shape"):
        env.set_actions("3DBall", ActionTuple(continuous=np.zeros((12, 3), np.float32)))
    with pytest.raises(ActionError, match="3DBall.*shape"):
        env.set_actions("3DBall", ActionTuple(continuous=np.zeros((11, 2), np.float32)))
    with pytest.raises(ActionError, match="3DBall.*ActionTuple"):
        env.set_actions("3DBall", np.zeros((12, 2), np.float32))  # type: ignore[arg-type]
    with pytest.raises(ActionError, match="3DBall.*NaN"):
        env.set_actions("3DBall", ActionTuple(continuous=np.full((12, 2), np.nan, np.float32)))
    with pytest.raises(ActionError, match="3DBall.*discrete"):
        env.set_actions("3DBall", ActionTuple(np.zeros((12, 2), np.float32), np.zeros((12, 1), np.int32)))
    with pytest.raises(ActionError, match="3DBall.*agent 99"):
        env.set_action_for_agent("3DBall", 99, ActionTuple(continuous=np.zeros((1, 2), np.float32)))
    basic_env = registry.make("Basic", num_agents=2)
    basic_env.reset()
    with pytest.raises(ActionError, match="Basic.*out of range"):
        basic_env.set_actions("Basic", ActionTuple(discrete=np.array([[0], [3]], np.int32)))
    with pytest.raises(ActionError, match="Basic.*shape"):
        basic_env.set_actions("Basic", ActionTuple(continuous=np.zeros((2, 1), np.float32)))


def test_unknown_behavior_errors() -> None:
    env = registry.make("Basic")
    for call in (
        lambda: env.get_steps("Basik"),
        lambda: env.set_actions("Basik", ActionTuple(discrete=np.zeros((1, 1), np.int32))),
        lambda: env.set_action_for_agent("Basik", 0, ActionTuple(discrete=np.zeros((1, 1), np.int32))),
    ):
        with pytest.raises(UnknownBehaviorError, match="'Basik'.*Basic"):
            call()


def test_set_action_for_agent() -> None:
    env = registry.make("Basic", num_agents=2)
    env.reset()
    env.set_action_for_agent("Basic", 1, ActionTuple(discrete=np.array([[basic.RIGHT]], np.int32)))
    env.step()  # agent 0 gets the zero action (= left)
    d, _ = env.get_steps("Basic")
    assert d.obs[0][0].argmax() == basic.START_POSITION - 1 and d.obs[0][1].argmax() == basic.START_POSITION + 1


# -- 3DBall ------------------------------------------------------------------------------------------------


def _ball_policy(d: DecisionSteps) -> ActionTuple:
    return ActionTuple(continuous=ball3d.heuristic(d.obs[0]))


def test_3dball_heuristic_keeps_the_ball() -> None:
    env = registry.make("3DBall", seed=1, num_agents=24)
    eps = run(env, _ball_policy, 1000)
    assert len(eps.returns) == 24
    assert np.mean(eps.returns) >= 95.0
    assert env.task.optimal_return() == pytest.approx(100.0)


def test_3dball_random_policy_loses_the_ball() -> None:
    env = registry.make("3DBall", seed=2)
    spec = env.behavior_specs["3DBall"]
    eps = run(env, random_policy(spec, seed=3), 1500)
    assert len(eps.returns) > 50
    assert not any(eps.interrupted)
    assert np.mean(eps.returns) < 10.0
    assert 20.0 <= np.mean(eps.lengths) <= 150.0
    # every episode ends with the fall penalty: return = 0.1 * (length - 1) - 1
    np.testing.assert_allclose(eps.returns, 0.1 * (np.array(eps.lengths) - 1) - 1.0, atol=1e-4)


def test_3dball_observation_layout_and_physics() -> None:
    task = ball3d.Ball3DTask(num_agents=64)
    rng = np.random.default_rng(0)
    task.reset_agents(np.arange(64), rng)
    obs = task.observe()[0]
    assert obs.shape == (64, 8) and obs.dtype == np.float32
    # start: tilt within +-10 degrees (|q| <= sin 5deg), ball within +-1.5 (plus the tilted radius), at rest
    assert np.abs(obs[:, :2]).max() <= math.sin(math.radians(5.0)) + 1e-6
    assert np.abs(obs[:, [2, 4]]).max() <= 1.5 + 0.5 * math.sin(math.radians(10.0)) + 1e-6
    assert (obs[:, 3] > 0.0).all() and (obs[:, 3] < 1.0).all() and not obs[:, 5:].any()
    # with no turn the ball rolls downhill: q.z > 0 lifts +x (rolls to -x); q.x > 0 lowers +z (rolls to +z)
    zero = ActionTuple(continuous=np.zeros((64, 2), np.float32))
    task.apply(zero, rng)
    obs = task.observe()[0]
    assert (np.sign(obs[:, 5]) == -np.sign(obs[:, 0])).all()
    assert (np.sign(obs[:, 7]) == np.sign(obs[:, 1])).all()
    # a full turn changes the tilt by 2 degrees about each axis
    q_before = obs[:, :2].astype(np.float64)
    task.apply(ActionTuple(continuous=np.ones((64, 2), np.float32)), rng)
    angle_after = 2 * np.arcsin(task.observe()[0][:, :2].astype(np.float64))
    np.testing.assert_allclose(np.degrees(angle_after - 2 * np.arcsin(q_before)), 2.0, atol=0.15)


def test_3dball_turn_stops_at_the_quaternion_limit() -> None:
    task = ball3d.Ball3DTask(num_agents=4)
    rng = np.random.default_rng(0)
    task.reset_agents(np.arange(4), rng)
    push = ActionTuple(continuous=np.array([[1, 1], [-1, -1], [1, -1], [5, -5]], np.float32))
    for _ in range(40):
        task.apply(push, rng)
    q = task.observe()[0][:, :2]
    limit = 0.25 + math.sin(math.radians(1.0)) + 1e-6  # Unity may overshoot by at most one turn
    assert (np.abs(q) <= limit).all() and (np.abs(q) > 0.24).all()
    back = ActionTuple(continuous=-push.continuous)
    task.apply(back, rng)
    assert (np.abs(task.observe()[0][:, :2]) < np.abs(q)).all()  # turning back is always allowed


# -- Basic and the toys: optimal returns ---------------------------------------------------------------


def test_basic_optimal_return() -> None:
    env = registry.make("Basic", num_agents=4)
    eps = run(env, lambda d: ActionTuple(discrete=basic.heuristic(d.obs[0])), 70)
    assert len(eps.returns) == 40 and set(eps.lengths) == {7}
    np.testing.assert_allclose(eps.returns, 0.93, atol=1e-5)
    assert env.task.optimal_return() == pytest.approx(0.93)
    # the small goal: 3 steps left = 0.1 - 0.03
    left = run(registry.make("Basic"), lambda d: ActionTuple(discrete=np.zeros((1, 1), np.int32)), 9)
    np.testing.assert_allclose(left.returns, 0.07, atol=1e-5)


def _steps_needed(offset: np.ndarray) -> np.ndarray:
    """Fewest decisions to end a MoveToGoal episode from goal offset d = max |offset| (module doc of toys)."""
    d = np.abs(offset).max(axis=1)
    return np.maximum(1, np.floor((d - 0.1) / 0.2) + 1)


TOY_POLICIES: dict[str, Policy] = {
    "MoveToGoal1D-Continuous": lambda d: ActionTuple(continuous=toys.move_to_goal_continuous_heuristic(d.obs[0])),
    "MoveToGoal1D-Discrete": lambda d: ActionTuple(discrete=toys.move_to_goal_discrete_heuristic(d.obs[0])),
    "MoveToGoal2D-Hybrid": lambda d: ActionTuple(*toys.move_to_goal_hybrid_heuristic(d.obs[0])),
}
TOY_OPTIMA = {"MoveToGoal1D-Continuous": 0.974, "MoveToGoal1D-Discrete": 0.974, "MoveToGoal2D-Hybrid": 0.9664}


@pytest.mark.parametrize("name", sorted(TOY_POLICIES))
def test_move_to_goal_optimal_return(name: str) -> None:
    env = registry.make(name, seed=4, num_agents=256)
    task = env.task
    assert task.optimal_return() == pytest.approx(TOY_OPTIMA[name], abs=1e-12)
    eps = run(env, TOY_POLICIES[name], 200)
    assert len(eps.returns) > 10_000 and not any(eps.interrupted)
    dims = task.dims
    offsets = np.array([o[dims:] for o in eps.first_obs], dtype=np.float64)
    # each episode takes exactly the fewest possible decisions (boundary cases aside)...
    need = _steps_needed(offsets)
    assert np.mean(np.array(eps.lengths) == need) > 0.999
    np.testing.assert_allclose(eps.returns, 1.0 - 0.01 * np.array(eps.lengths), atol=1e-5)
    # ... the analytic expectation over uniform offsets is right ...
    samples = np.random.default_rng(0).uniform(-1.0, 1.0, size=(1_000_000, dims))
    assert np.mean(1.0 - 0.01 * _steps_needed(samples)) == pytest.approx(task.optimal_return(), abs=1e-4)
    # ... and the environment draws its offsets from that distribution (first episode of each agent:
    # later episodes are biased towards short ones, which finish more often)
    _, first = np.unique(eps.agent_ids, return_index=True)
    unbiased = np.array(eps.returns)[first]
    sem = np.std(unbiased) / math.sqrt(len(unbiased))
    assert abs(np.mean(unbiased) - task.optimal_return()) < 4 * sem
    assert (np.abs(offsets) <= 1.0 + 1e-6).all() and np.abs(offsets).max() > 0.95


def test_move_to_goal_grab_penalty_and_timeout() -> None:
    env = registry.make("MoveToGoal2D-Hybrid", num_agents=8)
    env.reset()
    obs = env.get_steps("MoveToGoal2D-Hybrid")[0].obs[0]
    far = np.abs(obs[:, 2:]).max(axis=1) >= 0.3  # cannot reach the goal with one move
    away = ActionTuple(-np.sign(obs[:, 2:]).astype(np.float32), np.ones((8, 1), np.int32))
    env.set_actions("MoveToGoal2D-Hybrid", away)
    env.step()
    d, t = env.get_steps("MoveToGoal2D-Hybrid")
    assert len(t) == 0
    np.testing.assert_allclose(d.reward[far], -0.06, atol=1e-6)
    away_1d: Policy = lambda d: ActionTuple(continuous=-np.sign(d.obs[0][:, 1:]))
    idle = run(registry.make("MoveToGoal1D-Continuous", num_agents=4), away_1d, 100)
    assert all(idle.interrupted) and set(idle.lengths) == {50}
    np.testing.assert_allclose(idle.returns, -0.5, atol=1e-5)


def test_masked_choice() -> None:
    env = registry.make("MaskedChoice", seed=0, num_agents=64)
    spec = env.behavior_specs["MaskedChoice"]
    env.reset()
    for _ in range(20):
        d, _ = env.get_steps("MaskedChoice")
        (mask,) = d.action_mask
        rewarded = d.obs[0].argmax(axis=1)
        assert (mask.sum(axis=1) == 1).all() and not mask[np.arange(64), rewarded].any()
        env.set_actions("MaskedChoice", ActionTuple(discrete=mask.argmax(axis=1)[:, None].astype(np.int32)))
        env.step()
        _, t = env.get_steps("MaskedChoice")
        assert len(t) == 64 and (t.reward == -1.0).all() and not t.interrupted.any()
    best = run(env, lambda d: ActionTuple(discrete=toys.masked_choice_heuristic(d.obs[0])), 20)
    assert set(best.returns) == {1.0} and env.task.optimal_return() == 1.0
    respecting = run(env, random_policy(spec, respect_mask=True), 50)
    assert min(respecting.returns) == 0.0 and np.mean(respecting.returns) == pytest.approx(1 / 3, abs=0.05)
    ignoring = run(env, random_policy(spec), 50)
    assert min(ignoring.returns) == -1.0


def test_wrong_action_dtypes_are_refused_with_the_behavior_named() -> None:
    from fledge.envs import registry
    from fledge.envs.api import ActionTuple
    from fledge.errors import ActionError

    env = registry.make("MoveToGoal1D-Discrete", seed=0)
    env.reset()
    name = next(iter(env.behavior_specs))
    n = len(env.get_steps(name)[0])
    with pytest.raises(ActionError, match=f"'{name}'.*dtype float64.*integer"):
        env.set_actions(name, ActionTuple(discrete=np.full((n, 1), 1.5)))
    env2 = registry.make("MoveToGoal1D-Continuous", seed=0)
    env2.reset()
    name2 = next(iter(env2.behavior_specs))
    n2 = len(env2.get_steps(name2)[0])
    with pytest.raises(ActionError, match="dtype int64.*float"):
        env2.set_actions(name2, ActionTuple(continuous=np.ones((n2, 1), dtype=np.int64)))


def test_set_action_for_agent_does_not_touch_the_callers_arrays() -> None:
    from fledge.envs import registry
    from fledge.envs.api import ActionTuple

    env = registry.make("MoveToGoal1D-Continuous", seed=0)
    env.reset()
    name = next(iter(env.behavior_specs))
    n = len(env.get_steps(name)[0])
    mine = np.zeros((n, 1), dtype=np.float32)
    env.set_actions(name, ActionTuple(continuous=mine))
    env.set_action_for_agent(name, 0, ActionTuple(continuous=np.ones((1, 1), np.float32)))
    assert (mine == 0).all()
