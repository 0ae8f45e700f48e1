"""Curricula pay off: WallJump's big wall (8, the block five pushes from it) is cleared after lessons of
rising walls (0-4.5, 4.5-6, 6-7.5), not when trained on it from the start with the same steps and
hyperparameters, on seeds 1-3; 3DBall with each ball's mass, size and gravity drawn per episode still
balances (the shipped 3DBall_randomize config)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config

pytestmark = pytest.mark.learning

STEPS = 300_000
SUMMARY = 20_000
THRESHOLD = 0.3  # mean return of the last 300 BigWallJump episodes: about half reach the goal (heuristic 0.94)


def walljump_options(tmp_path: Path, *, seed: int, curriculum: bool, steps: int = STEPS) -> Any:
    raw = load_config_file(shipped_config("WallJump"))  # type: ignore[arg-type]
    for name, body in raw["behaviors"].items():
        body["max_steps"] = steps if name == "BigWallJump" else steps // 5
        body["summary_freq"] = SUMMARY
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


def lesson_per_summary(run_dir: Path) -> list[int]:
    with (run_dir / "run_logs" / "BigWallJump.csv").open() as f:
        return [int(float(row["Environment/Lesson Number/big_wall_height"])) for row in csv.DictReader(f)]


def big_wall_tail(result: Any) -> float:
    returns = result.behaviors["BigWallJump"].episode_returns
    assert len(returns) >= 300
    return float(np.mean(returns[-300:]))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_walljump_curriculum_clears_the_big_wall_where_training_on_it_does_not(tmp_path: Path, seed: int) -> None:
    with_lessons = api.run(walljump_options(tmp_path, seed=seed, curriculum=True), display="none")
    lessons = lesson_per_summary(tmp_path / f"wj{seed}1")
    # on walls of 8 for the whole last summary period, so the last 300 episodes (under 20,000 steps) are all there
    assert lessons[-2] == lessons[-1] == len(raw_lessons()) - 1, lessons
    direct = api.run(walljump_options(tmp_path, seed=seed, curriculum=False), display="none")
    print(
        f"seed {seed}: curriculum {big_wall_tail(with_lessons):.3f} (lessons {lessons}), direct {big_wall_tail(direct):.3f}"
    )
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
