"""PPO learns through a visual encoder end to end: a tiny task whose only cue is a bright pixel in a
[1, 20, 20] image (left half: action 0 pays, right half: action 1 pays). A policy that cannot see the
cue (the pixel drawn independently of the paying action) stays at chance. SAC builds and learns the
same visual + vector task through its reference paths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import toy_options
from fledge import api
from fledge.checkpoints.export import export_checkpoints
from fledge.checkpoints.onnx import load_onnx_policy
from fledge.checkpoints.state_io import load_state
from fledge.config import build_run_options
from fledge.envs.api import (
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)
from fledge.envs.builtin.base import VectorTask, VectorTaskEnv
from fledge.networks.acting import TorchActor
from fledge.trainers.ppo import update

pytestmark = pytest.mark.learning

D = DimensionProperty
VISUAL = (D.NONE, D.TRANSLATIONAL_EQUIVARIANCE, D.TRANSLATIONAL_EQUIVARIANCE)


class BrightPixelTask(VectorTask):
    """One decision per episode: which half of the image holds the bright pixel (reward 1 if right, else 0)."""

    behavior_name = "BrightPixel"

    def __init__(self, *, num_agents: int = 16, side: int = 20, informative: bool = True) -> None:
        self.num_agents, self.side, self.informative = num_agents, side, informative
        self.max_episode_steps = 1
        self.spec = BehaviorSpec(
            [ObservationSpec((1, side, side), VISUAL, ObservationType.DEFAULT, "camera"), ObservationSpec.vector(2)],
            ActionSpec.create_discrete((2,)),
        )
        self._paying = np.zeros(num_agents, np.int64)
        self._image = np.zeros((num_agents, 1, side, side), np.float32)
        self._noise = np.zeros((num_agents, 2), np.float32)

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        k = len(idx)
        self._paying[idx] = rng.integers(0, 2, size=k)
        half = self._paying[idx] if self.informative else rng.integers(0, 2, size=k)
        self._image[idx] = 0.0
        rows = rng.integers(0, self.side, size=k)
        cols = rng.integers(0, self.side // 2, size=k) + half * (self.side // 2)
        self._image[idx, 0, rows, cols] = 1.0
        self._noise[idx] = rng.standard_normal((k, 2)).astype(np.float32)

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        reward = (actions.discrete[:, 0] == self._paying).astype(np.float32)
        return reward, np.ones(self.num_agents, dtype=bool)

    def observe(self) -> list[np.ndarray]:
        return [self._image.copy(), self._noise.copy()]


class EveryKindTask(BrightPixelTask):
    """BrightPixel with a variable number of entities (0..3 present of 3) and a one-hot goal signal too."""

    behavior_name = "EveryKind"

    def __init__(self) -> None:
        super().__init__(num_agents=8)
        self.spec = BehaviorSpec(
            [
                *self.spec.observation_specs,
                ObservationSpec((3, 4), (D.VARIABLE_SIZE, D.NONE), ObservationType.DEFAULT, "buffer"),
                ObservationSpec((2,), (D.NONE,), ObservationType.GOAL_SIGNAL, "goal"),
            ],
            self.spec.action_spec,
        )
        self._entities = np.zeros((8, 3, 4), np.float32)

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        super().reset_agents(idx, rng)
        count = rng.integers(0, 4, size=len(idx))
        ents = rng.standard_normal((len(idx), 3, 4)).astype(np.float32)
        ents[np.arange(3)[None, :] >= count[:, None]] = 0.0
        self._entities[idx] = ents

    def observe(self) -> list[np.ndarray]:
        goal = np.eye(2, dtype=np.float32)[self._paying]
        return [*super().observe(), self._entities.copy(), goal]


NETWORK = {"hidden_units": 32, "num_layers": 1, "normalize": True, "vis_encode_type": "simple"}


def _options(tmp_path: Path, steps: int) -> Any:
    return toy_options(
        tmp_path,
        "BrightPixel",
        steps=steps,
        seed=3,
        network=NETWORK,
        hyperparameters={"batch_size": 64, "buffer_size": 512, "learning_rate": 3e-3, "beta": 0.01, "num_epoch": 3},
        gamma=0.9,
        extra={"time_horizon": 16},
    )


def _sac_options(tmp_path: Path, steps: int) -> Any:
    settings = {
        "trainer_type": "sac",
        "hyperparameters": {"batch_size": 32, "buffer_size": 2000, "learning_rate": 3e-3, "steps_per_update": 4},
        "network_settings": NETWORK,
        "reward_signals": {"extrinsic": {"gamma": 0.9, "strength": 1.0}},
        "max_steps": steps,
        "time_horizon": 16,
        "summary_freq": 10**9,
    }
    return build_run_options(
        {
            "default_settings": settings,
            "env_settings": {"env_path": "BrightPixel", "seed": 3},
            "checkpoint_settings": {"run_id": "sac", "results_dir": str(tmp_path / "results")},
        }
    )


@pytest.mark.parametrize("trainer", ["ppo", "sac"])
def test_every_observation_kind_trains_and_exports(tmp_path: Path, trainer: str) -> None:
    env = VectorTaskEnv(EveryKindTask(), seed=3)
    options = _sac_options(tmp_path, 800) if trainer == "sac" else _options(tmp_path, 800)
    result = api.run(options, env=env, display="none")
    (behavior,) = result.behaviors.values()
    assert len(behavior.episode_returns) >= 700
    onnx_files = list((tmp_path / "results").rglob("EveryKind*.onnx"))
    assert onnx_files, "the run exports its policy"
    # `fledge export` rebuilds the policy from the checkpoint's fingerprint (observation kinds included)
    (run_dir,) = [p for p in (tmp_path / "results").iterdir() if p.is_dir()]
    target = tmp_path / "again.onnx"
    export_checkpoints(run_dir, output=target)
    assert [tuple(s) for s in load_onnx_policy(target).observation_shapes] == [
        tuple(o.shape) for o in env.behavior_specs["EveryKind"].observation_specs
    ]


@pytest.mark.parametrize("trainer", ["ppo", "sac"])
def test_a_run_with_every_observation_kind_resumes(tmp_path: Path, trainer: str) -> None:
    hyper: dict[str, Any] = (
        {"batch_size": 32, "buffer_size": 2000, "learning_rate": 3e-3, "steps_per_update": 4}
        if trainer == "sac"
        else {"batch_size": 64, "buffer_size": 256, "learning_rate": 3e-3}
    )

    def options(steps: int, **checkpoint: Any) -> Any:
        settings = {
            "trainer_type": trainer,
            "hyperparameters": hyper,
            "network_settings": NETWORK,
            "max_steps": steps,
            "time_horizon": 16,
            "summary_freq": 10**9,
            "checkpoint_interval": 200,
        }
        return build_run_options(
            {
                "default_settings": settings,
                "env_settings": {"env_path": "EveryKind", "seed": 3},
                "checkpoint_settings": {"run_id": "r", "results_dir": str(tmp_path), **checkpoint},
            }
        )

    api.run(options(400), env=VectorTaskEnv(EveryKindTask(), seed=3), display="none")
    first, _ = load_state(tmp_path / "r" / "EveryKind" / "checkpoint.pt")
    api.run(options(800, resume=True), env=VectorTaskEnv(EveryKindTask(), seed=4), display="none")
    second, _ = load_state(tmp_path / "r" / "EveryKind" / "checkpoint.pt")
    assert first.meta["step"] >= 400 and second.meta["step"] >= 800
    towers = [k for k in second.tensors if "towers." in k]
    assert towers, "the encoders are in the checkpoint"
    changed = [k for k in towers if k in first.tensors and not np.array_equal(first.tensors[k], second.tensors[k])]
    assert changed, "training went on from the resumed encoders"


def tail_mean(result: api.RunResult, n: int = 300) -> float:
    (behavior,) = result.behaviors.values()
    returns = behavior.episode_returns
    assert len(returns) >= n
    return float(np.mean(returns[-n:]))


def test_ppo_learns_a_cue_seen_only_in_the_image(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"act": 0, "gradients": 0}
    torch_act, autograd = TorchActor.act, update.autograd_gradients

    def counted_act(self: TorchActor, *args: Any, **kwargs: Any) -> Any:
        calls["act"] += 1
        return torch_act(self, *args, **kwargs)

    def counted_gradients(*args: Any, **kwargs: Any) -> Any:
        calls["gradients"] += 1
        return autograd(*args, **kwargs)

    monkeypatch.setattr(TorchActor, "act", counted_act)
    monkeypatch.setattr(update, "autograd_gradients", counted_gradients)
    env = VectorTaskEnv(BrightPixelTask(), seed=3)
    result = api.run(_options(tmp_path, 6_000), env=env, display="none")
    assert calls["act"] > 100 and calls["gradients"] > 10, calls  # the visual body takes the reference paths
    assert tail_mean(result) >= 0.9  # chance is 0.5


def test_ppo_stays_at_chance_when_the_image_carries_no_cue(tmp_path: Path) -> None:
    env = VectorTaskEnv(BrightPixelTask(informative=False), seed=3)
    result = api.run(_options(tmp_path, 6_000), env=env, display="none")
    assert 0.4 <= tail_mean(result) <= 0.6


def test_sac_learns_on_a_visual_and_vector_behavior(tmp_path: Path) -> None:
    env = VectorTaskEnv(BrightPixelTask(), seed=3)
    result = api.run(_sac_options(tmp_path, 3_000), env=env, display="none")
    assert tail_mean(result) >= 0.8  # chance is 0.5; seed 3 reaches 0.95
