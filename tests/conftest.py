"""Shared test helpers: build run options for a short run in a temporary results folder."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from fledge.config import RunOptions, build_run_options
from fledge.envs.api import ActionTuple, AgentId, BaseEnv, BehaviorSpec, DecisionSteps, TerminalSteps

REPO = Path(__file__).resolve().parents[1]


def shared_configs_dir() -> Path:
    """ML-Agents' example configs: <repo>/../shared/mlagents-configs (CI places shared/ next to the
    clone), else /work/shared/mlagents-configs. Tests that need them skip when neither exists."""
    beside = REPO.parent / "shared" / "mlagents-configs"
    return beside if beside.is_dir() else Path("/work/shared/mlagents-configs")


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


@pytest.fixture
def fledge_log() -> Iterator[list[logging.LogRecord]]:
    """Every record of the 'fledge' loggers at INFO and above, whatever an earlier test (or the
    command line, which stops propagation) did to the logging set-up."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("fledge")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(autouse=True)
def one_torch_thread() -> Any:
    """Tests run small networks: one torch thread, as a run uses (2 threads stall on shared cores)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def drive_trainer(trainer: Any, env_name: str, steps: int, seed: int = 0) -> list[float]:
    """Run a trainer on a fresh built-in environment (with a fresh processor) for `steps` more trainer
    steps, as the run loop does; returns the finished episodes' returns."""
    from fledge.envs import registry
    from fledge.rollout.collector import Collector
    from fledge.rollout.processor import AgentProcessor
    from fledge.stats.timers import Timers

    env = registry.make(env_name, seed=seed)
    env.reset()
    (name,) = env.behavior_specs
    collector = Collector(env, Timers())
    processor = AgentProcessor(
        spec=env.behavior_specs[name],
        time_horizon=trainer.time_horizon,
        n_values=1,
        memory_size=trainer.policy.memory_size,
    )
    collector.add(name, processor=processor, policy=trainer.policy)
    target = trainer.step + steps
    returns: list[float] = []
    while trainer.step < target and trainer.should_train:
        out = collector.collect(name)
        returns.extend(out.episode_returns.tolist())
        trainer.observe(out)
        collector.step()
    env.close()
    return returns


def random_trajectory(spec: Any, n: int, rng: Any, *, terminal: bool, ends: bool) -> Any:
    """A trajectory of n random experiences for a behavior with 3 vector observations."""
    import numpy as np

    from fledge.rollout.processor import Trajectory

    a = spec.action_spec
    k = int(sum(a.discrete_branches))
    return Trajectory(
        agent_id=0,
        obs=rng.standard_normal((n, 3)).astype(np.float32),
        continuous=rng.uniform(-1, 1, (n, a.continuous_size)).astype(np.float32),
        discrete=np.stack([rng.integers(0, b, n) for b in a.discrete_branches], axis=1).astype(np.int32)
        if k
        else np.zeros((n, 0), np.int32),
        log_prob=np.zeros(n, np.float32),
        values=np.zeros((n, 1), np.float32),
        rewards=rng.standard_normal(n).astype(np.float32),
        allowed=np.ones((n, k), np.bool_) if k else None,
        bootstrap=np.zeros(1, np.float32),
        next_obs=rng.standard_normal(3).astype(np.float32),
        terminal=terminal,
        ends_episode=ends,
    )


class SideBySide(BaseEnv):
    """Several environments stepped together as one: behavior `name` is the one behavior of `parts[name]`
    (its own name inside that part may differ, e.g. a stand-in environment under another name)."""

    def __init__(self, parts: dict[str, BaseEnv]) -> None:
        self.parts = parts
        self.inner = {name: next(iter(env.behavior_specs)) for name, env in parts.items()}

    @property
    def behavior_specs(self) -> Mapping[str, BehaviorSpec]:
        return {name: env.behavior_specs[self.inner[name]] for name, env in self.parts.items()}

    def reset(self) -> None:
        for env in self.parts.values():
            env.reset()

    def step(self) -> None:
        for env in self.parts.values():
            env.step()

    def get_steps(self, behavior_name: str) -> tuple[DecisionSteps, TerminalSteps]:
        return self.parts[behavior_name].get_steps(self.inner[behavior_name])

    def set_actions(self, behavior_name: str, action: ActionTuple) -> None:
        self.parts[behavior_name].set_actions(self.inner[behavior_name], action)

    def set_action_for_agent(self, behavior_name: str, agent_id: AgentId, action: ActionTuple) -> None:
        self.parts[behavior_name].set_action_for_agent(self.inner[behavior_name], agent_id, action)

    def close(self) -> None:
        for env in self.parts.values():
            env.close()
