"""POCA runs end to end: wrapped by the self-play (ghost) trainer on a team game whose teams have groups;
on the built-in DungeonEscape it reports its stats, writes an actor-only ONNX that plays, and resumes."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from fledge import api
from fledge.config import build_run_options
from fledge.envs.builtin.teams import TeamTaskEnv
from fledge.envs.builtin.tennis import TennisTask


class GroupedTennis(TennisTask):
    """Tennis whose two matches side by side form groups: the left players of matches 2k and 2k + 1 are one group
    (team 0), the right players another (team 1); group ids differ across teams."""

    def __init__(self, num_agents: int = 8) -> None:
        super().__init__(num_agents=num_agents)
        agent = np.arange(num_agents)
        match, side = agent // 2, agent % 2
        self.group_ids = ((match // 2) * 2 + side + 1).astype(np.int32)


def poca_settings(**extra: Any) -> dict[str, Any]:
    return {
        "trainer_type": "poca",
        "hyperparameters": {"batch_size": 64, "buffer_size": 512, "learning_rate": 1e-3},
        "network_settings": {"hidden_units": 16, "num_layers": 1},
        "time_horizon": 32,
        "summary_freq": 1000,
        **extra,
    }


def test_poca_with_self_play_on_a_team_game_with_groups(tmp_path: Path) -> None:
    settings = poca_settings(
        max_steps=3000, self_play={"save_steps": 400, "team_change": 1000, "swap_steps": 300, "elo_k_factor": 16.0}
    )
    options = build_run_options(
        {
            "behaviors": {"Tennis": settings},
            "checkpoint_settings": {"run_id": "ghost", "results_dir": str(tmp_path)},
        }
    )
    env = TeamTaskEnv(GroupedTennis(num_agents=16), seed=3)
    try:
        decision, _ = env.get_steps("Tennis?team=0")
        assert set(decision.group_id.tolist()) == {1, 3, 5, 7}  # team 0's groups; team 1 has 2, 4, 6, 8
        result = api.run(options, env=env, display="none")
    finally:
        env.close()
    assert result.behaviors["Tennis"].steps >= 3000
    status = json.loads((tmp_path / "ghost" / "run_logs" / "training_status.json").read_text())
    assert status["Tennis"]["elo"] != 1200.0
    rows = list(csv.DictReader((tmp_path / "ghost" / "run_logs" / "Tennis.csv").open()))
    assert "Losses/Baseline Loss" in rows[-1] and "Policy/Extrinsic Baseline Estimate" in rows[-1]
