"""A run killed at any moment resumes: SIGKILL at random moments, --resume each time, SIGINT at the end.

After every kill the status file parses and every entry names files that exist; the resume starts from
the newest complete unit on disk (a kill between writing a unit's files and listing it in the status
leaves a complete unit, which the resume adopts); after a resume no orphan .pt/.onnx or temporary file
remains; SIGINT leaves B.onnx and a final_checkpoint.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

BEHAVIOR = "MoveToGoal1D-Continuous"
CONFIG = """
default_settings:
  trainer_type: ppo
  hyperparameters: {batch_size: 64, buffer_size: 512}
  network_settings: {hidden_units: 16, normalize: true}
  max_steps: 10000000
  summary_freq: 2000
  checkpoint_interval: 300
  keep_checkpoints: 3
"""


def start(tmp_path: Path, *extra: str, env: str = BEHAVIOR) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "fledge.cli",
        "learn",
        str(tmp_path / "cfg.yaml"),
        "--env",
        env,
        "--run-id",
        "k",
        "--results-dir",
        str(tmp_path / "results"),
        "--seed",
        "5",
        *extra,
    ]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1")
    )


def wait_for(proc: subprocess.Popen[str], pattern: str, timeout: float = 120.0) -> str:
    deadline = time.time() + timeout
    seen = []
    assert proc.stdout is not None
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if re.search(pattern, line):
            return line
    proc.kill()
    raise AssertionError(f"'{pattern}' never appeared; output:\n{''.join(seen)}")


def check_status(run: Path, behavior: str = BEHAVIOR) -> list[int]:
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert "metadata" in status
    steps = []
    for record in status.get(behavior, {}).get("checkpoints", []):
        assert Path(record["file_path"]).is_file(), record
        for aux in record["auxillary_file_paths"]:
            assert Path(aux).is_file(), record
        steps.append(record["steps"])
    return steps


def newest_complete_unit(run: Path, behavior: str = BEHAVIOR) -> int:
    """The highest step whose .pt and .onnx are both on disk."""
    folder = run / behavior
    steps = [int(p.stem.rsplit("-", 1)[1]) for p in folder.glob(f"{behavior}-*.pt")]
    return max(s for s in steps if (folder / f"{behavior}-{s}.onnx").is_file())


def check_no_orphans(run: Path, behavior: str = BEHAVIOR) -> None:
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    named = set()
    for record in status[behavior]["checkpoints"]:
        named.add(Path(record["file_path"]).name)
        named.update(Path(p).name for p in record["auxillary_file_paths"])
    units = {p.name for p in (run / behavior).glob(f"{behavior}-*")}
    assert units == named, units ^ named
    assert not list(run.rglob("*.tmp"))


def test_sigkill_at_random_moments_then_resume_then_sigint(tmp_path: Path) -> None:
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    run = tmp_path / "results" / "k"
    rng = random.Random(20261122)
    proc = start(tmp_path)
    wait_for(proc, r"Exported .*\.onnx")
    time.sleep(rng.uniform(0.0, 1.0))
    proc.kill()
    proc.wait()
    last = check_status(run)
    for _ in range(4):
        newest = newest_complete_unit(run)
        assert newest >= max(last)
        proc = start(tmp_path, "--resume")
        line = wait_for(proc, r"Resuming training of .* from step \d+")
        resumed_at = int(re.search(r"from step (\d+)", line).group(1))  # type: ignore[union-attr]
        assert resumed_at == newest  # the newest unit the status names, or a complete one it adopted
        wait_for(proc, r"Exported .*\.onnx")
        time.sleep(rng.uniform(0.0, 1.0))
        proc.kill()
        proc.wait()
        last = check_status(run)
        assert max(last) > resumed_at
    proc = start(tmp_path, "--resume")
    wait_for(proc, r"Resuming training")
    wait_for(proc, r"Exported .*\.onnx")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    assert "Learning was interrupted (SIGINT)" in out
    check_status(run)
    check_no_orphans(run)
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    final = status[BEHAVIOR]["final_checkpoint"]
    assert final["file_path"].endswith(f"k/{BEHAVIOR}.onnx") and Path(final["file_path"]).is_file()
    assert final["steps"] == status[BEHAVIOR]["checkpoints"][-1]["steps"]


def test_sigterm_saves_a_final_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    proc = start(tmp_path)
    wait_for(proc, r"Exported .*\.onnx")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert "Learning was interrupted (SIGTERM)" in out, out
    run = tmp_path / "results" / "k"
    assert (run / f"{BEHAVIOR}.onnx").is_file()
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert "final_checkpoint" in status[BEHAVIOR]


NETWORKS_CONFIG = """
behaviors:
  GridWorld:
    trainer_type: ppo
    hyperparameters: {batch_size: 32, buffer_size: 256}
    network_settings: {hidden_units: 32, num_layers: 1, vis_encode_type: simple, memory: {memory_size: 16, sequence_length: 4}}
    max_steps: 10000000
    time_horizon: 8
    summary_freq: 2000
    checkpoint_interval: 300
    keep_checkpoints: 3
"""


def test_a_camera_goal_and_memory_run_killed_resumes_from_its_newest_unit(tmp_path: Path) -> None:
    """GridWorld (camera + goal signal, visual encoder, hypernetwork) with LSTM memory, SIGKILLed twice."""
    (tmp_path / "cfg.yaml").write_text(NETWORKS_CONFIG)
    run = tmp_path / "results" / "k"
    proc = start(tmp_path, env="GridWorld")
    for _ in range(2):  # the first unit is complete once the second is being written
        wait_for(proc, r"Exported .*\.onnx")
    proc.kill()
    proc.wait()
    for _ in range(2):
        newest = newest_complete_unit(run, "GridWorld")
        proc = start(tmp_path, "--resume", env="GridWorld")
        line = wait_for(proc, r"Resuming training of .* from step \d+")
        assert int(re.search(r"from step (\d+)", line).group(1)) == newest  # type: ignore[union-attr]
        for _ in range(2):
            wait_for(proc, r"Exported .*\.onnx")
        proc.kill()
        proc.wait()
        assert max(check_status(run, "GridWorld")) > newest
    proc = start(tmp_path, "--resume", env="GridWorld")
    wait_for(proc, r"Exported .*\.onnx")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    check_no_orphans(run, "GridWorld")
