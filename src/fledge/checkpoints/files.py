"""Trusting checkpoint files: whether a file a run wrote is still there, whole, and the one training_status.json
records (by its sha256). Writing them is `fledge.files`' job."""

from __future__ import annotations

from pathlib import Path

from fledge.files import sha256_bytes, sha256_file


def file_problem(path: Path, expected_sha256: str | None, data: bytes | None = None) -> str | None:
    """Why the file at `path` cannot be trusted (missing, empty, checksum mismatch), or None.

    `data`: the file's bytes when already read."""
    if data is None:
        if not path.is_file():
            return f"{path} does not exist"
        if path.stat().st_size == 0:
            return _empty(path)
        if expected_sha256 is None:
            return None
        try:
            actual = sha256_file(path)
        except OSError as exc:
            return f"{path} cannot be read ({exc.strerror})"
    else:
        if not data:
            return _empty(path)
        if expected_sha256 is None:
            return None
        actual = sha256_bytes(data)
    if actual != expected_sha256:
        return (
            f"{path} does not match the sha256 recorded in training_status.json (recorded {expected_sha256[:12]}..., "
            f"found {actual[:12]}...): the file was changed or damaged after it was written"
        )
    return None


def _empty(path: Path) -> str:
    return (
        f"{path} is empty (0 bytes): its data never reached the disk (the disk was full, or the machine stopped "
        "before the data was written)"
    )
