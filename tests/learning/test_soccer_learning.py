"""PPO self-play on SoccerTwos (configs/ppo/SoccerTwos.yaml with a smaller network and buffer): the run goes
through teams, snapshots and rated games, and the same seed gives the same ELO.

What this does NOT show: that the ELO rises with learning. Over 300,000 steps (16 matches, K = 16) the
learner's ELO ended at about 1435, 1205 and 1165 for seeds 1, 2, 3, and a run that cannot learn
(learning rate 1e-9, seed 1) ended at about 1406: at this length the ELO of this game wanders by as much as
any rise, so an "ELO rises" test here would only pick a lucky seed. Learning itself is real but slow:
after 1,000,000 steps (seed 1, about 2 minutes) the policy beat random actions 111 to 14 in 200 games
(75 draws) while its ELO ended at about 1045; after 300,000 steps only 85 to 61. The learning signal of the game
itself is shown by a scripted team beating random play (tests/unit/test_soccer.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from fledge import api
from fledge.config import build_run_options
from fledge.configs import shipped_config

STEPS = 20_000


def run_soccer(tmp_path: Path, run_id: str, *, learning_rate: float) -> float:
    config = shipped_config("SoccerTwos")
    assert config is not None
    raw: dict[str, Any] = yaml.safe_load(config.read_text())
    b = raw["behaviors"]["SoccerTwos"]
    b.update(max_steps=STEPS, summary_freq=20_000, checkpoint_interval=STEPS)
    b["hyperparameters"].update(batch_size=512, buffer_size=4096, learning_rate=learning_rate)
    b["network_settings"].update(hidden_units=64)
    b["self_play"].update(save_steps=2000, team_change=6000, swap_steps=1000)
    raw["env_settings"] = {"env_path": "SoccerTwos", "num_areas": 16, "seed": 1}
    raw["checkpoint_settings"] = {"run_id": run_id, "results_dir": str(tmp_path)}
    api.run(build_run_options(raw), display="none")
    status = json.loads((tmp_path / run_id / "run_logs" / "training_status.json").read_text())
    return float(status["SoccerTwos"]["elo"])


def test_soccer_self_play_rates_games_and_repeats(tmp_path: Path) -> None:
    a = run_soccer(tmp_path, "a", learning_rate=1.0e-3)
    b = run_soccer(tmp_path, "b", learning_rate=1.0e-3)
    assert a == b and a != 1200.0
