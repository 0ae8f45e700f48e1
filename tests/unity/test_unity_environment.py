"""UnityEnvironment against the fake player: a real process, a real gRPC connection, no mocks.

The low-level loop (reset, get_steps, set_actions, step, close), visual observations, several
players at once, and every fault a player can show: it crashes, never connects, holds no port,
sends garbage, sends observations of the wrong size, or speaks an old protocol version.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from unity_helpers import PLAYER, free_base_port

from fledge.envs import registry
from fledge.envs.api import ActionTuple, DimensionProperty, StatsAggregationMethod
from fledge.envs.unity.communicator import UnityTimeoutError, UnityWorkerInUseError
from fledge.envs.unity.environment import UnityEnvironment
from fledge.envs.unity.launcher import PlayerExitedError, find_executable, player_arguments
from fledge.envs.unity.versions import UnityVersionError, versions_compatible
from fledge.errors import ConfigError, EnvironmentFault, UnknownEnvironmentError

BEHAVIOR = "Ball3DFake?team=0"


def make_env(tmp_path: Path, *args: str, timeout: float = 20, worker_id: int = 0) -> UnityEnvironment:
    return UnityEnvironment(
        str(PLAYER),
        worker_id=worker_id,
        base_port=free_base_port(worker_id + 1),
        seed=3,
        no_graphics=True,
        timeout_wait=timeout,
        additional_args=["--agents", "4", *args],
        log_folder=tmp_path / "run_logs",
    )


def test_the_low_level_loop_on_a_player(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--max-steps", "10")
    process = env._process
    assert process is not None
    try:
        assert "-nographics" in process.command and "--mlagents-port" in process.command
        spec = env.behavior_specs[BEHAVIOR]
        assert spec.action_spec.continuous_size == 2 and spec.action_spec.discrete_branches == ()
        assert [o.shape for o in spec.observation_specs] == [(8,)]
        env.reset()
        ended = interrupted = 0
        stats: dict[str, list[tuple[float, object]]] = {}
        for _ in range(25):
            for key, values in env.get_stats().items():
                stats.setdefault(key, []).extend(values)
            decision, terminal = env.get_steps(BEHAVIOR)
            assert decision.obs[0].dtype == np.float32 and decision.obs[0].shape == (len(decision), 8)
            ended += len(terminal)
            interrupted += int(terminal.interrupted.sum())
            env.set_actions(BEHAVIOR, spec.action_spec.random_action(len(decision)))
            env.step()
        assert ended >= 4 and interrupted >= 1  # episodes of 10 decisions end by the step limit
        assert len(stats["Fake/Episode Reward"]) == ended  # the player's stats side channel
        assert stats["Fake/Time Scale"][-1][1] == StatsAggregationMethod.MOST_RECENT
        decision, _ = env.get_steps(BEHAVIOR)
        first = int(decision.agent_id[0])
        env.set_action_for_agent(BEHAVIOR, first, ActionTuple(np.ones((1, 2), np.float32)))
        env.step()
        with pytest.raises(EnvironmentFault, match="did not request a decision"):
            env.set_action_for_agent(BEHAVIOR, 999, ActionTuple(np.ones((1, 2), np.float32)))
    finally:
        env.close()
    assert process.process.returncode is not None  # the player quit on status 400
    log = (tmp_path / "run_logs" / "Player-0.log").read_text()
    offered = re.search(r"trainer capabilities: (.*)", log).group(1).split()  # type: ignore[union-attr]
    assert "baseRLCapabilities" in offered and "hybridActions" in offered
    assert "trainingAnalytics" not in offered  # fledge sends no analytics and says so


def test_a_behavior_announced_mid_run_appears_with_its_agents(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--late-behavior", "3", "--max-steps", "0")
    late = "Ball3DFakeLate?team=0"
    try:
        env.reset()
        for step in range(1, 6):
            for name, spec in env.behavior_specs.items():
                decision, _ = env.get_steps(name)
                env.set_actions(name, spec.action_spec.random_action(len(decision)))
            env.step()
            if step < 3:
                assert list(env.behavior_specs) == [BEHAVIOR]
            elif step == 3:  # agents 2 and 3 end their episode in the first behavior, then decide in the new one
                assert list(env.behavior_specs) == [BEHAVIOR, late]
                decision, terminal = env.get_steps(BEHAVIOR)
                assert terminal.agent_id.tolist() == [2, 3] and terminal.interrupted.all()
                assert decision.agent_id.tolist() == [0, 1]
                assert env.get_steps(late)[0].agent_id.tolist() == [2, 3]
                assert env.behavior_specs[late] == env.behavior_specs[BEHAVIOR]
            else:
                assert len(env.get_steps(late)[0]) == 2 and len(env.get_steps(BEHAVIOR)[0]) == 2
    finally:
        env.close()


def test_action_masks_reach_the_policy_and_masked_turns_are_not_chosen(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--discrete")
    rng = np.random.default_rng(0)
    masked = 0
    try:
        spec = env.behavior_specs[BEHAVIOR]
        assert spec.action_spec.continuous_size == 0 and spec.action_spec.discrete_branches == (3, 3)
        env.reset()
        for _ in range(60):
            decision, _ = env.get_steps(BEHAVIOR)
            assert decision.action_mask is not None and [m.shape for m in decision.action_mask] == [(4, 3)] * 2
            masked += int(np.any(np.concatenate(decision.action_mask, axis=1), axis=1).sum())
            # a random choice among the allowed turns of each branch (True = masked)
            choice = [[rng.choice(np.flatnonzero(~m[i])) for m in decision.action_mask] for i in range(len(decision))]
            env.set_actions(BEHAVIOR, ActionTuple(discrete=np.array(choice, dtype=np.int32)))
            env.step()
    finally:
        env.close()
    assert masked > 0  # random turns reach the 10-degree limit, where the player masks further turns
    closing = (tmp_path / "run_logs" / "Player-0.log").read_text().splitlines()[-1]
    assert f"masked decisions {masked}" in closing and "mask violations 0" in closing


def test_visual_observations_are_decoded_channel_first(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--visual")
    try:
        vector, camera = env.behavior_specs[BEHAVIOR].observation_specs
        assert camera.shape == (3, 84, 84)
        assert camera.dimension_property[1] == DimensionProperty.TRANSLATIONAL_EQUIVARIANCE
        env.reset()
        decision, _ = env.get_steps(BEHAVIOR)
        image = decision.obs[1]
        assert image.shape == (4, 3, 84, 84) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0
    finally:
        env.close()


@pytest.mark.parametrize("processes", [False, True], ids=["in-process", "worker-processes"])
def test_two_players_as_one_pool_through_the_registry(tmp_path: Path, processes: bool) -> None:
    from fledge.rollout.workers import EnvPool

    base = free_base_port(2)
    kwargs = {
        "base_port": base,
        "timeout_wait": 20.0,
        "additional_args": ["--agents", "3"],
        "log_folder": str(tmp_path),
    }
    pool = EnvPool(env_name=str(PLAYER), copies=2, seed=1, processes=processes, env_kwargs=kwargs, worker_ids=True)
    try:
        for _ in range(5):
            decision, _ = pool.get_steps(BEHAVIOR)
            assert len(decision) == 6
            pool.set_actions(BEHAVIOR, pool.behavior_specs[BEHAVIOR].action_spec.random_action(6))
            pool.step()
    finally:
        pool.close()
    assert sorted(p.name for p in tmp_path.glob("Player-*.log")) == ["Player-0.log", "Player-1.log"]


# -- faults -----------------------------------------------------------------------------------------


def test_a_player_that_crashes_gives_its_exit_code_and_log(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--crash-after", "3")
    try:
        env.reset()
        with pytest.raises(PlayerExitedError, match=r"worker 0 exited with code 3.*Player-0\.log"):
            for _ in range(10):
                env.step()
    finally:
        env.close()


def test_a_player_that_never_connects_times_out(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(UnityTimeoutError, match=r"did not connect within 5 s \(--timeout-wait\)"):
        make_env(tmp_path, "--never-connect", timeout=5)
    assert time.monotonic() - start < 15  # the wait, then terminate


def test_a_busy_port_is_named_with_what_to_do(tmp_path: Path) -> None:
    port = free_base_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("localhost", port))
        holder.listen()
        with pytest.raises(UnityWorkerInUseError, match=rf"worker 2: port {port} is already in use.*--base-port"):
            UnityEnvironment(str(PLAYER), worker_id=2, base_port=port - 2, timeout_wait=5)


def test_garbage_on_the_port_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentFault, match="Unity player of worker 0 exited|not an ML-Agents message"):
        make_env(tmp_path, "--garbage", timeout=10)


def test_observations_of_the_wrong_size_name_behavior_agent_and_shapes(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--wrong-shapes")
    try:
        env.reset()
        with pytest.raises(
            EnvironmentFault, match=rf"behavior '{re.escape(BEHAVIOR)}', agent \d+: observation 0 has 7 values"
        ):
            for _ in range(10):
                env.step()
    finally:
        env.close()


def test_an_old_protocol_version_is_refused_naming_both_versions(tmp_path: Path) -> None:
    with pytest.raises(UnityVersionError, match=r"communication version 0\.9\.0 .*speaks 1\.5\.0"):
        make_env(tmp_path, "--old-version")


def test_version_rule() -> None:
    assert versions_compatible("1.5.0") and versions_compatible("1.0.0") and versions_compatible("1.9")
    assert not versions_compatible("0.9.0") and not versions_compatible("2.0.0") and not versions_compatible("x")
    assert versions_compatible("0.5.0", "0.5.1") and not versions_compatible("0.4.0", "0.5.0")


def test_a_compatible_older_version_is_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fledge.envs.unity.protocol.unity_message_pb2 import UnityRLInitializationOutputProto
    from fledge.envs.unity.versions import check_versions

    with caplog.at_level(logging.WARNING, logger="fledge"):
        check_versions(UnityRLInitializationOutputProto(communication_version="1.0.0"), worker="Unity worker 0")
    assert "speaks communication version 1.0.0" in caplog.text and "1.5.0" in caplog.text


# -- finding and starting players ---------------------------------------------------------------------


def _program(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_players_are_found_as_mlagents_finds_them(tmp_path: Path) -> None:
    linux = _program(tmp_path / "builds" / "Ball.x86_64")
    assert find_executable(str(tmp_path / "builds" / "Ball")) == linux.resolve()
    assert find_executable(str(linux)) == linux.resolve()
    mac = _program(tmp_path / "Mac.app" / "Contents" / "MacOS" / "Mac")
    assert find_executable(str(tmp_path / "Mac")) == mac.resolve()
    folder = _program(tmp_path / "only" / "Game")
    (tmp_path / "only" / "data.txt").write_text("not a program")
    assert find_executable(str(tmp_path / "only")) == folder.resolve()
    with pytest.raises(UnknownEnvironmentError, match=r"Tried: .*missing\.x86_64.*missing\.exe"):
        find_executable(str(tmp_path / "missing"))
    assert registry.is_unity(str(linux)) and registry.is_unity("unity-editor")
    assert not registry.is_unity("3DBall") and not registry.is_unity("gym:CartPole-v1")
    with pytest.raises(UnknownEnvironmentError, match="No Unity player executable found"):
        registry.make(str(tmp_path / "nothing-here"))
    (tmp_path / "plain").write_text("x")
    os.chmod(tmp_path / "plain", 0o644)
    assert not registry.is_unity(str(tmp_path / "plain"))


def test_player_arguments_follow_mlagents() -> None:
    args = player_arguments(
        port=5006, log_file=Path("r/run_logs/Player-1.log"), no_graphics=True, additional_args=["--x"]
    )
    assert args == [
        "--mlagents-port",
        "5006",
        "-logFile",
        "r/run_logs/Player-1.log",
        "-nographics",
        "-batchmode",
        "--x",
    ]
    own_log = player_arguments(port=5005, log_file=Path("p.log"), no_graphics=False, additional_args=["-logfile", "a"])
    assert own_log == ["--mlagents-port", "5005", "-logfile", "a"]


def test_the_editor_is_waited_for_with_the_message_users_know(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Without a file name fledge starts nothing and waits; here the fake player plays the Editor's part."""
    import subprocess
    import threading

    port = free_base_port()
    command = [str(PLAYER), "--mlagents-port", str(port), "--agents", "2", "-logFile", str(tmp_path / "editor.log")]
    started: list[subprocess.Popen[bytes]] = []
    timer = threading.Timer(0.5, lambda: started.append(subprocess.Popen(command)))
    timer.start()
    with caplog.at_level(logging.INFO, logger="fledge"):
        env = UnityEnvironment(None, base_port=port, timeout_wait=20)
    try:
        assert (
            f"Listening on port {port}. Start training by pressing the Play button in the Unity Editor." in caplog.text
        )
        env.reset()
        assert len(env.get_steps(BEHAVIOR)[0]) == 2
    finally:
        env.close()
        timer.join()
        for process in started:
            process.wait(timeout=10)
    with pytest.raises(ConfigError, match="worker_id must be 0"):
        UnityEnvironment(None, worker_id=1)


def test_a_player_without_the_unity_dependencies_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for module in [m for m in sys.modules if m.startswith("fledge.envs.unity.") and "launcher" not in m]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "grpc", None)  # as if grpcio were not installed
    with pytest.raises(ConfigError, match=r"pip install 'fledge\[unity\]'"):
        registry.make(str(PLAYER))


def test_environment_parameters_reach_the_player_on_their_side_channel(tmp_path: Path) -> None:
    env = make_env(tmp_path, "--max-steps", "10")
    try:
        assert env.environment_parameter_names() is None  # the scene reads what it knows
        constant = {"sampler_type": "constant", "sampler_parameters": {"value": 2.5}, "seed": 0}
        uniform = {"sampler_type": "uniform", "sampler_parameters": {"min_value": 1, "max_value": 2}, "seed": 4}
        env.set_environment_parameters({"gravity": constant, "scale": uniform})
        env.reset()  # the queued messages go with the reset
        env.step()
    finally:
        env.close()
    log = (tmp_path / "run_logs" / "Player-0.log").read_text()
    assert "environment parameter gravity = 2.5" in log
    assert "environment parameter scale: sampler (type 1)" in log  # data type 1: a sampler follows
