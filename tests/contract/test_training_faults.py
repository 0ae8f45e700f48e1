"""Faults during training end with one clear message, a non-zero exit and no traceback.

Each test drives the real `fledge` command (in a subprocess where signals or memory limits are
involved, in-process through `fledge.cli.main` otherwise) into one failure: training that diverges
(PPO, SAC), networks too large to build, a SAC buffer smaller than its minibatch, resuming with
another environment, --inference without a run, an unknown Gymnasium id, SIGTERM/SIGINT.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import drive_trainer, toy_options
from fledge.checkpoints.state_io import load_state
from fledge.cli import main
from fledge.errors import TrainingDivergedError
from fledge.networks.size import BYTES_PER_PARAMETER, physical_memory
from fledge.stats import StatsReporter
from fledge.stats.timers import Timers
from fledge.trainers.ppo.trainer import PPOTrainer


def learn(capsys: Any, *args: str, command: str = "learn") -> tuple[int, str]:
    """Run `fledge <command> ARGS` in-process; the exit code and everything it printed."""
    code = main([command, *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def write_config(tmp_path: Path, behavior: str, settings: dict[str, Any], name: str = "cfg.yaml") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"behaviors": {behavior: settings}}))  # JSON is YAML
    return path


def small(trainer_type: str, **hyper: Any) -> dict[str, Any]:
    base = {"batch_size": 64, "buffer_size": 256} if trainer_type == "ppo" else {"batch_size": 32, "buffer_size": 5000}
    return {
        "trainer_type": trainer_type,
        "hyperparameters": {**base, **hyper},
        "network_settings": {"hidden_units": 16},
        "max_steps": 3000,
        "time_horizon": 16,
        "checkpoint_interval": 100,
        "summary_freq": 10**6,
    }


def assert_clean_failure(code: int, out: str, *expected: str) -> None:
    assert code != 0, out
    assert "Traceback" not in out, out
    for text in expected:
        assert text in out, f"{text!r} not in:\n{out}"


def registered_checkpoints(run: Path, behavior: str) -> list[Path]:
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    return [Path(p) for r in status[behavior]["checkpoints"] for p in r["auxillary_file_paths"]]


# -- divergence ------------------------------------------------------------------------------------
def test_ppo_divergence_stops_with_a_clear_message_and_no_non_finite_checkpoint(tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, "3DBall", small("ppo", learning_rate=1.0e6))
    results = tmp_path / "results"
    code, out = learn(
        capsys, str(config), "--env", "3DBall", "--run-id", "nan", "--results-dir", str(results), "--seed", "3"
    )
    assert_clean_failure(
        code,
        out,
        "Training of behavior '3DBall' (PPO) diverged at step",
        "behaviors.3DBall.hyperparameters.learning_rate (1e+06)",
        "--resume",
    )
    assert re.search(r"(policy|value) loss = (nan|inf)", out), out
    units = registered_checkpoints(results / "nan", "3DBall")
    assert units, "the checkpoints written before the divergence are kept"
    for unit in units:
        state, _ = load_state(unit)
        for key, tensor in state.tensors.items():
            assert torch.isfinite(tensor.float()).all(), (unit, key)


def ppo_trainer(tmp_path: Path, learning_rate: float) -> PPOTrainer:
    options = toy_options(
        tmp_path,
        "3DBall",
        steps=10**6,
        hyperparameters={"batch_size": 64, "buffer_size": 256, "learning_rate": learning_rate},
    )
    from fledge.envs import registry

    env = registry.make("3DBall", seed=0)
    env.reset()
    spec = env.behavior_specs["3DBall"]
    env.close()
    return PPOTrainer(
        behavior_name="3DBall", spec=spec, settings=options.behavior_settings("3DBall"), stats=StatsReporter([]), seed=0
    )


def trained_tensors(trainer: PPOTrainer) -> dict[str, torch.Tensor]:
    """Weights and Adam state (the normaliser's statistics change when observing, not when updating)."""
    return {k: v for k, v in trainer.get_state().tensors.items() if "normalizer" not in k}


def test_ppo_trainer_keeps_the_weights_and_adam_state_from_before_the_diverged_update(tmp_path: Path) -> None:
    trainer = ppo_trainer(tmp_path, 3.0e-4)
    while trainer.update_count < 1:
        drive_trainer(trainer, "3DBall", 12)
    before = trained_tensors(trainer)
    assert any(k.startswith("optimizer.") for k in before)
    trainer.hp = dataclasses.replace(trainer.hp, learning_rate=1.0e6)
    with pytest.raises(TrainingDivergedError, match="The weights from before that update are kept"):
        drive_trainer(trainer, "3DBall", 2000, seed=1)
    assert trainer.update_count == 1
    after = trained_tensors(trainer)
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert torch.equal(after[key], value), key


def test_ppo_trainer_diverging_at_its_first_update_returns_to_its_initial_state(tmp_path: Path) -> None:
    trainer = ppo_trainer(tmp_path, 1.0e6)
    initial = trained_tensors(trainer)
    with pytest.raises(TrainingDivergedError):
        drive_trainer(trainer, "3DBall", 2000)
    assert trained_tensors(trainer).keys() == initial.keys()  # no Adam state with NaN moments is left
    for key, value in initial.items():
        assert torch.equal(trained_tensors(trainer)[key], value), key


def test_sac_divergence_stops_with_a_clear_message(tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, "3DBall", small("sac", learning_rate=1.0e6))
    code, out = learn(
        capsys,
        str(config),
        "--env",
        "3DBall",
        "--run-id",
        "sac",
        "--results-dir",
        str(tmp_path / "results"),
        "--seed",
        "3",
    )
    assert_clean_failure(
        code,
        out,
        "Training of behavior '3DBall' (SAC) diverged at step",
        "Q1 loss = nan",
        "hyperparameters.learning_rate",
    )
    assert "FloatingPointError" not in out


# -- networks too large ----------------------------------------------------------------------------
@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_huge_networks_are_refused_before_anything_is_written(tmp_path: Path, capsys: Any, trainer_type: str) -> None:
    settings = small(trainer_type)
    settings["network_settings"] = {"hidden_units": 1_000_000_000}
    config = write_config(tmp_path, "3DBall", settings)
    results = tmp_path / "results"
    code, out = learn(capsys, str(config), "--env", "3DBall", "--run-id", "huge", "--results-dir", str(results))
    assert_clean_failure(
        code, out, "behaviors.3DBall.network_settings.hidden_units: 1000000000", "parameters", "Lower hidden_units"
    )
    assert not (results / "huge").exists()


def test_a_replay_buffer_larger_than_memory_is_refused_before_anything_is_written(tmp_path: Path, capsys: Any) -> None:
    settings = small("sac")
    settings["hyperparameters"] = {**settings["hyperparameters"], "buffer_size": 10**12}
    config = write_config(tmp_path, "3DBall", settings)
    results = tmp_path / "results"
    code, out = learn(capsys, str(config), "--env", "3DBall", "--run-id", "big", "--results-dir", str(results))
    assert_clean_failure(
        code,
        out,
        "behaviors.3DBall.hyperparameters.buffer_size: 1,000,000,000,000 experiences",
        "GiB of memory",
        "Lower buffer_size",
    )
    assert not (results / "big").exists()


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
@pytest.mark.parametrize("env_name", ["3DBall", "MoveToGoal2D-Hybrid"])
def test_the_size_estimate_is_close_to_the_real_parameter_count(
    tmp_path: Path, trainer_type: str, env_name: str
) -> None:
    """The bound refuses what is really too large: a trainer's estimate is within 10% of the networks it built."""
    from fledge.api import make_trainer
    from fledge.envs import registry

    hyper = small(trainer_type)["hyperparameters"]
    options = toy_options(
        tmp_path,
        env_name,
        steps=100,
        network={"hidden_units": 64},
        extra={"trainer_type": trainer_type, "hyperparameters": hyper},
    )
    env = registry.make(env_name, seed=0)
    env.reset()
    trainer: Any = make_trainer(options, env_name, env, StatsReporter([]), 0, Timers())
    env.close()
    networks = trainer.model if trainer_type == "ppo" else trainer.nets
    real = sum(p.numel() for p in networks.parameters())
    assert abs(trainer.network_size.parameters - real) <= 0.1 * real, (trainer.network_size, real)


def test_a_failed_allocation_is_a_clear_config_error(tmp_path: Path) -> None:
    """A network below the size bound that the memory limit of the process cannot hold (a real failure)."""
    resource = pytest.importorskip("resource")
    limit = 3 * 2**30

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    probe = subprocess.run(
        [sys.executable, "-c", "import torch, fledge.cli"],
        preexec_fn=limited,
        env=env,
        capture_output=True,
        timeout=120,
    )
    if probe.returncode != 0:
        pytest.skip("torch cannot even be imported under a 3 GiB address-space limit here")
    settings = small("ppo")
    settings["network_settings"] = {"hidden_units": 20_000}  # 8e8 parameters: 3.2 GB for one weight tensor
    config = write_config(tmp_path, "3DBall", settings)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "fledge.cli",
            "learn",
            str(config),
            "--env",
            "3DBall",
            "--run-id",
            "mid",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        preexec_fn=limited,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert_clean_failure(proc.returncode, out, "behaviors.3DBall.network_settings.hidden_units: 20000")
    memory = physical_memory()
    if memory is None or memory > 800_520_006 * BYTES_PER_PARAMETER:
        assert "allocating them failed" in out, out
    assert not (tmp_path / "results" / "mid").exists()


# -- a SAC buffer smaller than its minibatch -------------------------------------------------------
@pytest.mark.parametrize("command", ["learn", "check"])
def test_sac_buffer_smaller_than_batch_is_refused(tmp_path: Path, capsys: Any, command: str) -> None:
    config = write_config(tmp_path, "3DBall", small("sac", batch_size=128, buffer_size=100))
    where = ["--run-id", "b", "--results-dir", str(tmp_path / "results")] if command == "learn" else []
    code, out = learn(capsys, str(config), "--env", "3DBall", *where, command=command)
    assert_clean_failure(
        code, out, "behaviors.3DBall.hyperparameters.buffer_size", "buffer_size (100) is smaller than batch_size (128)"
    )
    assert not (tmp_path / "results").exists()


def test_sac_buffer_init_steps_beyond_buffer_size_is_accepted_with_a_warning(tmp_path: Path, capsys: Any) -> None:
    config = write_config(tmp_path, "3DBall", small("sac", batch_size=32, buffer_size=200, buffer_init_steps=500))
    code, out = learn(capsys, str(config), "--env", "3DBall", command="check")
    assert code == 0, out
    assert "buffer_init_steps (500) exceeds buffer_size (200)" in out


# -- resume and inference with the wrong environment or run ---------------------------------------
def test_resuming_with_another_environment_says_what_differs_and_never_suggests_force(
    tmp_path: Path, capsys: Any
) -> None:
    settings = small("ppo")
    settings["max_steps"] = 300
    config = write_config(tmp_path, "3DBall", settings)
    results = tmp_path / "results"
    code, out = learn(capsys, str(config), "--env", "3DBall", "--run-id", "r", "--results-dir", str(results))
    assert code == 0, out
    run = results / "r"
    files_before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    for flag in ("--resume", "--inference"):
        code, out = learn(capsys, "--env", "Basic", "--run-id", "r", "--results-dir", str(results), flag)
        assert_clean_failure(
            code,
            out,
            f"{flag}: the checkpoints of the run at",
            "behavior 'Basic' has no checkpoint",
            "3DBall (the run): observations (8,); actions: 2 continuous",
            "Basic (this environment): observations (20,); actions: 0 continuous, discrete branches (3,)",
            f"use --env 3DBall with {flag}",
            "start a new run id",
        )
        assert "--force" not in out
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files_before  # the run is untouched


def test_resuming_a_run_without_checkpoints_never_suggests_force(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "results" / "empty").mkdir(parents=True)
    code, out = learn(
        capsys, "--env", "3DBall", "--run-id", "empty", "--results-dir", str(tmp_path / "results"), "--resume"
    )
    assert_clean_failure(code, out, "has no checkpoint yet", "new run id")
    assert "--force" not in out


def test_inference_without_a_run_speaks_of_inference(tmp_path: Path, capsys: Any) -> None:
    code, out = learn(
        capsys, "--env", "3DBall", "--run-id", "none", "--results-dir", str(tmp_path / "results"), "--inference"
    )
    assert_clean_failure(code, out, "--inference: no run was found at", "train the run first")
    assert "--resume" not in out


# -- unknown Gymnasium ids -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env_id", "expected"),
    [
        ("Foo-v0", "Unknown gymnasium environment 'Foo-v0': Environment `Foo` doesn't exist."),
        ("CartPol-v1", "doesn't exist. Did you mean 'CartPole-v1'"),
    ],
)
def test_unknown_gymnasium_id_is_one_clean_sentence(tmp_path: Path, capsys: Any, env_id: str, expected: str) -> None:
    pytest.importorskip("gymnasium")
    code, out = learn(capsys, "--env", f"gym:{env_id}", "--run-id", "g", "--results-dir", str(tmp_path / "results"))
    assert_clean_failure(code, out, expected)
    assert ".." not in out and out.count("Did you mean") <= 1, out


# -- signals ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_saves_the_run_and_exits_128_plus_its_number(tmp_path: Path, signum: int, code: int) -> None:
    settings = small("ppo")
    settings["max_steps"] = 10**8
    config = write_config(tmp_path, "3DBall", settings)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fledge.cli",
            "learn",
            str(config),
            "--env",
            "3DBall",
            "--run-id",
            "s",
            "--results-dir",
            str(tmp_path / "results"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # the first checkpoint: training is under way
        seen.append(line)
        if "Exported" in line:
            break
    else:
        pytest.fail("".join(seen))
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, "".join(seen) + out
    assert f"Learning was interrupted ({signal.Signals(signum).name})" in out
    assert "Traceback" not in out
    assert (tmp_path / "results" / "s" / "3DBall.onnx").is_file()
