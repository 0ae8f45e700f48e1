"""Checkpoint units, training_status.json, the .pt format and its safety, resume and initialize-from."""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import drive_trainer
from fledge import api
from fledge.checkpoints.state_io import encode_state, load_state
from fledge.config import build_run_options
from fledge.envs import registry
from fledge.errors import CheckpointError
from fledge.stats import StatsReporter
from fledge.trainers.ppo.trainer import PPOTrainer

BEHAVIOR = "MoveToGoal1D-Continuous"
RECORD_KEYS = {"steps", "file_path", "reward", "creation_time", "auxillary_file_paths"}  # ML-Agents' keys
FLEDGE_RECORD_KEYS = {"sha256"}  # fledge's addition: the digest of the record's .onnx and .pt


def options(tmp_path: Path, *, max_steps: int = 3000, hidden: int = 16, **checkpoint: Any) -> Any:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 64, "buffer_size": 512},
            "network_settings": {"hidden_units": hidden, "normalize": True},
            "max_steps": max_steps,
            "summary_freq": 1000,
            "checkpoint_interval": 1000,
            "keep_checkpoints": 2,
        },
        "env_settings": {"env_path": BEHAVIOR, "seed": 3},
        "checkpoint_settings": {"run_id": "r", "results_dir": str(tmp_path), **checkpoint},
    }
    return build_run_options(raw)


def test_status_file_schema_and_units_on_disk(tmp_path: Path) -> None:
    api.run(options(tmp_path))
    run = tmp_path / "r"
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert set(status) == {BEHAVIOR, "metadata"}
    assert status["metadata"]["stats_format_version"] == "0.3.0"
    assert set(status["metadata"]) == {
        "stats_format_version",
        "mlagents_version",
        "torch_version",
        "fledge_version",
        "seed",
    }
    assert status["metadata"]["seed"] == 3
    entry = status[BEHAVIOR]
    assert set(entry) == {"checkpoints", "final_checkpoint"}
    records = entry["checkpoints"]
    assert len(records) == 2  # keep_checkpoints
    for record in records + [entry["final_checkpoint"]]:
        assert set(record) == RECORD_KEYS | FLEDGE_RECORD_KEYS
        files = [Path(record["file_path"]), *map(Path, record["auxillary_file_paths"])]
        assert set(record["sha256"]) == {p.name for p in files}
        for path in files:
            assert hashlib.sha256(path.read_bytes()).hexdigest() == record["sha256"][path.name]
        assert isinstance(record["steps"], int) and isinstance(record["creation_time"], float)
        assert record["reward"] is None or isinstance(record["reward"], float)
        assert Path(record["file_path"]).is_file()
        assert all(Path(p).is_file() and p.endswith(".pt") for p in record["auxillary_file_paths"])
    assert [r["steps"] for r in records] == sorted(r["steps"] for r in records)
    assert entry["final_checkpoint"]["file_path"] == str(run / f"{BEHAVIOR}.onnx")
    assert entry["final_checkpoint"]["steps"] == records[-1]["steps"] >= 3000
    units = sorted(p.name for p in (run / BEHAVIOR).glob(f"{BEHAVIOR}-*"))
    expected = sorted(Path(r["file_path"]).name for r in records) + sorted(
        Path(r["auxillary_file_paths"][0]).name for r in records
    )
    assert units == sorted(expected)  # rotation removed older units whole
    assert (run / BEHAVIOR / "checkpoint.pt").is_file()


def make_trainer(seed: int = 0, hidden: int = 16) -> tuple[PPOTrainer, Any]:
    opts = options(Path("/nonexistent"), hidden=hidden)
    env = registry.make(BEHAVIOR, seed=1)
    trainer = PPOTrainer(
        behavior_name=BEHAVIOR,
        spec=env.behavior_specs[BEHAVIOR],
        settings=opts.behavior_settings(BEHAVIOR),
        stats=StatsReporter([]),
        seed=seed,
    )
    return trainer, env


def test_full_state_round_trip_continues_identically(tmp_path: Path) -> None:
    torch.manual_seed(0)
    a, env = make_trainer(seed=1)
    drive_trainer(a, BEHAVIOR, 1500, seed=1)  # includes two updates and normaliser statistics
    path = tmp_path / "s.pt"
    path.write_bytes(encode_state(a.get_state(), {"x": 1}))
    state, run_meta = load_state(path)
    assert run_meta == {"x": 1}
    torch.manual_seed(123)
    b, _ = make_trainer(seed=99)
    b.set_state(state)
    sa, sb = a.get_state(), b.get_state()
    assert sa.meta == sb.meta
    assert sa.tensors.keys() == sb.tensors.keys()
    for key in sa.tensors:
        assert torch.equal(sa.tensors[key], sb.tensors[key]), key
    obs = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
    np.testing.assert_array_equal(a.policy.act(obs, None).continuous, b.policy.act(obs, None).continuous)
    assert a.schedules() == b.schedules()


