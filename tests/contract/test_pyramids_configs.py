"""The Pyramids configs: fledge's shipped ones keep ML-Agents' hyperparameters and run on the built-in task (with
the extrinsic reward alone here, so that this test does not depend on the intrinsic signals), and every
ML-Agents example config for Pyramids names a behavior that a built-in environment of that name offers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from conftest import shared_configs_dir
from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import CONFIG_DIR
from fledge.envs import registry

STEPS = 300
SHIPPED = ["Pyramids", "PyramidsRND", "VisualPyramids"]
MLAGENTS = [
    "ppo/Pyramids.yaml",
    "ppo/PyramidsRND.yaml",
    "ppo/PyramidRND.yaml",
    "ppo/VisualPyramids.yaml",
    "sac/Pyramids.yaml",
    "imitation/Pyramids.yaml",
]


def extrinsic_only(raw: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for body in out["behaviors"].values():
        body["reward_signals"] = {"extrinsic": body["reward_signals"]["extrinsic"]}
        body.update(max_steps=STEPS, summary_freq=150, checkpoint_interval=STEPS)
        body["hyperparameters"].update(batch_size=32, buffer_size=128)
    out["env_settings"] = {**out["env_settings"], "seed": 1, "env_args": ["num_agents=4"]}
    out["checkpoint_settings"] = {"run_id": "run", "results_dir": str(tmp_path)}
    return out


@pytest.mark.parametrize("name", ["Pyramids", "VisualPyramids"])  # PyramidsRND differs only in its RND signal
def test_shipped_config_runs_on_its_builtin(name: str, tmp_path: Path) -> None:
    raw = load_config_file(CONFIG_DIR / "ppo" / f"{name}.yaml")
    env_name = raw["env_settings"]["env_path"]
    (behavior,) = raw["behaviors"]
    assert behavior == env_name and behavior in registry.make(env_name).behavior_specs
    result = api.run(build_run_options(extrinsic_only(raw, tmp_path)), display="none")
    assert result.behaviors[behavior].steps >= STEPS
    assert (tmp_path / "run" / behavior / "checkpoint.pt").is_file()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_config_keeps_mlagents_hyperparameters(name: str) -> None:
    theirs_path = shared_configs_dir() / "ppo" / f"{name}.yaml"
    if not theirs_path.is_file():
        pytest.skip(f"the shared ML-Agents configs are not at {theirs_path.parent}")
    ours = load_config_file(CONFIG_DIR / "ppo" / f"{name}.yaml")["behaviors"]
    theirs = load_config_file(theirs_path)["behaviors"]
    for body in theirs.values():
        body.pop("threaded", None)  # no effect in fledge, left out of the shipped file
    assert ours == theirs


@pytest.mark.parametrize("relative", MLAGENTS)
def test_mlagents_pyramids_configs_find_a_builtin(relative: str) -> None:
    path = shared_configs_dir() / relative
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    for behavior in load_config_file(path)["behaviors"]:
        assert behavior in registry.names()
        assert list(registry.make(behavior, num_agents=1).behavior_specs) == [behavior]
