"""Curricula pay off: WallJump's big wall (8) is cleared after lessons of rising walls (0-4, 4-6, 6-7.5),
not when trained on it from the start within the same budget (not reached yet: see the xfail); 3DBall with each ball's mass, size and gravity drawn per
episode still balances (the shipped 3DBall_randomize config)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config

pytestmark = pytest.mark.learning

STEPS = 400_000
THRESHOLD = 0.6  # mean return of the last 300 BigWallJump episodes (the heuristic: about 0.95)


def walljump_options(tmp_path: Path, *, seed: int, curriculum: bool, steps: int = STEPS) -> Any:
    raw = load_config_file(shipped_config("WallJump"))  # type: ignore[arg-type]
    for name, body in raw["behaviors"].items():
        body["max_steps"] = steps if name == "BigWallJump" else steps // 5
        body["summary_freq"] = 50_000
        body["checkpoint_interval"] = steps
    if not curriculum:
        raw["environment_parameters"] = {"big_wall_height": 8.0, "small_wall_height": 4.0}
    raw["env_settings"] = {"env_path": "WallJump", "seed": seed}
    raw["checkpoint_settings"] = {"run_id": f"wj{seed}{int(curriculum)}", "results_dir": str(tmp_path)}
    return build_run_options(raw)


def raw_lessons() -> list[Any]:
    raw = load_config_file(shipped_config("WallJump"))  # type: ignore[arg-type]
    lessons: list[Any] = raw["environment_parameters"]["big_wall_height"]["curriculum"]
    assert lessons[-1]["value"] == 8.0
    return lessons


def big_wall_tail(result: Any) -> float:
    returns = result.behaviors["BigWallJump"].episode_returns
    assert len(returns) >= 300
    return float(np.mean(returns[-300:]))


@pytest.mark.slow
@pytest.mark.xfail(
    reason=(
        "not reached yet: at the shipped learning rate 1e-3 the curriculum ends on walls of 8 for all three "
        "seeds (0.76, 0.70, 0.51 at 400k) but training on walls of 8 directly does better for two seeds "
        "(0.96, 0.96, -0.22); at 3e-4 the direct run fails (-0.41) and the curriculum stalls in lesson 2 (walls 6-7.5, "
        "-0.45, 0.04, 0.04); see docs/curriculum.md"
    ),
    strict=False,
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_walljump_curriculum_clears_the_big_wall_where_training_on_it_does_not(tmp_path: Path, seed: int) -> None:
    with_lessons = api.run(walljump_options(tmp_path, seed=seed, curriculum=True), display="none")
    status = (tmp_path / f"wj{seed}1" / "run_logs" / "training_status.json").read_text()
    last = len(raw_lessons()) - 1
    assert f'"lesson_num": {last}' in status  # the run ended on the last lesson: walls of 8
    direct = api.run(walljump_options(tmp_path, seed=seed, curriculum=False), display="none")
    assert big_wall_tail(with_lessons) >= THRESHOLD > big_wall_tail(direct), (
        big_wall_tail(with_lessons),
        big_wall_tail(direct),
    )


@pytest.mark.slow
def test_3dball_with_random_mass_scale_and_gravity_reaches_90(tmp_path: Path) -> None:
    raw = load_config_file(shipped_config("3DBall_randomize"))  # type: ignore[arg-type]
    raw["behaviors"]["3DBall"]["max_steps"] = 300_000
    raw["env_settings"] = {"seed": 1}
    raw["checkpoint_settings"] = {"run_id": "ball", "results_dir": str(tmp_path)}
    result = api.run(build_run_options(raw), display="none")
    returns = result.behaviors["3DBall"].episode_returns
    windows = np.convolve(returns, np.ones(24) / 24, mode="valid")  # two summaries of 12 agents
    assert windows.max() >= 90.0, f"best 24-episode mean {windows.max():.1f}"
