"""`fledge learn --env <player>` on the fake player: two players, checkpoints, ONNX, resume, a crash."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import yaml
from unity_helpers import PLAYER, free_base_port

from fledge import api
from fledge.cli import main
from fledge.config.flags import parse_learn_args, resolve_run_options

BRAIN = "Ball3DFake"


def write_config(tmp_path: Path, max_steps: int) -> Path:
    config = {
        "behaviors": {
            BRAIN: {
                "trainer_type": "ppo",
                "hyperparameters": {"batch_size": 64, "buffer_size": 512, "learning_rate": 3.0e-3, "num_epoch": 2},
                "network_settings": {"hidden_units": 16, "num_layers": 1},
                "max_steps": max_steps,
                "time_horizon": 32,
                "summary_freq": 500,
                "checkpoint_interval": 600,
                "keep_checkpoints": 3,
            }
        }
    }
    path = tmp_path / f"config-{max_steps}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def learn(tmp_path: Path, config: Path, *flags: str, player_args: tuple[str, ...] = ()) -> int:
    argv = [
        "learn",
        str(config),
        "--env",
        str(PLAYER),
        "--run-id",
        "u",
        "--results-dir",
        str(tmp_path / "results"),
        "--seed",
        "1",
        "--timeout-wait",
        "20",
        "--no-graphics",
        *flags,
        "--env-args",
        "--agents",
        "4",
        *player_args,
    ]
    return main(argv)


@pytest.mark.learning
def test_learn_on_two_players_writes_checkpoints_and_onnx_and_resumes(tmp_path: Path) -> None:
    base = str(free_base_port(2))
    assert (
        learn(tmp_path, write_config(tmp_path, 1500), "--num-envs", "2", "--base-port", base, "--time-scale", "7") == 0
    )
    run = tmp_path / "results" / "u"
    logs = run / "run_logs"
    assert (logs / "Player-0.log").is_file() and (logs / "Player-1.log").is_file()
    assert (run / f"{BRAIN}.onnx").is_file() and (run / BRAIN / "checkpoint.pt").is_file()
    assert list((run / BRAIN).glob(f"{BRAIN}-*.onnx")) and list((run / BRAIN).glob(f"{BRAIN}-*.pt"))
    status = json.loads((logs / "training_status.json").read_text())
    first_steps = status[BRAIN]["final_checkpoint"]["steps"]
    assert first_steps >= 1500
    # engine settings reached the players (--time-scale 7) and their stats reached the run's CSV
    for worker in (0, 1):
        assert "time_scale=7" in (logs / f"Player-{worker}.log").read_text()
    assert "Fake/Episode Reward" in (logs / f"{BRAIN}.csv").read_text().splitlines()[0]

    assert learn(tmp_path, write_config(tmp_path, 2500), "--num-envs", "2", "--base-port", base, "--resume") == 0
    status = json.loads((logs / "training_status.json").read_text())
    assert status[BRAIN]["final_checkpoint"]["steps"] >= 2500 > first_steps
    configuration = yaml.safe_load((run / "configuration.yaml").read_text())
    assert configuration["env_settings"]["env_args"] == ["--agents", "4"]


@pytest.mark.learning
def test_a_player_crash_stops_the_run_with_a_clear_error_and_keeps_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = str(free_base_port())
    code = learn(tmp_path, write_config(tmp_path, 5000), "--base-port", base, player_args=("--crash-after", "300"))
    assert code != 0
    err = capsys.readouterr().err
    assert "Unity player of worker 0 exited with code 3" in err and "Player-0.log" in err
    assert "Traceback" not in err
    run = tmp_path / "results" / "u"
    assert (run / BRAIN / "checkpoint.pt").is_file()


def test_check_builds_the_player_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--env", str(PLAYER), "--env-args", "--agents", "2"]) == 0
    out = capsys.readouterr().out
    assert f"  {BRAIN}:" in out and "the configuration is valid for this environment" in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.learning
def test_a_crashed_player_is_restarted_and_training_continues(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # both players crash after 300 decisions; 3000 steps of 2 players x 4 agents need 375 decisions each
    base = str(free_base_port(2))
    argv = [str(write_config(tmp_path, 3000)), "--env", str(PLAYER), "--run-id", "u", "--seed", "1"]
    argv += ["--results-dir", str(tmp_path / "results"), "--num-envs", "2", "--base-port", base]
    argv += ["--max-lifetime-restarts", "4", "--no-graphics", "--env-args", "--agents", "4", "--crash-after", "300"]
    fledge_log = logging.getLogger("fledge")
    fledge_log.addHandler(caplog.handler)  # the run's logger need not propagate to the root logger
    try:
        api.run(resolve_run_options(parse_learn_args(argv)), display="none")
    finally:
        fledge_log.removeHandler(caplog.handler)
    status = json.loads((tmp_path / "results" / "u" / "run_logs" / "training_status.json").read_text())
    assert status[BRAIN]["final_checkpoint"]["steps"] >= 3000
    err = caplog.text
    for worker in (0, 1):
        assert (
            f"Restarting environment worker {worker} after: The Unity player of worker {worker} exited with code 3"
            in err
        )


@pytest.mark.learning
def test_ppo_respects_the_players_action_masks(tmp_path: Path) -> None:
    base = str(free_base_port())
    assert learn(tmp_path, write_config(tmp_path, 1500), "--base-port", base, player_args=("--discrete",)) == 0
    closing = (tmp_path / "results" / "u" / "run_logs" / "Player-0.log").read_text().splitlines()[-1]
    masked = int(re.search(r"masked decisions (\d+)", closing).group(1))  # type: ignore[union-attr]
    assert masked > 0 and "mask violations 0" in closing


def test_a_behavior_announced_mid_run_is_trained_too(tmp_path: Path) -> None:
    config = yaml.safe_load(write_config(tmp_path, 800).read_text())
    late = dict(config["behaviors"][BRAIN], max_steps=300)
    config["behaviors"][f"{BRAIN}Late"] = late
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(config))
    base = str(free_base_port())
    assert learn(tmp_path, path, "--base-port", base, player_args=("--late-behavior", "40")) == 0
    run = tmp_path / "results" / "u"
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert {BRAIN, f"{BRAIN}Late"} <= set(status)
    for name in (BRAIN, f"{BRAIN}Late"):
        assert (run / name / "checkpoint.pt").is_file() and (run / f"{name}.onnx").is_file()
    log = (run / "run_logs" / "Player-0.log").read_text()
    assert "now decide for Ball3DFakeLate?team=0" in log


def test_a_behavior_announced_mid_run_in_a_worker_pool_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = str(free_base_port(2))
    flags = ("--base-port", base, "--num-envs", "2")
    code = learn(tmp_path, write_config(tmp_path, 5000), *flags, player_args=("--late-behavior", "20"))
    assert code != 0
    err = capsys.readouterr().err
    assert "announced new behaviors after its start (new: 'Ball3DFakeLate?team=0')" in err
    assert "--num-envs 1" in err and "Traceback" not in err
