"""Curriculum in whole runs: lessons move on, are reported (console line, Environment/Lesson Number stat),
are stored in training_status.json and survive a SIGKILL and --resume; require_reset resets the environments."""

from __future__ import annotations

import csv
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from test_kill_resume import start, wait_for

from conftest import SideBySide
from fledge import api
from fledge.config import build_run_options
from fledge.envs import registry

BALL_CONFIG = """
behaviors:
  3DBall:
    trainer_type: ppo
    hyperparameters: {batch_size: 64, buffer_size: 300}
    network_settings: {hidden_units: 16, normalize: true}
    max_steps: 4000
    summary_freq: 300
    checkpoint_interval: 300
    keep_checkpoints: 3
environment_parameters:
  gravity:
    curriculum:
      - name: light
        value: 4.0
        completion_criteria: {behavior: 3DBall, measure: progress, threshold: 0.1}
      - name: heavy
        value: {sampler_type: uniform, sampler_parameters: {min_value: 9.0, max_value: 12.0}}
        completion_criteria: {behavior: 3DBall, measure: progress, threshold: 0.99}
      - name: heaviest
        value: 20.0
"""


def lesson_in_status(run: Path, name: str) -> int | None:
    try:
        status = json.loads((run / "run_logs" / "training_status.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    entry = status.get(name)
    return None if entry is None else int(entry["lesson_num"])


def test_sigkill_mid_curriculum_then_resume_keeps_the_lesson(tmp_path: Path) -> None:
    (tmp_path / "cfg.yaml").write_text(BALL_CONFIG)
    run = tmp_path / "results" / "k"
    proc = start(tmp_path, env="3DBall")
    wait_for(proc, r"Parameter 'gravity' is in lesson 'light' and has value '4'")
    wait_for(proc, r"Parameter 'gravity' is in lesson 'heavy' and has value 'uniform sampler")
    deadline = time.time() + 120
    while lesson_in_status(run, "gravity") != 1 and time.time() < deadline:  # written with the next checkpoint
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    assert lesson_in_status(run, "gravity") == 1
    proc = start(tmp_path, "--resume", env="3DBall")
    line = wait_for(proc, r"Parameter 'gravity' is in lesson")
    assert "'heavy'" in line, line  # the curriculum does not restart
    wait_for(proc, r"Resuming training of 3DBall")
    wait_for(proc, r"Exported .*\.onnx")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert "lesson 'light'" not in out
    assert lesson_in_status(run, "gravity") == 1
    rows = list(csv.DictReader((run / "run_logs" / "3DBall.csv").open()))
    assert rows and all(float(r["Environment/Lesson Number/gravity"]) == 1.0 for r in rows[-1:])


class CountingStandIn(SideBySide):
    """Reads any parameter; counts resets and keeps the draws it received."""

    def __init__(self, parts: dict[str, Any]) -> None:
        super().__init__(parts)
        self.resets = 0
        self.received: list[dict[str, Any]] = []

    def environment_parameter_names(self) -> frozenset[str] | None:
        return None

    def set_environment_parameters(self, draws: Any) -> None:
        self.received.append(dict(draws))

    def reset(self) -> None:
        self.resets += 1
        super().reset()


def curriculum_run(
    tmp_path: Path, *, require_reset: bool, resume: bool = False, max_steps: int = 1000
) -> tuple[CountingStandIn, Any]:
    raw = {
        "behaviors": {
            "B": {
                "trainer_type": "ppo",
                "hyperparameters": {"batch_size": 32, "buffer_size": 256},
                "network_settings": {"hidden_units": 8},
                "max_steps": max_steps,
                "summary_freq": 250,
            }
        },
        "environment_parameters": {
            "level": {
                "curriculum": [
                    {
                        "name": "easy",
                        "value": 1.0,
                        "completion_criteria": {
                            "behavior": "B",
                            "measure": "progress",
                            "threshold": 0.5,
                            "require_reset": require_reset,
                        },
                    },
                    {"name": "hard", "value": 2.0},
                ]
            }
        },
        "env_settings": {"seed": 3},
        "checkpoint_settings": {"run_id": f"r{int(require_reset)}", "results_dir": str(tmp_path), "resume": resume},
    }
    env = CountingStandIn({"B": registry.make("MoveToGoal1D-Discrete", seed=1, num_agents=4)})
    result = api.run(build_run_options(raw), env=env, display="none")
    return env, result


def test_a_lesson_change_sends_the_new_value_and_require_reset_resets(tmp_path: Path) -> None:
    env, _ = curriculum_run(tmp_path, require_reset=False)
    values = [d["level"]["sampler_parameters"]["value"] for d in env.received]
    assert values == [1.0, 2.0]
    assert env.resets == 1  # the run's start only
    env, _ = curriculum_run(tmp_path, require_reset=True)
    assert [d["level"]["sampler_parameters"]["value"] for d in env.received] == [1.0, 2.0]
    assert env.resets == 2  # the start and the lesson change
    status = json.loads((tmp_path / "r1" / "run_logs" / "training_status.json").read_text())
    assert status["level"] == {"lesson_num": 1}


def test_resume_continues_in_the_stored_lesson(tmp_path: Path, fledge_log: list[logging.LogRecord]) -> None:
    curriculum_run(tmp_path, require_reset=True)
    fledge_log.clear()
    env, _ = curriculum_run(tmp_path, require_reset=True, resume=True, max_steps=1200)
    assert [d["level"]["sampler_parameters"]["value"] for d in env.received] == [2.0]  # no restart at 'easy'
    lines = [r.getMessage() for r in fledge_log if "Parameter 'level'" in r.getMessage()]
    assert lines == ["Parameter 'level' is in lesson 'hard' and has value '2'."]


def test_check_reports_the_parameters_and_checks_them_against_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from test_cli import in_process

    (tmp_path / "c.yaml").write_text(BALL_CONFIG + "  wind: 3.0\n")
    code, out, err = in_process("check", "c.yaml", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert "#     lesson 1 'heavy': uniform sampler (min_value: 9.0, max_value: 12.0), seed run seed + 1" in out
    assert "next lesson when progress of 3DBall > 0.1 after at least 0 episodes" in out
    code, out, err = in_process(
        "check", "c.yaml", "--env", "3DBall", cwd=tmp_path, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 1 and "has no parameter(s) wind" in err and "gravity, mass, scale" in err
    assert not (tmp_path / "results").exists()
