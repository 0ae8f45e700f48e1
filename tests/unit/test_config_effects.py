"""Accept only what is honoured: every key is honoured, warned or refused, and warnings appear once, when due."""

from __future__ import annotations

import logging
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from fledge import api
from fledge.config import RunOptions, build_run_options, dump_run_options
from fledge.config._base import StrictModel
from fledge.config.effects import FIELD_EFFECTS, REFUSED_MODELS, effect_warnings, uses_copy_pool, uses_worker_processes
from fledge.config.environment_parameters import SAMPLER_PARAMETER_CLASSES
from fledge.config.schema import HYPERPARAMETER_CLASSES, REWARD_SIGNAL_CLASSES
from fledge.envs import registry
from fledge.errors import ConfigError
from fledge.networks.device import resolve_device

# --- the schema walk -----------------------------------------------------------------------------


def _models_in(annotation: Any) -> list[type[StrictModel]]:
    """The settings models an annotation can hold (through Optional, dict values, lists, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, StrictModel):
        return [annotation]
    found: list[type[StrictModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _concrete(model: type[StrictModel]) -> list[type[StrictModel]]:
    """A base model stands for the classes a config can select (hyperparameters, reward signals)."""
    registries = {
        "HyperparamSettings": list(HYPERPARAMETER_CLASSES.values()),
        "RewardSignalSettings": list(REWARD_SIGNAL_CLASSES.values()),
        "SamplerParameters": list(SAMPLER_PARAMETER_CLASSES.values()),
    }
    return registries.get(model.__name__, [model])


def walk_schema() -> tuple[list[str], set[str]]:
    """Every "Model.key" reachable from RunOptions through keys that are not refused, and the models
    reached only through a refused value (poca, the learned reward signals)."""
    keys: list[str] = []
    refused_models: set[str] = set()
    seen: set[type[StrictModel]] = set()
    todo: list[type[StrictModel]] = [RunOptions]
    while todo:
        model = todo.pop()
        if model in seen:
            continue
        seen.add(model)
        if model.__name__ in REFUSED_MODELS:
            refused_models.add(model.__name__)
            continue
        for key, info in model.model_fields.items():
            name = f"{model.__name__}.{key}"
            keys.append(name)
            if FIELD_EFFECTS.get(name) == "refused":
                continue
            for inner in _models_in(info.annotation):
                todo.extend(_concrete(inner))
    return keys, refused_models


def test_every_key_of_the_schema_is_honoured_warned_or_refused() -> None:
    keys, refused_models = walk_schema()
    missing = [key for key in keys if key not in FIELD_EFFECTS]
    assert not missing, f"keys that fledge neither honours, warns about nor refuses: {missing}"
    stale = sorted(set(FIELD_EFFECTS) - set(keys))
    assert not stale, f"FIELD_EFFECTS lists keys the schema does not have (or cannot reach): {stale}"
    assert refused_models == set(REFUSED_MODELS)
    # the walk goes through sections, behaviors, both trainers' hyperparameters and the reward signals
    for nested in (
        "EngineSettings.width",
        "PPOSettings.beta",
        "SACSettings.tau",
        "NetworkSettings.memory",
        "ExtrinsicSettings.gamma",
        "TorchSettings.device",
    ):
        assert nested in keys


# --- one warning per non-default value of each warned key ----------------------------------------

BEHAVIOR = "Ball"
# (config fragment, the key path a warning must name) for every warned or conditional key
NON_DEFAULT: dict[str, tuple[dict[str, Any], str]] = {
    "TrainerSettings.threaded": ({"behaviors": {BEHAVIOR: {"threaded": True}}}, "threaded"),
    "SACSettings.reward_signal_steps_per_update": (
        {
            "behaviors": {
                BEHAVIOR: {
                    "trainer_type": "sac",
                    "hyperparameters": {"steps_per_update": 10.0, "reward_signal_steps_per_update": 5},
                }
            }
        },
        "hyperparameters.reward_signal_steps_per_update",
    ),
    "ExtrinsicSettings.network_settings": (
        {"behaviors": {BEHAVIOR: {"reward_signals": {"extrinsic": {"network_settings": {"hidden_units": 8}}}}}},
        "reward_signals.extrinsic.network_settings",
    ),
    "EnvironmentSettings.base_port": ({"env_settings": {"base_port": 6000}}, "env_settings.base_port"),
    "EnvironmentSettings.num_areas": ({"env_settings": {"num_areas": 2}}, "env_settings.num_areas"),
    "EnvironmentSettings.timeout_wait": ({"env_settings": {"timeout_wait": 5}}, "env_settings.timeout_wait"),
    "EnvironmentSettings.max_lifetime_restarts": (
        {"env_settings": {"max_lifetime_restarts": 3}},
        "env_settings.max_lifetime_restarts",
    ),
    "EnvironmentSettings.restarts_rate_limit_n": (
        {"env_settings": {"restarts_rate_limit_n": 4}},
        "env_settings.restarts_rate_limit_n",
    ),
    "EnvironmentSettings.restarts_rate_limit_period_s": (
        {"env_settings": {"restarts_rate_limit_period_s": 5}},
        "env_settings.restarts_rate_limit_period_s",
    ),
    "EnvironmentSettings.worker_processes": (
        {"env_settings": {"worker_processes": True}},
        "env_settings.worker_processes",
    ),
    "EnvironmentSettings.ray_address": ({"env_settings": {"ray_address": "auto"}}, "env_settings.ray_address"),
    "EnvironmentSettings.ray_num_cpus": ({"env_settings": {"ray_num_cpus": 0.5}}, "env_settings.ray_num_cpus"),
    "EnvironmentSettings.ray_envs_per_worker": (
        {"env_settings": {"ray_envs_per_worker": 2}},
        "env_settings.ray_envs_per_worker",
    ),
    "EngineSettings.width": ({"engine_settings": {"width": 100}}, "engine_settings.width"),
    "EngineSettings.height": ({"engine_settings": {"height": 100}}, "engine_settings.height"),
    "EngineSettings.quality_level": ({"engine_settings": {"quality_level": 1}}, "engine_settings.quality_level"),
    "EngineSettings.time_scale": ({"engine_settings": {"time_scale": 1.0}}, "engine_settings.time_scale"),
    "EngineSettings.target_frame_rate": (
        {"engine_settings": {"target_frame_rate": 60}},
        "engine_settings.target_frame_rate",
    ),
    "EngineSettings.capture_frame_rate": (
        {"engine_settings": {"capture_frame_rate": 30}},
        "engine_settings.capture_frame_rate",
    ),
    "EngineSettings.no_graphics": ({"engine_settings": {"no_graphics": True}}, "engine_settings.no_graphics"),
    "EngineSettings.no_graphics_monitor": (
        {"engine_settings": {"no_graphics_monitor": True}},
        "engine_settings.no_graphics_monitor",
    ),
    "CheckpointSettings.train_model": (
        {"checkpoint_settings": {"train_model": True}},
        "checkpoint_settings.train_model",
    ),
}


# keys honoured by built-in environments, warned about elsewhere: checked against this environment
ENVIRONMENT_OF = {"EnvironmentSettings.num_areas": "gym:CartPole-v1"}


def warnings_of(raw: dict[str, Any], env_name: str = "3DBall", behaviors: list[str] | None = None) -> list[str]:
    options = build_run_options(raw)
    workers = uses_worker_processes(options.env_settings)
    return effect_warnings(options, env_name=env_name, worker_processes=workers, behaviors=behaviors)


def test_every_warned_key_has_a_case() -> None:
    warned = {key for key, effect in FIELD_EFFECTS.items() if effect in ("warned", "conditional")}
    assert warned == set(NON_DEFAULT)


@pytest.mark.parametrize("field", sorted(NON_DEFAULT))
def test_a_non_default_value_warns_once_naming_the_key(field: str) -> None:
    raw, path = NON_DEFAULT[field]
    lines = warnings_of(raw, env_name=ENVIRONMENT_OF.get(field, "3DBall"))
    assert len(lines) == 1, lines
    (line,) = lines
    assert "has no effect" in line
    if path.startswith(("env_settings", "engine_settings", "checkpoint_settings")):
        assert line.startswith(f"{path}: ")
    else:
        assert line.startswith(f"Behavior '{BEHAVIOR}': {path}")


def test_defaults_and_a_dumped_default_config_do_not_warn() -> None:
    raw = {"behaviors": {BEHAVIOR: {}, "Other": {"trainer_type": "sac"}}}
    assert warnings_of(raw) == []
    dumped = yaml.safe_load(dump_run_options(build_run_options(raw)))
    assert warnings_of(dumped) == []
    assert warnings_of({}) == []


def test_sac_reward_signal_steps_equal_to_steps_per_update_do_not_warn() -> None:
    hyper = {"steps_per_update": 10.0, "reward_signal_steps_per_update": 10.0}
    assert warnings_of({"behaviors": {BEHAVIOR: {"trainer_type": "sac", "hyperparameters": hyper}}}) == []


def test_num_areas_is_honoured_by_built_in_environments_only() -> None:
    raw = {"env_settings": {"num_areas": 4}}
    assert warnings_of(raw, env_name="3DBall") == []
    (line,) = warnings_of(raw, env_name="pettingzoo:pettingzoo.classic.rps_v2")
    assert line.startswith("env_settings.num_areas: 4 has no effect on the PettingZoo environment")


def test_engine_warning_names_the_environment_and_why() -> None:
    (line,) = warnings_of({"engine_settings": {"time_scale": 100}}, env_name="gym:CartPole-v1")
    assert line == (
        "engine_settings.time_scale: 100.0 has no effect on the Gymnasium environment gym:CartPole-v1; it applies "
        "to Unity players only (--env path/to/player or --env unity-editor)."
    )


def test_unity_players_honour_the_port_the_wait_and_the_engine_settings(tmp_path: Path) -> None:
    player = tmp_path / "Game.x86_64"
    player.write_text("#!/bin/sh\n")
    player.chmod(0o755)
    unity_keys = {
        "env_settings": {"base_port": 6000, "timeout_wait": 5, "num_areas": 2},
        "engine_settings": {"time_scale": 1.0, "width": 100, "no_graphics": True, "no_graphics_monitor": True},
    }
    for name in (str(player), str(tmp_path / "Game"), "unity-editor"):
        assert warnings_of(unity_keys, env_name=name) == []
    # restart keys still need copies to restart
    (line,) = warnings_of({"env_settings": {"max_lifetime_restarts": 3}}, env_name=str(player))
    assert line.startswith("env_settings.max_lifetime_restarts: 3 has no effect here")


def test_worker_keys_are_honoured_where_they_apply() -> None:
    worker_keys = {
        "timeout_wait": 5,
        "max_lifetime_restarts": 3,
        "restarts_rate_limit_n": 4,
        "restarts_rate_limit_period_s": 5,
    }
    # worker processes: all honoured
    assert warnings_of({"env_settings": {"num_envs": 2, "worker_processes": True, **worker_keys}}) == []
    # built-in copies in this process: restarts honoured (the pool restarts failed copies), no timeout
    lines = warnings_of({"env_settings": {"num_envs": 2, **worker_keys}})
    assert [line.split(":")[0] for line in lines] == ["env_settings.timeout_wait"]
    # Gymnasium copies in this process are one vector environment: nothing restarts
    lines = warnings_of(
        {"env_settings": {"env_path": "gym:CartPole-v1", "num_envs": 2, **worker_keys}}, env_name="gym:CartPole-v1"
    )
    assert sorted(line.split(":")[0] for line in lines) == sorted(f"env_settings.{k}" for k in worker_keys)
    # PettingZoo copies use worker processes by default
    assert (
        warnings_of(
            {"env_settings": {"env_path": "pettingzoo:x", "num_envs": 2, **worker_keys}}, env_name="pettingzoo:x"
        )
        == []
    )


def test_ray_workers_honour_the_worker_and_ray_keys_even_with_one_copy() -> None:
    from fledge.config.effects import uses_ray_workers

    keys = {"timeout_wait": 5, "max_lifetime_restarts": 3, "ray_address": "auto", "ray_num_cpus": 0.5}
    options = build_run_options({"env_settings": {"workers": "ray", "num_envs": 4, "ray_envs_per_worker": 2, **keys}})
    assert uses_ray_workers(options.env_settings) and uses_copy_pool(options.env_settings)
    assert not uses_worker_processes(options.env_settings)
    assert effect_warnings(options, env_name="3DBall", worker_processes=True) == []
    processes = build_run_options({"env_settings": {"workers": "processes", "num_envs": 2}}).env_settings
    assert uses_worker_processes(processes) and not uses_ray_workers(processes)
    local = build_run_options({"env_settings": {"workers": "local", "num_envs": 2}}).env_settings
    assert not uses_worker_processes(local) and uses_copy_pool(local)


def test_workers_and_worker_processes_must_agree() -> None:
    from fledge.errors import ConfigError

    with pytest.raises(ConfigError, match="disagree"):
        build_run_options({"env_settings": {"workers": "ray", "worker_processes": True}})
    with pytest.raises(ConfigError, match="ray_envs_per_worker 2 must divide num_envs 3"):
        build_run_options({"env_settings": {"workers": "ray", "num_envs": 3, "ray_envs_per_worker": 2}})
    agreed = build_run_options({"env_settings": {"workers": "processes", "worker_processes": True, "num_envs": 2}})
    assert uses_worker_processes(agreed.env_settings)


def test_the_worker_decisions_match_the_environment_the_run_builds(tmp_path: Path) -> None:
    from fledge.rollout.workers import EnvPool

    for env_settings, pool, processes in (
        ({"num_envs": 1}, False, False),
        ({"num_envs": 2}, True, False),
        ({"num_envs": 2, "worker_processes": False}, True, False),
    ):
        options = build_run_options({"env_settings": env_settings})
        env = api.make_environment(options, seed=1)
        try:
            assert isinstance(env, EnvPool) is pool
            assert uses_copy_pool(options.env_settings) is pool
            assert uses_worker_processes(options.env_settings) is processes
            if isinstance(env, EnvPool):
                assert env.processes is processes
        finally:
            env.close()


def test_behavior_keys_are_checked_per_behavior_of_the_environment() -> None:
    raw = {"default_settings": {"threaded": True}, "behaviors": {"A": {"threaded": False}}}
    lines = warnings_of(raw, behaviors=["A", "B", "C?team=1"])
    assert lines == [
        "Behavior 'B': threaded: true has no effect here; fledge updates each trainer in the training loop, "
        "between environment steps.",
        "Behavior 'C': threaded: true has no effect here; fledge updates each trainer in the training loop, "
        "between environment steps.",
    ]


def test_a_configured_behavior_the_environment_lacks_is_named_once() -> None:
    raw = {"behaviors": {"3DBall": {}, "Walker": {}, "Crawler": {"threaded": True}}}
    lines = warnings_of(raw, behaviors=["3DBall"])
    assert lines == [
        "The configuration has settings for behavior(s) 'Walker', 'Crawler' that the built-in environment 3DBall "
        "does not have (its behaviors: '3DBall'); they are not used. Check the behavior names."
    ]
    assert warnings_of({"behaviors": {"3DBall": {}}}, behaviors=["3DBall"]) == []


def test_the_default_settings_warning_is_given_once(fledge_log: list[logging.LogRecord]) -> None:
    options = build_run_options({})
    for _ in range(3):
        options.behavior_settings("3DBall")
        options.behavior_settings("3DBall?team=0")
    options.behavior_settings("Other")
    messages = [r.getMessage() for r in fledge_log if "not in the configuration" in r.getMessage()]
    assert messages == [
        "Behavior '3DBall' is not in the configuration; using default settings.",
        "Behavior 'Other' is not in the configuration; using default settings.",
    ]
    assert options == build_run_options({})  # the bookkeeping is not part of the options' value


def test_a_run_logs_each_warning_once(tmp_path: Path, fledge_log: list[logging.LogRecord]) -> None:
    raw = {
        "behaviors": {
            "MoveToGoal1D-Continuous": {
                "threaded": True,
                "max_steps": 200,
                "summary_freq": 100,
                "network_settings": {"hidden_units": 8, "num_layers": 1},
            },
            "Missing": {},
        },
        "engine_settings": {"no_graphics": True},
        "env_settings": {"env_path": "MoveToGoal1D-Continuous", "seed": 1, "base_port": 6000},
        "checkpoint_settings": {"run_id": "r", "results_dir": str(tmp_path)},
    }
    api.run(build_run_options(raw), display="none")
    warnings = [r.getMessage() for r in fledge_log if r.levelno == logging.WARNING]
    assert len(warnings) == 4, warnings
    assert [w.split(":")[0] for w in warnings] == [
        "env_settings.base_port",
        "engine_settings.no_graphics",
        "Behavior 'MoveToGoal1D-Continuous'",
        "The configuration has settings for behavior(s) 'Missing' that the built-in environment MoveToGoal1D-Continuous "
        "does not have (its behaviors",
    ]


# --- torch_settings.device -----------------------------------------------------------------------


def test_the_cpu_is_always_available() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


def test_null_picks_cuda_only_when_torch_has_it() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device(None).type == expected


@pytest.mark.parametrize("name", ["mps", "xla", "meta"])
def test_devices_fledge_does_not_train_on_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"torch_settings.device: '{name}' is not supported; .*--torch-device cpu"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "", "cpu cpu"])
def test_misspelt_devices_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=r"is not a device name; use 'cpu', 'cuda' or 'cuda:N'"):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this torch has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_a_clear_error(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"'{name}' was asked for, but CUDA is not available .*--torch-device cpu"):
        resolve_device(name)


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two CUDA devices, as far as the resolution asks (no CUDA code runs)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


def test_cuda_devices_resolve_when_present(fake_cuda: None) -> None:
    assert resolve_device("cuda") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device(None) == torch.device("cuda")
    with pytest.raises(
        ConfigError, match=r"'cuda:2' does not exist; this machine has 2 CUDA device\(s\) \(cuda:0 to cuda:1\)"
    ):
        resolve_device("cuda:2")


def test_an_unset_device_on_a_cuda_machine_says_how_to_stay_on_the_cpu(
    fake_cuda: None, fledge_log: list[logging.LogRecord]
) -> None:
    assert api.configure_torch(build_run_options({}), 1) == torch.device("cuda")
    (record,) = [r for r in fledge_log if "CUDA is available" in r.getMessage()]
    assert "--torch-device cpu keeps them there" in record.getMessage()
    fledge_log.clear()
    assert api.configure_torch(build_run_options({"torch_settings": {"device": "cuda"}}), 1) == torch.device("cuda")
    assert not fledge_log


def test_a_run_refuses_an_unusable_device_before_writing(tmp_path: Path) -> None:
    raw = {
        "torch_settings": {"device": "mps"},
        "env_settings": {"env_path": "MoveToGoal1D-Continuous"},
        "checkpoint_settings": {"run_id": "r", "results_dir": str(tmp_path)},
    }
    with pytest.raises(ConfigError, match="torch_settings.device: 'mps' is not supported"):
        api.run(build_run_options(raw), display="none")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("trainer_type", ["ppo", "sac"])
def test_training_on_an_explicit_cpu_device(tmp_path: Path, trainer_type: str) -> None:
    """The device reaches the trainers: networks, optimiser state and checkpoints on the CPU, training runs."""
    from fledge.stats import StatsReporter
    from fledge.stats.timers import Timers

    hyper = {"batch_size": 32, "buffer_size": 64} if trainer_type == "ppo" else {"batch_size": 32, "buffer_size": 500}
    raw = {
        "behaviors": {
            "MoveToGoal2D-Hybrid": {
                "trainer_type": trainer_type,
                "hyperparameters": hyper,
                "network_settings": {"hidden_units": 16, "num_layers": 2, "normalize": True},
                "max_steps": 400,
                "summary_freq": 200,
                "time_horizon": 16,
            }
        },
        "env_settings": {"env_path": "MoveToGoal2D-Hybrid", "seed": 3},
        "torch_settings": {"device": "cpu"},
        "checkpoint_settings": {"run_id": "r", "results_dir": str(tmp_path)},
    }
    options = build_run_options(raw)
    result = api.run(options, display="none")
    assert result.behaviors["MoveToGoal2D-Hybrid"].steps >= 400
    env = registry.make("MoveToGoal2D-Hybrid", seed=0)
    env.reset()
    trainer: Any = api.make_trainer(options, "MoveToGoal2D-Hybrid", env, StatsReporter([]), 0, Timers())
    assert trainer.device == torch.device("cpu")  # from torch_settings.device when not passed
    networks = trainer.model if trainer_type == "ppo" else trainer.nets
    assert {p.device.type for p in networks.parameters()} == {"cpu"}
    state = trainer.get_state()
    assert all(t.device.type == "cpu" for t in state.tensors.values())
    checkpoint = tmp_path / "r" / "MoveToGoal2D-Hybrid" / "checkpoint.pt"
    assert checkpoint.is_file()
    loaded = torch.load(checkpoint, weights_only=True)
    assert all(t.device.type == "cpu" for t in _tensors(loaded))


def _tensors(value: Any) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v)


# --- top-level debug -----------------------------------------------------------------------------


def _write(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_top_level_debug_acts_like_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fledge.cli import main
    from fledge.errors import UnknownEnvironmentError

    bad_env = {"env_settings": {"env_path": "NoSuchEnvironment"}}
    args = ["--results-dir", str(tmp_path), "--run-id", "r"]
    # without debug: one line, no traceback
    assert main(["learn", str(_write(tmp_path / "plain.yaml", bad_env))] + args) == 1
    assert "fledge: error:" in capsys.readouterr().err
    # debug: true in the config: debug logging and the error with its traceback, as --debug
    with pytest.raises(UnknownEnvironmentError):
        main(["learn", str(_write(tmp_path / "debug.yaml", {**bad_env, "debug": True}))] + args)
    assert logging.getLogger("fledge").isEnabledFor(logging.DEBUG)
    # a later command starts from its own logging level again
    assert main(["learn", str(tmp_path / "plain.yaml")] + args) == 1


def test_the_train_flag_warns_once(tmp_path: Path, fledge_log: list[logging.LogRecord]) -> None:
    from fledge.config import parse_learn_args, resolve_run_options

    options = resolve_run_options(parse_learn_args(["--train", "--env", "MoveToGoal1D-Continuous"]))
    flag_warnings = [r for r in fledge_log if "--train" in r.getMessage()]
    assert len(flag_warnings) == 1
    assert effect_warnings(options, env_name="MoveToGoal1D-Continuous", worker_processes=False) == []
