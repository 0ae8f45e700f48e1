"""Checkpoints that never lose or lie: fault tests for a lost status, damaged files, a lost seed, a full
disk, a results folder that is a file, file modes, and a trainer that raises.

Each fault leaves the earlier units intact and resumable; none shows a user a traceback (the real CLI runs
in a subprocess where the fault needs a process of its own).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import torch

from fledge import api
from fledge.checkpoints.manager import CheckpointManager
from fledge.checkpoints.state_io import load_state
from fledge.checkpoints.status import TrainingStatus
from fledge.config import build_run_options
from fledge.errors import CheckpointError, RunFolderError
from fledge.files import atomic_write_text

BEHAVIOR = "MoveToGoal1D-Continuous"
SEED = 3


def options(tmp_path: Path, *, max_steps: int = 3000, keep: int = 3, seed: int = SEED, **checkpoint: Any) -> Any:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 64, "buffer_size": 512},
            "network_settings": {"hidden_units": 16, "normalize": True},
            "max_steps": max_steps,
            "summary_freq": 1000,
            "checkpoint_interval": 1000,
            "keep_checkpoints": keep,
        },
        "env_settings": {"env_path": BEHAVIOR, "seed": seed},
        "checkpoint_settings": {"run_id": "r", "results_dir": str(tmp_path), **checkpoint},
    }
    return build_run_options(raw)


def status_of(run: Path) -> dict[str, Any]:
    return json.loads((run / "run_logs" / "training_status.json").read_text())


def unit_steps(run: Path) -> list[int]:
    return [r["steps"] for r in status_of(run)[BEHAVIOR]["checkpoints"]]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob(f"{BEHAVIOR}-*"))}


def resumed_from(caplog: pytest.LogCaptureFixture) -> str:
    (line,) = [r.getMessage() for r in caplog.records if "from step" in r.getMessage()]
    return line


def play_back(tmp_path: Path, caplog: pytest.LogCaptureFixture, level: int = logging.INFO, **checkpoint: Any) -> str:
    """--resume --inference: restores exactly as a resume does, writes nothing; returns the restore line."""
    caplog.clear()
    with caplog.at_level(level, logger="fledge"):
        api.run(options(tmp_path, max_steps=20, resume=True, inference=True, **checkpoint))
    return resumed_from(caplog)


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    api.run(options(tmp_path), display="none")
    run = tmp_path / "r"
    assert len(unit_steps(run)) == 3
    return run


# -- a lost or emptied training_status.json ---------------------------------------------------------


@pytest.mark.parametrize("loss", ["deleted", "emptied", "newest entry missing"])
def test_a_lost_status_adopts_every_unit_and_resume_deletes_none(
    tmp_path: Path, trained: Path, loss: str, caplog: pytest.LogCaptureFixture
) -> None:
    status_path = trained / "run_logs" / "training_status.json"
    steps = unit_steps(trained)
    before = snapshot(trained / BEHAVIOR)
    data = status_of(trained)
    if loss == "deleted":
        status_path.unlink()
    elif loss == "emptied":
        data[BEHAVIOR] = {"checkpoints": []}
        status_path.write_text(json.dumps(data))
    else:  # as a kill between writing the newest unit's files and listing it leaves it
        data[BEHAVIOR]["checkpoints"].pop()
        status_path.write_text(json.dumps(data))
    with caplog.at_level(logging.INFO, logger="fledge"):
        result = api.run(options(tmp_path, max_steps=steps[-1] + 1000, keep=0, resume=True), display="none")
    assert f"Adopted {1 if loss == 'newest entry missing' else 3} checkpoint unit(s)" in caplog.text
    assert f"from step {steps[-1]} " in resumed_from(caplog)
    assert result.behaviors[BEHAVIOR].steps >= steps[-1] + 1000
    after = snapshot(trained / BEHAVIOR)
    for name, data in before.items():
        assert after.get(name) == data, f"{name} was deleted or changed"
    records = status_of(trained)[BEHAVIOR]["checkpoints"]
    assert [r["steps"] for r in records][:3] == steps
    assert [r["reward"] is None for r in records][:3] == [loss != "newest entry missing"] * 2 + [True]
    assert all(set(r["sha256"]) == {f"{BEHAVIOR}-{r['steps']}.pt", f"{BEHAVIOR}-{r['steps']}.onnx"} for r in records)


def test_a_damaged_status_is_refused_with_the_way_out(tmp_path: Path, trained: Path) -> None:
    status_path = trained / "run_logs" / "training_status.json"
    steps = unit_steps(trained)
    status_path.write_text('{"' + BEHAVIOR + '": {"checkpoints": [')
    with pytest.raises(CheckpointError, match="is unreadable.*Move it aside and resume again"):
        api.run(options(tmp_path, max_steps=9000, resume=True), display="none")
    status_path.rename(status_path.with_suffix(".damaged"))
    api.run(options(tmp_path, max_steps=steps[-1] + 600, keep=0, resume=True), display="none")
    assert unit_steps(trained)[:3] == steps


def test_only_temporary_files_and_lone_onnx_files_are_removed(trained: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = trained / BEHAVIOR
    steps = unit_steps(trained)
    (folder / f"{BEHAVIOR}-{steps[0]}.onnx").rename(folder / f"{BEHAVIOR}-7.onnx")  # a lone .onnx
    lone_pt = folder / f"{BEHAVIOR}-8.pt"
    lone_pt.write_bytes((folder / f"{BEHAVIOR}-{steps[1]}.pt").read_bytes())  # a lone .pt that loads
    bad_pt, bad_onnx = folder / f"{BEHAVIOR}-9.pt", folder / f"{BEHAVIOR}-9.onnx"  # a pair that does not load
    bad_pt.write_bytes(b"not a checkpoint")
    bad_onnx.write_bytes((folder / f"{BEHAVIOR}-{steps[1]}.onnx").read_bytes())
    tmp = folder / f".{BEHAVIOR}-5.pt.abc.tmp"
    tmp.write_bytes(b"half")
    status = TrainingStatus.load(trained / "run_logs" / "training_status.json")
    manager = CheckpointManager(run_dir=trained, status=status)
    with caplog.at_level(logging.INFO, logger="fledge"):
        removed = manager.clean_orphans(BEHAVIOR)
    assert sorted(p.name for p in removed) == sorted([f"{BEHAVIOR}-7.onnx", tmp.name])
    assert lone_pt.is_file() and bad_pt.is_file() and bad_onnx.is_file()
    assert f"Kept {lone_pt}" in caplog.text and f"Kept {bad_pt}" in caplog.text
    assert f"{BEHAVIOR}-9 is not adopted" in caplog.text
    assert [r.steps for r in status.checkpoints(BEHAVIOR)] == steps  # nothing unsound was adopted


# -- damaged files: checksums, fallback, clear reasons ----------------------------------------------


def overwrite_64_bytes(path: Path) -> None:
    """Flip 64 bytes in place (same size). In a .pt they land inside the largest tensor's stored data, where
    nothing but a checksum can notice them: the file still loads."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2
    if path.suffix == ".pt":
        with zipfile.ZipFile(path) as archive:
            entry = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
        header = data[entry.header_offset : entry.header_offset + 30]
        name_length, extra_length = int.from_bytes(header[26:28], "little"), int.from_bytes(header[28:30], "little")
        start = entry.header_offset + 30 + name_length + extra_length
        assert entry.file_size >= 64
    data[start : start + 64] = bytes(b ^ 0xFF for b in data[start : start + 64])
    path.write_bytes(bytes(data))


