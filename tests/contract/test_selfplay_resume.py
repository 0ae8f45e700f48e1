"""A self-play run killed with SIGKILL resumes with exactly the state of its newest checkpoint: the
learner's ELO, the snapshot pool with its ELOs, the opponent in use (weights and choice), the learning
team and the counters."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from fledge import api
from fledge.checkpoints.manager import CheckpointManager
from fledge.checkpoints.status import TrainingStatus
from fledge.config import build_run_options
from fledge.run.lifecycle import RunLifecycle
from fledge.session import TrainingSession

CONFIG = """
behaviors:
  Tennis:
    trainer_type: ppo
    hyperparameters: {batch_size: 128, buffer_size: 1024, learning_rate: 0.003}
    network_settings: {hidden_units: 16, num_layers: 1}
    max_steps: 10000000
    time_horizon: 64
    summary_freq: 2000
    checkpoint_interval: 1500
    keep_checkpoints: 3
    self_play: {save_steps: 500, team_change: 1000, swap_steps: 300, window: 3, elo_k_factor: 16.0}
env_settings: {env_path: Tennis, num_areas: 8, seed: 5}
"""


def test_resume_mid_self_play_restores_the_ghost_state_exactly(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CONFIG)
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "fledge.cli", "learn", str(cfg), "--run-id", "k", "--results-dir", str(results)]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1")
    )
    assert proc.stdout is not None
    exported, deadline = 0, time.time() + 120
    while exported < 3 and time.time() < deadline:
        line = proc.stdout.readline()
        exported += "Exported" in line
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert exported == 3
    run = results / "k"
    status = TrainingStatus.load(run / "run_logs" / "training_status.json")
    newest = status.checkpoints("Tennis")[-1]
    saved, _ = CheckpointManager(run_dir=run, status=status, opset=17).load(Path(newest.auxillary_file_paths[0]))
    assert saved.meta["ghost"]["controller"]["changes"] >= 1 and len(saved.meta["ghost"]["pool"]["elos"]) == 3
    assert status.data["Tennis"]["elo"] == saved.meta["ghost"]["elo"]

    import yaml

    raw = yaml.safe_load(CONFIG)
    raw["checkpoint_settings"] = {"run_id": "k", "results_dir": str(results), "resume": True}
    options = build_run_options(raw)
    life = RunLifecycle.open(options)
    env = api.make_environment(options, life.seed)
    try:
        env.reset()
        session = TrainingSession(
            options=options, env=env, lifecycle=life, start=time.time(), make_trainer=api.make_trainer, display="none"
        )
        session.add_new_behaviors()
        life.restore(session.trainers, env)
        ghost = session.trainers["Tennis"]
        restored = ghost.get_state()
        assert restored.meta["ghost"] == saved.meta["ghost"]
        assert ghost.step == newest.steps
        for name, value in saved.tensors.items():
            if name.startswith(("ghost.", "policy.")):
                assert torch.equal(restored.tensors[name], value), name
        learning = saved.meta["ghost"]["controller"]["learning_team"]
        assert session.teams.learning_team == learning
        seats = ghost.seats  # type: ignore[attr-defined]
        assert seats[learning].current is ghost.policy and seats[1 - learning].current is not ghost.policy
        session.stats.close()
    finally:
        env.close()
