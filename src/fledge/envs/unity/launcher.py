"""Find a Unity player executable and start it, as `mlagents-learn --env PATH` does.

`find_executable("builds/3DBall")` tries, in order: the path as given; the path with ".x86_64",
".x86", ".exe" or ".app" appended; inside a macOS ".app" bundle, the program in Contents/MacOS; a
folder holding exactly one executable file. `launch` starts it with the ML-Agents arguments
(`--mlagents-port`, `-logFile`, `-nographics -batchmode`) followed by the user's own, and `stop`
ends it: it waits a little for the player to quit by itself, then terminates it, then kills it.
This module imports nothing beyond the standard library and fledge.errors (the registry asks it
whether a name is a player without importing gRPC).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from fledge.errors import EnvironmentFault, UnknownEnvironmentError

EDITOR_NAME = "unity-editor"
"""`--env unity-editor`: wait for the Unity Editor (press Play) on port 5004 instead of starting a player."""

SUFFIXES = (".x86_64", ".x86", ".exe", ".app")


def _is_program(path: Path) -> bool:
    return path.is_file() and (os.access(path, os.X_OK) or path.suffix.lower() == ".exe")


def _in_bundle(bundle: Path) -> Path | None:
    macos = bundle / "Contents" / "MacOS"
    programs = sorted(p for p in macos.iterdir() if _is_program(p)) if macos.is_dir() else []
    return programs[0] if programs else None


def candidates(name: str) -> list[Path]:
    """The paths tried for `name`, in order."""
    base = Path(name).expanduser()
    return [base] + [base.with_name(base.name + s) for s in SUFFIXES]


def resolve_executable(name: str) -> Path | None:
    """The player program that `name` stands for, or None when none is found."""
    prefix, sep, _ = name.partition(":")
    if not name or name == EDITOR_NAME or (sep and len(prefix) != 1):  # "gym:..." is a family; "C:..." a drive
        return None
    for path in candidates(name):
        if path.suffix == ".app" or path.is_dir() and (path / "Contents" / "MacOS").is_dir():
            found = _in_bundle(path)
            if found is not None:
                return found.resolve()
        if _is_program(path):
            return path.resolve()
    base = Path(name).expanduser()
    if base.is_dir():
        programs = [p for p in base.iterdir() if _is_program(p) and p.suffix not in (".so", ".dll", ".dylib")]
        bundles = [p for p in base.iterdir() if p.suffix == ".app" and _in_bundle(p) is not None]
        if len(programs) + len(bundles) == 1:
            found = programs[0] if programs else _in_bundle(bundles[0])
            return found.resolve() if found is not None else None
    return None


def is_unity_target(name: str | None) -> bool:
    """Whether an environment name means a Unity player (a path to an executable) or the Editor."""
    return name is not None and (name == EDITOR_NAME or resolve_executable(name) is not None)


def find_executable(name: str) -> Path:
    """`resolve_executable`, or an error that lists what was tried."""
    found = resolve_executable(name)
    if found is not None:
        return found
    tried = [str(p) for p in candidates(name)]
    tried += [f"{name}/Contents/MacOS/* (a .app bundle)", f"{name}/* (a folder with exactly one executable)"]
    raise UnknownEnvironmentError(
        f"No Unity player executable found for '{name}'. Tried: " + "; ".join(tried) + ". Give the path of the "
        "built player (make sure it is executable: chmod +x), or a built-in environment name (see 'fledge envs')."
    )


def player_arguments(
    *,
    port: int,
    log_file: Path | None,
    no_graphics: bool,
    additional_args: Sequence[str] = (),
) -> list[str]:
    """The command-line arguments a player gets (the program itself not included)."""
    args = ["--mlagents-port", str(port)]
    if log_file is not None and not any(a.lower() == "-logfile" for a in additional_args):
        args += ["-logFile", str(log_file)]
    if no_graphics:
        args += ["-nographics", "-batchmode"]
    return args + [str(a) for a in additional_args]


class PlayerProcess:
    """A started player: `check_alive` raises once it has exited, `stop` ends it."""

    def __init__(
        self,
        executable: Path,
        *,
        worker_id: int,
        port: int,
        log_folder: Path | None,
        no_graphics: bool,
        additional_args: Sequence[str] = (),
    ) -> None:
        self.worker_id = worker_id
        self.log_file: Path | None = None
        if log_folder is not None:
            log_folder.mkdir(parents=True, exist_ok=True)
            self.log_file = log_folder / f"Player-{worker_id}.log"
        args = player_arguments(
            port=port, log_file=self.log_file, no_graphics=no_graphics, additional_args=additional_args
        )
        self.command = [str(executable), *args]
        sink: IO[bytes] | int = subprocess.DEVNULL
        self._output: IO[bytes] | None = None
        if self.log_file is not None:  # the player writes its own log there; its console output goes next to it
            self._output = open(self.log_file.with_suffix(".out"), "wb")
            sink = self._output
        try:
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        except OSError as exc:
            self._close_output()
            raise EnvironmentFault(
                f"Unity worker {worker_id}: cannot start the player {executable}: {exc}. Check that it is an "
                "executable built for this system."
            ) from None

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            where = ""
            if self.log_file is not None:
                where = f" Its log: {self.log_file} (console output: {self.log_file.with_suffix('.out')})."
            raise PlayerExitedError(
                f"The Unity player of worker {self.worker_id} exited with code {code}.{where} See its log for why."
            )

    def stop(self, grace: float = 5.0, terminate_wait: float = 3.0) -> None:
        """Wait up to `grace` seconds for the player to quit (it was told to), then terminate it, and kill it
        if it is still there after `terminate_wait` seconds."""
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(timeout=terminate_wait)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5.0)
        self._close_output()

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None


class PlayerExitedError(EnvironmentFault):
    """The player process ended while fledge was waiting for it."""
