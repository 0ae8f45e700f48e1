"""Replay buffer: appends, ML-Agents' truncation, sampling, and the HDF5 file (typed, atomic, checked)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from fledge.errors import CheckpointError
from fledge.trainers.replay_buffer import FORMAT_NAME, ReplayBuffer, ReplaySpec

SPEC = ReplaySpec(obs_size=3, continuous_size=2, discrete_size=2, mask_size=5)


def rows(n: int, start: int = 0, spec: ReplaySpec = SPEC) -> dict[str, np.ndarray]:
    """n rows whose values identify them (row i has obs[:, 0] == start + i)."""
    ids = np.arange(start, start + n)
    rng = np.random.default_rng(start)
    obs = np.zeros((n, spec.obs_size), np.float32)
    obs[:, 0] = ids
    return {
        "obs": obs,
        "next_obs": obs + 0.5,
        "continuous": rng.uniform(-1, 1, (n, spec.continuous_size)).astype(np.float32),
        "discrete": rng.integers(0, 2, (n, spec.discrete_size)).astype(np.int32),
        "allowed": rng.random((n, spec.mask_size)) < 0.7,
        "rewards": ids.astype(np.float32) * 0.1,
        "done": ids % 3 == 0,
    }


def test_append_and_truncate_to_the_newest_80_percent() -> None:
    buf = ReplayBuffer(spec=SPEC, max_size=10)
    buf.append(**rows(8))
    assert len(buf) == 8
    buf.append(**rows(5, start=8))  # 13 > 10: keep the newest int(0.8 * 10) = 8
    assert len(buf) == 8
    np.testing.assert_array_equal(buf.view()["obs"][:, 0], np.arange(5, 13))
    np.testing.assert_array_equal(buf.view()["done"], np.arange(5, 13) % 3 == 0)
    buf.append(**rows(2, start=13))
    assert len(buf) == 10  # exactly max_size: no truncation
    np.testing.assert_array_equal(buf.view()["obs"][:, 0], np.arange(5, 15))


def test_append_grows_past_the_reserve_when_a_big_batch_arrives() -> None:
    buf = ReplayBuffer(spec=SPEC, max_size=10, reserve=2)
    buf.append(**rows(30))  # more than capacity at once: grown, then truncated
    assert len(buf) == 8
    np.testing.assert_array_equal(buf.view()["obs"][:, 0], np.arange(22, 30))


def test_append_refuses_missing_fields() -> None:
    buf = ReplayBuffer(spec=SPEC, max_size=10)
    data = rows(2)
    del data["done"]
    with pytest.raises(ValueError, match="done"):
        buf.append(**data)


def test_sampling_is_uniform_over_the_stored_rows_and_seeded() -> None:
    buf = ReplayBuffer(spec=SPEC, max_size=100)
    buf.append(**rows(40))
    idx = buf.sample_indices(np.random.default_rng(3), 4000)
    assert idx.min() >= 0 and idx.max() < 40
    assert len(np.unique(idx)) == 40
    np.testing.assert_array_equal(idx, buf.sample_indices(np.random.default_rng(3), 4000))
    batch = buf.gather(idx[:7])
    np.testing.assert_array_equal(batch["obs"][:, 0], idx[:7])
    assert batch["discrete"].dtype == np.int32 and batch["done"].dtype == np.bool_


def test_hdf5_round_trip_keeps_values_and_dtypes_exactly(tmp_path: Path) -> None:
    buf = ReplayBuffer(spec=SPEC, max_size=50)
    buf.append(**rows(23))
    path = buf.save(tmp_path / "last_replay_buffer.hdf5")
    assert [p.name for p in tmp_path.iterdir()] == ["last_replay_buffer.hdf5"]  # no temporary left behind
    with h5py.File(path, "r") as f:
        assert f.attrs["format"] == FORMAT_NAME and int(f.attrs["rows"]) == 23
        assert f["discrete"].dtype == np.int32 and f["done"].dtype == np.bool_ and f["allowed"].dtype == np.bool_
    other = ReplayBuffer(spec=SPEC, max_size=50)
    other.append(**rows(3, start=100))  # replaced, not appended to
    other.load(path)
    assert len(other) == 23
    for key, value in buf.view().items():
        loaded = other.view()[key]
        assert loaded.dtype == value.dtype, key
        np.testing.assert_array_equal(loaded, value)
    buf.append(**rows(2, start=23))
    buf.save(path)  # overwriting works and stays a single file
    other.load(path)
    assert len(other) == 25


def test_empty_buffer_round_trip(tmp_path: Path) -> None:
    buf = ReplayBuffer(spec=SPEC, max_size=5)
    other = ReplayBuffer(spec=SPEC, max_size=5)
    other.load(buf.save(tmp_path / "b.hdf5"))
    assert len(other) == 0


def _saved(tmp_path: Path, n: int = 10) -> Path:
    buf = ReplayBuffer(spec=SPEC, max_size=50)
    buf.append(**rows(n))
    return buf.save(tmp_path / "last_replay_buffer.hdf5")


def test_truncated_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="last_replay_buffer.hdf5"):
        ReplayBuffer(spec=SPEC, max_size=50).load(path)


def test_non_hdf5_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "last_replay_buffer.hdf5"
    path.write_text("this is not an HDF5 file\n")
    with pytest.raises(CheckpointError, match="not a readable HDF5 file"):
        ReplayBuffer(spec=SPEC, max_size=50).load(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        ReplayBuffer(spec=SPEC, max_size=50).load(tmp_path / "missing.hdf5")


def test_foreign_hdf5_file_is_a_checkpoint_error(tmp_path: Path) -> None:
    path = tmp_path / "mlagents.hdf5"
    with h5py.File(path, "w") as f:  # what ML-Agents 1.1.0 writes: float32 fields, other names, no attributes
        f.create_dataset("obs:0", data=np.zeros((4, 3), np.float32))
        f.create_dataset("done", data=np.zeros(4, np.float32))
    with pytest.raises(CheckpointError, match="not a fledge replay buffer"):
        ReplayBuffer(spec=SPEC, max_size=50).load(path)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.__delitem__("next_obs"), "dataset 'next_obs' is missing"),
        (
            lambda f: (f.__delitem__("discrete"), f.create_dataset("discrete", data=np.zeros((10, 2), np.float32))),
            "dataset 'discrete' has dtype float32, expected int32",
        ),
        (
            lambda f: (f.__delitem__("done"), f.create_dataset("done", data=np.zeros(10, np.float32))),
            "dataset 'done' has dtype float32, expected bool",
        ),
        (
            lambda f: (f.__delitem__("rewards"), f.create_dataset("rewards", data=np.zeros(9, np.float32))),
            r"dataset 'rewards' has shape \(9,\), expected \(10,\)",
        ),
        (lambda f: f.attrs.__setitem__("version", 99), "version"),
        (lambda f: f.attrs.__setitem__("rows", 10**9), "more than this buffer's buffer_size"),
    ],
)
def test_mismatched_files_name_the_problem(tmp_path: Path, edit: object, message: str) -> None:
    path = _saved(tmp_path)
    with h5py.File(path, "r+") as f:
        edit(f)  # type: ignore[operator]
    target = ReplayBuffer(spec=SPEC, max_size=50)
    target.append(**rows(4, start=70))
    with pytest.raises(CheckpointError, match=message):
        target.load(path)
    assert len(target) == 4  # a failed load leaves the buffer as it was


def test_file_of_another_behavior_shape_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    other_spec = ReplaySpec(obs_size=4, continuous_size=2, discrete_size=2, mask_size=5)
    with pytest.raises(CheckpointError, match=r"dataset 'obs' has shape \(10, 3\), expected \(10, 4\)"):
        ReplayBuffer(spec=other_spec, max_size=50).load(path)
