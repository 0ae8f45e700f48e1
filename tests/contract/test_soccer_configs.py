"""The soccer games' configs run on the built-ins: fledge's shipped SoccerTwos and StrikersVsGoalie configs
and ML-Agents' own ppo/StrikersVsGoalie.yaml, poca/SoccerTwos.yaml and poca/StrikersVsGoalie.yaml (capped
to a few thousand steps; their network and hyperparameters kept but for the buffer), POCA ones included."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import shared_configs_dir
from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import CONFIG_DIR

STEPS = 3000
ENV_OF = {"SoccerTwos": "SoccerTwos", "StrikersVsGoalie": "StrikersVsGoalie"}


def capped(raw: dict[str, Any], env: str, tmp_path: Path) -> dict[str, Any]:
    for body in raw["behaviors"].values():
        body.update(max_steps=STEPS, summary_freq=1000, checkpoint_interval=STEPS)
        body["hyperparameters"].update(batch_size=256, buffer_size=1024)
        body["self_play"].update(save_steps=500, team_change=1000, swap_steps=300)
    raw["env_settings"] = {"env_path": env, "num_areas": 4, "seed": 2}
    raw["checkpoint_settings"] = {"run_id": "run", "results_dir": str(tmp_path)}
    return raw


def runs(path: Path, env: str, tmp_path: Path) -> None:
    raw = capped(load_config_file(path), env, tmp_path)
    result = api.run(build_run_options(raw), display="none")
    status = json.loads((tmp_path / "run" / "run_logs" / "training_status.json").read_text())
    for brain in raw["behaviors"]:
        assert result.behaviors[brain].steps >= STEPS
        assert isinstance(status[brain]["elo"], float)


SHIPPED = [
    ("ppo", "SoccerTwos"),
    ("poca", "SoccerTwos"),
    ("ppo", "StrikersVsGoalie"),
    ("poca", "StrikersVsGoalie"),
]


@pytest.mark.parametrize(("trainer", "env"), SHIPPED, ids=lambda x: str(x))
def test_shipped_config_runs(trainer: str, env: str, tmp_path: Path) -> None:
    path = CONFIG_DIR / trainer / f"{env}.yaml"
    assert path.is_file()
    assert load_config_file(path)["env_settings"]["env_path"] == env
    runs(path, env, tmp_path)


@pytest.mark.parametrize(
    ("relative", "env"),
    [
        ("ppo/StrikersVsGoalie.yaml", "StrikersVsGoalie"),
        ("poca/SoccerTwos.yaml", "SoccerTwos"),
        ("poca/StrikersVsGoalie.yaml", "StrikersVsGoalie"),
    ],
)
def test_ml_agents_config_runs_on_the_built_in(relative: str, env: str, tmp_path: Path) -> None:
    path = shared_configs_dir() / relative
    if not path.is_file():
        pytest.skip(f"the shared ML-Agents configs are not at {path.parent}")
    runs(path, env, tmp_path)
