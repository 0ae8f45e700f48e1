"""Every command shown in README.md and docs/*.md runs.

Commands are taken from ```bash blocks, in order, per file, in one scratch folder (with the repository's
configs/ next to it so relative config paths work):
- `.venv/bin/fledge ...` (and `.venv/bin/python -m fledge ...`) runs for real, with every behavior's
  max_steps capped at 1,500 steps so that the whole set takes about a minute (a capped run is the same
  code path as a full one);
- `.venv/bin/python benchmarks/X.py` runs with --help (benchmarks take minutes; CI runs them by hand);
- `make X` runs as `make -n X` (a dry run: the target exists and its commands expand; CI runs
  `make test` itself);
- any other program must exist in the virtual environment.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CAP = 1500
CAPPED = f"""
import sys
from fledge.config import schema
_original = schema.RunOptions.behavior_settings
def _capped(self, name):
    settings = _original(self, name)
    settings.max_steps = min(settings.max_steps, {CAP})
    settings.summary_freq = min(settings.summary_freq, {CAP // 3})
    settings.checkpoint_interval = min(settings.checkpoint_interval, {CAP // 2})
    return settings
schema.RunOptions.behavior_settings = _capped
"""
RUNNER = CAPPED + "from fledge.cli import main\nsys.exit(main(sys.argv[1:]))\n"
MODULE_RUNNER = CAPPED + "import runpy\nrunpy.run_module('fledge', run_name='__main__')\n"  # python -m fledge


def commands(path: Path) -> list[str]:
    found = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS, ids=[p.name for p in DOCS])
def test_every_command_in_the_docs_runs(doc: Path, tmp_path: Path) -> None:
    (tmp_path / "configs").symlink_to(ROOT / "src" / "fledge" / "configs")
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    bin_dir = Path(sys.executable).parent
    for line in commands(doc):
        argv = shlex.split(line)
        program = argv[0]
        if program.endswith("fledge"):
            cmd, cwd = [sys.executable, "-c", RUNNER, *argv[1:]], tmp_path
        elif program.endswith("python") and argv[1:3] == ["-m", "fledge"]:
            cmd, cwd = [sys.executable, "-c", MODULE_RUNNER, *argv[3:]], tmp_path
        elif program.endswith("python") and len(argv) > 1 and argv[1].startswith("benchmarks/"):
            cmd, cwd = [sys.executable, str(ROOT / argv[1]), "--help"], ROOT
        elif program == "make":
            cmd, cwd = ["make", "-n", *argv[1:]], ROOT
        else:
            assert (bin_dir / Path(program).name).exists(), f"{doc.name}: '{program}' is not installed"
            continue
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{doc.name}: `{line}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def test_every_environment_the_docs_name_exists() -> None:
    """`gym:<id>` and `pettingzoo:<module>` named anywhere in the docs (prose too) exist in the installed
    Gymnasium and PettingZoo (a renamed PettingZoo module, e.g. a new version suffix, fails here)."""
    import importlib.util

    import gymnasium

    text = "\n".join(doc.read_text(encoding="utf-8") for doc in DOCS)
    modules = set(re.findall(r"pettingzoo:(pettingzoo\.[\w.]+\w)", text))
    ids = set(re.findall(r"gym:([A-Za-z][\w/-]*-v\d+)", text))
    assert modules and ids
    for module in sorted(modules):
        assert importlib.util.find_spec(module) is not None, f"the docs name pettingzoo:{module}, which does not exist"
    for env_id in sorted(ids):
        assert env_id in gymnasium.registry, f"the docs name gym:{env_id}, which Gymnasium does not register"


def test_the_readme_flag_table_lists_every_learn_flag() -> None:
    import argparse

    from fledge.config import build_learn_parser

    table = "\n".join(
        line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines() if line.startswith("| `--")
    )
    shown = set(re.findall(r"`(--[a-z-]+)", table))
    flags = {
        option
        for action in build_learn_parser()._actions
        if action.help != argparse.SUPPRESS
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    assert flags - shown == set(), f"flags of 'fledge learn' missing from the README's flag table: {flags - shown}"
    assert shown - flags == set(), f"the README's flag table shows flags 'fledge learn' does not have: {shown - flags}"
