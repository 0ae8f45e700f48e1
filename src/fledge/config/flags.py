"""The `fledge learn` command line (spec 3): flags, which of them were typed, and the final RunOptions.

Only flags the user actually typed override the YAML. They are found without any global state: the
arguments are parsed a second time by a parser whose defaults are all `argparse.SUPPRESS`, so the
namespace of that parse holds exactly the typed flags.
"""

from __future__ import annotations

import argparse
import copy
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from fledge.config.loading import build_run_options, load_config_file
from fledge.config.schema import NetworkSettings, RunOptions, TrainerSettings
from fledge.config.sections import (
    CheckpointSettings,
    EngineSettings,
    EnvironmentSettings,
    TorchSettings,
    check_run_name,
)
from fledge.errors import ConfigError

__all__ = ["LearnArgs", "build_learn_parser", "parse_check_args", "parse_learn_args", "resolve_run_options"]

logger = logging.getLogger(__name__)

PROG = "fledge learn"


@dataclass(frozen=True, kw_only=True)
class LearnArgs:
    """What `fledge learn` was asked to do.

    `overrides` maps a RunOptions section to the keys set by typed flags only, e.g.
    ``{"env_settings": {"seed": 3}, "checkpoint_settings": {"run_id": "r1"}}``.
    """

    config_path: Path | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    debug: bool = False
    quiet: bool = False
    deterministic: bool = False
    removed_flags: tuple[str, ...] = ()
    """Flags that ML-Agents removed (--torch, --tensorflow); they only print a warning."""


# --- argument types: each says what it expects, so argparse reports e.g.
# "argument --seed: expected a whole number, got 'abc'".


def _int_arg(*, minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    convert.__name__ = "int"
    return convert


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _workers_kind(text: str) -> str:
    if text not in WORKER_KINDS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(WORKER_KINDS)}, got {text!r}")
    return text


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of at least 0, got {text}")
    return value


def _run_name(text: str) -> str:
    try:
        check_run_name(text, "the run name")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


@dataclass(frozen=True, kw_only=True)
class _Flag:
    option: str
    section: str
    key: str
    help: str
    convert: Callable[[str], Any] | None = None  # None: a switch (store_true)
    metavar: str | None = None
    hidden: bool = False


UNITY = "Unity players only"
WORKER_KINDS = ("local", "processes", "ray")
WORKERS = "worker processes and Unity players"
COPIES = "with --num-envs > 1 (copies that fail are restarted; not in-process Gymnasium copies)"

_SECTION_MODELS = (
    ("env_settings", EnvironmentSettings),
    ("engine_settings", EngineSettings),
    ("checkpoint_settings", CheckpointSettings),
    ("torch_settings", TorchSettings),
)

