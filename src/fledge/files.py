"""Writing files safely, for every part of fledge: atomic writes (a temporary file in the same folder, flushed,
fsynced, then renamed over the target), one clear error for a failed write, sha256 checksums.

A failed write (disk full, file size limit, read-only disk, no permission) removes its temporary file,
leaves the target as it was and raises one `WriteError` naming the file and the reason. Files are
created with the mode `open()` would give them (0666 less the umask), not the 0600 of a temporary file.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from fledge.errors import WriteError

# errno -> (what happened, what to do)
_REASONS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free disk space"),
    errno.EDQUOT: ("the disk quota is used up", "free space within the quota"),
    errno.EFBIG: ("the file would exceed the file size limit (ulimit -f)", "raise the limit (ulimit -f unlimited)"),
    errno.EROFS: ("the file system is read-only", "choose a writable --results-dir"),
    errno.EACCES: ("permission denied", "fix the folder's permissions or choose another --results-dir"),
    errno.EPERM: ("operation not permitted", "fix the folder's permissions or choose another --results-dir"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another --results-dir"),
    errno.EIO: ("an input/output error of the disk", "check the disk"),
}

# the errors of a write that the user can fix (as opposed to a bug)
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


def write_error(path: str | Path, exc: OSError) -> WriteError:
    """One clear error for an OSError met while writing `path`."""
    code = exc.errno if isinstance(exc.errno, int) else -1
    name = errno.errorcode.get(code, "unknown error")
    reason, advice = _REASONS.get(code, (exc.strerror or str(exc), "fix the cause"))
    return WriteError(
        f"Could not write {path}: {reason} ({name}). The file was not changed and every checkpoint written "
        f"before is intact; {advice}, then run the command again (a training run continues with --resume)."
    )


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call write(file) on a temporary file next to `path`, then atomically replace `path` with it.

    Whatever write() returns (such as a byte count) is ignored.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except FileExistsError as exc:  # a file where a folder should be
        raise write_error(target, OSError(errno.ENOTDIR, exc.strerror)) from exc
    except OSError as exc:
        raise write_error(target, exc) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), 0o666 & ~current_umask())
        os.replace(tmp_name, target)
    except BaseException as exc:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise write_error(target, exc) from exc
        raise
    _fsync_dir(target.parent)
    return target


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
