"""`fledge learn` flags: typed-flag tracking, precedence over YAML, resume rules (spec 3)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from fledge.config import LearnArgs, build_learn_parser, parse_learn_args, resolve_run_options
from fledge.errors import ConfigError


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trainer.yaml"
    path.write_text(text)
    return path


CONFIG = """
behaviors:
  A:
    trainer_type: ppo
    max_steps: 100
env_settings:
  seed: 5
  num_envs: 2
  base_port: 6000
checkpoint_settings:
  run_id: from-yaml
engine_settings:
  time_scale: 3
"""


def test_parser_prog_and_help() -> None:
    parser = build_learn_parser()
    assert parser.prog == "fledge learn"
    text = parser.format_help()
    for flag in (
        "--env",
        "--resume",
        "--resume-from",
        "--run-id",
        "--initialize-from",
        "--seed",
        "--num-envs",
        "--num-areas",
        "--env-args",
        "--torch-device",
        "--results-dir",
        "--timeout-wait",
        "--no-graphics",
        "--deterministic",
        "--quiet",
        "--max-lifetime-restarts",
        "--restarts-rate-limit-n",
        "--restarts-rate-limit-period-s",
        "--width",
        "--height",
        "--quality-level",
        "--time-scale",
        "--target-frame-rate",
        "--capture-frame-rate",
        "--no-graphics-monitor",
        "--inference",
        "--force",
        "--base-port",
        "--debug",
    ):
        assert flag in text
    assert "--load" not in text and "--train " not in text  # hidden, deprecated


def test_only_typed_flags_are_overrides() -> None:
    args = parse_learn_args(["cfg.yaml", "--seed", "3", "--num-envs", "4", "--resume", "--time-scale", "2.5"])
    assert args.config_path == Path("cfg.yaml")
    assert args.overrides == {
        "env_settings": {"seed": 3, "num_envs": 4},
        "checkpoint_settings": {"resume": True},
        "engine_settings": {"time_scale": 2.5},
    }
    assert args.debug is False and args.quiet is False and args.deterministic is False
    assert parse_learn_args([]) == LearnArgs()


def test_typed_flag_equal_to_the_default_still_counts() -> None:
    assert parse_learn_args(["--seed", "-1"]).overrides == {"env_settings": {"seed": -1}}
    assert parse_learn_args(["--run-id", "ppo"]).overrides == {"checkpoint_settings": {"run_id": "ppo"}}


def test_parsing_keeps_no_state_between_calls() -> None:
    first = parse_learn_args(["--seed", "1", "--force"])
    second = parse_learn_args(["--num-areas", "2"])
    assert first.overrides == {"env_settings": {"seed": 1}, "checkpoint_settings": {"force": True}}
    assert second.overrides == {"env_settings": {"num_areas": 2}}


def test_switches_and_fledge_flags() -> None:
    args = parse_learn_args(["--debug", "--quiet", "--deterministic", "--no-graphics", "--resume-from", "A-100"])
    assert (args.debug, args.quiet, args.deterministic) == (True, True, True)
    assert args.overrides == {
        "engine_settings": {"no_graphics": True},
        "checkpoint_settings": {"resume_from": "A-100"},
    }


def test_env_args_takes_the_rest() -> None:
    args = parse_learn_args(["cfg.yaml", "--run-id", "r", "--env-args", "--level", "3", "--seed", "9"])
    assert args.overrides["env_settings"] == {"env_args": ["--level", "3", "--seed", "9"]}
    assert args.overrides["checkpoint_settings"] == {"run_id": "r"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--seed", "abc"], "argument --seed: expected a whole number, got 'abc'"),
        (["--num-envs", "0"], "argument --num-envs: must be at least 1, got 0"),
        (["--base-port", "70000"], "argument --base-port: must be at most 65535, got 70000"),
        (["--time-scale", "fast"], "argument --time-scale: expected a number, got 'fast'"),
        (["--timeout-wait", "1.5"], "argument --timeout-wait: expected a whole number, got '1.5'"),
        (["--run-id", "a/b"], "argument --run-id:"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_flags_give_clear_errors(argv: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_learn_args(argv)
    message = str(info.value)
    assert message.startswith("fledge learn: ")
    assert expected in message
    assert "--help" in message


def test_typed_flags_override_yaml_and_untyped_do_not(tmp_path: Path) -> None:
    path = write_config(tmp_path, CONFIG)
    options = resolve_run_options(parse_learn_args([str(path), "--seed", "11", "--run-id", "cli"]))
    assert options.env_settings.seed == 11
    assert options.checkpoint_settings.run_id == "cli"
    assert options.env_settings.num_envs == 2  # YAML, flag not typed
    assert options.env_settings.base_port == 6000
    assert options.engine_settings.time_scale == 3.0
    assert options.engine_settings.width == 84  # neither: the default
    assert options.behaviors["A"].max_steps == 100


def test_no_config_file_gives_defaults_and_flags(tmp_path: Path) -> None:
    options = resolve_run_options(parse_learn_args(["--env", "gym:CartPole-v1", "--torch-device", "cpu"]))
    assert options.behaviors == {}
    assert options.env_settings.env_path == "gym:CartPole-v1"
    assert options.torch_settings.device == "cpu"
    assert options.behavior_settings("Whatever").max_steps == 500000


def test_missing_config_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Config file could not be found at"):
        resolve_run_options(parse_learn_args([str(tmp_path / "missing.yaml")]))


def test_validation_errors_name_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "behaviors:\n  A:\n    max_step: 3\n")
    with pytest.raises(ConfigError) as info:
        resolve_run_options(parse_learn_args([str(path)]))
    assert str(path) in str(info.value) and "did you mean 'max_steps'?" in str(info.value)


def test_resume_typed_drops_initialize_from(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config(tmp_path, "checkpoint_settings:\n  initialize_from: old\n")
    with caplog.at_level(logging.WARNING):
        options = resolve_run_options(parse_learn_args([str(path), "--resume"]))
    assert options.checkpoint_settings.resume is True
    assert options.checkpoint_settings.initialize_from is None
    assert "initialize_from" in caplog.text


def test_initialize_from_typed_drops_yaml_resume(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config(tmp_path, "checkpoint_settings:\n  resume: true\n")
    with caplog.at_level(logging.WARNING):
        options = resolve_run_options(parse_learn_args([str(path), "--initialize-from", "old"]))
    assert options.checkpoint_settings.resume is False
    assert options.checkpoint_settings.initialize_from == "old"
    assert "resume" in caplog.text


def test_both_in_yaml_resume_wins(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config(tmp_path, "checkpoint_settings:\n  resume: true\n  initialize_from: old\n")
    with caplog.at_level(logging.WARNING):
        options = resolve_run_options(parse_learn_args([str(path)]))
    assert options.checkpoint_settings.resume is True
    assert options.checkpoint_settings.initialize_from is None
    assert "initialize_from" in caplog.text


def test_both_typed_resume_wins(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        options = resolve_run_options(parse_learn_args(["--resume", "--initialize-from", "old"]))
    assert options.checkpoint_settings.resume is True
    assert options.checkpoint_settings.initialize_from is None


def test_load_is_a_deprecated_resume(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        options = resolve_run_options(parse_learn_args(["--load"]))
    assert options.checkpoint_settings.resume is True
    assert options.checkpoint_settings.load_model is False
    assert "--load" in caplog.text and "deprecated" in caplog.text


def test_train_and_removed_flags_only_warn(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        options = resolve_run_options(parse_learn_args(["--train", "--torch"]))
    assert options.checkpoint_settings.inference is False
    assert "--train" in caplog.text and "--torch" in caplog.text


def test_resume_from_implies_resume() -> None:
    options = resolve_run_options(parse_learn_args(["--resume-from", "A-1200"]))
    assert options.checkpoint_settings.resume is True
    assert options.checkpoint_settings.resume_from == "A-1200"


def test_deterministic_reaches_behaviors_and_default_settings(tmp_path: Path) -> None:
    path = write_config(tmp_path, "default_settings:\n  max_steps: 10\nbehaviors:\n  A: {}\n")
    options = resolve_run_options(parse_learn_args([str(path), "--deterministic"]))
    assert options.behaviors["A"].network_settings.deterministic is True
    assert options.default_settings is not None
    assert options.default_settings.network_settings.deterministic is True
    assert options.behavior_settings("NotListed").network_settings.deterministic is True
    untyped = resolve_run_options(parse_learn_args([str(path)]))
    assert untyped.behavior_settings("A").network_settings.deterministic is False
    assert untyped.behavior_settings("NotListed").network_settings.deterministic is False


def test_deterministic_without_config_reaches_every_behavior() -> None:
    options = resolve_run_options(parse_learn_args(["--deterministic"]))
    assert options.behavior_settings("Any").network_settings.deterministic is True


def test_debug_flag_and_yaml_debug(tmp_path: Path) -> None:
    assert resolve_run_options(parse_learn_args(["--debug"])).debug is True
    path = write_config(tmp_path, "debug: true\n")
    assert resolve_run_options(parse_learn_args([str(path)])).debug is True
    assert resolve_run_options(parse_learn_args([])).debug is False


def test_flags_fill_a_null_section(tmp_path: Path) -> None:
    path = write_config(tmp_path, "env_settings:\nbehaviors: {A: {}}\n")
    options = resolve_run_options(parse_learn_args([str(path), "--num-envs", "3"]))
    assert options.env_settings.num_envs == 3


def test_resolved_options_dump_reloads(tmp_path: Path) -> None:
    from fledge.config import build_run_options, dump_run_options

    path = write_config(tmp_path, CONFIG)
    options = resolve_run_options(parse_learn_args([str(path), "--deterministic", "--env-args", "x"]))
    assert build_run_options(yaml.safe_load(dump_run_options(options))) == options
