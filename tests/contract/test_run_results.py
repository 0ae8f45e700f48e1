"""What a run writes and refuses: results layout, console line, run-id checks, several behaviors,
bad environment output."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from conftest import SideBySide
from fledge import api
from fledge.config import build_run_options
from fledge.envs import registry
from fledge.envs.api import DecisionSteps, TerminalSteps
from fledge.errors import ConfigError, ObservationError, RunFolderError


class TwoBehaviors(SideBySide):
    """Two built-in tasks side by side in one environment: two behaviors, two trainers."""

    def __init__(self) -> None:
        super().__init__(
            {
                "MoveToGoal1D-Continuous": registry.make("MoveToGoal1D-Continuous", seed=1),
                "MoveToGoal1D-Discrete": registry.make("MoveToGoal1D-Discrete", seed=2),
            }
        )


class NaNAfter(TwoBehaviors):
    """Reports a NaN observation for one agent after a few steps."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def step(self) -> None:
        super().step()
        self.count += 1

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        decision, terminal = super().get_steps(behavior_name)
        if self.count >= 3 and behavior_name == "MoveToGoal1D-Discrete":
            obs = decision.obs[0].copy()
            obs[2, 1] = np.nan
            decision = DecisionSteps(
                [obs], decision.reward, decision.agent_id, None, decision.group_id, decision.group_reward
            )
        return decision, terminal


def options(tmp_path: Path, **checkpoint: Any) -> Any:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 64, "buffer_size": 512},
            "network_settings": {"hidden_units": 16},
            "max_steps": 2000,
            "summary_freq": 1000,
        },
        "env_settings": {"env_path": "MoveToGoal1D-Continuous", "seed": 3},
        "checkpoint_settings": {"run_id": "r1", "results_dir": str(tmp_path), **checkpoint},
    }
    return build_run_options(raw)


def test_results_layout_and_console_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fledge"):
        result = api.run(options(tmp_path))
    run_dir = tmp_path / "r1"
    assert result.run_dir == run_dir
    config = yaml.safe_load((run_dir / "configuration.yaml").read_text())
    assert config["env_settings"]["seed"] == 3
    assert config["default_settings"]["hyperparameters"]["buffer_size"] == 512
    assert list((run_dir / "MoveToGoal1D-Continuous").glob("events.out.tfevents.*"))
    timers = json.loads((run_dir / "run_logs" / "timers.json").read_text())
    assert timers["name"] == "root" and {"gauges", "metadata", "total", "count", "self", "children"} <= set(timers)
    assert timers["metadata"]["timer_format_version"] == "0.1.0"
    for block in ("env_step", "process_steps", "trainer_observe"):
        node = timers["children"][block]
        assert node["count"] > 0 and node["total"] >= node["self"] >= 0
    assert "policy_act" in timers["children"]["process_steps"]["children"]
    lines = [r.getMessage() for r in caplog.records if "Step: " in r.getMessage()]
    pattern = re.compile(
        r"^MoveToGoal1D-Continuous\. Step: (1000|2000)\. Time Elapsed: \d+\.\d{3} s\. "
        r"Mean Reward: -?\d+\.\d{3}\. Std of Reward: \d+\.\d{3}\. Training\.$"
    )
    assert lines and all(pattern.match(line) for line in lines), lines


def test_existing_run_id_is_refused_without_force_and_cleared_with_it(tmp_path: Path) -> None:
    api.run(options(tmp_path))
    marker = tmp_path / "r1" / "MoveToGoal1D-Continuous" / "old-file.txt"
    marker.write_text("from the old run")
    with pytest.raises(RunFolderError, match="Previous data from this run ID was found"):
        api.run(options(tmp_path))
    assert marker.exists()  # nothing touched by the refusal
    api.run(options(tmp_path, force=True))
    assert not marker.exists()


def test_resume_of_a_missing_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="was not found"):
        api.run(options(tmp_path, resume=True))


def test_one_trainer_per_behavior(tmp_path: Path) -> None:
    result = api.run(options(tmp_path), env=TwoBehaviors())
    assert set(result.behaviors) == {"MoveToGoal1D-Continuous", "MoveToGoal1D-Discrete"}
    for name, behavior in result.behaviors.items():
        assert behavior.steps >= 2000
        assert list((tmp_path / "r1" / name).glob("events.out.tfevents.*"))


def test_nan_observation_names_behavior_and_field(tmp_path: Path) -> None:
    with pytest.raises(ObservationError, match=r"'MoveToGoal1D-Discrete' DecisionSteps: obs\[0\] contains NaN"):
        api.run(options(tmp_path), env=NaNAfter())


def test_listed_behaviors_must_cover_the_environment_before_anything_is_written(tmp_path: Path) -> None:
    raw = {
        "behaviors": {"SomethingElse": {"trainer_type": "ppo"}},
        "env_settings": {"env_path": "MoveToGoal1D-Continuous"},
        "checkpoint_settings": {"run_id": "r2", "results_dir": str(tmp_path)},
    }
    with pytest.raises(ConfigError, match="MoveToGoal1D-Continuous"):
        api.run(build_run_options(raw))
    assert not (tmp_path / "r2").exists()


def test_unsupported_setting_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "reward_signals": {"gail": {"strength": 0.1, "demo_path": str(tmp_path / "missing.demo")}},
        },
        "env_settings": {"env_path": "MoveToGoal1D-Continuous"},
        "checkpoint_settings": {"run_id": "r3", "results_dir": str(tmp_path)},
    }
    with pytest.raises(ConfigError, match=r"reward_signals\.gail\.demo_path"):
        api.run(build_run_options(raw))
    assert not (tmp_path / "r3").exists()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"environment_parameters": {"gravity": 9.81}}, "has no parameter\\(s\\) gravity"),
        (
            {"default_settings": {"trainer_type": "ppo", "behavioral_cloning": {"demo_path": "x.demo"}}},
            "behavioral_cloning",
        ),
    ],
)
def test_features_not_built_yet_are_refused(tmp_path: Path, extra: dict[str, Any], match: str) -> None:
    raw = {
        "env_settings": {"env_path": "MoveToGoal1D-Continuous"},
        "checkpoint_settings": {"run_id": "n", "results_dir": str(tmp_path)},
        **extra,
    }
    with pytest.raises(ConfigError, match=match):
        api.run(build_run_options(raw))
    assert not (tmp_path / "n").exists()