# The table keeps one flag to a line or two: it reads better than one argument a line.
# fmt: off
_FLAGS: tuple[_Flag, ...] = (
    _Flag(option="--env", section="env_settings", key="env_path", convert=_non_empty, metavar="ENV",
          help="environment: a built-in name (see 'fledge envs'), 'gym:<id>' (Gymnasium), 'pettingzoo:<module>' "
               "(PettingZoo), the path of a Unity player, or 'unity-editor' (wait for the Unity Editor on port "
               "5004); None means the built-in 3DBall"),
    _Flag(option="--resume", section="checkpoint_settings", key="resume",
          help="continue the run of this run id from its last checkpoint"),
    _Flag(option="--resume-from", section="checkpoint_settings", key="resume_from", convert=_non_empty,
          metavar="CHECKPOINT", help="resume from this checkpoint (e.g. 3DBall-12000) instead of the last; implies --resume"),
    _Flag(option="--force", section="checkpoint_settings", key="force",
          help="delete the results of an existing run of this id and start again"),
    _Flag(option="--run-id", section="checkpoint_settings", key="run_id", convert=_run_name,
          metavar="RUN_ID", help="run name; results go to <results-dir>/<run-id>"),
    _Flag(option="--initialize-from", section="checkpoint_settings", key="initialize_from", convert=_run_name,
          metavar="RUN_ID", help="start a new run (at step 0) from the trained networks of another run id"),
    _Flag(option="--seed", section="env_settings", key="seed", convert=_int_arg(minimum=-1),
          help="random seed; -1 draws one at start"),
    _Flag(option="--inference", section="checkpoint_settings", key="inference",
          help="run the trained policies of this run id for max_steps steps, without training or writing anything"),
    _Flag(option="--base-port", section="env_settings", key="base_port", convert=_int_arg(minimum=1, maximum=65535),
          help=f"{UNITY}: first port of the Unity workers (worker i uses base-port + i)"),
    _Flag(option="--num-envs", section="env_settings", key="num_envs", convert=_int_arg(minimum=1),
          help="copies of the environment, stepped in lockstep"),
    _Flag(option="--workers", section="env_settings", key="workers", convert=_workers_kind, metavar="KIND",
          help="fledge: where environment copies step: local (this process), processes (worker processes) or ray "
               "(Ray actors, local or on a cluster; pip install fledge[ray]); default: as env_settings.worker_processes"),
    _Flag(option="--ray-address", section="env_settings", key="ray_address", convert=_non_empty, metavar="ADDRESS",
          help="fledge, with --workers ray: 'auto' or host:port joins a running Ray cluster; default: a local Ray "
               "instance started for the run"),
    _Flag(option="--ray-num-cpus", section="env_settings", key="ray_num_cpus", convert=_non_negative_float,
          metavar="CPUS", help="fledge, with --workers ray: CPUs reserved for each environment actor (default 1)"),
    _Flag(option="--ray-envs-per-worker", section="env_settings", key="ray_envs_per_worker",
          convert=_int_arg(minimum=1), metavar="K",
          help="fledge, with --workers ray: environment copies each actor hosts (a divisor of --num-envs; default 1)"),
    _Flag(option="--num-areas", section="env_settings", key="num_areas", convert=_int_arg(minimum=1),
          help="training areas per environment (built-in environments: multiplies the agents)"),
    _Flag(option="--max-lifetime-restarts", section="env_settings", key="max_lifetime_restarts",
          convert=_int_arg(minimum=-1),
          help=f"{COPIES}: crashes allowed per copy over the run; -1: unlimited"),
    _Flag(option="--restarts-rate-limit-n", section="env_settings", key="restarts_rate_limit_n",
          convert=_int_arg(minimum=-1), help=f"{COPIES}: crashes allowed per copy within the period; -1: no rate limit"),
    _Flag(option="--restarts-rate-limit-period-s", section="env_settings", key="restarts_rate_limit_period_s",
          convert=_int_arg(minimum=1), help=f"{COPIES}: the period of the restart rate limit, in seconds"),
    _Flag(option="--results-dir", section="checkpoint_settings", key="results_dir", convert=_non_empty,
          metavar="DIR", help="base folder for results"),
    _Flag(option="--timeout-wait", section="env_settings", key="timeout_wait", convert=_int_arg(minimum=1),
          help=f"{WORKERS}: seconds to wait for an environment worker or a Unity player to start or answer"),
    _Flag(option="--width", section="engine_settings", key="width", convert=_int_arg(minimum=1),
          help=f"{UNITY}: window width"),
    _Flag(option="--height", section="engine_settings", key="height", convert=_int_arg(minimum=1),
          help=f"{UNITY}: window height"),
    _Flag(option="--quality-level", section="engine_settings", key="quality_level", convert=_int_arg(minimum=0),
          help=f"{UNITY}: quality level"),
    _Flag(option="--time-scale", section="engine_settings", key="time_scale", convert=_positive_float,
          help=f"{UNITY}: time scale"),
    _Flag(option="--target-frame-rate", section="engine_settings", key="target_frame_rate", convert=_int_arg(),
          help=f"{UNITY}: target frame rate; -1: unlimited"),
    _Flag(option="--capture-frame-rate", section="engine_settings", key="capture_frame_rate", convert=_int_arg(),
          help=f"{UNITY}: capture frame rate"),
    _Flag(option="--no-graphics", section="engine_settings", key="no_graphics",
          help=f"{UNITY}: run every worker without graphics"),
    _Flag(option="--no-graphics-monitor", section="engine_settings", key="no_graphics_monitor",
          help=f"{UNITY}: worker 0 with graphics, the others without"),
    _Flag(option="--torch-device", section="torch_settings", key="device", convert=_non_empty, metavar="DEVICE",
          help="cpu, cuda or cuda:N; default: CUDA when available, else CPU (fledge's small networks are usually "
          "fastest on the CPU)"),
    _Flag(option="--load", section="checkpoint_settings", key="load_model", hidden=True,
          help="deprecated: use --resume"),
    _Flag(option="--train", section="checkpoint_settings", key="train_model", hidden=True,
          help="deprecated: training is the default"),
)
# fmt: on


