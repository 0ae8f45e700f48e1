"""ML-Agents' example configs with curiosity, RND, GAIL and behavioral cloning run as written on fledge's
built-in counterparts (Pyramids, VisualPyramids, Hallway): their demo_path names a file of ML-Agents' Unity
project, which is missing here, so fledge's shipped demonstration of the same name is used (with a warning);
only the budget and the batch sizes are cut. Each run writes the stats of every signal it configures."""

from __future__ import annotations

import copy
import csv
import logging
from pathlib import Path
from typing import Any

import pytest

from conftest import shared_configs_dir
from fledge import api
from fledge.config import build_run_options, load_config_file

STEPS = 256
CASES = {  # config -> the stat columns its signals and cloning must write (no episode ends this soon)
    "ppo/PyramidsRND.yaml": ["Policy/RND Value Estimate", "Losses/RND Loss"],
    "ppo/Pyramids.yaml": ["Policy/Curiosity Value Estimate", "Losses/Curiosity Forward Loss"],
    "sac/Pyramids.yaml": ["Policy/GAIL Value", "Policy/GAIL Expert Estimate"],  # SAC: its value network
    "imitation/Pyramids.yaml": ["Policy/Curiosity Value Estimate", "Losses/GAIL Loss", "Losses/Pretraining Loss"],
    "imitation/Hallway.yaml": ["Policy/GAIL Value Estimate", "Losses/GAIL Loss"],
}


def capped(raw: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    out = copy.deepcopy(raw)
    for body in out["behaviors"].values():
        body.update(max_steps=STEPS, summary_freq=128, checkpoint_interval=STEPS, time_horizon=32)
        hp = body["hyperparameters"]
        hp["batch_size"] = min(int(hp.get("batch_size", 64)), 32)
        hp["buffer_size"] = min(int(hp.get("buffer_size", 128)), 128)
        if "buffer_init_steps" in hp:
            hp["buffer_init_steps"] = 0
        memory = body.get("network_settings", {}).get("memory")
        if memory:
            memory["sequence_length"] = 16
    out["env_settings"] = {"seed": 1, "env_args": ["num_agents=4"]}
    out["checkpoint_settings"] = {"run_id": "run", "results_dir": str(tmp_path)}
    return out


@pytest.mark.parametrize("relative", sorted(CASES))
def test_mlagents_config_runs_on_its_builtin_with_the_shipped_demo(
    relative: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = shared_configs_dir() / relative
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    raw = load_config_file(path)
    (behavior,) = raw["behaviors"]
    options = build_run_options(capped(raw, tmp_path))
    options.env_settings.env_path = behavior
    with caplog.at_level(logging.WARNING, logger="fledge"):
        result = api.run(options, display="none")
    assert result.behaviors[behavior].steps >= STEPS
    uses_demo = "demo_path" in path.read_text()
    assert ("using fledge's shipped demonstration" in caplog.text) == uses_demo
    with open(tmp_path / "run" / "run_logs" / f"{behavior}.csv") as f:
        columns = set(next(csv.reader(f)))
    missing = [c for c in CASES[relative] if c not in columns]
    assert not missing, f"{relative}: no {missing} in {sorted(columns)}"
