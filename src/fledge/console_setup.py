"""How a fledge command meets the console: the "fledge" logger's handler and level, and one FledgeError
turned into one line on stderr and an exit status.

The `fledge` command and the commands that also run on their own (`python -m fledge.play`, `python -m
fledge.plot`) share this module, so that no command imports the CLI."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from fledge.errors import FledgeError

log = logging.getLogger("fledge")


def setup_logging(debug: bool, *, stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(logging.Formatter("[%(levelname)s] %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if debug else logging.INFO)
    log.propagate = False


def run_command(handler: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """Runs one command on its arguments: a FledgeError is one line on stderr and status 1 (its traceback with
    --debug or `debug: true`), Ctrl-C is status 130."""
    rest = list(argv)
    setup_logging("--debug" in rest)  # each command sets it again; no level is left over from an earlier call
    try:
        return handler(rest)
    except FledgeError as exc:
        if "--debug" in rest or log.isEnabledFor(logging.DEBUG):  # --debug, or `debug: true` in the config
            raise
        print(f"fledge: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
