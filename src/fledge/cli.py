"""The `fledge` command: parses arguments, then calls the library. Nothing else lives here."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fledge.console_setup import log, run_command, setup_logging

if TYPE_CHECKING:
    from fledge.config import LearnArgs

USAGE = """usage: fledge <command> [options]

commands:
  learn [CONFIG] [--run-id R] ...   train (default: the built-in 3DBall with its shipped PPO config)
  envs                              list the built-in environments and their behaviors
  check [CONFIG] [--env NAME]       validate a config as learn would (against the environment with --env)
                                    and print the effective settings
  export RUN [--checkpoint B-<step>] write the ONNX model of a run's checkpoints again
  play RUN [--onnx] [--record out.gif]  watch a trained policy, print its returns, record a GIF/MP4
  plot RUN [RUN ...] [--output p.png]   training curves of runs in one PNG (seed runs grouped)
  sweep CONFIG --seeds N [--space S]    many learn runs (seeds x search space) as Ray tasks, then a summary
"""


def _with_shipped_config(args: LearnArgs, argv: Sequence[str], parse: Callable[[list[str]], LearnArgs]) -> LearnArgs:
    """Without a config file, the shipped config of --env (default 3DBall) is used, if there is one."""
    if args.config_path is not None:
        return args
    from fledge.configs import default_config_path
    from fledge.envs import registry

    env_name = _env_flag(argv) or registry.DEFAULT_ENV
    if ":" not in env_name and not registry.is_unity(env_name):
        registry.describe(env_name)  # an unknown name fails here, with suggestions
    shipped = default_config_path(env_name, registry.default_trainer(env_name))
    if shipped is None:
        log.info("No config file given and none shipped for %s: default settings for every behavior", env_name)
        return args
    log.info("No config file given: using %s", shipped)
    return parse([str(shipped), *argv])


def cmd_learn(argv: Sequence[str]) -> int:
    from fledge.config import parse_learn_args, resolve_run_options

    args = parse_learn_args(list(argv))
    setup_logging(args.debug)
    if args.quiet:
        log.setLevel(logging.WARNING)
    args = _with_shipped_config(args, argv, parse_learn_args)
    options = resolve_run_options(args)
    if options.debug and not args.debug:
        log.setLevel(logging.DEBUG)  # a top-level `debug: true` acts like --debug (errors show their traceback)
    from fledge.api import run

    result = run(options, display="none" if args.quiet else "auto")
    inference = options.checkpoint_settings.inference
    for name, res in result.behaviors.items():
        mean = res.mean_return()
        shown = "n/a" if mean is None else f"{mean:.3f}"
        did = f"ran its policy for {res.steps} steps" if inference else f"{res.steps} steps"
        line = f"{name}: {did}, {res.episodes} episodes, mean reward of the last 100 episodes {shown}"
        if args.quiet:
            print(line)
        else:
            log.info("%s", line)
    # an interrupted run was stopped by a signal: the shell's convention, 130 after Ctrl-C, 143 after SIGTERM
    return 0 if result.stop_signal is None else 128 + result.stop_signal


def cmd_export(argv: Sequence[str]) -> int:
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="fledge export",
        description="Write the ONNX model of a run's checkpoints again (newest of each behavior by default).",
    )
    parser.add_argument("run_id", help="the run to export (a folder under --results-dir)")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument("--checkpoint", default=None, help="one checkpoint, e.g. 3DBall-120000")
    parser.add_argument("--opset", type=int, default=9, help="ONNX opset (default 9, as ML-Agents)")
    parser.add_argument("--output", type=Path, default=None, help="file to write (default: next to the .pt)")
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args(list(argv))
    setup_logging(args.debug)
    from fledge.checkpoints.export import export_checkpoints

    export_checkpoints(
        Path(args.results_dir) / args.run_id, checkpoint=args.checkpoint, opset=args.opset, output=args.output
    )
    return 0


def _env_flag(argv: Sequence[str]) -> str | None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--env", default=None)
    known, _ = parser.parse_known_args(list(argv))
    return known.env


def cmd_envs(argv: Sequence[str]) -> int:
    from fledge.envs import registry

    parser = argparse.ArgumentParser(prog="fledge envs", description="List the built-in environments.")
    parser.parse_args(list(argv))
    for name in registry.names():
        info = registry.describe(name)
        print(f"{name}")
        print(f"    {info.description}")
        for line in info.behavior_specs.splitlines():
            print(f"    {line}")
        facts = []
        if info.num_agents is not None:
            facts.append(f"{info.num_agents} agents")
        if info.max_episode_steps:
            facts.append(f"episodes of at most {info.max_episode_steps} decisions")
        if info.optimal_return is not None:
            facts.append(f"best mean return {info.optimal_return:g}")
        if facts:
            print(f"    {', '.join(facts)}")
    return 0


def cmd_check(argv: Sequence[str]) -> int:
    from fledge.check import render, validate
    from fledge.config.flags import parse_check_args, resolve_run_options

    args = parse_check_args(list(argv))
    setup_logging(args.debug, stream=sys.stderr)  # stdout is the report alone: YAML with comments
    had_config = args.config_path is not None
    args = _with_shipped_config(args, argv, parse_check_args)
    options = resolve_run_options(args)
    build = options.env_settings.env_path is not None or not had_config
    print(f"# config: {args.config_path or 'none (default settings)'}")
    print(render(options, validate(options, build=build), built=build))
    return 0


def cmd_play(argv: Sequence[str]) -> int:
    from fledge.play import command

    return command(argv)


def cmd_plot(argv: Sequence[str]) -> int:
    from fledge.plot import command

    return command(argv)


def cmd_sweep(argv: Sequence[str]) -> int:
    from fledge.sweep.runner import command

    return command(argv)


COMMANDS = {
    "learn": cmd_learn,
    "envs": cmd_envs,
    "export": cmd_export,
    "check": cmd_check,
    "play": cmd_play,
    "plot": cmd_plot,
    "sweep": cmd_sweep,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    handler = COMMANDS.get(command)
    if handler is None:
        print(f"fledge: unknown command '{command}'.\n{USAGE}", file=sys.stderr)
        return 2
    return run_command(handler, rest)


if __name__ == "__main__":
    sys.exit(main())
