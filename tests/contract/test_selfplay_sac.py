"""The ghost trainer wraps SAC as it wraps PPO: a short Tennis run with SAC and self-play changes teams,
rates games, writes the ELO (training_status.json, the console line, TensorBoard) and saves the replay
buffer with its checkpoint."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

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
