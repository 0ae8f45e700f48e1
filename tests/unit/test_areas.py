"""Training areas (`num_areas` / `--num-areas`): more agents per built-in environment, in one batch."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from fledge import api
from fledge.config import build_run_options
from fledge.config.effects import effect_warnings
from fledge.envs import registry
from fledge.envs.api import BaseEnv
from fledge.envs.builtin.base import VectorTaskEnv
from fledge.envs.builtin.teams import TeamTaskEnv
from fledge.envs.layout import describe_layout
from fledge.errors import ConfigError
from fledge.rollout.workers import ID_STRIDE, EnvPool

ALL_NAMES = [n for n in registry.names() if not isinstance(registry.make(n), TeamTaskEnv)]  # teams: test_tennis.py


def random_actions(env: BaseEnv, name: str, rng: np.random.Generator) -> None:
    d, _ = env.get_steps(name)
    env.set_actions(name, env.behavior_specs[name].action_spec.random_action(len(d), rng))


@pytest.mark.parametrize("name", ALL_NAMES)
def test_areas_multiply_the_agents_of_every_builtin_environment(name: str) -> None:
    per_area = registry.describe(name).num_agents
    assert per_area is not None
    env = registry.make(name, seed=0, num_areas=4)
    assert isinstance(env, VectorTaskEnv)
    assert (env.num_areas, env.agents_per_area, env.task.num_agents) == (4, per_area, 4 * per_area)  # one task
    env.reset()
    d, _ = env.get_steps(name)
    np.testing.assert_array_equal(d.agent_id, np.arange(4 * per_area))
    assert all(o.shape[0] == 4 * per_area for o in d.obs) and d.reward.shape == (4 * per_area,)


def test_3dball_with_4_areas_has_48_agents_and_num_agents_counts_per_area() -> None:
    env = registry.make("3DBall", num_areas=4)
    env.reset()
    assert len(env.get_steps("3DBall")[0]) == 48
    env = registry.make("Basic", num_areas=3, num_agents=2)
    env.reset()
    assert len(env.get_steps("Basic")[0]) == 6 and env.agents_per_area == 2  # type: ignore[attr-defined]


def test_agent_ids_stay_unique_and_stable_and_episodes_end_per_agent() -> None:
    env = registry.make("3DBall", seed=3, num_areas=4)
    env.reset()
    rng = np.random.default_rng(0)
    ended_at: dict[int, list[int]] = {}
    for step in range(300):
        random_actions(env, "3DBall", rng)
        env.step()
        d, t = env.get_steps("3DBall")
        np.testing.assert_array_equal(d.agent_id, np.arange(48))  # every agent decides, ids never change
        assert len(set(t.agent_id.tolist())) == len(t)
        assert set(t.agent_id.tolist()) <= set(range(48))
        if 0 < len(t) < 48:
            for a in t.agent_id.tolist():
                ended_at.setdefault(a, []).append(step)
    # a random policy loses balls at different times in different areas: agents restart on their own
    areas_with_ends = {a // 12 for a in ended_at}
    assert areas_with_ends == {0, 1, 2, 3}
    assert len({tuple(v) for v in ended_at.values()}) > 10


def _trace(seed: int, num_areas: int, steps: int = 150) -> list[np.ndarray]:
    env = registry.make("3DBall", seed=seed, num_areas=num_areas)
    env.reset()
    rng = np.random.default_rng(1)
    out = []
    for _ in range(steps):
        d, t = env.get_steps("3DBall")
        out += [d.obs[0].copy(), d.reward.copy(), t.agent_id.copy(), t.reward.copy()]
        random_actions(env, "3DBall", rng)
        env.step()
    return out


def test_seeded_determinism_holds_with_areas() -> None:
    a, b, c = _trace(5, 4), _trace(5, 4), _trace(6, 4)
    assert all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, c))


def test_bad_num_areas_are_refused_with_the_name() -> None:
    with pytest.raises(ConfigError, match="3DBall.*num_areas"):
        registry.make("3DBall", num_areas=0)
    with pytest.raises(ConfigError, match="gym:CartPole-v1.*no training areas"):
        registry.make("gym:CartPole-v1", num_areas=2)
    with pytest.raises(ConfigError, match="env_settings.num_areas"):
        api.make_environment(build_run_options({"env_settings": {"env_args": ["num_areas=2"]}}), seed=0)


@pytest.mark.parametrize(
    ("env_path", "arg", "instead"),
    [
        ("3DBall", "seed=3", "env_settings.seed"),
        ("gym:CartPole-v1", "seed=3", "env_settings.seed"),
        ("gym:CartPole-v1", "num_agents=4", "env_settings.num_envs"),
    ],
)
def test_env_args_the_run_sets_itself_are_refused(env_path: str, arg: str, instead: str) -> None:
    options = build_run_options({"env_settings": {"env_path": env_path, "env_args": [arg], "num_envs": 2}})
    with pytest.raises(ConfigError, match=f"{arg.split('=')[0]} is not an argument for {env_path}.*{instead}"):
        api.make_environment(options, seed=0)


def test_num_envs_times_num_areas_gives_copies_of_areas() -> None:
    options = build_run_options({"env_settings": {"env_path": "3DBall", "num_envs": 2, "num_areas": 4}})
    env = api.make_environment(options, seed=0)
    try:
        assert isinstance(env, EnvPool)
        env.reset()
        d, _ = env.get_steps("3DBall")
        assert len(d) == 96 and len(set(d.agent_id.tolist())) == 96
        assert set((d.agent_id // ID_STRIDE).tolist()) == {0, 1}
        assert describe_layout(env, "3DBall") == (
            "Environment 3DBall: 2 copies x 4 areas x 12 agents = 96 agents (behavior 3DBall)"
        )
    finally:
        env.close()


def test_worker_processes_build_their_areas_and_report_them() -> None:
    pool = EnvPool(env_name="Basic", copies=2, seed=0, processes=True, env_kwargs={"num_areas": 3})
    try:
        assert pool.num_areas == 3
        assert len(pool.get_steps("Basic")[0]) == 6
    finally:
        pool.close()


def test_layout_lines() -> None:
    env = registry.make("3DBall", num_areas=4)
    env.reset()
    assert describe_layout(env, "3DBall") == "Environment 3DBall: 4 areas x 12 agents = 48 agents (behavior 3DBall)"
    basic = registry.make("Basic")
    basic.reset()
    assert describe_layout(basic, "Basic") == "Environment Basic: 1 area x 1 agent = 1 agent (behavior Basic)"


def test_num_areas_warns_that_it_has_no_effect_on_gymnasium(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("gymnasium")
    options = build_run_options({"env_settings": {"env_path": "gym:CartPole-v1", "num_areas": 3}})
    with caplog.at_level(logging.WARNING, logger="fledge"):
        env = api.make_environment(options, seed=0)
    try:
        env.reset()
        assert len(env.get_steps("CartPole-v1")[0]) == 1  # one CartPole, areas or not
        warnings = effect_warnings(options, env_name="gym:CartPole-v1", worker_processes=False)
        assert len(warnings) == 1
        assert "num_areas: 3" in warnings[0] and "no effect" in warnings[0] and "gym:CartPole-v1" in warnings[0]
        assert describe_layout(env, "gym:CartPole-v1") == "Environment gym:CartPole-v1: 1 agent (behavior CartPole-v1)"
    finally:
        env.close()


def test_num_areas_warns_for_an_environment_passed_to_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    raw: dict[str, Any] = {
        "default_settings": {
            "trainer_type": "ppo",
            "max_steps": 64,
            "hyperparameters": {"batch_size": 16, "buffer_size": 64},
        },
        "env_settings": {"env_path": "Basic", "num_areas": 2, "seed": 1},
        "checkpoint_settings": {"run_id": "r", "results_dir": str(tmp_path)},
    }
    with caplog.at_level(logging.INFO, logger="fledge"):
        api.run(build_run_options(raw), env=registry.make("Basic", num_agents=4), display="none")
    assert "env_settings.num_areas: 2 has no effect on the environment given to the run" in caplog.text
    assert "Environment Basic: 1 area x 4 agents = 4 agents (behavior Basic)" in caplog.text


def test_a_run_with_num_areas_4_trains_and_says_its_areas(tmp_path: Path) -> None:
    config = {
        "behaviors": {
            "MoveToGoal1D-Continuous": {
                "trainer_type": "ppo",
                "hyperparameters": {"batch_size": 128, "buffer_size": 1024, "learning_rate": 3.0e-3},
                "network_settings": {"hidden_units": 32, "num_layers": 2},
                "max_steps": 4000,
                "time_horizon": 32,
                "summary_freq": 2000,
            }
        },
        "env_settings": {"env_path": "MoveToGoal1D-Continuous", "seed": 3},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "fledge.cli",
        "learn",
        str(path),
        "--run-id",
        "areas",
        "--num-areas",
        "4",
        "--results-dir",
        str(tmp_path / "results"),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "Environment MoveToGoal1D-Continuous: 4 areas x 16 agents = 64 agents (behavior MoveToGoal1D-Continuous)"
        in done.stdout
    )
    status = yaml.safe_load((tmp_path / "results" / "areas" / "run_logs" / "training_status.json").read_text())
    final = status["MoveToGoal1D-Continuous"]["final_checkpoint"]
    assert final["steps"] >= 4000
    saved = yaml.safe_load((tmp_path / "results" / "areas" / "configuration.yaml").read_text())
    assert saved["env_settings"]["num_areas"] == 4