def test_a_same_size_overwrite_loads_without_a_checksum_and_is_refused_with_it(trained: Path) -> None:
    record = status_of(trained)[BEHAVIOR]["checkpoints"][-1]
    pt = Path(record["auxillary_file_paths"][0])
    overwrite_64_bytes(pt)
    load_state(pt)  # the damage is invisible to the format itself
    with pytest.raises(CheckpointError, match="does not match the sha256 recorded in training_status.json"):
        load_state(pt, record["sha256"][pt.name])


DAMAGE = {
    "overwritten": (overwrite_64_bytes, "does not match the sha256 recorded in training_status.json"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:1000]), "does not match the sha256"),
    "empty": (lambda p: p.write_bytes(b""), "is empty (0 bytes)"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_newest_unit_falls_back_with_a_warning_and_is_left_alone(
    tmp_path: Path, trained: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    damage_file, reason = DAMAGE[damage]
    folder = trained / BEHAVIOR
    steps = unit_steps(trained)
    newest = folder / f"{BEHAVIOR}-{steps[-1]}.pt"
    damage_file(newest)
    damaged = newest.read_bytes()
    # checkpoint.pt holds the same state as the newest unit: it is used in its place
    line = play_back(tmp_path, caplog)
    assert f"from step {steps[-1]} ({folder / 'checkpoint.pt'})" in line
    assert reason in caplog.text and str(newest) in caplog.text
    # without that twin, the next older unit is used; the warning names the bad file and the one used
    (folder / "checkpoint.pt").unlink()
    line = play_back(tmp_path, caplog)
    previous = folder / f"{BEHAVIOR}-{steps[-2]}.pt"
    assert f"from step {steps[-2]} ({previous})" in line
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert str(newest) in warnings and reason in warnings and f"from {previous} instead" in warnings
    assert newest.read_bytes() == damaged  # left as it is
    # and training resumes from there, its rotation unbroken
    api.run(options(tmp_path, max_steps=steps[-1] + 1500, resume=True), display="none")
    records = status_of(trained)[BEHAVIOR]["checkpoints"]
    assert len(records) == 3 and records[-1]["steps"] >= steps[-1] + 1500
    for record in records:
        pt = Path(record["auxillary_file_paths"][0])
        load_state(pt, record["sha256"][pt.name])


def test_a_status_without_checksums_still_resumes_with_a_debug_note(
    tmp_path: Path, trained: Path, caplog: pytest.LogCaptureFixture
) -> None:
    status_path = trained / "run_logs" / "training_status.json"
    data = status_of(trained)
    for record in [*data[BEHAVIOR]["checkpoints"], data[BEHAVIOR]["final_checkpoint"]]:
        del record["sha256"]
    status_path.write_text(json.dumps(data))
    steps = unit_steps(trained)
    line = play_back(tmp_path, caplog, logging.DEBUG)
    assert f"from step {steps[-1]} " in line
    debug = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("No checksum recorded" in m and f"{BEHAVIOR}-{steps[-1]}.pt" in m for m in debug)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "sha256" in r.getMessage()]


def test_resume_from_a_damaged_unit_names_the_reason_and_the_intact_units(tmp_path: Path, trained: Path) -> None:
    steps = unit_steps(trained)
    overwrite_64_bytes(trained / BEHAVIOR / f"{BEHAVIOR}-{steps[1]}.pt")
    with pytest.raises(CheckpointError) as info:
        api.run(options(tmp_path, max_steps=9000, resume_from=f"{BEHAVIOR}-{steps[1]}"), display="none")
    message = str(info.value)
    assert "does not match the sha256" in message
    assert f"Intact checkpoints of '{BEHAVIOR}': {BEHAVIOR}-{steps[0]}, {BEHAVIOR}-{steps[2]}" in message


def test_no_intact_unit_at_all_is_one_clear_error(tmp_path: Path, trained: Path) -> None:
    for path in (trained / BEHAVIOR).glob("*.pt"):
        path.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"No intact checkpoint of .* is empty \(0 bytes\)"):
        api.run(options(tmp_path, max_steps=9000, resume=True), display="none")


