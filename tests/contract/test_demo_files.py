"""The `.demo` format: a golden file built by hand from the spec's layout, read and written byte for byte;
bad files refused with messages that say what, where and what to do; a recorded heuristic demo."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

from fledge.envs import registry
from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, DecisionSteps, ObservationSpec, TerminalSteps
from fledge.imitation.demo_file import (
    BODY_OFFSET,
    DemoFileError,
    decode_demo,
    encode_demo,
    encode_varint,
    make_meta,
    read_demo_file,
)
from fledge.imitation.demo_reader import load_demonstrations
from fledge.imitation.demo_writer import DemoWriter
from fledge.play import play

GOLDEN = Path(__file__).parent / "golden" / "golden.demo"
SPEC = BehaviorSpec([ObservationSpec.vector(3, "VectorSensor")], ActionSpec.create_hybrid(1, (3,)))


def _maker() -> object:
    spec = importlib.util.spec_from_file_location("make_golden_demo", GOLDEN.with_name("make_golden_demo.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_file_is_what_the_spec_layout_gives() -> None:
    assert GOLDEN.read_bytes() == _maker().golden_bytes()  # type: ignore[attr-defined]


def test_varint_matches_the_hand_encoding() -> None:
    maker = _maker()
    for n in (0, 1, 127, 128, 300, 16383, 16384, 2**31 - 1):
        assert encode_varint(n) == maker.varint(n)  # type: ignore[attr-defined]
    assert encode_varint(300) == b"\xac\x02"


def test_reader_gives_the_golden_rows() -> None:
    data = load_demonstrations(GOLDEN, SPEC, "test")
    assert data.steps == 2 and data.episodes == 1
    np.testing.assert_array_equal(data.obs[0], [[1.0, 0.0, -1.0], [0.25, 2.0, 0.0]])
    np.testing.assert_array_equal(data.continuous_actions, [[0.5], [-0.75]])
    np.testing.assert_array_equal(data.discrete_actions, [[1], [0]])
    np.testing.assert_array_equal(data.rewards, [0.5, 1.0])  # the reward each action led to
    np.testing.assert_array_equal(data.done, [False, True])
    np.testing.assert_array_equal(data.action_masks, [[True, True, True], [True, True, False]])  # True = allowed
    demo = read_demo_file(GOLDEN)
    assert demo.meta.number_steps == 2 and demo.meta.number_episodes == 1 and demo.meta.mean_reward == 1.5
    assert demo.brain.brain_name == "Golden"


def test_round_trip_is_byte_for_byte() -> None:
    raw = GOLDEN.read_bytes()
    assert encode_demo(decode_demo(raw, "golden")) == raw


def test_writer_output_equals_the_golden_file(tmp_path: Path) -> None:
    writer = DemoWriter(tmp_path / "golden.demo", "Golden", SPEC)

    def decision(obs: list[float], reward: float, mask: list[bool]) -> DecisionSteps:
        return DecisionSteps(
            obs=[np.array([obs], np.float32)],
            reward=np.array([reward], np.float32),
            agent_id=np.array([5], np.int32),
            action_mask=[np.array([mask])],
            group_id=np.zeros(1, np.int32),
            group_reward=np.zeros(1, np.float32),
        )

    def action(c: float, d: int) -> ActionTuple:
        return ActionTuple(np.array([[c]], np.float32), np.array([[d]], np.int32))

    writer.decided(decision([1.0, 0.0, -1.0], 0.0, [False, False, False]), action(0.5, 1))
    writer.decided(decision([0.25, 2.0, 0.0], 0.5, [False, False, True]), action(-0.75, 0))
    writer.terminal(
        TerminalSteps(
            obs=[np.array([[0.0, 0.0, 4.0]], np.float32)],
            reward=np.array([1.0], np.float32),
            interrupted=np.array([False]),
            agent_id=np.array([5], np.int32),
            group_id=np.zeros(1, np.int32),
            group_reward=np.zeros(1, np.float32),
        )
    )
    path = writer.close()
    assert path.read_bytes() == GOLDEN.read_bytes()


def test_long_names_are_shortened_to_fit_the_header() -> None:
    meta = make_meta("x" * 100, 10**6, 10**4, -123.5)
    assert len(encode_varint(meta.ByteSize())) + meta.ByteSize() <= BODY_OFFSET
    assert meta.demonstration_name.startswith("xxx")


# -- refusals ---------------------------------------------------------------------------------------


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    raw = GOLDEN.read_bytes()
    cut = tmp_path / "cut.demo"
    cut.write_bytes(raw[:-10])
    with pytest.raises(DemoFileError, match=r"cut.demo.*truncated.*record the demonstration again"):
        load_demonstrations(cut, SPEC, "behavior 'Golden'")
    cut.write_bytes(raw[:20])
    with pytest.raises(DemoFileError, match="too short"):
        load_demonstrations(cut, SPEC, "x")


def test_a_file_that_is_not_a_demo_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "config.demo"
    bogus.write_text("behaviors:\n  Basic:\n    trainer_type: ppo\n    max_steps: 500000\n" * 3)
    with pytest.raises(DemoFileError, match=r"config.demo.*not (an ML-Agents )?.?\.?demo|config.demo.*not a"):
        load_demonstrations(bogus, None, "test")


def test_a_demo_of_another_spec_names_both_specs(tmp_path: Path) -> None:
    basic = BehaviorSpec([ObservationSpec.vector(20)], ActionSpec.create_discrete((3,)))
    with pytest.raises(DemoFileError) as info:
        load_demonstrations(GOLDEN, basic, "behavior 'Basic': behavioral_cloning.demo_path")
    text = str(info.value)
    assert "behavior 'Basic': behavioral_cloning.demo_path" in text
    assert "observations [(3,)]" in text and "observations [(20,)]" in text
    assert "Discrete: (3,)" in text and "Continuous: 1" in text


def test_empty_and_missing_folders_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DemoFileError, match="holds no .demo file"):
        load_demonstrations(tmp_path, SPEC, "test")
    with pytest.raises(DemoFileError, match="no demonstration at .*record one with"):
        load_demonstrations(tmp_path / "nothing.demo", SPEC, "test")


def test_a_folder_loads_every_demo(tmp_path: Path) -> None:
    for name in ("a.demo", "b.demo"):
        (tmp_path / name).write_bytes(GOLDEN.read_bytes())
    (tmp_path / "notes.txt").write_text("ignored")
    assert load_demonstrations(tmp_path, SPEC, "test").steps == 4


# -- recording ----------------------------------------------------------------------------------------


def test_recorded_basic_heuristic_demo_reaches_the_heuristic_return(tmp_path: Path) -> None:
    path = tmp_path / "ExpertBasic.demo"
    out = io.StringIO()
    play(None, heuristic="Basic", record_demo=path, record_demo_steps=70, out=out)
    assert "Recorded a demonstration of 'Basic'" in out.getvalue()
    spec = registry.make("Basic").behavior_specs["Basic"]
    data = load_demonstrations(path, spec, "test")
    assert data.steps >= 63 and data.episodes >= 9
    returns = np.add.reduceat(data.rewards, np.r_[0, np.flatnonzero(data.done)[:-1] + 1])
    np.testing.assert_allclose(returns, 0.93, atol=1e-5)  # every recorded episode: the optimal return
    assert (data.discrete_actions == 2).all()
    meta = read_demo_file(path).meta
    assert meta.number_episodes == data.episodes and meta.mean_reward == pytest.approx(0.93, abs=1e-5)


def test_recorded_demo_reads_back_in_any_agent_interleaving(tmp_path: Path) -> None:
    path = tmp_path / "ExpertHallway.demo"
    play(None, heuristic="Hallway", record_demo=path, record_demo_steps=200, out=io.StringIO())
    data = load_demonstrations(path, registry.make("Hallway").behavior_specs["Hallway"], "test")
    # 16 agents interleave; each episode is 6 decisions ending at the right goal (+1)
    assert data.episodes >= 16
    assert np.isclose(data.rewards[data.done], 1.0).all()


def test_fledge_play_records_a_demo_from_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fledge.play import command

    path = tmp_path / "demos" / "ExpertMaskedChoice.demo"
    assert command(["--heuristic", "MaskedChoice", "--record-demo", str(path), "--record-demo-steps", "40"]) == 0
    assert "Recorded a demonstration of 'MaskedChoice'" in capsys.readouterr().out
    spec = registry.make("MaskedChoice").behavior_specs["MaskedChoice"]
    data = load_demonstrations(path, spec, "test")
    assert data.steps >= 40 - 4 and np.isclose(data.rewards, 1.0).all()
    assert not data.action_masks.all()  # the task's masks are kept (one action masked per decision)


def test_fledge_play_refuses_what_it_cannot_record(tmp_path: Path) -> None:
    from fledge.errors import ConfigError
    from fledge.play import command

    with pytest.raises(ConfigError, match="name a run to play, or --heuristic ENV"):
        command([])
    with pytest.raises(ConfigError, match="no scripted policy for this environment; the built-in tasks with one are"):
        command(["--heuristic", "SoccerTwos", "--max-steps", "1"])
    with pytest.raises(ConfigError, match="must end in .demo"):
        command(["--heuristic", "Basic", "--record-demo", str(tmp_path / "x.txt")])
    with pytest.raises(ConfigError, match="--record-demo-steps needs --record-demo"):
        command(["--heuristic", "Basic", "--record-demo-steps", "5"])


def test_png_compressed_observations_of_unity_demos_are_read(tmp_path: Path) -> None:
    from PIL import Image

    from fledge.envs.api import DimensionProperty, ObservationType
    from fledge.envs.unity.protocol.demonstration_pb2 import AgentInfoActionPairProto
    from fledge.envs.unity.protocol.observation_pb2 import (
        PNG,
        ActionSpecProto,
        AgentActionProto,
        AgentInfoProto,
        BrainParametersProto,
        ObservationProto,
    )
    from fledge.imitation.demo_file import DemoFile, write_demo_file

    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3) * 5  # (H, W, C)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")

    def record(done: bool) -> AgentInfoActionPairProto:
        obs = ObservationProto(shape=[3, 4, 4], compression_type=PNG, compressed_data=buffer.getvalue())
        info = AgentInfoProto(id=1, done=done, reward=1.0 if done else 0.0, observations=[obs])
        return AgentInfoActionPairProto(agent_info=info, action_info=AgentActionProto(discrete_actions=[1]))

    demo = DemoFile(
        meta=make_meta("visual", 1, 1, 1.0),
        brain=BrainParametersProto(brain_name="V", action_spec=ActionSpecProto(discrete_branch_sizes=[2])),
        pairs=[record(False), record(True)],
    )
    path = write_demo_file(tmp_path / "visual.demo", demo)
    visual = ObservationSpec((3, 4, 4), (DimensionProperty.NONE,) * 3, ObservationType.DEFAULT, "")
    data = load_demonstrations(path, BehaviorSpec([visual], ActionSpec.create_discrete((2,))), "test")
    np.testing.assert_allclose(data.obs[0][0], np.moveaxis(pixels, 2, 0) / 255.0, atol=1e-6)
    assert data.rewards.tolist() == [1.0] and data.done.tolist() == [True]


@pytest.mark.parametrize("env", ["3DBall", "Basic", "Hallway", "GridWorld", "MoveToGoal2D-Hybrid", "MaskedChoice"])
def test_every_heuristic_acts_through_the_common_interface(env: str) -> None:
    from fledge.envs.builtin.heuristics import make_heuristic

    built = registry.make(env, seed=3)
    built.reset()
    (behavior,) = built.behavior_specs
    policy = make_heuristic(env, built)
    returns: list[float] = []
    totals: dict[int, float] = {}
    for _ in range(120):
        decision, terminal = built.get_steps(behavior)
        policy.end_episodes(terminal.agent_id)
        for agent, reward in zip(terminal.agent_id.tolist(), terminal.reward.tolist()):
            returns.append(totals.pop(agent, 0.0) + reward)
        for agent, reward in zip(decision.agent_id.tolist(), decision.reward.tolist()):
            totals[agent] = totals.get(agent, 0.0) + reward
        built.set_actions(behavior, policy.decide(decision))  # validated against the spec here
        built.step()
    built.close()
    optimum = built.task.optimal_return() if hasattr(built, "task") else None
    if returns and optimum is not None:
        assert np.mean(returns) >= 0.9 * optimum - 0.05, (env, np.mean(returns), optimum)


def test_keyboard_play_records_what_the_keys_chose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 7 x right (an empty line repeats it) reaches the large goal: return 0.93; then an unknown key, then stop
    monkeypatch.setattr("sys.stdin", io.StringIO("d\n" + "\n" * 6 + "z\nd\nq\n"))
    path = tmp_path / "keys.demo"
    out = io.StringIO()
    result = play(None, keyboard="Basic", record_demo=path, episodes=5, out=out)
    assert result.interrupted and result.returns == pytest.approx([0.93])
    assert "unknown key 'z'" in out.getvalue() and "Recorded a demonstration of 'Basic'" in out.getvalue()
    data = load_demonstrations(path, registry.make("Basic").behavior_specs["Basic"], "test")
    assert data.discrete_actions[:, 0].tolist() == [2] * 7  # the 8th decision has no outcome yet: no row
    assert data.episodes == 1


def test_keyboard_play_refuses_tasks_without_a_key_map() -> None:
    from fledge.errors import ConfigError

    with pytest.raises(ConfigError, match="--keyboard 3DBall: no key map for this environment"):
        play(None, keyboard="3DBall", out=io.StringIO())


def test_random_bytes_are_not_a_demo(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(20):
        junk = tmp_path / f"junk{i}.demo"
        junk.write_bytes(rng.integers(0, 256, size=int(rng.integers(40, 400)), dtype=np.uint8).tobytes())
        with pytest.raises(DemoFileError, match=r"junk\d+\.demo"):
            load_demonstrations(junk, None, "test")
