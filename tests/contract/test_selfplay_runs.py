"""Self-play runs end to end: the ghost trainer wraps SAC as it wraps PPO (a short Tennis run changes
teams, rates games, writes the ELO to training_status.json, the console line and TensorBoard), and
ML-Agents' own ppo/Tennis.yaml runs on the built-in Tennis."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from conftest import shared_configs_dir
from fledge import api
from fledge.config import build_run_options


def test_sac_with_self_play_on_tennis(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    options = build_run_options(
        {
            "behaviors": {
                "Tennis": {
                    "trainer_type": "sac",
                    "hyperparameters": {"batch_size": 64, "buffer_size": 5000, "buffer_init_steps": 200},
                    "network_settings": {"hidden_units": 16, "num_layers": 1},
                    "max_steps": 3000,
                    "time_horizon": 32,
                    "summary_freq": 1000,
                    "self_play": {"save_steps": 400, "team_change": 1000, "swap_steps": 300, "elo_k_factor": 16.0},
                }
            },
            "env_settings": {"env_path": "Tennis", "num_areas": 8, "seed": 3},
            "checkpoint_settings": {"run_id": "sac", "results_dir": str(tmp_path)},
        }
    )
    with caplog.at_level(logging.INFO, logger="fledge"):
        result = api.run(options, display="none")
    assert result.behaviors["Tennis"].steps >= 3000
    assert any("team 1 learns now" in r.getMessage() for r in caplog.records)
    assert any(". ELO: " in r.getMessage() for r in caplog.records)  # the console line
    run = tmp_path / "sac"
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert status["Tennis"]["elo"] != 1200.0
    assert list((run / "Tennis").glob("events.out.tfevents.*"))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "Tennis"))
    events.Reload()
    assert "Self-play/ELO" in events.Tags()["scalars"]


def test_ml_agents_tennis_config_runs_on_the_built_in_tennis(tmp_path: Path) -> None:
    """ML-Agents' ppo/Tennis.yaml, unchanged but for max_steps, buffer and intervals, on fledge's Tennis."""
    from fledge.config import load_config_file

    path = shared_configs_dir() / "ppo" / "Tennis.yaml"
    if not path.is_file():
        pytest.skip(f"the shared ML-Agents configs are not at {path.parent}")
    raw = load_config_file(path)
    body = raw["behaviors"]["Tennis"]
    body.update(max_steps=3000, summary_freq=1000, checkpoint_interval=3000)
    body["hyperparameters"].update(batch_size=256, buffer_size=1024)
    body["self_play"].update(save_steps=500, team_change=1000)
    raw["env_settings"] = {"env_path": "Tennis", "num_areas": 8, "seed": 2}
    raw["checkpoint_settings"] = {"run_id": "ml", "results_dir": str(tmp_path)}
    result = api.run(build_run_options(raw), display="none")
    assert result.behaviors["Tennis"].steps >= 3000
    status = json.loads((tmp_path / "ml" / "run_logs" / "training_status.json").read_text())
    assert isinstance(status["Tennis"]["elo"], float)
