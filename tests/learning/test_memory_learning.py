"""PPO with LSTM memory learns a task that needs it, and PPO without memory cannot.

CueMemory: an episode is `length` decisions. Only the first observation shows the cue (one of two);
the last observation only says "now". The action at the last step earns +1 when it names the cue and
-1 otherwise; every other step earns 0. A memoryless policy sees the same last observation whatever
the cue was, so its best mean return is 0 (chance); a policy that remembers the cue reaches 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import toy_options
from fledge import api
from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin.base import VectorTask, VectorTaskEnv

pytestmark = pytest.mark.learning


class CueMemoryTask(VectorTask):
    behavior_name = "CueMemory"

    def __init__(self, *, num_agents: int = 16, length: int = 5) -> None:
        self.num_agents = num_agents
        self.length = length
        self.max_episode_steps = 0
        self.spec = BehaviorSpec(
            observation_specs=[ObservationSpec.vector(4, "VectorSensor")],
            action_spec=ActionSpec.create_discrete((2,)),
        )
        self.cue = np.zeros(num_agents, dtype=np.int64)
        self.t = np.zeros(num_agents, dtype=np.int64)

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self.cue[idx] = rng.integers(0, 2, size=len(idx))
        self.t[idx] = 0

    def observe(self) -> list[np.ndarray]:
        obs = np.zeros((self.num_agents, 4), dtype=np.float32)
        first = self.t == 0
        obs[first, self.cue[first]] = 1.0
        obs[first, 2] = 1.0
        obs[self.t == self.length - 1, 3] = 1.0
        return [obs]

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        last = self.t == self.length - 1
        right = actions.discrete[:, 0] == self.cue
        reward = np.where(last, np.where(right, 1.0, -1.0), 0.0).astype(np.float32)
        self.t += 1
        return reward, last


def cue_env(seed: int = 1) -> VectorTaskEnv:
    return VectorTaskEnv(CueMemoryTask(), seed=seed)


def cue_options(tmp_path: Path, *, memory: bool, steps: int, **kwargs: Any) -> Any:
    network: dict[str, Any] = {"hidden_units": 32, "num_layers": 1}
    if memory:
        network["memory"] = {"memory_size": 32, "sequence_length": 8}
    return toy_options(
        tmp_path,
        "CueMemory",
        steps=steps,
        network=network,
        hyperparameters={"batch_size": 256, "buffer_size": 1024, "learning_rate": 3e-3, "beta": 0.01},
        **kwargs,
    )


def tail_mean(result: api.RunResult, n: int = 200) -> float:
    (behavior,) = result.behaviors.values()
    returns = behavior.episode_returns
    assert len(returns) >= n, f"only {len(returns)} episodes finished"
    return float(np.mean(returns[-n:]))


def play_returns(run_dir: Path, *, use_onnx: bool, forgetful: bool = False) -> list[float]:
    """Every finished episode's return when `fledge play`'s policies (checkpoint or ONNX) drive the cue task
    for 60 steps; `forgetful` wipes each agent's memory before every decision."""
    import io

    from fledge import play, play_policies

    policies = play_policies.Policies(run_dir, checkpoint=None, use_onnx=use_onnx, deterministic=True, seed=0)
    env = cue_env(seed=9)
    env.reset()
    policy = policies.get("CueMemory", env.behavior_specs["CueMemory"])
    assert policy.memories.size == 32
    if forgetful:
        policy.memories.put = lambda ids, memory: None  # type: ignore[method-assign]
    result = play.PlayResult(behavior=None, agent_id=None)
    play._loop(env, "CueMemory", "run", policies, result, 10**6, 60, [], io.StringIO(), None, None)  # type: ignore[arg-type]
    return result.all_returns


def test_ppo_with_memory_learns_the_cue_and_plays_it_with_memory_carried(tmp_path: Path) -> None:
    mean = tail_mean(api.run(cue_options(tmp_path, memory=True, steps=30_000), env=cue_env(), display="none"))
    assert mean >= 0.8, f"mean return of the last 200 episodes {mean:.3f} (optimum 1, chance 0)"
    run_dir = tmp_path / "results" / "run"
    for use_onnx in (False, True):
        returns = play_returns(run_dir, use_onnx=use_onnx)
        assert len(returns) >= 150 and np.mean(returns) >= 0.9, (use_onnx, np.mean(returns))
    # the same policy without its memory carried from step to step is back to chance
    assert abs(np.mean(play_returns(run_dir, use_onnx=False, forgetful=True))) <= 0.35
    assert abs(np.mean(play_returns(run_dir, use_onnx=True, forgetful=True))) <= 0.35


def test_ppo_without_memory_stays_at_chance(tmp_path: Path) -> None:
    mean = tail_mean(api.run(cue_options(tmp_path, memory=False, steps=30_000), env=cue_env(), display="none"))
    assert abs(mean) <= 0.25, f"mean return of the last 200 episodes {mean:.3f} (chance 0)"