def test_a_damaged_onnx_is_reported_but_its_intact_state_is_used(
    tmp_path: Path, trained: Path, caplog: pytest.LogCaptureFixture
) -> None:
    steps = unit_steps(trained)
    onnx = trained / BEHAVIOR / f"{BEHAVIOR}-{steps[-1]}.onnx"
    overwrite_64_bytes(onnx)
    line = play_back(tmp_path, caplog)
    assert f"from step {steps[-1]} " in line
    assert f"{onnx} does not match the sha256" in caplog.text and "fledge export" in caplog.text


def test_export_play_and_initialize_from_check_the_recorded_checksum(tmp_path: Path, trained: Path) -> None:
    from fledge.checkpoints.export import export_checkpoints
    from fledge.play import play

    steps = unit_steps(trained)
    unit = f"{BEHAVIOR}-{steps[-1]}"
    overwrite_64_bytes(trained / BEHAVIOR / f"{unit}.pt")
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        export_checkpoints(trained, checkpoint=unit)
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        play(trained, checkpoint=unit, episodes=1, max_steps=5)
    overwrite_64_bytes(trained / f"{BEHAVIOR}.onnx")
    with pytest.raises(CheckpointError, match=r"ONNX model .*\.onnx does not match the sha256"):
        play(trained, use_onnx=True, episodes=1, max_steps=5)
    init = options(tmp_path, max_steps=10)
    init.checkpoint_settings.run_id = "r2"
    init.checkpoint_settings.initialize_from = "r"
    init.default_settings.init_path = f"{unit}.pt"  # type: ignore[union-attr]
    with pytest.raises(CheckpointError, match="does not match the sha256"):
        api.run(init, display="none")
    # exporting an intact unit again keeps the status's checksum true
    older = f"{BEHAVIOR}-{steps[0]}"
    (written,) = export_checkpoints(trained, checkpoint=older, opset=11)
    play(trained, checkpoint=older, use_onnx=True, episodes=1, max_steps=5)
    import hashlib

    assert (
        status_of(trained)[BEHAVIOR]["checkpoints"][0]["sha256"][written.name]
        == hashlib.sha256(written.read_bytes()).hexdigest()
    )


