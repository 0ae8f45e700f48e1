"""The Unity tests' fixture: a PATH on which the fake player finds this Python."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def player_python(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fake player runs with `#!/usr/bin/env python3`: put this interpreter's folder first on PATH."""
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("FLEDGE_PLAYER_PYTHON", sys.executable)
    yield