def test_a_pickle_payload_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self) -> Any:
            return (Path.touch, (marker,))

    path = tmp_path / "evil.pt"
    with path.open("wb") as f:
        torch.save({"format": "fledge-trainer-state", "version": 1, "payload": Evil()}, f)
    with pytest.raises(CheckpointError, match="refused"):
        load_state(path)
    assert not marker.exists()
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(CheckpointError):
        load_state(raw)
    assert not marker.exists()


def test_truncated_and_foreign_files_are_named(tmp_path: Path) -> None:
    a, _ = make_trainer()
    good = encode_state(a.get_state(), {})
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="cut.pt"):
        load_state(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a fledge checkpoint"):
        load_state(foreign)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_state(tmp_path / "missing.pt")


def test_incompatible_checkpoint_is_refused_before_anything_changes(tmp_path: Path) -> None:
    api.run(options(tmp_path))
    run = tmp_path / "r"
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    with pytest.raises(CheckpointError, match=r"(?s)-\d+\.pt: .*hidden_units is 16 in the checkpoint but 32"):
        api.run(options(tmp_path, hidden=32, max_steps=5000, resume=True))
    after = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    assert before == after


def test_resume_continues_step_count_and_schedule(tmp_path: Path) -> None:
    api.run(options(tmp_path, max_steps=2000))
    result = api.run(options(tmp_path, max_steps=4000, resume=True))
    assert result.behaviors[BEHAVIOR].steps >= 4000
    status = json.loads((tmp_path / "r" / "run_logs" / "training_status.json").read_text())
    steps = [r["steps"] for r in status[BEHAVIOR]["checkpoints"]]
    assert steps[-1] >= 4000 and len(steps) == 2


def test_resume_from_a_named_checkpoint(tmp_path: Path) -> None:
    api.run(options(tmp_path, max_steps=3000))
    status = json.loads((tmp_path / "r" / "run_logs" / "training_status.json").read_text())
    first = status[BEHAVIOR]["checkpoints"][0]["steps"]
    result = api.run(options(tmp_path, max_steps=first + 200, resume_from=f"{BEHAVIOR}-{first}"))
    assert first <= result.behaviors[BEHAVIOR].steps < first + 400


def test_initialize_from_copies_weights_and_starts_at_zero(tmp_path: Path) -> None:
    api.run(options(tmp_path, max_steps=2000))
    source, _ = load_state(tmp_path / "r" / BEHAVIOR / "checkpoint.pt")
    opts = build_run_options(
        {
            **json.loads(json.dumps(options(tmp_path).model_dump(mode="json"))),
            "checkpoint_settings": {"run_id": "r2", "results_dir": str(tmp_path), "initialize_from": "r"},
        }
    )
    opts.default_settings.max_steps = 10  # type: ignore[union-attr]
    result = api.run(opts)
    assert result.behaviors[BEHAVIOR].steps < 200  # started from 0, not from 2000
    started, _ = load_state(tmp_path / "r2" / BEHAVIOR / "checkpoint.pt")
    assert started.meta["step"] < 200
    # the normaliser came along (its count only grew from the source's)
    assert started.tensors["policy.normalizer.count"] >= source.tensors["policy.normalizer.count"]


def test_initialize_from_a_missing_run_is_refused(tmp_path: Path) -> None:
    from fledge.errors import RunFolderError

    with pytest.raises(RunFolderError, match="Could not initialize"):
        api.run(options(tmp_path, initialize_from="nope"))


def test_sac_resume_reads_its_replay_buffer_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw = {
        "default_settings": {
            "trainer_type": "sac",
            "hyperparameters": {"batch_size": 64, "buffer_size": 5000, "save_replay_buffer": True},
            "network_settings": {"hidden_units": 16},
            "max_steps": 1500,
            "checkpoint_interval": 500,
        },
        "env_settings": {"env_path": BEHAVIOR, "seed": 3},
        "checkpoint_settings": {"run_id": "sac", "results_dir": str(tmp_path)},
    }
    api.run(build_run_options(raw))
    buffer_file = tmp_path / "sac" / BEHAVIOR / "last_replay_buffer.hdf5"
    assert buffer_file.is_file()
    state, _ = load_state(tmp_path / "sac" / BEHAVIOR / "checkpoint.pt")
    raw["default_settings"]["max_steps"] = 2000
    raw["checkpoint_settings"]["resume"] = True
    with caplog.at_level("INFO", logger="fledge"):
        result = api.run(build_run_options(raw))
    assert re.search(r"loaded \d+ experiences from .*last_replay_buffer\.hdf5", caplog.text), caplog.text
    assert "starts empty" not in caplog.text
    assert result.behaviors[BEHAVIOR].steps >= 2000
    resumed, _ = load_state(tmp_path / "sac" / BEHAVIOR / "checkpoint.pt")
    assert resumed.meta["update_count"] > state.meta["update_count"]  # counting went on, not from scratch
    # a SAC checkpoint exports (and so plays) like a PPO one
    from fledge.checkpoints.export import export_checkpoints

    (written,) = export_checkpoints(tmp_path / "sac")
    assert written.suffix == ".onnx" and written.is_file()
