"""The `fledge` command: clear one-line errors without a traceback, and a real short training run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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
    (tmp_path / "typo.yaml").write_text("behaviors:\n  3DBall:\n    trainer_type: ppo\n    hyperparameters:\n      bach_size: 64\n")
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
    (tmp_path / "bad.yaml").write_text("default_settings:\n  reward_signals:\n    rnd: {strength: 0.1}\n")
    bad = fledge("check", "bad.yaml", "--env", "Basic", cwd=tmp_path)
    assert bad.returncode == 1 and "rnd" in bad.stderr and "Traceback" not in bad.stderr


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
