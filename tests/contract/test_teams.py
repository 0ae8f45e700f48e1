"""Teams of one brain (`Striker?team=0`, `Striker?team=1`) and group rewards, as ML-Agents handles them.

The environment here stands in for a Unity scene with two teams of one brain: each team is a
MoveToGoal1D-Continuous task of two agents, with its own agent ids, optionally paying a group reward.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import SideBySide
from fledge import api
from fledge.config import RunOptions, build_run_options
from fledge.envs import registry
from fledge.envs.api import ActionTuple, DecisionSteps, TerminalSteps
from fledge.envs.behavior_id import BehaviorIdentifiers, behavior_ids_by_brain, parse_behavior_id
from fledge.errors import EnvironmentFault
from fledge.run.lifecycle import RunLifecycle
from fledge.session import TrainingSession

TEAMS = ("Striker?team=0", "Striker?team=1")
ID_OFFSET = 100  # agent ids are unique over the whole scene, as in Unity


class TwoTeams(SideBySide):
    """Two behaviors of the brain 'Striker'; `group_reward` is paid to team 0 on every decision."""

    def __init__(self, *, group_reward: float = 0.0, second_task: str = "MoveToGoal1D-Continuous") -> None:
        super().__init__(
            {
                TEAMS[0]: registry.make("MoveToGoal1D-Continuous", seed=1, num_agents=2),
                TEAMS[1]: registry.make(second_task, seed=2, num_agents=2),
            }
        )
        self.group_reward = np.float32(group_reward)
        self.decisions = dict.fromkeys(TEAMS, 0)  # agent decisions handed out per team
        self.actions_set = dict.fromkeys(TEAMS, 0)

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        d, t = super().get_steps(behavior_name)
        offset = ID_OFFSET * TEAMS.index(behavior_name)
        paid = self.group_reward if behavior_name == TEAMS[0] else np.float32(0.0)
        self.decisions[behavior_name] += len(d)
        return (
            DecisionSteps(
                d.obs, d.reward, d.agent_id + offset, d.action_mask, d.group_id, np.full(len(d), paid, np.float32)
            ),
            TerminalSteps(
                t.obs, t.reward, t.interrupted, t.agent_id + offset, t.group_id, np.full(len(t), paid, np.float32)
            ),
        )

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        self.actions_set[behavior_name] += len(action.continuous)
        super().set_actions(behavior_name, action)

    def set_action_for_agent(self, behavior_name: str, agent_id: int, action: ActionTuple) -> None:
        raise NotImplementedError


def options(tmp_path: Path, *, steps: int, **checkpoint: Any) -> RunOptions:
    raw = {
        "behaviors": {
            "Striker": {
                "trainer_type": "ppo",
                "hyperparameters": {"batch_size": 64, "buffer_size": 256, "learning_rate": 3.0e-3},
                "network_settings": {"hidden_units": 16, "num_layers": 1},
                "max_steps": steps,
                "time_horizon": 32,
                "summary_freq": 1000,
                "checkpoint_interval": 1000,
            }
        },
        "env_settings": {"seed": 4},
        "checkpoint_settings": {"run_id": "teams", "results_dir": str(tmp_path), **checkpoint},
    }
    return build_run_options(raw)


def warnings_matching(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def test_behavior_ids_parse_into_brain_and_team() -> None:
    assert parse_behavior_id("Striker?team=1") == BehaviorIdentifiers("Striker?team=1", "Striker", 1)
    assert parse_behavior_id("3DBall") == BehaviorIdentifiers("3DBall", "3DBall", 0)
    assert parse_behavior_id("Goalie?team=0&x=1") == BehaviorIdentifiers("Goalie?team=0&x=1", "Goalie", 0)
    assert parse_behavior_id("A?x=1").team_id == 0
    with pytest.raises(EnvironmentFault, match="'A\\?team=red'.*not an integer"):
        parse_behavior_id("A?team=red")
    assert behavior_ids_by_brain(["S?team=0", "G?team=0", "S?team=1"]) == {
        "S": ["S?team=0", "S?team=1"],
        "G": ["G?team=0"],
    }
    assert options(Path("."), steps=1).behavior_settings("Striker?team=7").max_steps == 1


def test_one_trainer_per_brain_and_one_processor_per_team(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = TwoTeams()
    env.reset()
    opts = options(tmp_path, steps=100)
    session = TrainingSession(
        options=opts,
        env=env,
        lifecycle=RunLifecycle(options=opts, path=tmp_path / "teams", seed=4),
        start=time.time(),
        make_trainer=api.make_trainer,
        display="none",
    )
    with caplog.at_level(logging.INFO, logger="fledge"):
        assert session.add_new_behaviors() == ["Striker"]
        assert session.add_new_behaviors() == []  # known behavior ids are not connected twice
    assert list(session.trainers) == ["Striker"] and session.trainers["Striker"].name == "Striker"
    processors, policies = session.collector.processors, session.collector.policies
    assert list(processors) == list(TEAMS) and processors[TEAMS[0]] is not processors[TEAMS[1]]
    assert policies[TEAMS[0]].policy is policies[TEAMS[1]].policy is session.trainers["Striker"].policy  # type: ignore[attr-defined]
    assert session.brain_of == {TEAMS[0]: "Striker", TEAMS[1]: "Striker"}
    assert all(f"Connected new behavior: {team}" in caplog.text for team in TEAMS)
    found = warnings_matching(caplog, "several teams")
    assert len(found) == 1 and "Striker" in found[0] and "self-play" in found[0]
    session.stats.close()


def test_teams_train_one_policy_with_results_under_the_brain_name(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = TwoTeams()
    with caplog.at_level(logging.INFO, logger="fledge"):
        result = api.run(options(tmp_path, steps=3000), env=env, display="none")
    assert list(result.behaviors) == ["Striker"]
    steps = result.behaviors["Striker"].steps
    assert steps >= 3000
    # both teams acted with the trainer's policy and fed it: more steps than either team alone produced
    assert all(env.actions_set[team] > 0 for team in TEAMS)
    assert steps > max(env.decisions.values())
    assert result.behaviors["Striker"].episodes > 0
    run = tmp_path / "teams"
    assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["Striker", "run_logs"]
    assert (run / "Striker.onnx").is_file() and (run / "Striker" / "checkpoint.pt").is_file()
    assert list((run / "Striker").glob("events.out.tfevents.*"))  # the TensorBoard category is the brain
    status = json.loads((run / "run_logs" / "training_status.json").read_text(encoding="utf-8"))
    assert set(status) == {"Striker", "metadata"}
    assert status["Striker"]["final_checkpoint"]["file_path"].endswith("Striker.onnx")
    assert len(warnings_matching(caplog, "several teams")) == 1
    assert not warnings_matching(caplog, "group reward")  # none were paid
    layout = "Environment TwoTeams: 4 agents (behaviors Striker?team=0: 2 agents, Striker?team=1: 2 agents)"
    assert layout in caplog.text

    resumed = api.run(options(tmp_path, steps=4000, resume=True), env=TwoTeams(), display="none")
    assert resumed.behaviors["Striker"].steps >= 4000


def test_teams_with_different_specs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentFault, match="teams of the brain 'Striker' but have different"):
        api.run(options(tmp_path, steps=100), env=TwoTeams(second_task="MoveToGoal1D-Discrete"), display="none")


def test_group_rewards_warn_exactly_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fledge"):
        result = api.run(options(tmp_path, steps=1500), env=TwoTeams(group_reward=0.01), display="none")
    assert result.behaviors["Striker"].steps >= 1500
    found = warnings_matching(caplog, "group reward")
    assert len(found) == 1
    assert "'Striker'" in found[0] and "PPO" in found[0] and "POCA" in found[0]
