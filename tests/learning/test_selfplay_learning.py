"""Self-play learns: on Tennis the learner's ELO rises over a short run (PPO with the ghost trainer);
with a learning rate of ~0 it does not (the ELO only wanders, by chance, around its start); the same seed gives the
same ELO and snapshot schedule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from fledge import api
from fledge.config import build_run_options
from fledge.configs import shipped_config

CONFIG = shipped_config("Tennis")


def run_tennis(tmp_path: Path, run_id: str, *, steps: int, learning_rate: float) -> dict[str, Any]:
    assert CONFIG is not None
    raw = yaml.safe_load(CONFIG.read_text())
    b = raw["behaviors"]["Tennis"]
    b.update(max_steps=steps, summary_freq=10_000, checkpoint_interval=steps)
    b["hyperparameters"].update(batch_size=256, buffer_size=2048, learning_rate=learning_rate)
    b["network_settings"].update(hidden_units=64)
    b["self_play"].update(save_steps=2000, team_change=6000, swap_steps=1000)
    raw["env_settings"] = {"env_path": "Tennis", "num_areas": 16, "seed": 1}
    raw["checkpoint_settings"] = {"run_id": run_id, "results_dir": str(tmp_path)}
    api.run(build_run_options(raw), display="none")
    status: dict[str, Any] = json.loads((tmp_path / run_id / "run_logs" / "training_status.json").read_text())
    return status["Tennis"]


def test_tennis_elo_rises_with_learning_and_not_without(tmp_path: Path) -> None:
    learned = run_tennis(tmp_path, "learn", steps=90_000, learning_rate=3.0e-3)
    frozen = run_tennis(tmp_path, "frozen", steps=90_000, learning_rate=1.0e-9)
    assert learned["elo"] > 1200.0 + 150.0, learned["elo"]
    # without learning the ELO only wanders (every snapshot is the same policy): it does not rise by 100
    assert frozen["elo"] < 1200.0 + 100.0, frozen["elo"]
    assert learned["elo"] - frozen["elo"] > 200.0


def test_tennis_self_play_is_deterministic(tmp_path: Path) -> None:
    a = run_tennis(tmp_path, "a", steps=12_000, learning_rate=3.0e-3)
    b = run_tennis(tmp_path, "b", steps=12_000, learning_rate=3.0e-3)
    assert a["elo"] == b["elo"] and a["elo"] != 1200.0
