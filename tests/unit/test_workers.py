"""Environment pools: the wire format, lockstep reproducibility, crashes and restarts."""

from __future__ import annotations

import json
import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fledge import api
from fledge.config import build_run_options
from fledge.envs import registry
from fledge.envs.api import ActionTuple
from fledge.rollout import wire
from fledge.rollout.workers import ID_STRIDE, EnvPool, RestartBudget, WorkerCrashError

ENV = "MoveToGoal1D-Discrete"


def test_wire_round_trip_and_refusals() -> None:
    arrays = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([True, False]), "c": np.zeros((0, 4))}
    command, values, out = wire.decode(wire.encode("steps", {"x": [1, "y"]}, arrays))
    assert command == "steps" and values == {"x": [1, "y"]}
    for key, arr in arrays.items():
        assert out[key].dtype == arr.dtype and np.array_equal(out[key], arr)
    message = wire.encode("steps", {}, {"a": np.zeros(10, np.float64)})
    with pytest.raises(wire.ProtocolError, match="truncated"):
        wire.decode(message[:-8])
    header = json.dumps({"command": "steps", "values": {}, "arrays": [["o", "object", [1]]]}).encode()
    bad = struct.pack("<I", len(header)) + header + b"\0" * 8
    with pytest.raises(wire.ProtocolError, match="not allowed"):
        wire.decode(bad)
    header = json.dumps({"command": "steps", "values": {}, "arrays": [["o", "float32", [-1, 2]]]}).encode()
    with pytest.raises(wire.ProtocolError, match="negative shape"):
        wire.decode(struct.pack("<I", len(header)) + header + b"\0" * 8)


def test_wire_round_trip_of_every_allowed_dtype() -> None:
    arrays = {name: np.ones((2, 1), dtype=name) for name in sorted(wire.ALLOWED_DTYPES)}
    arrays["row"] = np.array([3.5], dtype=np.float64)
    _, _, out = wire.decode(wire.encode("steps", {}, arrays))
    for key, arr in arrays.items():
        assert out[key].dtype == arr.dtype and out[key].shape == arr.shape and np.array_equal(out[key], arr)


def random_rollout(pool: Any, steps: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    seen = []
    pool.reset()
    for _ in range(steps):
        d, t = pool.get_steps(ENV)
        seen += [d.obs[0].copy(), d.agent_id.copy(), t.reward.copy()]
        pool.set_actions(ENV, ActionTuple(discrete=rng.integers(0, 3, size=(len(d), 1)).astype(np.int32)))
        pool.step()
    return seen


def test_processes_and_in_process_copies_step_identically() -> None:
    local = EnvPool(env_name=ENV, copies=2, seed=4, processes=False)
    remote = EnvPool(env_name=ENV, copies=2, seed=4, processes=True)
    try:
        a, b = random_rollout(local, 60), random_rollout(remote, 60)
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
        d, _ = local.get_steps(ENV)
        assert set((d.agent_id // ID_STRIDE).tolist()) == {0, 1}  # copies keep distinct agent ids
        single = registry.make(ENV, seed=5)  # copy 1 is seeded with seed + 1
        single.reset()
        np.testing.assert_array_equal(
            EnvPool(env_name=ENV, copies=2, seed=4, processes=False).get_steps(ENV)[0].obs[0][16:],
            single.get_steps(ENV)[0].obs[0],
        )
    finally:
        local.close()
        remote.close()


def test_a_killed_worker_is_restarted_and_its_agents_dropped() -> None:
    pool = EnvPool(env_name=ENV, copies=2, seed=1, processes=True, budget=RestartBudget(max_lifetime_restarts=1))
    try:
        pool.reset()
        pool.step()
        pool.copies[1].kill()  # type: ignore[attr-defined]
        pool.step()
        dropped = pool.take_dropped_agents()[ENV]
        assert set((dropped // ID_STRIDE).tolist()) == {1}
        d, _ = pool.get_steps(ENV)
        assert len(d) == 32  # the restarted copy is back with all its agents
        pool.copies[1].kill()  # type: ignore[attr-defined]
        with pytest.raises(WorkerCrashError, match="restart budget is used up"):
            pool.step()
    finally:
        pool.close()


def options(tmp_path: Path, **checkpoint: Any) -> Any:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 64, "buffer_size": 512},
            "network_settings": {"hidden_units": 16},
            "max_steps": 12_000,
            "summary_freq": 2000,
            "checkpoint_interval": 1000,
        },
        "env_settings": {"env_path": ENV, "seed": 2, "num_envs": 2, "worker_processes": True},
        "checkpoint_settings": {"run_id": "w", "results_dir": str(tmp_path), **checkpoint},
    }
    return build_run_options(raw)


def kill_worker_after(pool: EnvPool, index: int, steps: int) -> threading.Thread:
    def killer() -> None:
        while pool.steps_done < steps:
            time.sleep(0.005)
        pool.copies[index].kill()  # type: ignore[attr-defined]

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread


def test_training_survives_a_crash_then_stops_cleanly_beyond_the_budget_and_resumes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    opts = options(tmp_path)
    pool = EnvPool(env_name=ENV, copies=2, seed=2, processes=True, budget=RestartBudget(max_lifetime_restarts=1))
    try:
        kill_worker_after(pool, 1, 50).join(timeout=0)
        with caplog.at_level("WARNING", logger="fledge"):
            result = api.run(opts, env=pool)  # one crash: restarted, training goes on to the end
        assert result.behaviors[ENV].steps >= 12_000
        assert "Restarting environment worker 1" in caplog.text
    finally:
        pool.close()

    pool = EnvPool(env_name=ENV, copies=2, seed=2, processes=True, budget=RestartBudget(max_lifetime_restarts=0))
    try:
        kill_worker_after(pool, 0, 120)
        with pytest.raises(WorkerCrashError, match="restart budget is used up"):
            api.run(options(tmp_path, force=True), env=pool)
    finally:
        pool.close()
    run = tmp_path / "w"
    assert (run / ENV / "checkpoint.pt").is_file()  # the last checkpoint is intact
    resumed = api.run(options(tmp_path, resume=True))
    assert resumed.behaviors[ENV].steps >= 12_000


def test_num_envs_layout_by_environment_kind(tmp_path: Path) -> None:
    from fledge.envs.gymnasium import GymnasiumEnv

    def env_for(name: str, **env_settings: Any) -> Any:
        raw = {"env_settings": {"env_path": name, "num_envs": 3, **env_settings}}
        return api.make_environment(build_run_options(raw), seed=0)

    builtin = env_for(ENV)
    assert isinstance(builtin, EnvPool) and not builtin.processes
    gym = env_for("gym:CartPole-v1")
    assert isinstance(gym, GymnasiumEnv)  # one Gymnasium vector env of 3
    gym.reset()
    assert len(gym.get_steps("CartPole-v1")[0]) == 3
    forced = env_for(ENV, worker_processes=True)
    try:
        assert isinstance(forced, EnvPool) and forced.processes
    finally:
        forced.close()