def sac_cue_options(tmp_path: Path, *, memory: bool, steps: int) -> Any:
    from fledge.config import build_run_options

    network: dict[str, Any] = {"hidden_units": 32, "num_layers": 1}
    if memory:
        network["memory"] = {"memory_size": 32, "sequence_length": 8}
    hyper = {
        "batch_size": 128,
        "buffer_size": 20_000,
        "learning_rate": 3e-3,
        "buffer_init_steps": 500,
        "steps_per_update": 4.0,
        "init_entcoef": 0.1,
    }
    raw = {
        "default_settings": {
            "trainer_type": "sac",
            "network_settings": network,
            "hyperparameters": hyper,
            "max_steps": steps,
            "time_horizon": 64,
            "summary_freq": 10**9,
        },
        "env_settings": {"env_path": "CueMemory", "seed": 1},
        "checkpoint_settings": {"run_id": "sac", "results_dir": str(tmp_path / "results")},
    }
    return build_run_options(raw)


def test_sac_with_memory_learns_the_cue_and_without_stays_at_chance(tmp_path: Path) -> None:
    with_memory = tail_mean(
        api.run(sac_cue_options(tmp_path / "m", memory=True, steps=10_000), env=cue_env(), display="none")
    )
    assert with_memory >= 0.8, f"SAC with memory: mean return of the last 200 episodes {with_memory:.3f}"
    without = tail_mean(
        api.run(sac_cue_options(tmp_path / "n", memory=False, steps=10_000), env=cue_env(), display="none")
    )
    assert abs(without) <= 0.25, f"SAC without memory: mean return of the last 200 episodes {without:.3f}"


class KilledAfter:
    """The cue environment, stopping the run abruptly (no final checkpoint) after some steps."""

    def __init__(self, env_steps: int) -> None:
        self.env = cue_env()
        self.left = env_steps

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        self.env.step()


def test_a_memory_run_resumes_with_its_state_and_goes_on_learning(tmp_path: Path) -> None:
    from fledge.checkpoints.state_io import load_state

    n = 24_000
    extra = {"checkpoint_interval": 4000}
    network: dict[str, Any] = {"normalize": True}

    def opts(**checkpoint: Any) -> Any:
        return cue_options_with(tmp_path, n, network, extra, **checkpoint)

    first = api.run(opts(), env=KilledAfter(16_000 // 16), display="none")  # type: ignore[arg-type]
    assert first.interrupted
    ckpt = tmp_path / "results" / "mem" / "CueMemory" / "checkpoint.pt"
    mid, _ = load_state(ckpt)
    assert any(k.startswith("policy.memory.0.lstm.") for k in mid.tensors)
    assert any(k.startswith("policy.memory.1.lstm.") for k in mid.tensors)  # the critic's own memory
    resumed = api.run(opts(resume=True), env=cue_env(seed=5), display="none")
    end, _ = load_state(ckpt)
    assert end.meta["step"] >= n and end.meta["update_count"] > mid.meta["update_count"]
    # the normaliser went on from the checkpoint's statistics (a fresh one would count only the new steps)
    count_mid, count_end = float(mid.tensors["policy.normalizer.count"]), float(end.tensors["policy.normalizer.count"])
    assert count_end >= count_mid + 0.9 * (n - mid.meta["step"]) and count_mid > 0.5 * mid.meta["step"]
    # the restored policy remembers the cue from the start of the resumed run
    (behavior,) = resumed.behaviors.values()
    returns = behavior.episode_returns
    assert np.mean(returns[:100]) >= 0.7 and np.mean(returns[-200:]) >= 0.9, (np.mean(returns[:100]), returns[-200:])


def cue_options_with(
    tmp_path: Path, steps: int, network: dict[str, Any], extra: dict[str, Any], **checkpoint: Any
) -> Any:
    from fledge.config import build_run_options

    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 256, "buffer_size": 1024, "learning_rate": 3e-3, "beta": 0.01},
            "network_settings": {
                "hidden_units": 32,
                "num_layers": 1,
                "memory": {"memory_size": 32, "sequence_length": 8},
                **network,
            },
            "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
            "max_steps": steps,
            "time_horizon": 64,
            "summary_freq": 10**9,
            **extra,
        },
        "env_settings": {"env_path": "CueMemory", "seed": 1},
        "checkpoint_settings": {"run_id": "mem", "results_dir": str(tmp_path / "results"), **checkpoint},
    }
    return build_run_options(raw)


@pytest.mark.parametrize("trainer", ["ppo", "sac"])
def test_memory_runs_are_deterministic(tmp_path: Path, trainer: str) -> None:
    from fledge.checkpoints.state_io import load_state

    results = []
    for run in ("a", "b"):
        if trainer == "ppo":
            options = cue_options(tmp_path / run, memory=True, steps=3000)
        else:
            options = sac_cue_options(tmp_path / run, memory=True, steps=1500)
        result = api.run(options, env=cue_env(), display="none")
        (behavior,) = result.behaviors.values()
        folder = next((tmp_path / run / "results").iterdir())
        state, _ = load_state(folder / "CueMemory" / "checkpoint.pt")
        results.append((behavior.episode_returns, state.tensors))
    (returns_a, tensors_a), (returns_b, tensors_b) = results
    assert returns_a == returns_b
    assert tensors_a.keys() == tensors_b.keys()
    for key in tensors_a:
        assert np.array_equal(np.asarray(tensors_a[key]), np.asarray(tensors_b[key])), key
