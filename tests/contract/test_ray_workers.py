"""Ray environment workers on a real local Ray instance: lockstep equality with in-process copies and
worker processes (over direct connections to the actors and over actor calls), the actor's connection
guarded by its secret, a killed actor restarted with its lost trajectories counted, the clear error of an
unreachable cluster, and Ray imported only when asked. One Ray instance serves the module's tests that
need one; the two training runs are marked slow (about 25 s together on 2 busy cores)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray workers need the optional extra: pip install 'fledge[ray]'")

from fledge import api  # noqa: E402
from fledge.config import build_run_options  # noqa: E402
from fledge.envs.api import ActionTuple  # noqa: E402
from fledge.rollout import wire  # noqa: E402
from fledge.rollout.ray_host import EnvHost, recv_frame, send_frame  # noqa: E402
from fledge.rollout.ray_workers import RayEnvPool, make_ray_pool  # noqa: E402
from fledge.rollout.workers import ID_STRIDE, LOST_TRAJECTORIES, EnvPool, RestartBudget, WorkerCrashError  # noqa: E402

ENV = "MoveToGoal1D-Discrete"
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A small local Ray instance for the module; pools join it (and leave it running when they close)."""
    ray.init(num_cpus=4, object_store_memory=100 * 2**20, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


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


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize(("per_actor", "direct"), [(1, True), (2, True), (1, False)])
def test_ray_copies_step_identically_to_in_process_copies(per_actor: int, direct: bool) -> None:
    """4 copies: 4 actors, or 2 actors of 2 copies each, step as 4 in-process copies (seeds, agent ids), over
    direct connections to the actors as over Ray's actor calls."""
    local = EnvPool(env_name=ENV, copies=4, seed=4, processes=False)
    remote = make_ray_pool(env_name=ENV, copies=4, seed=4, num_cpus=0.5, envs_per_worker=per_actor, direct=direct)
    try:
        assert len(remote.copies) == 4 // per_actor
        assert [c.sock is not None for c in remote.copies] == [direct] * len(remote.copies)  # type: ignore[attr-defined]
        a, b = random_rollout(local, 40), random_rollout(remote, 40)
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
        d, _ = remote.get_steps(ENV)
        assert set((d.agent_id // ID_STRIDE).tolist()) == {0, 1, 2, 3}
        assert all(c.pid != os.getpid() for c in remote.copies)  # type: ignore[attr-defined]  # the actors' processes
    finally:
        local.close()
        remote.close()
    assert ray.is_initialized()  # the pool joined the module's Ray and leaves it running


@pytest.mark.usefixtures("local_ray")
@pytest.mark.parametrize("per_actor", [1, 2])
def test_ray_copies_take_environment_parameters_as_in_process_copies_do(per_actor: int) -> None:
    """Draws reach the actors' environments before their first episode and after a lesson change, each hosted
    copy from its own sampler stream, exactly as in-process copies draw them."""
    draws = {
        "scale": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 0.5, "max_value": 3.0}, "seed": 7}
    }
    local = EnvPool(env_name="3DBall", copies=4, seed=2, processes=False, draws=draws)
    remote = make_ray_pool(env_name="3DBall", copies=4, seed=2, num_cpus=0.5, envs_per_worker=per_actor, draws=draws)
    try:
        assert remote.environment_parameter_names() == {"scale", "gravity", "mass"}

        def first_obs(pool: Any) -> np.ndarray:
            pool.reset()
            return pool.get_steps("3DBall")[0].obs[0].copy()

        assert np.array_equal(first_obs(local), first_obs(remote))
        lesson = {"scale": {"sampler_type": "constant", "sampler_parameters": {"value": 0.5}, "seed": 7}}
        local.set_environment_parameters(lesson)
        remote.set_environment_parameters(lesson)
        assert np.array_equal(first_obs(local), first_obs(remote))
    finally:
        local.close()
        remote.close()


@pytest.mark.usefixtures("local_ray")
def test_a_killed_actor_is_restarted_its_trajectories_counted_then_the_budget_stops_the_run() -> None:
    pool = make_ray_pool(env_name=ENV, copies=2, seed=1, num_cpus=0.5, budget=RestartBudget(max_lifetime_restarts=1))
    try:
        pool.reset()
        pool.step()
        first_actor = pool.copies[1].pid  # type: ignore[attr-defined]
        pool.copies[1].kill()
        pool.step()
        dropped = pool.take_dropped_agents()[ENV]
        assert set((dropped // ID_STRIDE).tolist()) == {1}
        assert pool.copies[1].pid != first_actor  # type: ignore[attr-defined]  # a new actor
        assert len(pool.get_steps(ENV)[0]) == 32  # the restarted copy is back with all its agents
        assert pool.lost_trajectories == 16  # its 16 agents each had a trajectory under way
        assert pool.get_stats()[LOST_TRAJECTORIES] == [(16.0, 2)]  # summed over the summary period
        assert LOST_TRAJECTORIES not in pool.get_stats()  # reported once
        pool.copies[1].kill()
        with pytest.raises(WorkerCrashError, match="restart budget is used up"):
            pool.step()
    finally:
        pool.close()


@pytest.mark.usefixtures("local_ray")
def test_actors_late_for_the_shared_wait_are_restarted_and_the_prompt_one_keeps_its_step(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The pool waits for every actor's answer at once (one ray.get); the actors still silent when timeout_wait
    runs out are each a fault and restarted, and the one that answered keeps its actor and its agents."""
    pool = make_ray_pool(env_name=ENV, copies=3, seed=1, num_cpus=0.5)
    try:
        pool.reset()
        first = [c.pid for c in pool.copies]  # type: ignore[attr-defined]
        pool.timeout = 0.5  # for steps only: new actors get the time to start that make_ray_pool gave them
        for c in pool.copies:
            c.timeout = 0.5  # type: ignore[attr-defined]
        for c in pool.copies[1:]:
            c.set_delay(1.5)  # type: ignore[attr-defined]
        with caplog.at_level("WARNING", logger="fledge"):
            pool.step()
        assert [c.pid == p for c, p in zip(pool.copies, first)] == [True, False, False]  # type: ignore[attr-defined]
        assert pool.lost_trajectories == 32 and len(pool.get_steps(ENV)[0]) == 48
        assert set(pool.take_dropped_agents()[ENV] // ID_STRIDE) == {1, 2}
        late = [r.getMessage() for r in caplog.records if "did not answer its step within 0.5 s" in r.getMessage()]
        assert len(late) == 2, caplog.text
        pool.step()  # the new actors step at their usual pace
    finally:
        pool.close()


@pytest.mark.usefixtures("local_ray")
def test_an_actors_connection_takes_only_its_secret_and_answers_a_bad_message_with_an_error() -> None:
    """The actor's port serves one connection, one that begins with the secret given to the actor: others are
    closed without a word; a message it cannot run is answered with an error message (the pool's fault) and
    ends the serving call."""
    actor = ray.remote(EnvHost).remote(json.dumps({"env_name": ENV, "seed": 0, "secret": "right"}))
    _, values, _ = wire.decode(ray.get(actor.start.remote(), timeout=60))
    address = tuple(values["address"])
    serving = None
    for sent in ("wrong", "rightish", "right"):
        with socket.create_connection(address, timeout=10) as sock:
            send_frame(sock, sent.encode())
            if serving is None:
                serving = actor.serve.remote(10.0)  # as the pool does: it connects first
            if sent != "right":
                with pytest.raises((EOFError, ConnectionError)):
                    recv_frame(sock)  # closed without a word
                continue
            send_frame(sock, wire.encode("step", {}, {}))
            command, _, arrays = wire.decode(recv_frame(sock))
            assert command == "steps" and len(arrays["0.d.agent_id"]) == 16
            send_frame(sock, wire.encode("jump"))
            command, values, _ = wire.decode(recv_frame(sock))
            assert command == "error" and "unknown command 'jump'" in values["text"]
    with pytest.raises(ray.exceptions.RayTaskError, match="unknown command"):
        ray.get(serving, timeout=10)
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=10)  # the port serves no more
    ray.kill(actor)


def options(tmp_path: Path, run_id: str, workers: str, **env: Any) -> Any:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 64, "buffer_size": 512},
            "network_settings": {"hidden_units": 16},
            "max_steps": 4000,
            "summary_freq": 1000,
            "checkpoint_interval": 100_000,
        },
        "env_settings": {"env_path": ENV, "seed": 2, "num_envs": 2, "workers": workers, "ray_num_cpus": 0.5, **env},
        "checkpoint_settings": {"run_id": run_id, "results_dir": str(tmp_path)},
    }
    return build_run_options(raw)


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_a_seeded_run_with_ray_workers_equals_one_with_worker_processes(tmp_path: Path) -> None:
    by_ray = api.run(options(tmp_path, "ray", "ray"), display="none")
    by_processes = api.run(options(tmp_path, "processes", "processes"), display="none")
    assert by_ray.behaviors[ENV].steps >= 4000
    assert by_ray.behaviors[ENV].episode_returns == by_processes.behaviors[ENV].episode_returns
    import torch

    a = torch.load(tmp_path / "ray" / ENV / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "processes" / ENV / "checkpoint.pt", weights_only=True)
    a, b = a["tensors"], b["tensors"]  # every tensor of the checkpoint: weights, optimiser, normaliser
    assert any(k.startswith("policy.") for k in a) and a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


@pytest.mark.slow
@pytest.mark.usefixtures("local_ray")
def test_training_goes_on_after_an_actor_is_killed_and_reports_the_lost_trajectories(tmp_path: Path) -> None:
    opts = options(tmp_path, "killed", "ray")
    pool = api.make_environment(opts, seed=2)
    assert isinstance(pool, RayEnvPool)

    def killer() -> None:
        while pool.steps_done < 30:
            time.sleep(0.005)
        pool.copies[0].kill()

    threading.Thread(target=killer, daemon=True).start()
    try:
        result = api.run(opts, env=pool, display="none")
    finally:
        pool.close()
    assert result.behaviors[ENV].steps >= 4000
    assert pool.lost_trajectories == 16
    with (tmp_path / "killed" / "run_logs" / f"{ENV}.csv").open(newline="") as f:
        lost = [float(row[LOST_TRAJECTORIES]) for row in csv.DictReader(f) if row.get(LOST_TRAJECTORIES)]
    assert sum(lost) == 16


def fledge_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_unreachable_cluster_and_missing_ray_are_clear_errors_and_ray_is_imported_only_when_asked(
    tmp_path: Path,
) -> None:
    """One fresh interpreter (no Ray started): plain imports leave Ray out; an address that answers nothing
    fails before the run writes anything; without Ray installed, the message says how to install it."""
    learn = f"'learn', '--env', '{ENV}', '--workers', 'ray', '--results-dir', {str(tmp_path)!r}, '--run-id', 'r'"
    done = fledge_python(
        "import sys\n"
        "import fledge.cli, fledge.api, fledge.rollout.workers, fledge.config, fledge.sweep.space\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "from fledge.cli import main\n"
        "sys.modules['ray'] = None  # as if Ray were not installed\n"
        f"assert main([{learn}]) == 1\n"
        "assert main(['sweep', 'missing.yaml', '--seeds', '2']) == 1\n"
        "del sys.modules['ray']\n"
        f"sys.exit(main([{learn}, '--ray-address', '127.0.0.1:9']))\n"
    )
    assert done.returncode == 1, done.stderr
    assert "Ray cluster at 127.0.0.1:9 cannot be reached" in done.stderr and "ray start --head" in done.stderr
    assert done.stderr.count("pip install 'fledge[ray]'") == 2 and "Traceback" not in done.stderr  # learn, sweep
    assert not (tmp_path / "r").exists()  # nothing was written
