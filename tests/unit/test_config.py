"""Config schema, YAML loading, validation messages and round trip (spec 2)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import shared_configs_dir
from fledge.config import (
    DEFAULT_ENV,
    BehavioralCloningSettings,
    CheckpointSettings,
    ConditioningType,
    CuriositySettings,
    EncoderType,
    EngineSettings,
    EnvironmentSettings,
    ExtrinsicSettings,
    GAILSettings,
    MeasureType,
    MemorySettings,
    NetworkSettings,
    POCASettings,
    PPOSettings,
    RewardSignalType,
    RNDSettings,
    RunOptions,
    SACSettings,
    SamplerType,
    ScheduleType,
    SelfPlaySettings,
    TorchSettings,
    TrainerSettings,
    TrainerType,
    build_run_options,
    dump_run_options,
    load_config_file,
)
from fledge.errors import ConfigError

SHARED_CONFIGS = shared_configs_dir()
EXAMPLE_FILES = sorted(SHARED_CONFIGS.glob("**/*.yaml"))


def config_error(raw: Any, source: str = "test.yaml") -> str:
    with pytest.raises(ConfigError) as info:
        build_run_options(raw, source=source)
    return str(info.value)


def ppo_behavior(**extra: Any) -> dict[str, Any]:
    return {"trainer_type": "ppo", **extra}


# --- every ML-Agents example config --------------------------------------------------------------


@pytest.mark.skipif(not EXAMPLE_FILES, reason="shared ML-Agents configs are not available")
def test_the_shared_examples_are_all_there() -> None:
    assert len(EXAMPLE_FILES) >= 100


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(SHARED_CONFIGS)))
def test_every_example_config_loads_and_round_trips(path: Path) -> None:
    options = build_run_options(load_config_file(path), source=str(path))
    assert options.behaviors
    again = build_run_options(yaml.safe_load(dump_run_options(options)))
    assert again == options


def test_3dball_example_values() -> None:
    options = build_run_options(load_config_file(SHARED_CONFIGS / "ppo/3DBall.yaml"))
    ball = options.behaviors["3DBall"]
    assert ball.trainer_type is TrainerType.PPO
    assert isinstance(ball.hyperparameters, PPOSettings)
    assert ball.hyperparameters.batch_size == 64
    assert ball.hyperparameters.buffer_size == 12000
    assert ball.hyperparameters.beta == pytest.approx(0.001)
    assert ball.hyperparameters.lambd == pytest.approx(0.99)
    assert ball.network_settings.normalize is True
    assert ball.time_horizon == 1000
    assert ball.summary_freq == 12000
    assert list(ball.reward_signals) == [RewardSignalType.EXTRINSIC]
    assert ball.checkpoint_interval == 500000  # not in the file: the default


def test_sac_example_keeps_float_steps_per_update() -> None:
    options = build_run_options(load_config_file(SHARED_CONFIGS / "sac/Walker.yaml"))
    hyper = options.behaviors["Walker"].hyperparameters
    assert isinstance(hyper, SACSettings)
    assert hyper.steps_per_update == 30.0
    assert hyper.reward_signal_steps_per_update == 30.0
    assert options.behaviors["Walker"].network_settings.goal_conditioning_type is ConditioningType.NONE


def test_encoding_size_is_resolved_once_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        options = build_run_options(load_config_file(SHARED_CONFIGS / "imitation/CrawlerStaticSAC.yaml"))
    gail = options.behaviors["CrawlerStatic"].reward_signals[RewardSignalType.GAIL]
    assert isinstance(gail, GAILSettings)
    assert gail.network_settings.hidden_units == 128
    assert gail.encoding_size is None
    assert "encoding_size" in caplog.text
    # Given in code, too (ML-Agents only honoured it from YAML).
    assert CuriositySettings(encoding_size=32).network_settings.hidden_units == 32
    # Ignored when network_settings is given.
    signal = RNDSettings(encoding_size=32, network_settings=NetworkSettings(hidden_units=8))
    assert signal.network_settings.hidden_units == 8


def test_curriculum_example_is_normalised() -> None:
    options = build_run_options(load_config_file(SHARED_CONFIGS / "ppo/WallJump_curriculum.yaml"))
    assert options.environment_parameters is not None
    big = options.environment_parameters["big_wall_height"].curriculum
    assert [lesson.name for lesson in big] == ["Lesson0", "Lesson1", "Lesson2", "Lesson3"]
    first = big[0]
    assert first.completion_criteria is not None
    assert first.completion_criteria.measure is MeasureType.PROGRESS
    assert first.completion_criteria.min_lesson_length == 100
    assert first.value.sampler_type is SamplerType.UNIFORM
    assert first.value.sampler_parameters.max_value == 4.0  # type: ignore[attr-defined]
    last = big[-1]
    assert last.completion_criteria is None
    assert last.value.sampler_type is SamplerType.CONSTANT
    assert last.value.sampler_parameters.value == 8.0  # type: ignore[attr-defined]


def test_sampler_and_constant_parameters_become_single_lessons() -> None:
    options = build_run_options(load_config_file(SHARED_CONFIGS / "ppo/3DBall_randomize.yaml"))
    assert options.environment_parameters is not None
    mass = options.environment_parameters["mass"].curriculum
    assert len(mass) == 1 and mass[0].name == "mass"
    assert mass[0].value.sampler_parameters.seed == -1
    assert mass[0].value.sampler_parameters.min_value == 0.5  # type: ignore[attr-defined]
    constant = build_run_options({"environment_parameters": {"gravity": 9.81}}).environment_parameters
    assert constant is not None
    lesson = constant["gravity"].curriculum[0]
    assert lesson.value.sampler_type is SamplerType.CONSTANT
    assert lesson.value.sampler_parameters.value == pytest.approx(9.81)  # type: ignore[attr-defined]


# --- defaults (spec tables) ----------------------------------------------------------------------


def test_trainer_settings_defaults() -> None:
    settings = TrainerSettings()
    assert settings.trainer_type is TrainerType.PPO
    assert isinstance(settings.hyperparameters, PPOSettings)
    assert settings.reward_signals == {RewardSignalType.EXTRINSIC: ExtrinsicSettings()}
    extrinsic = settings.reward_signals[RewardSignalType.EXTRINSIC]
    assert (extrinsic.gamma, extrinsic.strength) == (0.99, 1.0)
    assert settings.init_path is None
    assert settings.keep_checkpoints == 5
    assert settings.even_checkpoints is False
    assert settings.checkpoint_interval == 500000
    assert settings.max_steps == 500000
    assert settings.time_horizon == 64
    assert settings.summary_freq == 50000
    assert settings.threaded is False
    assert settings.self_play is None and settings.behavioral_cloning is None
    assert list(TrainerSettings.model_fields) == [
        "trainer_type", "hyperparameters", "network_settings", "reward_signals", "init_path",
        "keep_checkpoints", "even_checkpoints", "checkpoint_interval", "max_steps", "time_horizon",
        "summary_freq", "threaded", "self_play", "behavioral_cloning",
    ]  # fmt: skip


def test_hyperparameter_defaults() -> None:
    ppo = PPOSettings()
    assert (ppo.batch_size, ppo.buffer_size, ppo.learning_rate) == (1024, 10240, 3.0e-4)
    assert ppo.learning_rate_schedule is ScheduleType.LINEAR
    assert (ppo.beta, ppo.epsilon, ppo.lambd, ppo.num_epoch) == (5.0e-3, 0.2, 0.95, 3)
    assert ppo.beta_schedule is ScheduleType.LINEAR and ppo.epsilon_schedule is ScheduleType.LINEAR
    assert ppo.shared_critic is False
    poca = POCASettings()
    assert "shared_critic" not in POCASettings.model_fields
    assert (poca.batch_size, poca.buffer_size, poca.beta, poca.epsilon, poca.lambd) == (1024, 10240, 5.0e-3, 0.2, 0.95)
    sac = SACSettings()
    assert (sac.batch_size, sac.buffer_size, sac.learning_rate) == (128, 50000, 3.0e-4)
    assert sac.learning_rate_schedule is ScheduleType.CONSTANT
    assert (sac.buffer_init_steps, sac.tau, sac.steps_per_update) == (0, 0.005, 1.0)
    assert (sac.save_replay_buffer, sac.init_entcoef, sac.reward_signal_steps_per_update) == (False, 1.0, 1.0)
    assert SACSettings(steps_per_update=4).reward_signal_steps_per_update == 4.0
    assert SACSettings(steps_per_update=4, reward_signal_steps_per_update=2).reward_signal_steps_per_update == 2.0


def test_trainer_type_selects_hyperparameter_class() -> None:
    assert isinstance(TrainerSettings(trainer_type=TrainerType.SAC).hyperparameters, SACSettings)
    assert isinstance(TrainerSettings(trainer_type="poca").hyperparameters, POCASettings)
    settings = TrainerSettings.model_validate({"trainer_type": "sac", "hyperparameters": {"tau": 0.01}})
    assert isinstance(settings.hyperparameters, SACSettings) and settings.hyperparameters.tau == 0.01
    with pytest.raises(ValueError, match="needs SACSettings"):
        TrainerSettings(trainer_type="sac", hyperparameters=PPOSettings())


def test_network_and_signal_defaults() -> None:
    network = NetworkSettings()
    assert (network.normalize, network.hidden_units, network.num_layers) == (False, 128, 2)
    assert network.vis_encode_type is EncoderType.SIMPLE
    assert network.memory is None
    assert network.goal_conditioning_type is ConditioningType.HYPER
    assert network.deterministic is False
    assert (MemorySettings().sequence_length, MemorySettings().memory_size) == (64, 128)
    assert CuriositySettings().learning_rate == 3e-4 and CuriositySettings().encoding_size is None
    assert RNDSettings().learning_rate == 1e-4
    gail = GAILSettings(demo_path="x.demo")
    assert (gail.learning_rate, gail.use_actions, gail.use_vail) == (3e-4, False, False)
    assert (gail.gamma, gail.strength, gail.network_settings) == (0.99, 1.0, NetworkSettings())


def test_imitation_and_self_play_defaults() -> None:
    bc = BehavioralCloningSettings(demo_path="demos")
    assert (bc.steps, bc.strength, bc.samples_per_update, bc.num_epoch, bc.batch_size) == (0, 1.0, 0, None, None)
    play = SelfPlaySettings()
    assert (play.save_steps, play.team_change, play.swap_steps, play.window) == (20000, 100000, 2000, 10)
    assert (play.play_against_latest_model_ratio, play.initial_elo) == (0.5, 1200.0)
    assert SelfPlaySettings(save_steps=1000).team_change == 5000
    assert SelfPlaySettings(save_steps=1000, team_change=7).team_change == 7


def test_section_defaults() -> None:
    env = EnvironmentSettings()
    assert (env.env_path, env.env_args, env.base_port, env.num_envs, env.num_areas) == (None, None, 5005, 1, 1)
    assert (env.timeout_wait, env.seed, env.max_lifetime_restarts) == (60, -1, 10)
    assert (env.restarts_rate_limit_n, env.restarts_rate_limit_period_s) == (1, 60)
    assert env.environment_name == DEFAULT_ENV == "3DBall"
    engine = EngineSettings()
    assert (engine.width, engine.height, engine.quality_level, engine.time_scale) == (84, 84, 5, 20)
    assert (engine.target_frame_rate, engine.capture_frame_rate) == (-1, 60)
    assert engine.no_graphics is False and engine.no_graphics_monitor is False
    checkpoint = CheckpointSettings()
    assert (checkpoint.run_id, checkpoint.initialize_from, checkpoint.results_dir) == ("ppo", None, "results")
    assert not any([checkpoint.load_model, checkpoint.resume, checkpoint.force, checkpoint.train_model])
    assert checkpoint.inference is False and checkpoint.resume_from is None
    assert checkpoint.write_path == Path("results/ppo")
    assert checkpoint.run_logs_dir == Path("results/ppo/run_logs")
    assert CheckpointSettings(initialize_from="old").maybe_init_path == Path("results/old")
    assert TorchSettings().device is None
    options = RunOptions()
    assert options.behaviors == {} and options.default_settings is None
    assert options.environment_parameters is None and options.debug is False
    assert list(RunOptions.model_fields) == [
        "behaviors", "default_settings", "env_settings", "engine_settings", "environment_parameters",
        "checkpoint_settings", "torch_settings", "debug",
    ]  # fmt: skip


def test_num_envs_above_one_is_allowed_without_env_path() -> None:
    options = build_run_options({"env_settings": {"num_envs": 4}})
    assert options.env_settings.num_envs == 4 and options.env_settings.env_path is None
    assert "num_envs: must be >= 1, got 0" in config_error({"env_settings": {"num_envs": 0}})


# --- numbers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("given", "expected"), [(5.0e5, 500000), ("5.0e5", 500000), ("2e6", 2000000), (1234.9, 1234)])
def test_max_steps_is_truncated(given: Any, expected: int) -> None:
    assert build_run_options({"behaviors": {"A": {"max_steps": given}}}).behaviors["A"].max_steps == expected


def test_integral_floats_are_accepted_for_integer_keys() -> None:
    raw = {"behaviors": {"A": ppo_behavior(hyperparameters={"buffer_size": "1.2e4", "batch_size": 64.0})}}
    hyper = build_run_options(raw).behaviors["A"].hyperparameters
    assert (hyper.buffer_size, hyper.batch_size) == (12000, 64)
    assert type(hyper.buffer_size) is int
    text = yaml.safe_load("learning_rate: 3e-4\nbuffer_size: 1.2e4\n")  # PyYAML reads both as strings
    hyper = build_run_options({"behaviors": {"A": ppo_behavior(hyperparameters=text)}}).behaviors["A"].hyperparameters
    assert hyper.learning_rate == pytest.approx(3e-4) and hyper.buffer_size == 12000


def test_fractional_and_boolean_values_are_refused_for_integers() -> None:
    message = config_error({"behaviors": {"A": ppo_behavior(hyperparameters={"batch_size": 1.5})}})
    assert "behaviors.A.hyperparameters.batch_size: expected a whole number, got 1.5" in message
    message = config_error({"behaviors": {"A": {"time_horizon": True}}})
    assert "behaviors.A.time_horizon: expected a whole number, got true" in message


# --- error messages ------------------------------------------------------------------------------


def test_typo_names_the_full_path_and_suggests_the_key() -> None:
    message = config_error({"behaviors": {"3DBall": ppo_behavior(hyperparameters={"bach_size": 64})}}, "conf.yaml")
    assert "conf.yaml" in message
    assert "behaviors.3DBall.hyperparameters.bach_size" in message
    assert "did you mean 'batch_size'?" in message
    assert "extra_forbidden" not in message and "http" not in message and "pydantic" not in message.lower()


@pytest.mark.parametrize(
    ("raw", "path", "suggestion"),
    [
        ({"behavior": {}}, "behavior", "behaviors"),
        ({"behaviors": {"A": {"max_step": 10}}}, "behaviors.A.max_step", "max_steps"),
        (
            {"behaviors": {"A": {"network_settings": {"hiden_units": 3}}}},
            "behaviors.A.network_settings.hiden_units",
            "hidden_units",
        ),
        (
            {"behaviors": {"A": {"reward_signals": {"curiosty": {}}}}},
            "behaviors.A.reward_signals.curiosty",
            "curiosity",
        ),
        (
            {"behaviors": {"A": {"reward_signals": {"extrinsic": {"gama": 0.9}}}}},
            "behaviors.A.reward_signals.extrinsic.gama",
            "gamma",
        ),
        (
            {"behaviors": {"A": {"trainer_type": "sac", "hyperparameters": {"taus": 1}}}},
            "behaviors.A.hyperparameters.taus",
            "tau",
        ),
        ({"env_settings": {"num_env": 2}}, "env_settings.num_env", "num_envs"),
        ({"checkpoint_settings": {"runid": "x"}}, "checkpoint_settings.runid", "run_id"),
        (
            {"environment_parameters": {"p": {"sampler_type": "uniform", "sampler_parameters": {"min": 1}}}},
            "environment_parameters.p.sampler_parameters.min",
            "min_value",
        ),
    ],
)
def test_unknown_keys_everywhere(raw: dict[str, Any], path: str, suggestion: str) -> None:
    message = config_error(raw)
    assert f"{path}: unknown key" in message
    assert f"did you mean {suggestion!r}?" in message


def test_unknown_key_without_close_match_lists_the_valid_keys() -> None:
    message = config_error({"torch_settings": {"zzz": 1}})
    assert "torch_settings.zzz: unknown key 'zzz'" in message and "valid keys are: device" in message


def test_bad_enum_lists_allowed_values() -> None:
    message = config_error({"behaviors": {"A": {"network_settings": {"vis_encode_type": "cnn"}}}})
    assert "behaviors.A.network_settings.vis_encode_type: invalid value 'cnn'" in message
    for allowed in ("simple", "nature_cnn", "resnet", "match3", "fully_connected"):
        assert f"'{allowed}'" in message
    message = config_error({"behaviors": {"A": ppo_behavior(hyperparameters={"learning_rate_schedule": "cos"})}})
    assert "learning_rate_schedule: invalid value 'cos'; allowed values: 'constant' or 'linear'" in message
    assert message.count("invalid value") == 1  # not repeated for the inherited beta/epsilon schedules


def test_unknown_trainer_type() -> None:
    message = config_error({"behaviors": {"A": {"trainer_type": "xyz"}}})
    assert "behaviors.A.trainer_type: Invalid trainer type xyz was found" in message
    assert "'ppo', 'sac', 'poca'" in message


def test_wrong_type_names_expected_type_and_value() -> None:
    message = config_error({"behaviors": {"A": {"network_settings": {"hidden_units": "many", "normalize": "maybe"}}}})
    assert "behaviors.A.network_settings.hidden_units: expected a whole number, got 'many'" in message
    assert "behaviors.A.network_settings.normalize: expected true or false, got 'maybe'" in message
    message = config_error({"behaviors": {"A": {"network_settings": 5}}})
    assert "behaviors.A.network_settings: expected a mapping (key: value pairs), got 5" in message
    assert "reward_signals.gail.demo_path: required key is missing" in config_error(
        {"behaviors": {"A": {"reward_signals": {"gail": {}}}}}
    )


def test_several_errors_are_listed_one_per_line() -> None:
    raw = {
        "behaviors": {"A": ppo_behavior(hyperparameters={"bach_size": 1}, max_steps="lots")},
        "engine_settings": {"width": -3},
        "bogus": 1,
    }
    message = config_error(raw)
    lines = message.splitlines()
    assert lines[0] == "Invalid configuration in test.yaml (4 problems):"
    assert len(lines) == 5
    assert any(line.strip().startswith("bogus: unknown key") for line in lines)
    assert any("engine_settings.width: must be >= 1, got -3" in line for line in lines)
    assert any("behaviors.A.max_steps: expected a whole number, got 'lots'" in line for line in lines)


def test_hyperparameters_without_trainer_type() -> None:
    message = config_error({"behaviors": {"A": {"hyperparameters": {"batch_size": 5}}}})
    assert "Hyperparameters were specified but no trainer_type was given" in message
    # default_settings supplies the trainer type
    raw = {"default_settings": {"trainer_type": "sac"}, "behaviors": {"A": {"hyperparameters": {"tau": 0.1}}}}
    assert isinstance(build_run_options(raw).behaviors["A"].hyperparameters, SACSettings)


def test_framework_key_is_removed_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        options = build_run_options({"behaviors": {"A": {"framework": "tensorflow"}}})
    assert options.behaviors["A"] == TrainerSettings()
    assert "framework" in caplog.text


def test_memory_checks() -> None:
    message = config_error({"behaviors": {"A": {"network_settings": {"memory": {"memory_size": 63}}}}})
    assert "behaviors.A.network_settings.memory.memory_size: memory_size must be even" in message
    message = config_error({"behaviors": {"A": {"network_settings": {"memory": {"memory_size": 0}}}}})
    assert "memory.memory_size: must be > 0" in message
    raw = {
        "behaviors": {
            "A": ppo_behavior(hyperparameters={"batch_size": 32}, network_settings={"memory": {"sequence_length": 64}})
        }
    }
    message = config_error(raw)
    assert "behaviors.A.network_settings.memory.sequence_length" in message
    assert "sequence length must be less than or equal to batch size" in message


def test_even_checkpoints_sets_the_interval() -> None:
    raw = {"behaviors": {"A": {"even_checkpoints": True, "max_steps": 1000, "keep_checkpoints": 4}}}
    assert build_run_options(raw).behaviors["A"].checkpoint_interval == 250
    assert "keep_checkpoints" in config_error({"behaviors": {"A": {"even_checkpoints": True, "keep_checkpoints": 0}}})


def test_run_id_must_be_a_plain_name() -> None:
    assert "checkpoint_settings.run_id" in config_error({"checkpoint_settings": {"run_id": "../elsewhere"}})
    assert build_run_options({"checkpoint_settings": {"run_id": 2024}}).checkpoint_settings.run_id == "2024"


def test_checkpoint_resume_rules_in_yaml(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        checkpoint = build_run_options(
            {"checkpoint_settings": {"resume": True, "initialize_from": "old"}}
        ).checkpoint_settings
    assert checkpoint.resume is True and checkpoint.initialize_from is None
    assert "initialize_from" in caplog.text
    legacy = build_run_options({"checkpoint_settings": {"load_model": True}}).checkpoint_settings
    assert legacy.resume is True and legacy.load_model is False
    assert CheckpointSettings(resume_from="A-100").resume is True


# --- default_settings merge (spec 2.1) -----------------------------------------------------------


def test_behaviors_are_deep_merged_over_default_settings() -> None:
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "time_horizon": 128,
            "hyperparameters": {"batch_size": 256, "beta": 0.01},
            "network_settings": {"hidden_units": 64, "memory": {"memory_size": 32, "sequence_length": 8}},
        },
        "behaviors": {"A": {"hyperparameters": {"batch_size": 512}, "network_settings": {"num_layers": 3}}},
    }
    a = build_run_options(raw).behaviors["A"]
    assert a.time_horizon == 128
    assert a.hyperparameters.batch_size == 512
    assert a.hyperparameters.beta == 0.01  # type: ignore[attr-defined]
    assert (a.network_settings.hidden_units, a.network_settings.num_layers) == (64, 3)
    assert a.network_settings.memory == MemorySettings(memory_size=32, sequence_length=8)


def test_reward_signals_merge_rule() -> None:
    only_curiosity = {"reward_signals": {"curiosity": {"strength": 0.02}}}
    with_defaults = build_run_options({"default_settings": {"trainer_type": "ppo"}, "behaviors": {"A": only_curiosity}})
    assert set(with_defaults.behaviors["A"].reward_signals) == {RewardSignalType.EXTRINSIC, RewardSignalType.CURIOSITY}
    without_defaults = build_run_options({"behaviors": {"A": only_curiosity}})
    assert set(without_defaults.behaviors["A"].reward_signals) == {RewardSignalType.CURIOSITY}
    raw = {
        "default_settings": {"reward_signals": {"extrinsic": {"gamma": 0.9}}},
        "behaviors": {"A": {"reward_signals": {"extrinsic": {"strength": 0.5}}}},
    }
    extrinsic = build_run_options(raw).behaviors["A"].reward_signals[RewardSignalType.EXTRINSIC]
    assert (extrinsic.gamma, extrinsic.strength) == (0.9, 0.5)


def test_trainer_type_of_merged_result_selects_the_class() -> None:
    raw = {
        "default_settings": {"trainer_type": "ppo", "hyperparameters": {"batch_size": 32, "beta": 0.1}},
        "behaviors": {"A": {"trainer_type": "sac", "hyperparameters": {"tau": 0.1}}, "B": {}},
    }
    options = build_run_options(raw)
    a = options.behaviors["A"].hyperparameters
    assert isinstance(a, SACSettings) and a.batch_size == 32 and a.tau == 0.1  # beta does not apply to SAC
    assert isinstance(options.behaviors["B"].hyperparameters, PPOSettings)


def test_default_settings_mistake_is_reported_once() -> None:
    raw = {"default_settings": {"max_step": 5}, "behaviors": {"A": {}, "B": {}}}
    message = config_error(raw)
    assert "default_settings.max_step: unknown key" in message
    assert "behaviors.A" not in message and "behaviors.B" not in message


def test_empty_behavior_body_uses_defaults() -> None:
    options = build_run_options(yaml.safe_load("behaviors:\n  A:\n"))
    assert options.behaviors["A"] == TrainerSettings()


# --- schedules (spec 2.1) ------------------------------------------------------------------------


def test_learning_rate_schedule_is_inherited_by_beta_and_epsilon_in_yaml() -> None:
    raw = {"behaviors": {
        "A": ppo_behavior(hyperparameters={"learning_rate_schedule": "constant"}),
        "B": ppo_behavior(hyperparameters={"learning_rate_schedule": "constant", "beta_schedule": "linear"}),
        "C": {"trainer_type": "poca", "hyperparameters": {"learning_rate_schedule": "constant"}},
        "D": ppo_behavior(),
    }}  # fmt: skip
    options = build_run_options(raw)
    a = options.behaviors["A"].schedules()
    assert (a.learning_rate, a.beta, a.epsilon) == (ScheduleType.CONSTANT,) * 3
    b = options.behaviors["B"].schedules()
    assert (b.learning_rate, b.beta, b.epsilon) == (ScheduleType.CONSTANT, ScheduleType.LINEAR, ScheduleType.CONSTANT)
    c = options.behaviors["C"].schedules()
    assert (c.beta, c.epsilon) == (ScheduleType.CONSTANT, ScheduleType.CONSTANT)
    d = options.behaviors["D"].schedules()
    assert (d.learning_rate, d.beta, d.epsilon) == (ScheduleType.LINEAR,) * 3


def test_schedule_inheritance_through_default_settings() -> None:
    raw = {
        "default_settings": {"trainer_type": "ppo", "hyperparameters": {"learning_rate_schedule": "constant"}},
        "behaviors": {"A": {}},
    }
    options = build_run_options(raw)
    assert options.behaviors["A"].schedules().beta is ScheduleType.CONSTANT
    assert options.default_settings is not None
    assert options.default_settings.schedules().epsilon is ScheduleType.CONSTANT


def test_schedules_are_not_inherited_in_code_and_sac_has_none() -> None:
    settings = TrainerSettings(hyperparameters=PPOSettings(learning_rate_schedule=ScheduleType.CONSTANT))
    assert settings.schedules().beta is ScheduleType.LINEAR
    sac = TrainerSettings(trainer_type=TrainerType.SAC).schedules()
    assert (sac.learning_rate, sac.beta, sac.epsilon) == (ScheduleType.CONSTANT, None, None)


# --- behavior_settings ---------------------------------------------------------------------------


def test_behavior_settings_fallbacks() -> None:
    listed = build_run_options({"behaviors": {"A": {"max_steps": 10}}})
    assert listed.behavior_settings("A").max_steps == 10
    assert listed.behavior_settings("A?team=1").max_steps == 10
    with_defaults = build_run_options({"default_settings": {"max_steps": 7}, "behaviors": {"A": {}}})
    copy_one = with_defaults.behavior_settings("Other")
    assert copy_one.max_steps == 7
    assert copy_one is not with_defaults.default_settings
    copy_one.network_settings.hidden_units = 1
    assert with_defaults.behavior_settings("Other").network_settings.hidden_units == 128
    assert build_run_options({}).behavior_settings("Anything") == TrainerSettings()


def test_behavior_not_listed_without_default_settings_is_an_error() -> None:
    options = build_run_options({"behaviors": {"A": {}}})
    with pytest.raises(ConfigError) as info:
        options.behavior_settings("Walker")
    message = str(info.value)
    assert "The behavior name Walker has not been specified in the trainer configuration" in message
    assert "add an entry in the configuration file for Walker, or set default_settings" in message


# --- round trip ----------------------------------------------------------------------------------


def test_dump_and_load_round_trip_of_a_rich_config() -> None:
    raw = yaml.safe_load(
        """
