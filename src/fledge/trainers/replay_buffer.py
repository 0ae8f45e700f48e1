"""The off-policy replay buffer (SAC's): preallocated typed arrays, vectorised appends, ML-Agents' truncation, HDF5.

Fields (one row per experience): obs and next_obs (float32), continuous actions (float32, the
squashed action the environment received), discrete actions (int32), allowed masks (bool, True =
allowed), environment rewards (float32) and done (bool: a true episode end, never an interruption).
When the buffer holds more than `max_size` rows it keeps the newest int(0.8 x max_size) (ML-Agents).
With memory (`memory_size` > 0) rows come in whole sequences of `sequence_length` (padded at the end,
networks/memory.py) with three more fields: `masks` (1 real, 0 padding), `memory` (the actor's memory
before each step) and `critic_memory` (the value network's, at sequence starts); truncation keeps a
multiple of the sequence length and `sample_sequences` draws whole sequences.

File format (`last_replay_buffer.hdf5`): one dataset per field with its real dtype, file attributes
`format` = "fledge-sac-replay-buffer", `version` = 1, `rows`. Written atomically (built in memory, then
a temporary file in the same folder, fsync, rename). Reading checks format, version, every dataset's
presence, dtype and shape against the buffer, and refuses more rows than the buffer may hold.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fledge.errors import CheckpointError, ConfigError
from fledge.files import atomic_write
from fledge.networks.size import physical_memory

FORMAT_NAME = "fledge-sac-replay-buffer"
FORMAT_VERSION = 1
KEEP_FRACTION = 0.8


@dataclass(frozen=True)
class ReplaySpec:
    obs_size: int
    continuous_size: int
    discrete_size: int
    mask_size: int
    memory_size: int = 0

    def fields(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """Per-row shape and dtype of every field."""
        memory: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        if self.memory_size:
            memory = {
                "masks": ((), np.dtype(np.float32)),
                "memory": ((self.memory_size,), np.dtype(np.float32)),
                "critic_memory": ((self.memory_size,), np.dtype(np.float32)),
            }
        return memory | {
            "obs": ((self.obs_size,), np.dtype(np.float32)),
            "next_obs": ((self.obs_size,), np.dtype(np.float32)),
            "continuous": ((self.continuous_size,), np.dtype(np.float32)),
            "discrete": ((self.discrete_size,), np.dtype(np.int32)),
            "allowed": ((self.mask_size,), np.dtype(np.bool_)),
            "rewards": ((), np.dtype(np.float32)),
            "done": ((), np.dtype(np.bool_)),
        }


class ReplayBuffer:
    def __init__(
        self,
        *,
        spec: ReplaySpec,
        max_size: int,
        reserve: int = 0,
        setting: str = "hyperparameters.buffer_size",
        sequence_length: int = 1,
    ) -> None:
        """`max_size`: buffer_size; `reserve`: extra rows preallocated for appends before truncation;
        `setting`: the config key of buffer_size, named when the buffer cannot be allocated;
        `sequence_length`: rows come in whole sequences of it (memory)."""
        self.spec = spec
        self.max_size = int(max_size)
        self.sequence_length = seq = max(1, int(sequence_length))
        keep = int(KEEP_FRACTION * self.max_size)
        self.keep = max(seq, keep - keep % seq)
        self.count = 0
        self._capacity = self.max_size + max(0, int(reserve))
        fields = spec.fields()
        row_bytes = sum(int(np.prod(shape, dtype=np.int64)) * dt.itemsize for shape, dt in fields.values())
        need, memory = row_bytes * self._capacity, physical_memory()
        refusal = (
            f"{setting}: {self.max_size:,} experiences of {row_bytes} bytes need {need / 2**30:,.1f} GiB of memory"
        )
        if memory is not None and need > memory:
            raise ConfigError(f"{refusal}; this machine has {memory / 2**30:,.1f} GiB. Lower buffer_size.")
        try:
            self.data = {k: np.zeros((self._capacity,) + shape, dtype=dt) for k, (shape, dt) in fields.items()}
        except MemoryError:
            raise ConfigError(f"{refusal}, and allocating them failed. Lower buffer_size.") from None

    def __len__(self) -> int:
        return self.count

    def _ensure(self, rows: int) -> None:
        if rows <= self._capacity:
            return
        capacity = max(rows, 2 * self._capacity)
        for key, arr in self.data.items():
            grown = np.zeros((capacity,) + arr.shape[1:], dtype=arr.dtype)
            grown[: self.count] = arr[: self.count]
            self.data[key] = grown
        self._capacity = capacity

    def append(self, **fields: np.ndarray) -> None:
        """Append rows (every field, same length), then truncate if the buffer holds more than max_size."""
        if set(fields) != set(self.data):
            raise ValueError(f"append needs exactly the fields {sorted(self.data)}, got {sorted(fields)}")
        n = len(fields["rewards"])
        self._ensure(self.count + n)
        start, end = self.count, self.count + n
        for key, value in fields.items():
            self.data[key][start:end] = value
        self.count = end
        if self.count > self.max_size:
            self.truncate(self.keep)

    def truncate(self, keep: int) -> None:
        """Keep the newest `keep` rows, moved to the front."""
        if self.count <= keep:
            return
        start = self.count - keep
        for arr in self.data.values():
            arr[:keep] = arr[start : self.count].copy()
        self.count = keep

    def sample_indices(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n row indices drawn uniformly with replacement (one numpy call)."""
        return rng.integers(0, self.count, size=n)

    def sample_sequences(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Row indices of n whole sequences whose starts (multiples of the sequence length) are drawn uniformly
        with replacement, (n * L,) in sequence order."""
        seq = self.sequence_length
        starts = rng.integers(0, self.count // seq, size=n) * seq
        return (starts[:, None] + np.arange(seq)).reshape(-1)

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        return {k: v[idx] for k, v in self.data.items()}

    def view(self) -> dict[str, np.ndarray]:
        return {k: v[: self.count] for k, v in self.data.items()}

    def clear(self) -> None:
        self.count = 0

    # -- files ------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        import h5py

        memory = io.BytesIO()
        with h5py.File(memory, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["version"] = FORMAT_VERSION
            f.attrs["rows"] = self.count
            for key, arr in self.data.items():
                f.create_dataset(key, data=arr[: self.count])
        return atomic_write(path, lambda handle: handle.write(memory.getbuffer()))

    def load(self, path: str | Path) -> None:
        """Replace the contents with a file written by `save`; CheckpointError naming the problem otherwise."""
        import h5py

        file = Path(path)

        def fail(problem: str) -> CheckpointError:
            return CheckpointError(f"Replay buffer file {file}: {problem}")

        try:
            handle = h5py.File(file, "r")
        except FileNotFoundError:
            raise fail("the file does not exist.") from None
        except OSError as exc:
            raise fail(f"not a readable HDF5 file (truncated or another format): {exc}") from None
        loaded: dict[str, np.ndarray] = {}
        try:
            with handle as f:
                fmt = f.attrs.get("format")
                if isinstance(fmt, bytes):
                    fmt = fmt.decode("utf-8", "replace")
                if fmt != FORMAT_NAME:
                    raise fail(f"attribute 'format' is {fmt!r}, expected {FORMAT_NAME!r} (not a fledge replay buffer).")
                version = f.attrs.get("version")
                if version is None or int(version) != FORMAT_VERSION:
                    raise fail(f"format version {version!r} is not supported (expected {FORMAT_VERSION}).")
                rows = f.attrs.get("rows")
                if rows is None or int(rows) < 0:
                    raise fail("attribute 'rows' is missing or negative.")
                rows = int(rows)
                if rows % self.sequence_length:
                    raise fail(
                        f"its {rows} experiences are not whole sequences of sequence_length "
                        f"{self.sequence_length}; was the memory setting changed?"
                    )
                if rows > self.max_size:
                    raise fail(
                        f"it holds {rows} experiences, more than this buffer's buffer_size ({self.max_size}); "
                        "was buffer_size reduced?"
                    )
                for key, (shape, dtype) in self.spec.fields().items():
                    if key not in f:
                        raise fail(f"dataset '{key}' is missing.")
                    ds = f[key]
                    if not isinstance(ds, h5py.Dataset):
                        raise fail(f"'{key}' is not a dataset.")
                    if ds.dtype != dtype:
                        raise fail(f"dataset '{key}' has dtype {ds.dtype}, expected {dtype}.")
                    if tuple(ds.shape) != (rows,) + shape:
                        raise fail(
                            f"dataset '{key}' has shape {tuple(ds.shape)}, expected {(rows,) + shape} "
                            "(observation or action sizes differ from this behavior's, or the row count is wrong)."
                        )
                    loaded[key] = ds[:rows]
        except CheckpointError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise fail(f"could not be read (damaged file): {exc}") from None
        self._ensure(rows)
        for key, arr in loaded.items():
            self.data[key][:rows] = arr
        self.count = rows