# -- the seed -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["config deleted", "config damaged", "config and status lost"])
def test_a_resume_without_configuration_keeps_the_runs_seed(
    tmp_path: Path, trained: Path, loss: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = trained / "configuration.yaml"
    if loss == "config damaged":
        config.write_text("env_settings: {seed: [unclosed\n")
    else:
        config.unlink()
    source = "training_status.json"
    if loss == "config and status lost":
        (trained / "run_logs" / "training_status.json").unlink()
        source = "checkpoint.pt"
    with caplog.at_level(logging.INFO, logger="fledge"):
        result = api.run(options(tmp_path, max_steps=20, seed=-1, resume=True, inference=True))
    assert result.seed == SEED
    (warning,) = [r.getMessage() for r in caplog.records if "resuming with the run's seed" in r.getMessage()]
    assert str(config) in warning and source in warning
    assert ("damaged" if loss == "config damaged" else "missing") in warning


def test_a_resume_over_a_configuration_that_is_not_text_trains_on_and_writes_it_again(
    tmp_path: Path, trained: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = trained / "configuration.yaml"
    config.write_bytes(b"\xff\xfe\x00garbage")
    with caplog.at_level(logging.WARNING, logger="fledge"):
        result = api.run(options(tmp_path, max_steps=3600, seed=-1, resume=True), display="none")
    assert result.seed == SEED and result.behaviors[BEHAVIOR].steps >= 3600
    assert any("cannot report what changed" in r.getMessage() for r in caplog.records)
    assert f"seed: {SEED}" in config.read_text(encoding="utf-8")


def test_inference_needs_no_writable_results_folder(tmp_path: Path, trained: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in trained.rglob("*")}
    os.chmod(tmp_path, 0o555)
    try:
        if os.access(tmp_path, os.W_OK):  # root ignores the mode: check the folder test directly
            api.check_run_folder(options(tmp_path, resume=True, inference=True))
        else:
            api.run(options(tmp_path, max_steps=20, resume=True, inference=True), display="none")
    finally:
        os.chmod(tmp_path, 0o755)
    assert {p: p.stat().st_mtime_ns for p in trained.rglob("*")} == before


def test_without_any_record_of_the_seed_a_new_one_is_drawn_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "run_logs").mkdir()
    with caplog.at_level(logging.WARNING, logger="fledge"):
        assert api.stored_seed(tmp_path) == -1
    assert "a new seed is drawn" in caplog.text


# -- writes that fail ---------------------------------------------------------------------------------

CONFIG = """
default_settings:
  trainer_type: ppo
  hyperparameters: {batch_size: 64, buffer_size: 512}
  network_settings: {hidden_units: 16, normalize: true}
  max_steps: {max_steps}
  summary_freq: 100000
  checkpoint_interval: 500
  keep_checkpoints: 3
"""


def cli(
    tmp_path: Path, *args: str, max_steps: int = 2000, prelude: str = "", file_limit: int | None = None
) -> subprocess.CompletedProcess[str]:
    """The real `fledge learn` in a subprocess (optionally under a file size limit, or with a prelude)."""
    (tmp_path / "cfg.yaml").write_text(CONFIG.replace("{max_steps}", str(max_steps)))
    code = f"{prelude}\nimport sys\nfrom fledge.cli import main\nsys.exit(main(sys.argv[1:]))"
    cmd = [
        sys.executable,
        "-c",
        code,
        "learn",
        str(tmp_path / "cfg.yaml"),
        "--env",
        BEHAVIOR,
        "--run-id",
        "f",
        "--results-dir",
        str(tmp_path / "results"),
        "--seed",
        "5",
        *args,
    ]

    def limit() -> None:
        if file_limit is not None:  # CPython ignores SIGXFSZ, so a write past the limit fails with EFBIG
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, resource.RLIM_INFINITY))

    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, preexec_fn=limit, env=dict(os.environ, PYTHONUNBUFFERED="1")
    )