default_settings:
  trainer_type: ppo
  time_horizon: 128
behaviors:
  Runner:
    hyperparameters: {batch_size: 256, buffer_size: 4096, learning_rate: 1.0e-3, learning_rate_schedule: constant}
    network_settings: {normalize: true, memory: {memory_size: 64, sequence_length: 16}}
    reward_signals:
      curiosity: {strength: 0.01, network_settings: {hidden_units: 64}}
      gail: {demo_path: demos/run.demo, encoding_size: 32}
    max_steps: 2.0e6
    self_play: {save_steps: 100}
    behavioral_cloning: {demo_path: demos}
  Chaser: {trainer_type: sac, hyperparameters: {steps_per_update: 4}}
environment_parameters:
  difficulty:
    curriculum:
      - name: Easy
        completion_criteria: {behavior: Runner, threshold: 0.8, min_lesson_length: 50}
        value: 0.0
      - name: Hard
        value: {sampler_type: multirangeuniform, sampler_parameters: {intervals: [[0, 1], [2, 3]]}}
  mass: {sampler_type: gaussian, sampler_parameters: {mean: 2, st_dev: 0.5, seed: 4}}
  gravity: 9.81
env_settings: {env_path: gym:CartPole-v1, num_envs: 4, env_args: [--x, "1"]}
checkpoint_settings: {run_id: runner-01, resume_from: Runner-100}
torch_settings: {device: cpu}
debug: true
"""
    )
    options = build_run_options(raw)
    text = dump_run_options(options)
    assert "!!python" not in text
    dumped = yaml.safe_load(text)
    assert list(dumped) == list(RunOptions.model_fields)
    runner = dumped["behaviors"]["Runner"]
    assert list(runner) == list(TrainerSettings.model_fields)
    assert runner["network_settings"]["vis_encode_type"] == "simple"
    assert runner["hyperparameters"]["beta_schedule"] == "constant"
    assert set(runner["reward_signals"]) == {"extrinsic", "curiosity", "gail"}
    mass = dumped["environment_parameters"]["mass"]["curriculum"][0]["value"]
    assert mass == {"sampler_type": "gaussian", "sampler_parameters": {"seed": 4, "mean": 2.0, "st_dev": 0.5}}
    again = build_run_options(dumped)
    assert again == options
    assert dump_run_options(again) == text


# --- environment parameters (spec 2.10) ----------------------------------------------------------


def test_sampler_needs_both_keys() -> None:
    message = config_error({"environment_parameters": {"mass": {"sampler_type": "uniform"}}})
    assert "environment_parameters.mass.sampler_parameters: required key is missing" in message
    message = config_error({"environment_parameters": {"mass": {"sampler_parameters": {"min_value": 1}}}})
    assert "environment_parameters.mass.sampler_type: required key is missing" in message
    message = config_error({"environment_parameters": {"mass": {"sampler_type": "beta", "sampler_parameters": {}}}})
    assert "environment_parameters.mass.sampler_type: invalid value 'beta'" in message


def test_sampler_value_checks() -> None:
    uniform = {"sampler_type": "uniform", "sampler_parameters": {"min_value": 2, "max_value": 1}}
    assert "min_value (2.0) must be less than or equal to max_value (1.0)" in config_error(
        {"environment_parameters": {"p": uniform}}
    )
    ranges = {"sampler_type": "multirangeuniform", "sampler_parameters": {"intervals": [[0, 1], [1, 2, 3], [5, 4]]}}
    message = config_error({"environment_parameters": {"p": ranges}})
    assert (
        "environment_parameters.p.sampler_parameters.intervals[1]: each interval must have exactly 2 values" in message
    )
    assert "intervals[2]: interval minimum (5.0) must be less than or equal to its maximum (4.0)" in message


def curriculum(*lessons: dict[str, Any]) -> dict[str, Any]:
    return {"environment_parameters": {"wall": {"curriculum": list(lessons)}}}


def test_non_final_lesson_needs_completion_criteria() -> None:
    message = config_error(curriculum({"name": "a", "value": 1}, {"name": "b", "value": 2}))
    assert "environment_parameters.wall.curriculum[0].completion_criteria" in message
    assert "lesson 'a' is not the last lesson, so it needs completion_criteria" in message


def test_final_lesson_criteria_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        options = build_run_options(curriculum({"name": "only", "value": 1, "completion_criteria": {"behavior": "A"}}))
    assert options.environment_parameters is not None
    assert options.environment_parameters["wall"].curriculum[0].completion_criteria is None
    assert "last lesson" in caplog.text


def test_completion_criteria_checks() -> None:
    criteria = {"behavior": "A", "measure": "progress", "threshold": 1.5}
    message = config_error(
        curriculum({"name": "a", "value": 1, "completion_criteria": criteria}, {"name": "b", "value": 2})
    )
    assert "environment_parameters.wall.curriculum[0].completion_criteria.threshold" in message
    assert "between 0 and 1, got 1.5" in message
    elo = {"behavior": "A", "measure": "Elo"}
    message = config_error(curriculum({"name": "a", "value": 1, "completion_criteria": elo}, {"name": "b", "value": 2}))
    assert "measure: invalid value 'Elo'; allowed values: 'progress' or 'reward'" in message
    message = config_error(curriculum({"name": "a", "value": 1, "completion_criteria": {}}, {"name": "b", "value": 2}))
    assert "completion_criteria.behavior: required key is missing" in message
    good = {"behavior": "A", "measure": "reward", "threshold": 50.0}
    options = build_run_options(
        curriculum({"name": "a", "value": 1, "completion_criteria": good}, {"name": "b", "value": 2})
    )
    assert options.environment_parameters is not None
    first = options.environment_parameters["wall"].curriculum[0].completion_criteria
    assert first is not None
    assert (first.min_lesson_length, first.signal_smoothing, first.require_reset) == (0, True, False)


def test_bad_environment_parameter_shapes() -> None:
    assert "environment_parameters.p: expected a number, a sampler" in config_error(
        {"environment_parameters": {"p": "x"}}
    )
    message = config_error({"environment_parameters": {"p": {"curiculum": []}}})
    assert "did you mean 'curriculum'?" in message
    assert "curriculum: must have at least 1 item" in config_error(
        {"environment_parameters": {"p": {"curriculum": []}}}
    )


# --- files ---------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_file(tmp_path / "nope.yaml")
    message = str(info.value)
    assert f"Config file could not be found at {tmp_path / 'nope.yaml'}." in message
    assert "Check the path" in message


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("behaviors:\n  A:\n    max_steps: [1, 2\n")
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    message = str(info.value)
    assert str(path) in message and "line 4" in message and "column" in message


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping of sections.*a list"):
        load_config_file(path)


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes("behaviors:\n  Caf\xe9: {}\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config_file(path)


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("behaviors:\n  A: {}\n  A: {max_steps: 3}\n")
    with pytest.raises(ConfigError, match="found the key 'A' twice"):
        load_config_file(path)
    merged = tmp_path / "merge.yaml"
    merged.write_text("base: &b {max_steps: 3}\nbehaviors:\n  A:\n    <<: *b\n    max_steps: 4\n")
    assert load_config_file(merged)["behaviors"]["A"] == {"max_steps": 4}


def test_empty_file_and_folder(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_config_file(path) == {}
    with pytest.raises(ConfigError, match="is a folder"):
        load_config_file(tmp_path)


def test_importing_config_does_not_import_torch() -> None:
    code = "import sys, fledge.config; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