class _LearnParser(argparse.ArgumentParser):
    """An argument parser whose errors are `ConfigError`s (one message, no exit inside the library)."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{self.prog}: {message}. Run '{self.prog} --help' to see every option.")


def _default_of(section: str, key: str) -> Any:
    for name, model in _SECTION_MODELS:
        if name == section:
            return model.model_fields[key].default
    raise KeyError(section)


@dataclass(frozen=True, kw_only=True)
class _Command:
    """A command that takes (some of) `fledge learn`'s flags: its name, text and the options it honours."""

    prog: str
    description: str
    config_help: str
    options: frozenset[str] | None = None  # None: every flag


LEARN = _Command(
    prog=PROG,
    description="Train agents with reinforcement learning from an ML-Agents style trainer config.",
    config_help="trainer configuration YAML; without it the shipped config of --env is used, if there is one, "
    "else every behavior uses the default settings",
)

CHECK = _Command(
    prog="fledge check",
    description="Validate a trainer config as 'fledge learn' would before training (nothing is written; the "
    "results folder is not looked at) and print every behavior's effective settings. With --env (or "
    "env_settings.env_path) the environment is built and every behavior is checked against it; without, "
    "the config alone is checked.",
    config_help="trainer configuration YAML; without it the shipped config of --env (default 3DBall) is checked "
    "against that environment",
    options=frozenset(
        {"--env", "--env-args", "--num-envs", "--num-areas", "--seed", "--torch-device", "--deterministic", "--debug"}
    ),
)


def _build(*, typed_only: bool, command: _Command = LEARN) -> _LearnParser:
    suppress = argparse.SUPPRESS

    def default(value: Any) -> Any:
        return suppress if typed_only else value

    def honoured(option: str) -> bool:
        return command.options is None or option in command.options

    parser = _LearnParser(
        prog=command.prog,
        description=command.description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=suppress if typed_only else None,
    )
    parser.add_argument(
        "trainer_config_path",
        nargs="?",
        default=default(None),
        metavar="trainer_config_path",
        help=command.config_help,
    )
    for flag in _FLAGS:
        if not honoured(flag.option):
            continue
        help_text = suppress if flag.hidden else flag.help
        if flag.convert is None:
            parser.add_argument(flag.option, dest=flag.key, action="store_true", default=default(False), help=help_text)
        else:
            parser.add_argument(
                flag.option,
                dest=flag.key,
                type=flag.convert,
                metavar=flag.metavar,
                default=default(_default_of(flag.section, flag.key)),
                help=help_text,
            )
    if honoured("--deterministic"):
        parser.add_argument(
            "--deterministic",
            action="store_true",
            default=default(False),
            help="act with the most likely action instead of sampling (every behavior)",
        )
    parser.add_argument(
        "--debug", action="store_true", default=default(False), help="debug-level logging; errors show their traceback"
    )
    if honoured("--quiet"):
        parser.add_argument("--quiet", action="store_true", default=default(False), help="only warnings and errors")
    if command.options is None:
        parser.add_argument("--torch", dest="removed_torch", action="store_true", default=default(False), help=suppress)
        parser.add_argument(
            "--tensorflow", dest="removed_tensorflow", action="store_true", default=default(False), help=suppress
        )
    if honoured("--env-args"):
        parser.add_argument(
            "--env-args",
            dest="env_args",
            nargs=argparse.REMAINDER,
            default=default(None),
            help="every argument after this one is a name=value option of the environment "
            "(built-in task options, gymnasium.make or PettingZoo keyword arguments); for a Unity player, "
            "arguments of its command line, passed as given",
        )
    return parser


def build_learn_parser() -> argparse.ArgumentParser:
    """The `fledge learn` parser, with the defaults shown in --help. Errors raise `ConfigError`."""
    return _build(typed_only=False)


