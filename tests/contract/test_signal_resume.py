"""Reward signals survive SIGKILL and --resume: their networks and optimisers are in every checkpoint unit,
a trainer loaded from a unit holds exactly what the unit stored, and the resumed run carries on training
them from there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import yaml
from test_kill_resume import BEHAVIOR, newest_complete_unit, start, wait_for

from fledge.checkpoints.state_io import load_state
from fledge.config import build_run_options
from fledge.envs import registry
from fledge.stats import StatsReporter
from fledge.trainers.base import trainer_part
from fledge.trainers.registry import trainer_class

SIGNALS = {
    "extrinsic": {"gamma": 0.99, "strength": 1.0},
    "curiosity": {"gamma": 0.9, "strength": 0.05, "network_settings": {"hidden_units": 8, "num_layers": 1}},
    "rnd": {"gamma": 0.9, "strength": 0.01, "network_settings": {"hidden_units": 8, "num_layers": 1}},
}
HYPER = {
    "ppo": {"batch_size": 64, "buffer_size": 256},
    "sac": {"batch_size": 32, "buffer_size": 2000, "steps_per_update": 4, "reward_signal_steps_per_update": 8},
}


def config(trainer: str) -> dict[str, object]:
    return {
        "default_settings": {
            "trainer_type": trainer,
            "hyperparameters": HYPER[trainer],
            "network_settings": {"hidden_units": 16, "normalize": True},
            "reward_signals": SIGNALS,
            "max_steps": 10_000_000,
            "summary_freq": 2000,
            "checkpoint_interval": 300,
            "keep_checkpoints": 3,
        }
    }


def signal_entries(unit: Path) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
    state, _ = load_state(unit)
    tensors = {k: v for k, v in state.tensors.items() if k.startswith("signal.")}
    return tensors, state.meta["signals"]


@pytest.mark.parametrize("trainer", ["ppo", "sac"])
def test_signals_are_restored_exactly_after_sigkill_and_resume(tmp_path: Path, trainer: str) -> None:
    raw = config(trainer)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    run = tmp_path / "results" / "k"
    proc = start(tmp_path)
    for _ in range(2):  # the first unit is complete once the second is being written
        wait_for(proc, r"Exported .*\.onnx")
    proc.kill()
    proc.wait()
    newest = newest_complete_unit(run)
    unit = run / BEHAVIOR / f"{BEHAVIOR}-{newest}.pt"
    tensors, meta = signal_entries(unit)
    for name in ("curiosity", "rnd"):
        assert any(k.startswith(f"signal.{name}.optimizer.") for k in tensors), f"{name}'s Adam moments"
        assert meta[name]["update_count"] > 0  # type: ignore[index]
    # a trainer loaded from the unit holds exactly what the unit stored
    settings = build_run_options(raw).behavior_settings(BEHAVIOR)
    spec = registry.make(BEHAVIOR).behavior_specs[BEHAVIOR]
    cls = trainer_class(f"behaviors.{BEHAVIOR}", settings)
    fresh = cls(behavior_name=BEHAVIOR, spec=spec, settings=settings, stats=StatsReporter([]), seed=123)
    fresh.set_state(trainer_part(load_state(unit)[0]))
    again = fresh.get_state()
    assert again.meta["signals"] == meta
    restored = {k: v for k, v in again.tensors.items() if k.startswith("signal.")}
    assert restored.keys() == tensors.keys()
    for key, value in tensors.items():
        torch.testing.assert_close(restored[key], value, rtol=0, atol=0, msg=key)
    # the resumed run starts from that unit and keeps training its signals
    proc = start(tmp_path, "--resume")
    line = wait_for(proc, r"Resuming training of .* from step \d+")
    assert int(re.search(r"from step (\d+)", line).group(1)) == newest  # type: ignore[union-attr]
    for _ in range(4):  # PPO updates every ~400 steps here: the newest complete unit comes after one
        wait_for(proc, r"Exported .*\.onnx")
    proc.kill()
    proc.wait()
    later = newest_complete_unit(run)
    assert later > newest
    _, later_meta = signal_entries(run / BEHAVIOR / f"{BEHAVIOR}-{later}.pt")
    for name in ("curiosity", "rnd"):
        assert later_meta[name]["update_count"] > meta[name]["update_count"]  # type: ignore[index]
