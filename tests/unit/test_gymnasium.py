"""The Gymnasium adapter: space mapping, episode semantics (single and vector, every autoreset mode),
exact action rescaling, seeding, the "gym:" registry names and the missing-package message."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium", reason="the gym extra (gymnasium) is not installed")
from gymnasium import spaces  # noqa: E402

from fledge.envs import registry  # noqa: E402
from fledge.envs.api import (  # noqa: E402
    ActionSpec,
    ActionTuple,
    DimensionProperty,
    validate_steps,
)
from fledge.envs.gymnasium import (  # noqa: E402
    ActionDecoder,
    GymnasiumEnv,
    ObservationConverter,
    behavior_name_for,
    make_gymnasium,
    space_to_specs,
)
from fledge.errors import ActionError, ConfigError, UnknownEnvironmentError  # noqa: E402

try:
    from gymnasium.vector import AutoresetMode
except ImportError:  # gymnasium 1.0
    AutoresetMode = None  # type: ignore[assignment,misc]


def _one(env: GymnasiumEnv) -> str:
    (name,) = env.behavior_specs
    return name


def _checked_steps(env: GymnasiumEnv, name: str):
    d, t = env.get_steps(name)
    validate_steps(name, env.behavior_specs[name], d, t)
    return d, t


# ----------------------------------------------------------------------------------------------
# Space mapping
# ----------------------------------------------------------------------------------------------


def test_observation_space_mapping() -> None:
    space = spaces.Dict(
        {
            "pos": spaces.Box(-1, 1, (2, 3), np.float64),
            "camera": spaces.Box(0, 255, (8, 6, 3), np.uint8),
            "cell": spaces.Discrete(4, start=2),
            "keys": spaces.MultiDiscrete([2, 3]),
            "bits": spaces.MultiBinary(3),
            "pair": spaces.Tuple((spaces.Box(-np.inf, np.inf, (1,)), spaces.Discrete(2))),
        }
    )
    conv = ObservationConverter(space, env_id="T")
    assert [s.name for s in conv.specs] == ["bits", "camera", "cell", "keys", "pair.0", "pair.1", "pos"]
    shapes = [s.shape for s in conv.specs]
    assert shapes == [(3,), (3, 8, 6), (4,), (5,), (1,), (2,), (6,)]
    assert conv.specs[1].dimension_property == (
        DimensionProperty.NONE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    )
    assert all(s.dimension_property == (DimensionProperty.NONE,) for i, s in enumerate(conv.specs) if i != 1)

    img = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    obs = {
        "pos": np.arange(6, dtype=np.float64).reshape(2, 3),
        "camera": img,
        "cell": 3,
        "keys": np.array([1, 2]),
        "bits": np.array([1, 0, 1], np.int8),
        "pair": (np.array([5.0]), 1),
    }
    out = conv.convert_one(obs)
    assert all(o.dtype == np.float32 for o in out)
    assert [o.shape for o in out] == [(1,) + s for s in shapes]
    np.testing.assert_array_equal(out[0][0], [1, 0, 1])
    np.testing.assert_allclose(out[1][0], img.transpose(2, 0, 1) / 255.0, rtol=1e-6)
    assert out[1].max() <= 1.0 and out[1].min() >= 0.0
    np.testing.assert_array_equal(out[2][0], [0, 1, 0, 0])  # 3 - start 2 = index 1
    np.testing.assert_array_equal(out[3][0], [0, 1, 0, 0, 1])
    np.testing.assert_array_equal(out[4][0], [5.0])
    np.testing.assert_array_equal(out[5][0], [0, 1])
    np.testing.assert_array_equal(out[6][0], np.arange(6))

    # a batch (as a vector env gives it) converts the same as the single rows stacked
    batched_space = gymnasium.vector.utils.batch_space(space, 2)
    batched = gymnasium.vector.utils.concatenate(space, [obs, obs], gymnasium.vector.utils.create_empty_array(space, 2))
    assert isinstance(batched_space, spaces.Dict)
    for a, b in zip(conv.convert_batch(batched, 2), out):
        np.testing.assert_array_equal(a, np.concatenate([b, b]))


def test_single_box_and_discrete_observations() -> None:
    conv = ObservationConverter(spaces.Box(-1, 1, (4,), np.float64))
    assert [(s.shape, s.name) for s in conv.specs] == [((4,), "observation")]
    assert conv.convert_one(np.ones(4))[0].dtype == np.float32
    conv = ObservationConverter(spaces.Discrete(3))
    np.testing.assert_array_equal(conv.convert_batch(np.array([2, 0]), 2)[0], [[0, 0, 1], [1, 0, 0]])


def test_action_space_mapping_and_decoding() -> None:
    space = spaces.Dict(
        {
            "move": spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 10.0], np.float32)),
            "free": spaces.Box(np.array([-np.inf, -1.0]), np.array([np.inf, 3.0]), dtype=np.float64),
            "jump": spaces.Discrete(3, start=-1),
            "keys": spaces.MultiDiscrete([2, 4]),
            "bits": spaces.MultiBinary(2),
        }
    )
    dec = ActionDecoder(space, env_id="T")
    # sorted keys: bits, free, jump, keys, move
    assert dec.spec == ActionSpec(4, (2, 2, 3, 2, 4))
    cont = np.array([[7.5, -1.0, -1.0, 1.0], [0.0, 1.0, 0.0, 0.5]], np.float32)
    disc = np.array([[1, 0, 0, 1, 3], [0, 1, 2, 0, 0]], np.int32)
    batch = dec.decode_batch(ActionTuple(cont, disc))
    np.testing.assert_array_equal(batch["bits"], [[1, 0], [0, 1]])
    assert batch["bits"].dtype == np.int8
    np.testing.assert_array_equal(batch["free"], [[7.5, -1.0], [0.0, 3.0]])  # unbounded passes through
    np.testing.assert_array_equal(batch["jump"], [-1, 1])  # start added back
    np.testing.assert_array_equal(batch["keys"], [[1, 3], [0, 0]])
    np.testing.assert_array_equal(batch["move"], [[-2.0, 10.0], [0.0, 7.5]])  # [-1,1] -> [low, high]
    one = dec.decode_one(ActionTuple(cont, disc), 1)
    assert space.contains(one)
    np.testing.assert_array_equal(one["move"], [0.0, 7.5])
    # out-of-range continuous actions are clipped to the bounds before rescaling
    clipped = ActionDecoder(spaces.Box(-2.0, 2.0, (1,))).decode_one(ActionTuple(np.array([[3.0]], np.float32)))
    assert clipped[0] == 2.0

    tup = ActionDecoder(spaces.Tuple((spaces.Discrete(2), spaces.Box(-1, 1, (3,)), spaces.MultiBinary(1))))
    assert tup.spec == ActionSpec(3, (2, 2))
    assert tup.spec.is_hybrid()
    value = tup.decode_one(ActionTuple(np.zeros((1, 3), np.float32), np.array([[1, 1]], np.int32)))
    assert tup.space.contains(value)
    assert ActionDecoder(spaces.Discrete(5)).spec == ActionSpec(0, (5,))
    assert ActionDecoder(spaces.MultiBinary(3)).spec == ActionSpec(0, (2, 2, 2))
    assert ActionDecoder(spaces.Box(-1, 1, (2, 2))).spec == ActionSpec(4, ())


@pytest.mark.parametrize(
    ("obs_space", "act_space", "part", "bad"),
    [
        (spaces.Text(5), spaces.Discrete(2), "observation", "Text"),
        (
            spaces.Dict({"a": spaces.Box(0, 1, (2,)), "b": spaces.Sequence(spaces.Discrete(2))}),
            spaces.Discrete(2),
            "observation['b']",
            "Sequence",
        ),
        (spaces.Box(0, 1, (2,)), spaces.Tuple((spaces.Discrete(2), spaces.Text(3))), "action[1]", "Text"),
        (spaces.Graph(spaces.Box(0, 1, (2,)), None), spaces.Discrete(2), "observation", "Graph"),
    ],
)
def test_unsupported_spaces_are_named(obs_space: Any, act_space: Any, part: str, bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        space_to_specs(obs_space, act_space, env_id="My-v0")
    msg = str(err.value)
    assert "'My-v0'" in msg and f"at {part} " in msg and bad in msg and "cannot be mapped" in msg


def test_behavior_names_are_safe_folder_names() -> None:
    assert behavior_name_for("CartPole-v1") == "CartPole-v1"
    assert behavior_name_for("ALE/Pong-v5") == "ALE_Pong-v5"
    assert behavior_name_for("my.module:Env?team=1") == "my.module_Env_team_1"
    assert behavior_name_for("../..") == "gym"


# ----------------------------------------------------------------------------------------------
# A tiny deterministic env: obs [t, episode]; ends at t == end_at (terminated or truncated)
# ----------------------------------------------------------------------------------------------


class CountEnv(gymnasium.Env):
    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, end_at: int = 3, truncate: bool = False) -> None:
        self.observation_space = spaces.Box(0, 1000, (2,), np.float64)
        self.action_space = spaces.Discrete(2)
        self.end_at, self.truncate = end_at, truncate
        self.t, self.episode = 0, -1
        self.actions: list[int] = []
        self.seeds: list[int | None] = []

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.seeds.append(seed)
        self.t, self.episode = 0, self.episode + 1
        return np.array([0.0, self.episode]), {}

    def step(self, action):
        assert self.t < self.end_at, "stepped after the end of an episode"
        self.actions.append(int(action))
        self.t += 1
        end = self.t == self.end_at
        obs = np.array([self.t, self.episode], np.float64)
        return obs, float(self.t + 10 * int(action)), end and not self.truncate, end and self.truncate, {}


@pytest.mark.parametrize("truncate", [False, True])
def test_single_env_terminal_then_decision_same_step(truncate: bool) -> None:
    inner = CountEnv(end_at=3, truncate=truncate)
    env = GymnasiumEnv(inner, seed=5)
    name = _one(env)
    assert name == "CountEnv" and env.behavior_specs[name].action_spec == ActionSpec(0, (2,))
    env.reset()
    d, t = _checked_steps(env, name)
    assert list(d.agent_id) == [0] and len(t) == 0 and inner.seeds == [5]
    for step in range(1, 7):
        env.set_actions(name, ActionTuple(discrete=np.array([[1]], np.int32)))
        env.step()
        d, t = _checked_steps(env, name)
        k = (step - 1) % 3 + 1
        episode = (step - 1) // 3
        if k == 3:
            assert list(t.agent_id) == [0]
            np.testing.assert_array_equal(t.obs[0], [[3, episode]])  # the real final observation
            assert t.reward[0] == 13.0 and bool(t.interrupted[0]) is truncate
            np.testing.assert_array_equal(d.obs[0], [[0, episode + 1]])  # reset, same step
            assert d.reward[0] == 0.0
        else:
            assert len(t) == 0
            np.testing.assert_array_equal(d.obs[0], [[k, episode]])
            assert d.reward[0] == k + 10
    assert inner.seeds == [5, None, None]  # only the first reset is seeded
    assert inner.actions == [1] * 6


def _vector_count_env(mode: Any, n: int = 3, truncate: bool = False) -> Any:
    fns = [lambda i=i: CountEnv(end_at=2 + i, truncate=truncate) for i in range(n)]
    if AutoresetMode is None:
        return gymnasium.vector.SyncVectorEnv(fns)
    return gymnasium.vector.SyncVectorEnv(fns, autoreset_mode=mode)


MODES = ["SameStep", "NextStep", "Disabled"] if AutoresetMode is not None else ["NextStep"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("truncate", [False, True])
def test_vector_env_autoreset_modes_report_no_fake_transition(mode: str, truncate: bool) -> None:
    vec = _vector_count_env(AutoresetMode(mode) if AutoresetMode is not None else None, truncate=truncate)
    env = GymnasiumEnv(vec, seed=10, env_id="Count-v0")
    name = _one(env)
    assert name == "Count-v0"
    assert env.autoreset_mode == {"SameStep": "same", "NextStep": "next", "Disabled": "disabled"}[mode]
    env.reset()
    assert [e.seeds[0] for e in vec.envs] == [10, 11, 12]  # sub-environment i seeded with seed + i
    expected = dict.fromkeys(range(3), (0, 0))  # agent -> (t, episode) of its current decision obs
    waiting: set[int] = set()
    ended = dict.fromkeys(range(3), 0)
    for _ in range(12):
        d, _ = _checked_steps(env, name)
        assert set(d.agent_id.tolist()).isdisjoint(waiting)  # NEXT_STEP: ended agents sit out one step
        for a in d.agent_id.tolist():
            np.testing.assert_array_equal(d[a].obs[0], expected[a])
        # action 1 for agents asking, so an ignored/misused action would show up in the rewards
        env.set_actions(name, ActionTuple(discrete=np.ones((len(d), 1), np.int32)))
        env.step()
        d, t = _checked_steps(env, name)
        asked = set()
        for a in t.agent_id.tolist():
            end_at = 2 + a
            tt, ep = expected[a]
            assert tt + 1 == end_at
            np.testing.assert_array_equal(t[a].obs[0], [end_at, ep])
            assert t[a].reward == end_at + 10 and t[a].interrupted is truncate
            ended[a] += 1
            expected[a] = (0, ep + 1)
            if mode == "NextStep":
                assert a not in d.agent_id_to_index
                waiting.add(a)
        for a in d.agent_id.tolist():
            asked.add(a)
            tt, ep = expected[a]
            if a in t.agent_id_to_index or a in waiting:
                np.testing.assert_array_equal(d[a].obs[0], [0, ep])
                assert d[a].reward == 0.0
                waiting.discard(a)
            else:
                np.testing.assert_array_equal(d[a].obs[0], [tt + 1, ep])
                assert d[a].reward == tt + 1 + 10
                expected[a] = (tt + 1, ep)
        if mode != "NextStep":
            assert asked == {0, 1, 2}
    assert all(v >= 2 for v in ended.values())
    for e in vec.envs:  # every action the sub-environments executed was 1: none was made up
        assert set(e.actions) == {1}


# ----------------------------------------------------------------------------------------------
# Classic control through the BaseEnv API
# ----------------------------------------------------------------------------------------------


def test_cartpole_matches_a_direct_gymnasium_run() -> None:
    env = make_gymnasium("CartPole-v1", seed=7)
    name = _one(env)
    assert name == "CartPole-v1"
    spec = env.behavior_specs[name]
    assert spec.action_spec == ActionSpec(0, (2,)) and [s.shape for s in spec.observation_specs] == [(4,)]
    direct = gymnasium.make("CartPole-v1")
    obs, _ = direct.reset(seed=7)
    env.reset()
    d, _ = _checked_steps(env, name)
    np.testing.assert_allclose(d.obs[0][0], obs, rtol=1e-6)
    rng = np.random.default_rng(0)
    terminals = 0
    for _ in range(80):
        a = int(rng.integers(2))
        env.set_actions(name, ActionTuple(discrete=np.array([[a]], np.int32)))
        env.step()
        d, t = _checked_steps(env, name)
        obs, reward, term, trunc, _ = direct.step(a)
        if term or trunc:
            terminals += 1
            assert list(t.agent_id) == [0] and bool(t.interrupted[0]) is (trunc and not term)
            np.testing.assert_allclose(t.obs[0][0], obs, rtol=1e-6)  # final observation, not the reset one
            assert t.reward[0] == reward
            obs, _ = direct.reset()
            assert d.reward[0] == 0.0
        else:
            assert len(t) == 0 and d.reward[0] == reward
        assert list(d.agent_id) == [0]
        np.testing.assert_allclose(d.obs[0][0], obs, rtol=1e-6)
    assert terminals >= 2


def test_cartpole_truncation_is_interrupted() -> None:
    env = make_gymnasium("CartPole-v1", seed=1, max_episode_steps=4)
    name = _one(env)
    env.reset()
    for i in range(1, 5):
        env.set_actions(name, ActionTuple(discrete=np.array([[i % 2]], np.int32)))
        env.step()
        d, t = _checked_steps(env, name)
    assert list(t.agent_id) == [0] and t.interrupted.tolist() == [True]
    assert list(d.agent_id) == [0] and d.reward[0] == 0.0
    assert not np.allclose(t.obs[0], d.obs[0])


def test_cartpole_vector_matches_independent_runs() -> None:
    n, seed = 4, 3
    env = registry.make("gym:CartPole-v1", seed=seed, num_agents=n)
    assert isinstance(env, GymnasiumEnv) and env.num_agents == n
    name = _one(env)
    directs = [gymnasium.make("CartPole-v1") for _ in range(n)]
    expected = np.stack([e.reset(seed=seed + i)[0] for i, e in enumerate(directs)])
    d, t = _checked_steps(env, name)
    assert d.agent_id.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(d.obs[0], expected, rtol=1e-6)
    rng = np.random.default_rng(1)
    seen_terminal = set()
    for _ in range(60):
        acts = rng.integers(0, 2, size=(n, 1)).astype(np.int32)
        env.set_actions(name, ActionTuple(discrete=acts))
        env.step()
        d, t = _checked_steps(env, name)
        assert d.agent_id.tolist() == [0, 1, 2, 3]  # SAME_STEP: every agent asks every step
        for i, e in enumerate(directs):
            obs, reward, term, trunc, _ = e.step(int(acts[i, 0]))
            if term or trunc:
                seen_terminal.add(i)
                np.testing.assert_allclose(t[i].obs[0], obs, rtol=1e-6)
                assert t[i].reward == reward and t[i].interrupted is bool(trunc and not term)
                obs, _ = e.reset()
                reward = 0.0
            else:
                assert i not in t.agent_id_to_index
            np.testing.assert_allclose(d[i].obs[0], obs, rtol=1e-6)
            assert d[i].reward == reward
    assert len(seen_terminal) >= 3


def test_pendulum_bounded_actions_are_rescaled_exactly() -> None:
    env = make_gymnasium("Pendulum-v1", seed=0)
    name = _one(env)
    env.reset()
    assert env.behavior_specs[name].action_spec == ActionSpec(1, ())
    inner = env.env.unwrapped
    for sent, torque in [(-1.0, -2.0), (1.0, 2.0), (0.0, 0.0), (0.5, 1.0), (-0.25, -0.5)]:
        env.set_actions(name, ActionTuple(continuous=np.array([[sent]], np.float32)))
        env.step()
        _checked_steps(env, name)
        assert float(inner.last_u) == torque


def test_pendulum_vector_truncates_all_agents() -> None:
    env = make_gymnasium("Pendulum-v1", seed=0, num_agents=4, max_episode_steps=3)
    name = _one(env)
    env.reset()
    inners = [e.unwrapped for e in env.env.envs]
    torques = np.array([[-1.0], [-0.5], [0.5], [1.0]], np.float32)
    for step in range(3):
        env.set_actions(name, ActionTuple(continuous=torques))
        env.step()
        d, t = _checked_steps(env, name)
        if step < 2:  # the last step ends the episodes and resets them (last_u is cleared)
            assert [float(e.last_u) for e in inners] == [-2.0, -1.0, 1.0, 2.0]
            assert len(t) == 0
    assert t.agent_id.tolist() == [0, 1, 2, 3] and t.interrupted.all()
    assert d.agent_id.tolist() == [0, 1, 2, 3] and (d.reward == 0).all()


def test_seeding_reproducibility() -> None:
    def first_obs(seed: int, n: int | None = None) -> list[np.ndarray]:
        env = make_gymnasium("CartPole-v1", seed=seed, num_agents=n)
        name = _one(env)
        out = [env.get_steps(name)[0].obs[0].copy()]
        for _ in range(15):
            env.set_actions(name, ActionTuple(discrete=np.zeros((env.num_agents, 1), np.int32)))
            env.step()
            out.append(env.get_steps(name)[0].obs[0].copy())
        return out

    a, b, c = first_obs(11), first_obs(11), first_obs(12)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    v = first_obs(11, 2)
    assert np.array_equal(v[0][0], a[0][0])  # sub-environment 0 uses the run seed
    assert not np.array_equal(v[0][0], v[0][1])  # sub-environment 1 uses seed + 1

    env = make_gymnasium("CartPole-v1", seed=11)
    name = _one(env)
    env.seed(12)  # applies to the next reset
    env.reset()
    np.testing.assert_array_equal(env.get_steps(name)[0].obs[0], c[0])


def test_first_step_resets_and_action_errors() -> None:
    env = make_gymnasium("CartPole-v1", seed=0, num_agents=2)
    name = _one(env)
    env.step()  # the first step before any reset performs the reset
    d, t = env.get_steps(name)
    assert len(d) == 2 and len(t) == 0
    env.set_action_for_agent(name, 1, ActionTuple(discrete=np.array([[1]], np.int32)))
    env.step()
    with pytest.raises(ActionError, match="discrete actions have shape"):
        env.set_actions(name, ActionTuple(discrete=np.zeros((3, 1), np.int32)))
    with pytest.raises(ActionError, match="out of range"):
        env.set_actions(name, ActionTuple(discrete=np.full((2, 1), 2, np.int32)))
    with pytest.raises(ActionError, match="did not request a decision"):
        env.set_action_for_agent(name, 5, ActionTuple(discrete=np.array([[1]], np.int32)))
    env.close()


def test_image_and_dict_env_end_to_end() -> None:
    class ImageEnv(gymnasium.Env):
        def __init__(self) -> None:
            self.observation_space = spaces.Dict(
                {"img": spaces.Box(0, 255, (4, 5, 3), np.uint8), "vel": spaces.Box(-1, 1, (2,), np.float64)}
            )
            self.action_space = spaces.Tuple((spaces.Box(-3, 3, (1,)), spaces.Discrete(3, start=1)))
            self.last: Any = None

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            return self.observation_space.sample(), {}

        def step(self, action):
            assert self.action_space.contains(action)
            self.last = action
            return self.observation_space.sample(), 1.0, False, False, {}

    env = GymnasiumEnv(ImageEnv(), seed=0)
    name = _one(env)
    spec = env.behavior_specs[name]
    assert [s.shape for s in spec.observation_specs] == [(3, 4, 5), (2,)]
    assert spec.action_spec == ActionSpec(1, (3,))
    env.reset()
    env.set_actions(name, ActionTuple(np.array([[-1.0]], np.float32), np.array([[2]], np.int32)))
    env.step()
    d, _ = _checked_steps(env, name)
    assert env.env.last[0][0] == -3.0 and env.env.last[1] == 3
    assert d.obs[0].dtype == np.float32 and 0.0 <= d.obs[0].min() and d.obs[0].max() <= 1.0


# ----------------------------------------------------------------------------------------------
# Registry and errors
# ----------------------------------------------------------------------------------------------


def test_registry_gym_names() -> None:
    env = registry.make("gym:CartPole-v1", seed=0)
    assert isinstance(env, GymnasiumEnv) and list(env.behavior_specs) == ["CartPole-v1"]
    info = registry.describe("gym:Pendulum-v1")
    assert "Pendulum-v1" in info.behavior_specs and "Continuous: 1" in info.behavior_specs


def test_unknown_gym_id_suggests_close_ids() -> None:
    with pytest.raises(UnknownEnvironmentError) as err:
        registry.make("gym:CartPol-v1")
    assert "CartPol-v1" in str(err.value) and "CartPole-v1" in str(err.value)
    with pytest.raises(UnknownEnvironmentError, match="NoSuchThing-v0"):
        make_gymnasium("NoSuchThing-v0")
    with pytest.raises(ConfigError, match="does not accept"):
        make_gymnasium("CartPole-v1", colour="red")
    with pytest.raises(ConfigError, match="num_agents"):
        make_gymnasium("CartPole-v1", num_agents=0)


def test_missing_gymnasium_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gymnasium", None)  # makes `import gymnasium` fail
    monkeypatch.delitem(sys.modules, "fledge.envs.gymnasium")
    with pytest.raises(ConfigError, match=r"pip install 'fledge\[gym\]'"):
        importlib.import_module("fledge.envs.gymnasium")
    with pytest.raises(ConfigError, match=r"pip install 'fledge\[gym\]'"):
        registry.make("gym:CartPole-v1")