def parse_learn_args(argv: Sequence[str]) -> LearnArgs:
    """Parse `fledge learn` arguments (without the program name). Bad flags raise `ConfigError`."""
    return _parse(argv, LEARN)


def parse_check_args(argv: Sequence[str]) -> LearnArgs:
    """Parse `fledge check` arguments: the config and the subset of learn's flags that check honours."""
    return _parse(argv, CHECK)


def _parse(argv: Sequence[str], command: _Command) -> LearnArgs:
    arguments = list(argv)
    values = vars(_build(typed_only=False, command=command).parse_args(arguments))
    typed = vars(_build(typed_only=True, command=command).parse_args(arguments))
    overrides: dict[str, dict[str, Any]] = {}
    for flag in _FLAGS:
        if flag.key in typed:
            overrides.setdefault(flag.section, {})[flag.key] = typed[flag.key]
    if "env_args" in typed:
        overrides.setdefault("env_settings", {})["env_args"] = list(typed["env_args"])
    path = values["trainer_config_path"]
    removed = tuple(
        option
        for option, dest in (("--torch", "removed_torch"), ("--tensorflow", "removed_tensorflow"))
        if values.get(dest)
    )
    return LearnArgs(
        config_path=Path(path) if path is not None else None,
        overrides=overrides,
        debug=values["debug"],
        quiet=values.get("quiet", False),
        deterministic=values.get("deterministic", False),
        removed_flags=removed,
    )


def _resolve_resume_conflicts(checkpoint: dict[str, Any], *, resume_typed: bool, init_typed: bool) -> None:
    resuming = checkpoint.get("resume") is True or checkpoint.get("load_model") is True
    resuming = resuming or checkpoint.get("resume_from") is not None
    init = checkpoint.get("initialize_from")
    if not resuming or init is None:
        return
    if resume_typed:
        logger.warning("--resume was given, so initialize_from (%s) is ignored.", init)
        checkpoint["initialize_from"] = None
    elif init_typed:
        logger.warning("--initialize-from was given, so 'resume' from the config file is ignored.")
        checkpoint.update(resume=False, load_model=False, resume_from=None)
    # Both from the YAML: CheckpointSettings lets resume win, with a warning.


def _apply_deterministic(options: RunOptions) -> None:
    """--deterministic reaches every listed behavior and the settings of behaviors not listed."""
    for settings in options.behaviors.values():
        settings.network_settings.deterministic = True
    if options.default_settings is not None:
        options.default_settings.network_settings.deterministic = True
    elif not options.behaviors:
        options.default_settings = TrainerSettings(network_settings=NetworkSettings(deterministic=True))


def resolve_run_options(args: LearnArgs) -> RunOptions:
    """Load the config file (if any), apply typed flags over it (spec 3 precedence) and validate."""
    raw: dict[str, Any] = load_config_file(args.config_path) if args.config_path is not None else {}
    source = str(args.config_path) if args.config_path is not None else "the command line"
    overrides = copy.deepcopy({section: dict(values) for section, values in args.overrides.items()})
    for option in args.removed_flags:
        logger.warning("The %s option has been removed; fledge always uses PyTorch. It is ignored.", option)
    checkpoint_flags = overrides.get("checkpoint_settings", {})
    if checkpoint_flags.pop("load_model", False):
        logger.warning("The --load option has been deprecated. Please use --resume instead.")
        checkpoint_flags["resume"] = True
    if checkpoint_flags.pop("train_model", False):
        logger.warning(
            "The --train option has been deprecated: training is the default. Use --inference to run without training."
        )
    if "resume_from" in checkpoint_flags:
        checkpoint_flags["resume"] = True
    for section, values in overrides.items():
        current = raw.get(section)
        if current is None:
            raw[section] = dict(values)
        elif isinstance(current, dict):
            raw[section] = {**current, **values}
        # Otherwise the section is malformed in the file and validation reports it.
    checkpoint = raw.get("checkpoint_settings")
    if isinstance(checkpoint, dict):
        _resolve_resume_conflicts(
            checkpoint,
            resume_typed=checkpoint_flags.get("resume") is True,
            init_typed="initialize_from" in checkpoint_flags,
        )
    options = build_run_options(raw, source=source)
    if args.deterministic:
        _apply_deterministic(options)
    if args.debug:
        options.debug = True
    return options