def test_a_file_size_limit_stops_the_run_cleanly_and_the_earlier_units_resume(tmp_path: Path) -> None:
    first = cli(tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    run = tmp_path / "results" / "f"
    folder = run / BEHAVIOR
    before = snapshot(folder)
    pt_size = min(p.stat().st_size for p in folder.glob(f"{BEHAVIOR}-*.pt"))
    onnx_size = max(p.stat().st_size for p in folder.glob(f"{BEHAVIOR}-*.onnx"))
    assert onnx_size < pt_size - 1
    out = cli(tmp_path, "--resume", max_steps=4000, file_limit=pt_size - 1)  # the next .pt cannot be written
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "Traceback" not in text
    assert "fledge: error: Could not write" in out.stderr
    assert "the file would exceed the file size limit (ulimit -f) (EFBIG)" in out.stderr
    assert "every checkpoint written before is intact" in out.stderr
    assert not list(run.rglob("*.tmp"))
    after = snapshot(folder)
    assert all(after[name] == data for name, data in before.items() if name in after)
    for record in status_of(run)[BEHAVIOR]["checkpoints"]:
        pt = Path(record["auxillary_file_paths"][0])
        load_state(pt, record["sha256"][pt.name])
    again = cli(tmp_path, "--resume", max_steps=3000)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Resuming training of" in again.stdout


def test_results_dir_that_is_a_file_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fledge.cli import main

    blocker = tmp_path / "results.txt"
    blocker.write_text("not a folder")
    for results in (blocker, blocker / "deeper"):
        code = main(["learn", "--env", BEHAVIOR, "--run-id", "x", "--results-dir", str(results)])
        captured = capsys.readouterr()
        assert code == 1
        assert "Traceback" not in captured.out + captured.err
        assert f"--results-dir {results}: {blocker} is a file, not a folder" in captured.err
    assert blocker.read_text() == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.txt"]
    with pytest.raises(RunFolderError, match="is a file, not a folder"):
        (tmp_path / "res").mkdir()
        (tmp_path / "res" / "r").write_text("")
        api.run(options(tmp_path / "res"), display="none")


def test_files_are_created_with_the_umask_mode(tmp_path: Path) -> None:
    raw = {
        "default_settings": {
            "trainer_type": "sac",
            "hyperparameters": {"batch_size": 32, "buffer_size": 1000, "save_replay_buffer": True},
            "network_settings": {"hidden_units": 8},
            "max_steps": 300,
            "checkpoint_interval": 200,
        },
        "env_settings": {"env_path": BEHAVIOR, "seed": 1},
        "checkpoint_settings": {"run_id": "m", "results_dir": str(tmp_path)},
    }
    previous = os.umask(0o022)
    try:
        api.run(build_run_options(raw), display="none")
        atomic_write_text(tmp_path / "group.txt", "x")
        os.umask(0o002)
        atomic_write_text(tmp_path / "group.txt", "y")
    finally:
        os.umask(previous)
    run = tmp_path / "m"
    files = [
        *run.glob(f"{BEHAVIOR}/*.pt"),
        *run.glob(f"{BEHAVIOR}/*.onnx"),
        run / f"{BEHAVIOR}.onnx",
        run / BEHAVIOR / "last_replay_buffer.hdf5",
        run / "run_logs" / "training_status.json",
        run / "configuration.yaml",
    ]
    assert len(files) >= 7
    for path in files:
        assert path.stat().st_mode & 0o777 == 0o644, path
    assert (tmp_path / "group.txt").stat().st_mode & 0o777 == 0o664


# -- a trainer that raises, a trainer that diverges ----------------------------------------------------

FAIL_DURING_UPDATE = """
import fledge.trainers.ppo.trainer as ppo
real = ppo.ppo_gradients
calls = [0]
def failing(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 24 * 2 + 5:  # the 6th minibatch of the 3rd update (24 per update): after 2 checkpoints
        raise RuntimeError("simulated fault inside the update")
    return real(*args, **kwargs)
ppo.ppo_gradients = failing
"""


def test_a_trainer_that_raises_gets_a_final_checkpoint_and_the_run_resumes(tmp_path: Path) -> None:
    out = cli(tmp_path, prelude=FAIL_DURING_UPDATE)
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert "Traceback" not in text
    assert f"fledge: error: Training stopped: the ppo trainer of '{BEHAVIOR}' at step" in out.stderr
    assert "raised RuntimeError: simulated fault inside the update" in out.stderr
    assert "continue with --resume" in out.stderr
    run = tmp_path / "results" / "f"
    status = status_of(run)[BEHAVIOR]
    final = status["final_checkpoint"]
    periodic = [r["steps"] for r in status["checkpoints"] if r["steps"] != final["steps"]]
    assert periodic and final["steps"] >= max(periodic)  # nothing since the last checkpoint was lost
    assert final["steps"] >= 3 * 512  # the steps of the failed update's buffer are kept
    state, _ = load_state(Path(final["auxillary_file_paths"][0]))
    assert all(bool(torch.isfinite(t).all()) for t in state.tensors.values() if t.is_floating_point())
    again = cli(tmp_path, "--resume", max_steps=final["steps"] + 600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"Resuming training of {BEHAVIOR} from step {final['steps']} " in again.stdout


def test_a_non_finite_state_is_never_registered_as_a_checkpoint(tmp_path: Path, trained: Path) -> None:
    from fledge.envs import registry
    from fledge.stats import StatsReporter
    from fledge.trainers.ppo.trainer import PPOTrainer

    opts = options(tmp_path)
    env = registry.make(BEHAVIOR, seed=1)
    trainer = PPOTrainer(
        behavior_name=BEHAVIOR,
        spec=env.behavior_specs[BEHAVIOR],
        settings=opts.behavior_settings(BEHAVIOR),
        stats=StatsReporter([]),
        seed=0,
    )
    trainer.step = 99_999
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    status_path = trained / "run_logs" / "training_status.json"
    before_status, before_files = status_path.read_bytes(), snapshot(trained / BEHAVIOR)
    manager = CheckpointManager(run_dir=trained, status=TrainingStatus.load(status_path))
    with pytest.raises(
        CheckpointError, match=r"BEHAVIOR-99999 was not written: .* NaN or infinite".replace("BEHAVIOR", BEHAVIOR)
    ):
        manager.save(trainer, keep_checkpoints=3, run_meta={}, final=True)
    assert status_path.read_bytes() == before_status
    assert snapshot(trained / BEHAVIOR) == before_files
