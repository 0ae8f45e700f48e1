"""Behavioral cloning in runs: its state goes through checkpoints, its stat is reported, a demonstration of
another behavior is refused before training, and ML-Agents' example demo path falls back to the shipped demo."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conftest import drive_trainer, toy_options
from fledge import api
from fledge.checkpoints.state_io import encode_state, load_state
from fledge.envs import registry
from fledge.errors import ConfigError
from fledge.imitation.demo_reader import SHIPPED_DEMOS
from fledge.play import play
from fledge.stats import StatsReporter
from fledge.stats.reporter import StatSummary, StatsWriter
from fledge.trainers.ppo.trainer import PPOTrainer


class Keys(StatsWriter):
    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.values: dict[str, list[float]] = {}

    def write_stats(self, category: str, summaries: Mapping[str, StatSummary], step: int) -> None:
        for key, summary in summaries.items():
            self.keys.add(key)
            self.values.setdefault(key, []).append(float(summary.mean))


@pytest.fixture(scope="module")
def basic_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demos") / "ExpertBasic.demo"
    play(None, heuristic="Basic", record_demo=path, record_demo_steps=120, out=io.StringIO())
    return path


def bc_options(tmp_path: Path, env: str, demo: str | Path, *, max_steps: int = 600, **bc: Any) -> Any:
    return toy_options(
        tmp_path,
        env,
        steps=max_steps,
        hyperparameters={"buffer_size": 256, "batch_size": 64},
        extra={
            "behavioral_cloning": {"demo_path": str(demo), **bc},
            "summary_freq": 256,
        },
    )


def make_trainer(tmp_path: Path, demo: Path, seed: int) -> PPOTrainer:
    opts = bc_options(tmp_path, "Basic", demo, max_steps=10_000)
    return PPOTrainer(
        behavior_name="Basic",
        spec=registry.make("Basic").behavior_specs["Basic"],
        settings=opts.behavior_settings("Basic"),
        stats=StatsReporter([]),
        seed=seed,
    )


def test_bc_state_goes_through_a_checkpoint(tmp_path: Path, basic_demo: Path) -> None:
    torch.manual_seed(0)
    a = make_trainer(tmp_path, basic_demo, seed=1)
    drive_trainer(a, "Basic", 600, seed=1)  # two updates, each followed by BC
    state = a.get_state()
    assert any(k.startswith("bc_optimizer.") for k in state.tensors) and "behavioral_cloning" in state.meta
    path = tmp_path / "s.pt"
    path.write_bytes(encode_state(state, {}))
    loaded, _ = load_state(path)
    b = make_trainer(tmp_path, basic_demo, seed=99)
    b.set_state(loaded)
    sa, sb = a.get_state(), b.get_state()
    assert sa.meta == sb.meta and sa.tensors.keys() == sb.tensors.keys()
    for key in sa.tensors:
        assert torch.equal(sa.tensors[key], sb.tensors[key]), key
    assert a.bc is not None and b.bc is not None
    assert a.bc.update(a.step) == b.bc.update(b.step)  # the same shuffles and noise after the restore
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(pa, pb)


def test_pretraining_loss_is_reported_and_falls(tmp_path: Path, basic_demo: Path) -> None:
    keys = Keys()
    a = make_trainer(tmp_path, basic_demo, seed=1)
    a.stats = StatsReporter([keys])
    drive_trainer(a, "Basic", 1300, seed=1)
    assert "Losses/Pretraining Loss" in keys.keys
    losses = keys.values["Losses/Pretraining Loss"]
    assert losses[-1] < losses[0]


def test_bc_stops_updating_once_its_rate_has_decayed(tmp_path: Path, basic_demo: Path) -> None:
    opts = bc_options(tmp_path, "Basic", basic_demo, max_steps=10_000, steps=100)
    t = PPOTrainer(
        behavior_name="Basic",
        spec=registry.make("Basic").behavior_specs["Basic"],
        settings=opts.behavior_settings("Basic"),
        stats=StatsReporter([]),
        seed=0,
    )
    assert t.bc is not None
    before = [p.detach().clone() for p in t.model.parameters()]
    assert t.bc.update(100) == {"Losses/Pretraining Loss": 0.0}
    assert all(torch.equal(p, q) for p, q in zip(before, t.model.parameters()))


def test_a_demo_of_another_behavior_is_refused_before_training(tmp_path: Path) -> None:
    ball = tmp_path / "Ball.demo"
    play(None, heuristic="3DBall", record_demo=ball, record_demo_steps=30, out=io.StringIO())
    opts = bc_options(tmp_path, "Basic", ball)
    with pytest.raises(ConfigError) as info:
        api.run(opts, display="none")
    text = str(info.value)
    assert "behaviors.Basic.behavioral_cloning.demo_path" in text
    assert (
        "observations [(8,)], actions (Continuous: 2" in text and "observations [(20,)], actions (Continuous: 0" in text
    )
    run = tmp_path / "results" / "run"
    assert not list(run.glob("**/*.pt")) and not list(run.glob("**/*.onnx"))
    assert not list(run.glob("**/events.out.tfevents*"))


def test_a_missing_or_broken_demo_is_refused_by_preflight(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"behavioral_cloning.demo_path: no demonstration at .*nothing.demo"):
        api.run(bc_options(tmp_path, "Basic", tmp_path / "nothing.demo"), display="none")
    bad = tmp_path / "bad.demo"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(ConfigError, match="too short"):
        api.run(bc_options(tmp_path, "Basic", bad), display="none")
    assert not (tmp_path / "results" / "run").exists()


def test_behavioral_cloning_is_refused_for_trainers_without_it(tmp_path: Path, basic_demo: Path) -> None:
    opts = toy_options(
        tmp_path,
        "DungeonEscape",
        steps=100,
        extra={"trainer_type": "poca", "behavioral_cloning": {"demo_path": str(basic_demo)}},
    )
    with pytest.raises(ConfigError, match="behavioral_cloning: behavioral cloning is available for ppo, sac only"):
        api.run(opts, display="none")


def test_ml_agents_example_path_falls_back_to_the_shipped_demo(
    tmp_path: Path, fledge_log: list[logging.LogRecord]
) -> None:
    assert (SHIPPED_DEMOS / "ExpertHallway.demo").is_file()
    example = "Project/Assets/ML-Agents/Examples/Hallway/Demos/ExpertHallway.demo"
    opts = toy_options(
        tmp_path,
        "Hallway",
        steps=300,
        hyperparameters={"buffer_size": 256, "batch_size": 64},
        network={"memory": {"memory_size": 16, "sequence_length": 8}},
        extra={"behavioral_cloning": {"demo_path": example, "strength": 0.5}},
    )
    result = api.run(opts, display="none")
    assert result.behaviors["Hallway"].steps >= 300
    warnings = [r.getMessage() for r in fledge_log if r.levelno >= logging.WARNING]
    assert any("ExpertHallway.demo does not exist; using fledge's shipped demonstration" in w for w in warnings)
    assert np.isfinite(result.behaviors["Hallway"].steps)


def test_resume_continues_bc_from_its_saved_optimiser(tmp_path: Path, basic_demo: Path) -> None:
    first = bc_options(tmp_path, "Basic", basic_demo, max_steps=512)
    api.run(first, display="none")
    ckpt = tmp_path / "results" / "run" / "Basic" / "checkpoint.pt"
    before, _ = load_state(ckpt)
    steps_before = float(before.tensors["bc_optimizer.0.step"])
    assert steps_before > 0
    second = bc_options(tmp_path, "Basic", basic_demo, max_steps=1024)
    second.checkpoint_settings.resume = True
    api.run(second, display="none")
    after, _ = load_state(ckpt)
    assert after.meta["step"] >= 1024
    # the resumed BC optimiser counted on from the saved one (a fresh one would have fewer steps than before)
    assert float(after.tensors["bc_optimizer.0.step"]) == pytest.approx(2 * steps_before)


def test_bc_runs_are_deterministic(tmp_path: Path, basic_demo: Path) -> None:
    returns = []
    for name in ("a", "b"):
        opts = bc_options(tmp_path / name, "Basic", basic_demo, max_steps=600)
        returns.append(api.run(opts, display="none").behaviors["Basic"].episode_returns)
    assert returns[0] == returns[1]
