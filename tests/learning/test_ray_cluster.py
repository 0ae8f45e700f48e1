"""A real multi-node Ray cluster on this machine (Ray's cluster utilities: a head and two worker nodes,
one CPU and a 100 MB object store each): 3DBall trains to its usual threshold with its three environment
actors on three nodes, a seeded run on the cluster equals the same run with worker processes, and
`fledge sweep` runs 3 seeds x 2 learning rates as Ray tasks on the cluster. All slow (minutes)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray", reason="Ray workers need the optional extra: pip install 'fledge[ray]'")


from fledge import api
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config
from fledge.rollout.ray_workers import RayEnvPool

pytestmark = [pytest.mark.slow, pytest.mark.learning]
SRC = Path(__file__).resolve().parents[2] / "src"
NODE = {"num_cpus": 1, "object_store_memory": 100 * 2**20}


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    os.environ.setdefault("PYTHONPATH", str(SRC))  # the nodes' workers import fledge as this process does
    head = Cluster(initialize_head=True, head_node_args={**NODE, "include_dashboard": False})
    for _ in range(2):
        head.add_node(**NODE)
    head.wait_for_nodes()
    yield head
    head.shutdown()


def ball_options(tmp_path: Path, run_id: str, *, steps: int, workers: str, address: str | None) -> Any:
    raw = load_config_file(shipped_config("3DBall"))  # type: ignore[arg-type]
    raw["behaviors"]["3DBall"]["max_steps"] = steps
    env: dict[str, Any] = {"seed": 1, "num_envs": 3, "workers": workers}
    if address is not None:
        env["ray_address"] = address
    raw["env_settings"] = env
    raw["checkpoint_settings"] = {"run_id": run_id, "results_dir": str(tmp_path)}
    return build_run_options(raw)


def test_3dball_trains_to_its_threshold_with_actors_spread_over_three_nodes(cluster: Any, tmp_path: Path) -> None:
    opts = ball_options(tmp_path, "ball", steps=300_000, workers="ray", address=cluster.address)
    pool = api.make_environment(opts, seed=1)
    assert isinstance(pool, RayEnvPool)
    try:
        assert len(set(pool.nodes())) == 3  # one actor per node (SPREAD, one CPU each)
        assert all(c.sock is not None for c in pool.copies)  # type: ignore[attr-defined]  # direct connections
        result = api.run(opts, env=pool, display="none")
    finally:
        pool.close()
    returns = result.behaviors["3DBall"].episode_returns
    windows = np.convolve(returns, np.ones(24) / 24, mode="valid")
    assert windows.max() >= 90.0, f"best 24-episode mean {windows.max():.1f}"


def test_a_seeded_run_on_the_cluster_equals_the_same_run_with_worker_processes(cluster: Any, tmp_path: Path) -> None:
    on_cluster = api.run(
        ball_options(tmp_path, "cluster", steps=30_000, workers="ray", address=cluster.address), display="none"
    )
    local = api.run(ball_options(tmp_path, "local", steps=30_000, workers="processes", address=None), display="none")
    assert on_cluster.behaviors["3DBall"].episode_returns == local.behaviors["3DBall"].episode_returns
    import torch

    a = torch.load(tmp_path / "cluster" / "3DBall" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "local" / "3DBall" / "checkpoint.pt", weights_only=True)
    a, b = a["tensors"], b["tensors"]  # every tensor of the checkpoint: weights, optimiser, normaliser
    assert any(k.startswith("policy.") for k in a) and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_sweep_of_3_seeds_by_2_learning_rates_writes_6_runs_and_a_summary(cluster: Any, tmp_path: Path) -> None:
    config = tmp_path / "basic.yaml"
    config.write_text(
        "behaviors:\n  Basic:\n    trainer_type: ppo\n"
        "    hyperparameters: {batch_size: 32, buffer_size: 256}\n"
        "    network_settings: {hidden_units: 16, num_layers: 1}\n"
        "    max_steps: 1000\n    summary_freq: 500\n"
        "env_settings: {env_path: Basic}\n"
    )
    space = tmp_path / "space.yaml"
    space.write_text("method: grid\nparameters:\n  behaviors.Basic.hyperparameters.learning_rate: [3.0e-4, 3.0e-3]\n")
    results = tmp_path / "results"
    argv = [str(config), "--seeds", "3", "--space", str(space), "--results-dir", str(results)]
    argv += ["--sweep-id", "lr", "--ray-address", cluster.address]
    done = subprocess.run(
        [sys.executable, "-m", "fledge", "sweep", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    folder = results / "lr"
    runs = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name.startswith("t"))
    assert runs == ["t00-s0", "t00-s1", "t00-s2", "t01-s0", "t01-s1", "t01-s2"]
    assert all((folder / r / "run_logs" / "Basic.csv").is_file() for r in runs)
    with (folder / "summary.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 6 and all(r["status"] == "ok" and r["step"] == "1000" for r in rows)
    assert {r["point"] for r in rows} == {"learning_rate=0.0003", "learning_rate=0.003"}
    assert len(json.loads((folder / "summary.json").read_text())["trials"]) == 6
    assert (folder / "final_rewards.png").stat().st_size > 0
    assert "mean over seeds per point" in done.stdout
