"""POCA learns the cooperative DungeonEscape where independent PPO learners do not.

One agent of each group must step onto the guard and leave the board with nothing so that another can
carry the key out; only the group reward (+1 to the agents still on the board) says that was good.
POCA's group critic credits the sacrifice (the agent's trajectory is bootstrapped by the value of the
group that plays on); PPO's independent agents learn to avoid the guard. Measured with the shipped
configs (16 areas): POCA escapes in ~100% of episodes from 60,000 steps on; PPO stays between ~30% and
~63% (seed 1 at 150,000 steps: 0.30; seeds 1, 2, 3 at 100,000 steps: 0.54, 0.37, 0.63).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import yaml

from fledge import api
from fledge.config import build_run_options
from fledge.configs import shipped_config


def escape_rate(tmp_path: Path, trainer: str, *, steps: int, seed: int, camera: int = 0, memory: int = 0) -> float:
    """The share of group episodes that escaped over the run's last summary period; `camera` k > 0: every agent
    also sees the board through a top-down camera (k pixels per cell) with the simple visual encoder;
    `memory` m > 0: LSTM memories of size m, sequences of 8."""
    config = shipped_config("DungeonEscape", trainer)
    assert config is not None
    raw = yaml.safe_load(config.read_text())
    b = raw["behaviors"]["DungeonEscape"]
    b.update(max_steps=steps, summary_freq=steps // 4, checkpoint_interval=steps)
    run_id = f"{trainer}-{seed}-{camera}-{memory}"
    raw["env_settings"] = {"env_path": "DungeonEscape", "num_areas": 16, "seed": seed}
    if camera:
        b["network_settings"]["vis_encode_type"] = "simple"
        raw["env_settings"]["env_args"] = [f"camera={camera}"]
    if memory:
        b["network_settings"]["memory"] = {"memory_size": memory, "sequence_length": 8}
    raw["checkpoint_settings"] = {"run_id": run_id, "results_dir": str(tmp_path)}
    api.run(build_run_options(raw), display="none")
    rows = list(csv.DictReader((tmp_path / run_id / "run_logs" / "DungeonEscape.csv").open()))
    return float(rows[-1]["DungeonEscape/Escaped"])


def test_poca_escapes_and_independent_ppo_does_not(tmp_path: Path) -> None:
    poca = escape_rate(tmp_path, "poca", steps=60_000, seed=1)
    ppo = escape_rate(tmp_path, "ppo", steps=60_000, seed=1)
    assert poca > 0.8, poca
    assert ppo < 0.6, ppo
    assert poca - ppo > 0.3


@pytest.mark.slow
def test_poca_beats_ppo_over_three_seeds(tmp_path: Path) -> None:
    """Measured at 100,000 steps: POCA 1.000 / 1.000 / 1.000, PPO 0.542 / 0.366 / 0.629 (seeds 1, 2, 3)."""
    margins = []
    for seed in (1, 2, 3):
        poca = escape_rate(tmp_path, "poca", steps=100_000, seed=seed)
        ppo = escape_rate(tmp_path, "ppo", steps=100_000, seed=seed)
        print(f"DungeonEscape seed {seed}: POCA escapes {poca:.3f}, PPO {ppo:.3f}")
        assert poca > 0.9 and poca - ppo > 0.25, (seed, poca, ppo)
        margins.append(poca - ppo)
    assert np.mean(margins) > 0.35, margins


@pytest.mark.slow
def test_poca_with_cameras_still_escapes_and_independent_ppo_does_not(tmp_path: Path) -> None:
    """With a camera beside the vector the group critic encodes every member's image. Measured at 60,000 steps:
    POCA 0.912 / 0.728 / 0.757 (seeds 1, 2, 3; with vectors alone 0.972 / 0.944 for seeds 2, 3), PPO 0.234
    (seed 1)."""
    poca = escape_rate(tmp_path, "poca", steps=60_000, seed=1, camera=4)
    ppo = escape_rate(tmp_path, "ppo", steps=60_000, seed=1, camera=4)
    assert poca > 0.7, poca
    assert ppo < 0.5, ppo


@pytest.mark.slow
def test_poca_with_memory_escapes(tmp_path: Path) -> None:
    """Actor and group critic with LSTM memory (32, sequences of 8): slower to start than without memory (seed 1
    at 60,000 steps: 0.68 against 0.98), measured at 120,000 steps: 0.996 (seed 1), 1.000 (seed 2). PPO's
    independent learners stay below 0.65 (test above)."""
    rate = escape_rate(tmp_path, "poca", steps=120_000, seed=1, memory=32)
    assert rate > 0.9, rate
