"""POCA runs end to end: wrapped by the self-play (ghost) trainer on a team game whose teams have groups;
on the built-in DungeonEscape it reports its stats, writes an actor-only ONNX that plays, and resumes, also
with a camera beside the vector observation (the group critic encodes each member's camera); on GridWorld it
takes a camera and a goal signal, on Sorter variable-length entities."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

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
        self._groups = ((match // 2) * 2 + side + 1).astype(np.int32)

    def group_ids(self) -> np.ndarray:
        return self._groups


def poca_settings(**extra: Any) -> dict[str, Any]:
    return {
        "trainer_type": "poca",
        "hyperparameters": {"batch_size": 64, "buffer_size": 512, "learning_rate": 1e-3},
        "network_settings": {"hidden_units": 16, "num_layers": 1},
        "time_horizon": 32,
        "summary_freq": 1000,
        **extra,
    }


def test_poca_with_self_play_on_a_team_game_with_groups(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
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
    # the team that did not learn kept its group rows, so trajectories across a team change are all used
    assert "was left out" not in caplog.text


class KilledAfter:
    """DungeonEscape, stopping the run abruptly (no final checkpoint) after some environment steps."""

    def __init__(self, env_steps: int, env_args: dict[str, Any] | None = None) -> None:
        from fledge.envs import registry

        self.env = registry.make("DungeonEscape", seed=5, num_areas=4, **(env_args or {}))
        self.left = env_steps

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        self.env.step()


def dungeon_options(tmp_path: Path, run_id: str, max_steps: int, **checkpoint: Any) -> Any:
    settings = poca_settings(max_steps=max_steps, checkpoint_interval=1000)
    settings["hyperparameters"]["learning_rate_schedule"] = "linear"
    return build_run_options(
        {
            "behaviors": {"DungeonEscape": settings},
            "env_settings": {"env_path": "DungeonEscape", "num_areas": 4, "seed": 5},
            "checkpoint_settings": {"run_id": run_id, "results_dir": str(tmp_path), **checkpoint},
        }
    )


def test_poca_resumes_after_a_hard_stop_and_its_onnx_plays(tmp_path: Path) -> None:
    from fledge.checkpoints.state_io import load_state
    from fledge.play import play

    n = 4000
    first = api.run(dungeon_options(tmp_path, "split", n), env=KilledAfter(250), display="none")  # type: ignore[arg-type]
    assert first.interrupted
    mid, _ = load_state(tmp_path / "split" / "DungeonEscape" / "checkpoint.pt")
    assert any(k.startswith("critic.") for k in mid.tensors)  # the group critic is saved with the actor
    assert mid.meta["fingerprint"]["trainer_type"] == "poca"
    api.run(dungeon_options(tmp_path, "split", n, resume=True), display="none")
    end, _ = load_state(tmp_path / "split" / "DungeonEscape" / "checkpoint.pt")
    assert end.meta["step"] >= n
    assert end.meta["update_count"] >= mid.meta["update_count"] + (n - mid.meta["step"]) // 512 - 1
    assert end.meta["optimizer"]["param_groups"][0]["lr"] < 0.5e-3  # the linear decay went on from the checkpoint
    rows = list(csv.DictReader((tmp_path / "split" / "run_logs" / "DungeonEscape.csv").open()))
    assert {"Losses/Baseline Loss", "Policy/Extrinsic Baseline Estimate", "Environment/Group Cumulative Reward"} <= set(
        rows[-1]
    )
    # the actor-only ONNX (same contract as PPO's) plays the environment
    result = play(tmp_path / "split", use_onnx=True, episodes=2, max_steps=200, out=open(tmp_path / "play.txt", "w"))
    assert result.steps > 0


def camera_options(tmp_path: Path, run_id: str, max_steps: int, **checkpoint: Any) -> Any:
    settings = poca_settings(max_steps=max_steps, checkpoint_interval=1000)
    settings["network_settings"]["vis_encode_type"] = "simple"
    return build_run_options(
        {
            "behaviors": {"DungeonEscape": settings},
            "env_settings": {"env_path": "DungeonEscape", "num_areas": 4, "seed": 5, "env_args": ["camera=4"]},
            "checkpoint_settings": {"run_id": run_id, "results_dir": str(tmp_path), **checkpoint},
        }
    )


def test_poca_with_a_camera_encodes_members_resumes_and_exports_the_actor(tmp_path: Path) -> None:
    from fledge.checkpoints.onnx import describe_onnx, load_onnx_policy
    from fledge.checkpoints.state_io import load_state
    from fledge.envs import registry
    from fledge.envs.api import ActionTuple

    n = 2000
    options = camera_options(tmp_path, "camera", n)
    killed = KilledAfter(150, env_args={"camera": 4})
    assert [tuple(o.shape) for o in killed.behavior_specs["DungeonEscape"].observation_specs] == [(16,), (4, 20, 20)]
    first = api.run(options, env=killed, display="none")  # type: ignore[arg-type]
    assert first.interrupted
    mid, _ = load_state(tmp_path / "camera" / "DungeonEscape" / "checkpoint.pt")
    # the group critic has its own camera encoder, saved with the actor's
    assert any(k.startswith("critic.encoder.visual.") for k in mid.tensors)
    api.run(camera_options(tmp_path, "camera", n, resume=True), display="none")
    end, _ = load_state(tmp_path / "camera" / "DungeonEscape" / "checkpoint.pt")
    assert end.meta["step"] >= n and end.meta["update_count"] > mid.meta["update_count"]
    moved = [
        k for k in end.tensors if k.startswith("critic.encoder.") and not np.array_equal(end.tensors[k], mid.tensors[k])
    ]
    assert moved, "the critic's camera encoder did not learn"
    rows = list(csv.DictReader((tmp_path / "camera" / "run_logs" / "DungeonEscape.csv").open()))
    assert np.isfinite(float(rows[-1]["Losses/Baseline Loss"]))
    # the ONNX is the actor alone, with both observations as inputs (PPO's contract)
    described = describe_onnx(tmp_path / "camera" / "DungeonEscape.onnx")
    assert [i["name"] for i in described["inputs"]][:2] == ["obs_0", "obs_1"]
    assert described["inputs"][1]["shape"] == ["batch", 4, 20, 20]
    policy = load_onnx_policy(tmp_path / "camera" / "DungeonEscape.onnx")
    env = registry.make("DungeonEscape", seed=1, num_areas=2, camera=4)
    try:
        env.reset()
        for _ in range(20):
            decision, _ = env.get_steps("DungeonEscape")
            if len(decision):
                _, moves = policy.act(decision.obs, deterministic=True)
                assert moves is not None and moves.shape == (len(decision), 1) and 0 <= moves.min() <= moves.max() < 5
                env.set_actions("DungeonEscape", ActionTuple(discrete=moves))
            env.step()
    finally:
        env.close()


@pytest.mark.parametrize("env", ["GridWorld", "Sorter"])
def test_poca_on_cameras_goal_signals_and_entities_without_groups(tmp_path: Path, env: str) -> None:
    """GridWorld: a camera and a goal signal (hyper-conditioned actor); Sorter: a vector and variable-length
    entities; their agents have no group (each a group of one)."""
    settings = poca_settings(max_steps=600, summary_freq=300)
    settings["hyperparameters"]["buffer_size"] = 256
    options = build_run_options(
        {
            "behaviors": {env: settings},
            "env_settings": {"env_path": env, "seed": 1},
            "checkpoint_settings": {"run_id": "run", "results_dir": str(tmp_path)},
        }
    )
    result = api.run(options, display="none")
    assert result.behaviors[env].steps >= 600
    rows = list(csv.DictReader((tmp_path / "run" / "run_logs" / f"{env}.csv").open()))
    losses = [float(r["Losses/Baseline Loss"]) for r in rows if r.get("Losses/Baseline Loss")]
    assert losses and np.isfinite(losses).all()


def test_poca_is_deterministic(tmp_path: Path) -> None:
    from fledge.checkpoints.state_io import load_state

    states = []
    for run_id in ("a", "b"):
        api.run(dungeon_options(tmp_path, run_id, 1500), display="none")
        state, _ = load_state(tmp_path / run_id / "DungeonEscape" / "checkpoint.pt")
        states.append(state)
    a, b = states
    assert a.meta["update_count"] >= 2 and a.tensors.keys() == b.tensors.keys()
    for key in a.tensors:
        assert np.array_equal(np.asarray(a.tensors[key]), np.asarray(b.tensors[key])), key


def memory_options(tmp_path: Path, run_id: str, max_steps: int, **checkpoint: Any) -> Any:
    settings = poca_settings(max_steps=max_steps, checkpoint_interval=1000)
    settings["network_settings"]["memory"] = {"memory_size": 16, "sequence_length": 8}
    return build_run_options(
        {
            "behaviors": {"DungeonEscape": settings},
            "env_settings": {"env_path": "DungeonEscape", "num_areas": 4, "seed": 5},
            "checkpoint_settings": {"run_id": run_id, "results_dir": str(tmp_path), **checkpoint},
        }
    )


def test_poca_with_memory_trains_resumes_after_a_hard_stop_and_its_recurrent_onnx_plays(tmp_path: Path) -> None:
    """The actor's LSTM and the group critic's LSTM are saved, resumed from and trained; the ONNX is the actor."""
    from fledge.checkpoints.onnx import describe_onnx
    from fledge.checkpoints.state_io import load_state
    from fledge.play import play

    n = 2000
    first = api.run(memory_options(tmp_path, "mem", n), env=KilledAfter(150), display="none")  # type: ignore[arg-type]
    assert first.interrupted
    mid, _ = load_state(tmp_path / "mem" / "DungeonEscape" / "checkpoint.pt")
    lstm = [k for k in mid.tensors if k.startswith(("policy.memory.", "critic.memory."))]
    assert {k.split(".")[0] for k in lstm} == {"policy", "critic"} and mid.meta["update_count"] >= 1
    api.run(memory_options(tmp_path, "mem", n, resume=True), display="none")
    end, _ = load_state(tmp_path / "mem" / "DungeonEscape" / "checkpoint.pt")
    assert end.meta["step"] >= n and end.meta["update_count"] > mid.meta["update_count"]
    for owner in ("policy.", "critic."):
        moved = [k for k in lstm if k.startswith(owner) and not np.array_equal(end.tensors[k], mid.tensors[k])]
        assert moved, f"the {owner[:-1]}'s LSTM did not learn"
    rows = list(csv.DictReader((tmp_path / "mem" / "run_logs" / "DungeonEscape.csv").open()))
    losses = [float(r[k]) for r in rows for k in ("Losses/Policy Loss", "Losses/Baseline Loss") if r.get(k)]
    assert losses and np.isfinite(losses).all()
    # the ONNX is PPO's recurrent actor: recurrent_in / recurrent_out, and it plays with each agent's memory carried
    described = describe_onnx(tmp_path / "mem" / "DungeonEscape.onnx")
    assert "recurrent_in" in [i["name"] for i in described["inputs"]]
    assert described["outputs"][-1]["name"] == "recurrent_out"
    result = play(tmp_path / "mem", use_onnx=True, episodes=2, max_steps=200, out=open(tmp_path / "play.txt", "w"))
    assert result.steps > 0
