"""The `fledge` command: clear one-line errors without a traceback, and a real short training run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


def fledge(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "fledge.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["missing.yaml"], "Config file could not be found"),
        (["typo.yaml"], "did you mean 'batch_size'?"),
        (["--env", "3dball"], "Did you mean '3DBall'?"),
        (["typo.yaml", "--seed", "abc"], "--seed"),
    ],
)
def test_bad_input_gives_one_clear_message(tmp_path: Path, args: list[str], expected: str) -> None:
    (tmp_path / "typo.yaml").write_text(
        "behaviors:\n  3DBall:\n    trainer_type: ppo\n    hyperparameters:\n      bach_size: 64\n"
    )
    proc = fledge("learn", *args, cwd=tmp_path)
    assert proc.returncode != 0
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.startswith("fledge")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = fledge("learn", "missing.yaml", "--debug", cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" in proc.stderr


def test_learn_trains_and_writes_results(tmp_path: Path) -> None:
    config = tmp_path / "toy.yaml"
    config.write_text(
        "default_settings:\n  trainer_type: ppo\n  max_steps: 1500\n  summary_freq: 500\n"
        "  hyperparameters: {batch_size: 64, buffer_size: 512}\n"
    )
    proc = fledge("learn", str(config), "--env", "MoveToGoal1D-Discrete", "--run-id", "t", "--seed", "4", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "MoveToGoal1D-Discrete. Step: 500. Time Elapsed:" in proc.stdout
    assert (tmp_path / "results" / "t" / "configuration.yaml").is_file()
    again = fledge("learn", str(config), "--env", "MoveToGoal1D-Discrete", "--run-id", "t", cwd=tmp_path)
    assert again.returncode == 1 and "Previous data from this run ID was found" in again.stderr


def test_envs_lists_builtins(tmp_path: Path) -> None:
    proc = fledge("envs", cwd=tmp_path)
    assert proc.returncode == 0
    assert "3DBall" in proc.stdout and "Continuous: 2" in proc.stdout


def test_check_prints_effective_settings_and_refuses_what_a_run_would(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(
        "default_settings:\n  trainer_type: ppo\n  hyperparameters: {learning_rate_schedule: constant}\n"
    )
    proc = fledge("check", "c.yaml", "--env", "Basic", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "  Basic:\n    trainer_type: ppo" in proc.stdout
    assert "beta_schedule: constant" in proc.stdout  # inherited from learning_rate_schedule
    assert "buffer_size: 10240" in proc.stdout  # a default filled in
    (tmp_path / "bad.yaml").write_text(
        "default_settings:\n  reward_signals:\n    gail: {strength: 0.1, demo_path: missing.demo}\n"
    )
    bad = fledge("check", "bad.yaml", "--env", "Basic", cwd=tmp_path)
    assert bad.returncode == 1 and "gail.demo_path" in bad.stderr and "Traceback" not in bad.stderr


def test_export_writes_the_onnx_of_a_checkpoint_again(tmp_path: Path) -> None:
    config = tmp_path / "toy.yaml"
    config.write_text(
        "default_settings:\n  trainer_type: ppo\n  max_steps: 600\n  checkpoint_interval: 300\n"
        "  hyperparameters: {batch_size: 64, buffer_size: 256}\n"
    )
    assert fledge("learn", str(config), "--env", "MoveToGoal1D-Discrete", "--run-id", "e", cwd=tmp_path).returncode == 0
    out = tmp_path / "again.onnx"
    proc = fledge("export", "e", "--opset", "13", "--output", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    from fledge.checkpoints.onnx import describe_onnx

    assert describe_onnx(out)["opset"] == 13
    missing = fledge("export", "e", "--checkpoint", "Nope-1", cwd=tmp_path)
    assert missing.returncode == 1 and "No checkpoint 'Nope-1'" in missing.stderr


def in_process(
    *args: str, cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """`fledge ARGS` run in this process (the same main() as the command): exit code, stdout, stderr."""
    import logging

    from fledge.cli import main

    logger = logging.getLogger("fledge")  # main() sets up the logger; put it back afterwards
    handlers, level, propagate = list(logger.handlers), logger.level, logger.propagate
    monkeypatch.chdir(cwd)
    try:
        code = main(list(args))
    except SystemExit as exc:  # --help
        code = int(exc.code or 0)
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
    out, err = capsys.readouterr()
    return code, out, err


REFUSED = [
    (
        "environment_parameters:\n  gravity:\n    curriculum:\n      - {name: a, value: 1, completion_criteria: "
        "{behavior: Nobody}}\n      - {name: b, value: 2}\n",
        "names the behavior 'Nobody'",
    ),
    ("  Basic:\n    trainer_type: ppo\n    behavioral_cloning: {demo_path: x.demo}\n", "behavioral_cloning"),
    (
        "  Basic:\n    trainer_type: ppo\n    reward_signals: {gail: {strength: 0.1, demo_path: x.demo}}\n",
        "reward_signals.gail.demo_path",
    ),
    ("  Basic:\n    trainer_type: ppo\n    reward_signals: {}\n", "no reward signal"),
]


@pytest.mark.parametrize(("body", "expected"), REFUSED, ids=[e for _, e in REFUSED])
def test_check_refuses_what_learn_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], body: str, expected: str
) -> None:
    head = "behaviors:\n  Other: {trainer_type: ppo}\n"
    (tmp_path / "c.yaml").write_text(head + body if not body.startswith("environment") else body + head)
    errors = []
    for command in (["learn", "c.yaml", "--env", "Basic"], ["check", "c.yaml", "--env", "Basic"], ["check", "c.yaml"]):
        code, out, err = in_process(*command, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
        assert code == 1 and expected in err and "Traceback" not in out + err, (command, out, err)
        errors.append(err)
    assert errors[0] == errors[1] == errors[2]  # one message, from the one pre-training path
    assert not (tmp_path / "results").exists()


def test_check_without_an_environment_checks_the_config_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "c.yaml").write_text("behaviors:\n  Walker:\n    trainer_type: sac\n    max_steps: 100\n")
    code, out, err = in_process("check", "c.yaml", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "behaviors were not checked against an environment" in out
    settings = yaml.safe_load(out)
    assert settings["behaviors"]["Walker"]["hyperparameters"]["buffer_size"] == 50000  # SAC default filled in
    # with an environment, the behaviors must cover it (3DBall is not listed)
    code, out, err = in_process(
        "check", "c.yaml", "--env", "3DBall", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 1 and "The behavior name 3DBall has not been specified" in err
    (tmp_path / "e.yaml").write_text("behaviors:\n  Walker: {trainer_type: ppo}\nenv_settings: {env_path: Basic}\n")
    code, out, err = in_process("check", "e.yaml", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "The behavior name Basic has not been specified" in err  # env_path builds it


def test_check_has_its_own_help_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = in_process("check", "--help", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and out.startswith("usage: fledge check")
    for honoured in ("--env", "--env-args", "--num-envs", "--seed", "--torch-device", "--deterministic", "--debug"):
        assert honoured in out
    for learn_only in ("--run-id", "--resume", "--force", "--inference", "--base-port", "--time-scale", "--quiet"):
        assert learn_only not in out
    code, _, err = in_process("check", "--run-id", "x", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "fledge check: unrecognized arguments: --run-id" in err


def test_learn_help_says_what_the_flags_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = in_process("learn", "--help", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    flat = " ".join(out.split())
    assert code == 0 and flat.startswith("usage: fledge learn")
    assert "'gym:<id>' (Gymnasium), 'pettingzoo:<module>' (PettingZoo), the path of a Unity player, or" in flat
    assert "(wait for the Unity Editor on port 5004)" in flat
    assert "cpu, cuda or cuda:N; default: CUDA when available, else CPU" in flat
    unity = (
        "--base-port",
        "--width",
        "--height",
        "--quality-level",
        "--time-scale",
        "--target-frame-rate",
        "--capture-frame-rate",
        "--no-graphics",
        "--no-graphics-monitor",
    )
    assert flat.count("Unity players only:") == len(unity)
    assert flat.count("worker processes and Unity players:") == 1  # --timeout-wait
    assert flat.count("copies that fail are restarted") == 3  # the three restart flags


def test_learn_inference_quiet_runs_the_trained_policy(tmp_path: Path) -> None:
    config = tmp_path / "toy.yaml"
    config.write_text(
        "default_settings:\n  trainer_type: ppo\n  max_steps: 600\n  summary_freq: 300\n"
        "  hyperparameters: {batch_size: 64, buffer_size: 256}\n"
    )
    args = [str(config), "--env", "MoveToGoal1D-Discrete", "--run-id", "i", "--seed", "2"]
    assert fledge("learn", *args, "--quiet", cwd=tmp_path).returncode == 0
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "results").rglob("*"))
    proc = fledge("learn", *args, "--inference", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr == ""
    assert proc.stdout.startswith("MoveToGoal1D-Discrete: ran its policy for ")
    ran = int(proc.stdout.split("ran its policy for ", 1)[1].split(" ", 1)[0])
    assert 600 <= ran < 600 + 16  # max_steps decisions of the 16 agents
    assert sorted(p.relative_to(tmp_path) for p in (tmp_path / "results").rglob("*")) == before  # nothing written


def test_api_run_inference_without_display(tmp_path: Path) -> None:
    from fledge import api
    from fledge.config import build_run_options

    def options(**checkpoint: object) -> object:
        return build_run_options(
            {
                "default_settings": {
                    "trainer_type": "ppo",
                    "max_steps": 500,
                    "summary_freq": 250,
                    "hyperparameters": {"batch_size": 64, "buffer_size": 256},
                },
                "env_settings": {"env_path": "MoveToGoal1D-Continuous", "seed": 1},
                "checkpoint_settings": {"run_id": "r", "results_dir": str(tmp_path), **checkpoint},
            }
        )

    trained = api.run(options(), display="none")  # type: ignore[arg-type]
    result = api.run(options(inference=True), display="none")  # type: ignore[arg-type]
    (behavior,) = result.behaviors.values()
    assert 500 <= behavior.steps < 500 + 16 and behavior.episodes > 0
    assert trained.behaviors[behavior.name].steps >= 500


@pytest.mark.parametrize("args", [["envs"], ["--help"], ["check", "--help"]])
def test_python_dash_m_fledge_is_the_fledge_command(tmp_path: Path, args: list[str]) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    module = subprocess.run(
        [sys.executable, "-m", "fledge", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    command = fledge(*args, cwd=tmp_path)
    assert module.returncode == command.returncode == 0, module.stderr
    assert module.stdout == command.stdout and module.stdout


@pytest.mark.parametrize(("env", "trainer"), [("DungeonEscape", "poca"), ("3DBall", "ppo"), ("SoccerTwos", "ppo")])
def test_without_a_config_the_environment_s_default_trainer_config_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: str, trainer: str
) -> None:
    """DungeonEscape's group reward needs POCA, so its default is the shipped POCA config; others use PPO's."""
    code, out, err = in_process("check", "--env", env, cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert out.splitlines()[0].replace("\\", "/").endswith(f"configs/{trainer}/{env}.yaml")
    behaviors = yaml.safe_load(out)["behaviors"]
    assert {b["trainer_type"] for b in behaviors.values()} == {trainer}
