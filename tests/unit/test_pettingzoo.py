"""The PettingZoo adapter on a tiny pure-python ParallelEnv: behaviors by name prefix, stable ids,
action masks, agents dying mid-episode and appearing late, episode resets, AEC conversion, the
"pettingzoo:" registry names, and one real PettingZoo environment where its extras are installed."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

import numpy as np
import pytest

pettingzoo = pytest.importorskip("pettingzoo", reason="the pettingzoo extra is not installed")
from gymnasium import spaces  # noqa: E402
from pettingzoo import AECEnv, ParallelEnv  # noqa: E402
from pettingzoo.utils.conversions import parallel_to_aec_wrapper  # noqa: E402

from fledge.envs import registry  # noqa: E402
from fledge.envs.api import ActionSpec, ActionTuple, BaseEnv, validate_steps  # noqa: E402
from fledge.envs.pettingzoo import PettingZooEnv, behavior_group, make_pettingzoo  # noqa: E402
from fledge.errors import ActionError, ConfigError, EnvironmentFault, UnknownEnvironmentError  # noqa: E402

RUNNER_OBS = spaces.Dict(
    {"observation": spaces.Box(-100, 100, (3,), np.float32), "action_mask": spaces.Box(0, 1, (3,), np.int8)}
)
SCOUT_OBS = spaces.Dict({"pos": spaces.Box(-10, 10, (2,), np.float32), "cell": spaces.Discrete(4)})


class Arena(ParallelEnv):
    """Two runners (masked Discrete(3) actions) and scouts (Box [0, 10] action).

    scout_0 terminates at t == scout_dies_at, scout_1 appears at t == late_at, and everybody left
    is truncated at t == max_steps. Runner reward = its action index, scout reward = its action.
    A runner may not take action (t + index) % 3 (masked).
    """

    metadata: dict[str, Any] = {"name": "arena_v0", "render_modes": []}

    def __init__(
        self,
        max_steps: int = 5,
        scout_dies_at: int = 2,
        late_at: int | None = 3,
        mask_in_info: bool = False,
        odd_runner: bool = False,
    ) -> None:
        self.possible_agents = ["runner_0", "runner_1", "scout_0", "scout_1"]
        self.agents: list[str] = []
        self.render_mode = None
        self.max_steps, self.scout_dies_at, self.late_at = max_steps, scout_dies_at, late_at
        self.mask_in_info, self.odd_runner = mask_in_info, odd_runner
        self.seeds: list[int | None] = []
        self.received: list[dict[str, Any]] = []
        self.masked_taken = 0
        self.t = 0

    def observation_space(self, agent: str) -> spaces.Space:
        if agent.startswith("runner"):
            if self.odd_runner and agent == "runner_1":
                return spaces.Box(-1, 1, (5,), np.float32)
            return RUNNER_OBS["observation"] if self.mask_in_info else RUNNER_OBS
        return SCOUT_OBS

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(3) if agent.startswith("runner") else spaces.Box(0.0, 10.0, (1,), np.float32)

    def _mask(self, agent: str) -> np.ndarray:
        mask = np.ones(3, np.int8)
        mask[(self.t + int(agent[-1])) % 3] = 0
        return mask

    def _obs(self, agent: str) -> Any:
        i = int(agent[-1])
        if agent.startswith("runner"):
            vec = np.array([self.t, i, len(self.seeds)], np.float32)
            return vec if self.mask_in_info else {"observation": vec, "action_mask": self._mask(agent)}
        return {"pos": np.array([self.t, i], np.float32), "cell": self.t % 4}

    def _info(self, agent: str) -> dict[str, Any]:
        return {"action_mask": self._mask(agent)} if self.mask_in_info and agent.startswith("runner") else {}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.seeds.append(seed)
        self.t = 0
        self.agents = ["runner_0", "runner_1", "scout_0"]
        return {a: self._obs(a) for a in self.agents}, {a: self._info(a) for a in self.agents}

    def step(self, actions: dict[str, Any]):
        assert set(actions) == set(self.agents), (sorted(actions), self.agents)
        for a, act in actions.items():
            assert self.action_space(a).contains(act), (a, act)
            if a.startswith("runner") and self._mask(a)[int(act)] == 0:
                self.masked_taken += 1
        self.received.append(dict(actions))
        self.t += 1
        rewards = {a: float(act) if a.startswith("runner") else float(act[0]) for a, act in actions.items()}
        terms = dict.fromkeys(self.agents, False)
        truncs = dict.fromkeys(self.agents, False)
        if self.t == self.scout_dies_at and "scout_0" in terms:
            terms["scout_0"] = True
        if self.t >= self.max_steps:
            truncs = dict.fromkeys(self.agents, True)
        obs = {a: self._obs(a) for a in self.agents}
        infos = {a: self._info(a) for a in self.agents}
        self.agents = [a for a in self.agents if not (terms[a] or truncs[a])]
        if self.t == self.late_at and self.t < self.max_steps:
            self.agents.append("scout_1")
            obs["scout_1"], infos["scout_1"] = self._obs("scout_1"), {}
            rewards["scout_1"], terms["scout_1"], truncs["scout_1"] = 0.0, False, False
        return obs, rewards, terms, truncs, infos


def _steps(env: BaseEnv) -> dict[str, tuple[Any, Any]]:
    out = {}
    for name, spec in env.behavior_specs.items():
        d, t = env.get_steps(name)
        validate_steps(name, spec, d, t)
        out[name] = (d, t)
    return out


def _act_all(env: BaseEnv, runner_choice: str = "allowed", scout_value: float = 1.0) -> None:
    """Runners take their first allowed action ('allowed'); scouts send scout_value."""
    for name, (d, _) in _steps(env).items():
        if not len(d):
            continue
        if name == "runner":
            disc = np.argmax(~d.action_mask[0], axis=1).astype(np.int32)[:, None]
            env.set_actions(name, ActionTuple(discrete=disc))
        else:
            env.set_actions(name, ActionTuple(continuous=np.full((len(d), 1), scout_value, np.float32)))


def test_behavior_groups_by_name_prefix() -> None:
    assert behavior_group("adversary_0") == "adversary"
    assert behavior_group("agent_3") == "agent"
    assert behavior_group("red_team_12") == "red_team"
    assert behavior_group("prey") == "prey"
    assert behavior_group("piston_") == "piston"
    assert behavior_group(7) == "agent"
    assert behavior_group("blue team/1_0") == "blue_team_1"


def test_specs_from_possible_agents() -> None:
    env = PettingZooEnv(Arena(), seed=0)
    specs = env.behavior_specs
    assert list(specs) == ["runner", "scout"]
    assert specs["runner"].action_spec == ActionSpec(0, (3,))
    assert [(o.shape, o.name) for o in specs["runner"].observation_specs] == [((3,), "observation")]
    assert specs["scout"].action_spec == ActionSpec(1, ())
    assert [(o.shape, o.name) for o in specs["scout"].observation_specs] == [((4,), "cell"), ((2,), "pos")]
    assert env.agent_id("runner_0") == 0  # ids are only given at first sight: none seen yet


def test_episode_semantics_ids_masks_and_resets() -> None:
    arena = Arena()
    env = PettingZooEnv(arena, seed=40)
    env.reset()
    s = _steps(env)
    (dr, tr), (ds, ts) = s["runner"], s["scout"]
    assert dr.agent_id.tolist() == [0, 1] and ds.agent_id.tolist() == [2] and not len(tr) and not len(ts)
    assert [env.agent_name(i) for i in (0, 1, 2)] == ["runner_0", "runner_1", "scout_0"]
    np.testing.assert_array_equal(dr.obs[0], [[0, 0, 1], [0, 1, 1]])
    # masks: PettingZoo 1 = allowed -> fledge True = unavailable; runner i may not take (t + i) % 3
    np.testing.assert_array_equal(dr.action_mask[0], [[True, False, False], [False, True, False]])
    assert ds.action_mask is None
    np.testing.assert_array_equal(ds.obs[0], [[1, 0, 0, 0]])  # cell one-hot
    np.testing.assert_array_equal(ds.obs[1], [[0, 0]])  # pos = (t, index)
    assert arena.seeds == [40]

    # t = 1: everybody acts; scout action -1 -> 0.0, runner rewards are the chosen indices
    _act_all(env, scout_value=-1.0)
    env.step()
    (dr, tr), (ds, ts) = _steps(env).values()
    assert arena.received[-1]["scout_0"][0] == 0.0
    assert int(arena.received[-1]["runner_0"]) == 1 and int(arena.received[-1]["runner_1"]) == 0
    assert dr.reward.tolist() == [1.0, 0.0] and ds.reward.tolist() == [0.0]
    np.testing.assert_array_equal(dr.action_mask[0], [[False, True, False], [False, False, True]])

    # t = 2: scout_0 terminates: TerminalSteps (not interrupted), gone from DecisionSteps
    _act_all(env, scout_value=1.0)
    env.step()
    (dr, tr), (ds, ts) = _steps(env).values()
    assert arena.received[-1]["scout_0"][0] == 10.0
    assert ts.agent_id.tolist() == [2] and ts.interrupted.tolist() == [False] and ts.reward.tolist() == [10.0]
    np.testing.assert_array_equal(ts.obs[1], [[2, 0]])  # its final observation
    assert len(ds) == 0 and dr.agent_id.tolist() == [0, 1] and not len(tr)

    # t = 3: scout_1 appears with a new id
    _act_all(env)
    env.step()
    (dr, tr), (ds, ts) = _steps(env).values()
    assert ds.agent_id.tolist() == [3] and env.agent_name(3) == "scout_1" and ds.reward.tolist() == [0.0]
    assert not len(ts)
    np.testing.assert_array_equal(ds.obs[1], [[3, 1]])

    # t = 4, then t = 5: everybody truncated -> reset with seed + 1, new episode in the same step
    _act_all(env)
    env.step()
    _act_all(env, scout_value=0.0)
    env.step()
    (dr, tr), (ds, ts) = _steps(env).values()
    assert tr.agent_id.tolist() == [0, 1] and tr.interrupted.all()
    assert ts.agent_id.tolist() == [3] and ts.interrupted.all() and ts.reward.tolist() == [5.0]
    np.testing.assert_array_equal(tr.obs[0], [[5, 0, 1], [5, 1, 1]])  # final observations
    assert dr.agent_id.tolist() == [0, 1] and ds.agent_id.tolist() == [2]  # same names keep their ids
    assert (dr.reward == 0).all() and (ds.reward == 0).all()
    np.testing.assert_array_equal(dr.obs[0], [[0, 0, 2], [0, 1, 2]])
    assert arena.seeds == [40, 41]
    assert arena.masked_taken == 0
    assert all(len(r) == n for r, n in zip(arena.received, [3, 3, 2, 3, 3]))


def test_agents_without_actions_get_an_allowed_default() -> None:
    arena = Arena()
    env = PettingZooEnv(arena, seed=0)
    for _ in range(7):
        env.step()  # no actions at all: first step resets, then defaults
        _steps(env)
    assert arena.masked_taken == 0
    assert arena.received[0]["scout_0"][0] == 5.0  # zero action rescaled to the middle of [0, 10]


def test_set_action_for_agent_and_errors() -> None:
    arena = Arena()
    env = PettingZooEnv(arena, seed=0)
    env.reset()
    env.set_action_for_agent("runner", 1, ActionTuple(discrete=np.array([[2]], np.int32)))
    with pytest.raises(ActionError, match="did not request a decision"):
        env.set_action_for_agent("runner", 2, ActionTuple(discrete=np.array([[1]], np.int32)))
    with pytest.raises(ActionError, match="continuous actions have shape"):
        env.set_actions("scout", ActionTuple(continuous=np.zeros((2, 1), np.float32)))
    env.step()
    assert int(arena.received[-1]["runner_1"]) == 2
    assert int(arena.received[-1]["runner_0"]) == 1  # default: first allowed (0 was masked)
    from fledge.errors import UnknownBehaviorError

    with pytest.raises(UnknownBehaviorError, match="runner, scout"):
        env.get_steps("nobody")


def test_masks_from_infos() -> None:
    arena = Arena(mask_in_info=True)
    env = PettingZooEnv(arena, seed=0)
    env.reset()
    d, _ = env.get_steps("runner")
    np.testing.assert_array_equal(d.action_mask[0], [[True, False, False], [False, True, False]])
    for _ in range(6):
        _act_all(env)
        env.step()
    assert arena.masked_taken == 0


def test_agents_of_one_behavior_must_share_spaces() -> None:
    with pytest.raises(ConfigError) as err:
        PettingZooEnv(Arena(odd_runner=True), seed=0)
    msg = str(err.value)
    assert "'runner_0'" in msg and "'runner_1'" in msg and "behavior 'runner'" in msg and "Box" in msg


def test_factory_callable_and_reproducibility() -> None:
    def run(seed: int) -> list[int | None]:
        env = PettingZooEnv(lambda: Arena(max_steps=2), seed=seed)
        for _ in range(6):
            env.step()
        return env.env.seeds

    assert run(3) == [3, 4, 5] and run(3) == run(3) and run(4) == [4, 5, 6]
    env = PettingZooEnv(lambda: Arena(max_steps=2), seed=3)
    env.seed(9)
    env.reset()
    assert env.env.seeds == [9]


def test_aec_env_is_converted() -> None:
    arena = Arena()
    aec = parallel_to_aec_wrapper(arena)  # an AECEnv (is_parallelizable) -> aec_to_parallel_wrapper
    env = PettingZooEnv(aec, seed=1)
    assert type(env.env).__name__ == "aec_to_parallel_wrapper"
    assert list(env.behavior_specs) == ["runner", "scout"]
    terminal_scouts = []
    for _ in range(8):
        _act_all(env)
        env.step()
        s = _steps(env)
        terminal_scouts += s["scout"][1].agent_id.tolist()
    assert 2 in terminal_scouts and arena.seeds[:2] == [1, 2]
    assert arena.masked_taken == 0


def test_turn_based_aec_is_refused() -> None:
    class TurnBased(AECEnv):
        metadata: dict[str, Any] = {"name": "turns_v0"}

        def __init__(self) -> None:
            super().__init__()
            self.possible_agents = ["player_0", "player_1"]

    with pytest.raises(ConfigError, match="turns_v0.*not parallelizable"):
        PettingZooEnv(TurnBased(), seed=0)


def test_registry_pettingzoo_names(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("fledge_test_zoo_v0")
    module.parallel_env = lambda **kw: Arena(**kw)  # type: ignore[attr-defined]
    module.custom = lambda: Arena(max_steps=2)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fledge_test_zoo_v0", module)
    env = registry.make("pettingzoo:fledge_test_zoo_v0", seed=5, max_steps=3)
    assert isinstance(env, PettingZooEnv) and env.env.max_steps == 3 and list(env.behavior_specs) == ["runner", "scout"]
    env.reset()
    assert env.env.seeds == [5]
    env = registry.make("pettingzoo:fledge_test_zoo_v0:custom", seed=1)
    assert env.env.max_steps == 2
    with pytest.raises(UnknownEnvironmentError, match="no_such_zoo"):
        registry.make("pettingzoo:no_such_zoo.thing_v1")
    with pytest.raises(UnknownEnvironmentError, match="nope"):
        registry.make("pettingzoo:fledge_test_zoo_v0:nope")
    with pytest.raises(ConfigError, match="num_agents"):
        registry.make("pettingzoo:fledge_test_zoo_v0", num_agents=3)
    with pytest.raises(ConfigError, match="does not accept"):
        make_pettingzoo("fledge_test_zoo_v0", colour="red")


def test_missing_pettingzoo_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pettingzoo", None)
    monkeypatch.delitem(sys.modules, "fledge.envs.pettingzoo")
    with pytest.raises(ConfigError, match=r"pip install 'fledge\[pettingzoo\]'"):
        importlib.import_module("fledge.envs.pettingzoo")


@pytest.mark.parametrize("name", ["pettingzoo.classic.rps_v2", "classic/rps-v2"])
def test_real_pettingzoo_rock_paper_scissors(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """pettingzoo.classic.rps_v2 (an AEC env behind `parallel_env`). It imports pygame for rendering
    only; without pygame a stand-in module is used, since nothing is rendered."""
    if importlib.util.find_spec("pygame") is None:
        from unittest import mock

        monkeypatch.setitem(sys.modules, "pygame", mock.MagicMock(name="pygame"))
    try:
        importlib.import_module("pettingzoo.classic.rps.rps")
    except ImportError as exc:
        pytest.skip(f"pettingzoo.classic.rps_v2 cannot be imported here ({exc})")
    if "/" in name and not hasattr(pettingzoo, "parallel_registry"):
        pytest.skip(f"this pettingzoo {pettingzoo.__version__} has no environment registry (added in 1.27)")
    env = registry.make(f"pettingzoo:{name}", seed=0, max_cycles=3)
    assert list(env.behavior_specs) == ["player"]
    spec = env.behavior_specs["player"]
    assert spec.action_spec == ActionSpec(0, (3,)) and [o.shape for o in spec.observation_specs] == [(4,)]
    rng = np.random.default_rng(0)
    ended = []
    for _ in range(7):
        d, t = _steps(env)["player"]
        assert d.agent_id.tolist() == [0, 1]
        ended += t.interrupted.tolist()
        assert (t.reward.sum() == 0) and (d.reward.sum() == 0)  # zero-sum game
        env.set_actions("player", ActionTuple(discrete=rng.integers(0, 3, (len(d), 1)).astype(np.int32)))
        env.step()
    assert ended == [True] * 4  # two episodes of 3 cycles, both players truncated
    env.close()


class GroupedArena(Arena):
    """The Arena whose runners report a group reward, and whose scout_0 says it is in group 9."""

    def _info(self, agent: str) -> dict[str, Any]:
        info = super()._info(agent)
        if agent.startswith("runner"):
            info["group_reward"] = 0.5
        if agent == "scout_0":
            info["group_id"] = 9
        return info


def test_groups_per_behavior_and_from_infos() -> None:
    env = PettingZooEnv(GroupedArena(), seed=0)
    env.reset()
    steps = _steps(env)
    runners, scouts = steps["runner"][0], steps["scout"][0]
    assert runners.group_id.tolist() == [1, 1]  # the agents of one behavior form one group: runner -> 1
    assert scouts.group_id.tolist() == [9]  # infos[agent]["group_id"] moves an agent
    _act_all(env)
    env.step()
    np.testing.assert_array_equal(_steps(env)["runner"][0].group_reward, [0.5, 0.5])
    bad = PettingZooEnv(GroupedArena(), seed=0)
    bad.env._info = lambda agent: {"group_id": "red"}  # type: ignore[method-assign]
    with pytest.raises(EnvironmentFault, match="group_id"):
        bad.reset()
