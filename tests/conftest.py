"""Shared test helpers: build run options for a short run in a temporary results folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fledge.config import RunOptions, build_run_options


def toy_options(
    tmp_path: Path,
    env: str,
    *,
    steps: int,
    seed: int = 1,
    hyperparameters: dict[str, Any] | None = None,
    network: dict[str, Any] | None = None,
    gamma: float = 0.99,
    run_id: str = "run",
    extra: dict[str, Any] | None = None,
) -> RunOptions:
    hp = {"batch_size": 128, "buffer_size": 2048, "learning_rate": 3.0e-3, "beta": 0.005, "num_epoch": 3, "lambd": 0.95}
    hp.update(hyperparameters or {})
    settings: dict[str, Any] = {
        "trainer_type": "ppo",
        "hyperparameters": hp,
        "network_settings": {"hidden_units": 32, "num_layers": 2, **(network or {})},
        "reward_signals": {"extrinsic": {"gamma": gamma, "strength": 1.0}},
        "max_steps": steps,
        "time_horizon": 64,
        "summary_freq": 10**9,
    }
    settings.update(extra or {})
    raw = {
        "default_settings": settings,
        "env_settings": {"env_path": env, "seed": seed},
        "checkpoint_settings": {"run_id": run_id, "results_dir": str(tmp_path / "results")},
    }
    return build_run_options(raw)


@pytest.fixture
def make_options(tmp_path: Path) -> Any:
    def make(env: str, **kwargs: Any) -> RunOptions:
        return toy_options(tmp_path, env, **kwargs)

    return make


@pytest.fixture(autouse=True)
def one_torch_thread() -> Any:
    """Tests run small networks: one torch thread, as a run uses (2 threads stall on shared cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
