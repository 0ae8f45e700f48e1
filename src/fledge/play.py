"""`fledge play RUN`: watch a trained policy act in its environment, print its returns, record a video.

The run's configuration.yaml names the environment (`env_settings.env_path`, null = "3DBall"); it is
built with rendering (`fledge.envs.render.make_for_rendering`) and seeded with `--seed` (default 0).
Each behavior acts with its policy:

* default: the torch checkpoint, rebuilt with its weights (`rebuild_policy`): the newest
  `<B>/<B>-<step>.pt` of each behavior, or the one named by `--checkpoint B-<step>`;
* `--onnx`: the exported model run by onnxruntime: `<B>/<B>-<step>.onnx` with `--checkpoint`, else the
  final `<run>/<B>.onnx`, else the newest `<B>/<B>-<step>.onnx`.

* `--heuristic ENV` (no run): the built-in task ENV's scripted policy (fledge.envs.builtin.heuristics);
* `--keyboard ENV` (no run): a person's keys, one line per decision, on ENV built with one agent
  (fledge.play_keyboard).

With `--record-demo PATH.demo` the followed behavior's decisions (all its agents) are written to an
ML-Agents demonstration file when play ends (fledge.imitation.record); `--record-demo-steps N` plays
until N decisions are recorded instead of `--episodes`.

Actions are sampled from the policy unless `--deterministic` (or, for torch, the run's
`network_settings.deterministic`) asks for the most likely action.

Episodes are counted for ONE agent, the "followed" agent: the lowest agent id of the first behavior
(in name order) that asks for a decision, i.e. agent 0 of the built-in and Gymnasium environments. Play
stops when it has finished `--episodes` episodes (default 3), or after `--max-steps` environment steps
(its unfinished episode is reported as such), or on Ctrl-C (the recording is still closed properly).
Each finished episode's return (sum of rewards) and length (decisions) is printed, then their mean; the
finished episodes of all agents are summarised on one more line.

Frames (`--record out.gif|out.mp4`, or a live window with `--show`): frame k shows the state after k
environment steps, with the decisions about to be applied in it drawn (arrows, chosen boxes), and a
caption strip (run, step, episode, return so far). One final frame shows the state after the last step.
So a recording of S environment steps has exactly S + 1 frames. GIF frame delays are whole
centiseconds (--fps 20 gives 5/100 s); MP4 needs the imageio-ffmpeg package (its own ffmpeg binary).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from fledge.envs.api import ActionTuple, BaseEnv, DecisionSteps
from fledge.errors import ConfigError, RunFolderError
from fledge.play_frames import FrameRecorder, _check_record_path, _Window
from fledge.play_policies import Policies, find_onnx, read_run_config, run_env, run_folder

__all__ = [
    "run_folder",
    "FrameRecorder",
    "PlayResult",
    "add_play_arguments",
    "find_onnx",
    "play",
    "run_play",
]

# ----------------------------------------------------------------------------------------------
# Playing
# ----------------------------------------------------------------------------------------------


@dataclass
class PlayResult:
    behavior: str | None  # the followed agent's behavior and id
    agent_id: int | None
    returns: list[float] = field(default_factory=list)  # the followed agent's finished episodes
    lengths: list[int] = field(default_factory=list)  # their decisions
    steps: int = 0  # environment steps played
    frames: int = 0  # frames recorded or shown (steps + 1), 0 without --record/--show
    all_returns: list[float] = field(default_factory=list)  # every agent's finished episodes
    unfinished_return: float | None = None  # the followed agent's episode in progress when play stopped
    interrupted: bool = False  # stopped by Ctrl-C

    @property
    def mean_return(self) -> float | None:
        return float(np.mean(self.returns)) if self.returns else None


def play(
    run_dir: str | Path | None,
    *,
    checkpoint: str | None = None,
    use_onnx: bool = False,
    episodes: int | None = None,
    record: str | Path | None = None,
    fps: float = 20.0,
    deterministic: bool = False,
    seed: int = 0,
    max_steps: int | None = None,
    show: bool = False,
    heuristic: str | None = None,
    keyboard: str | None = None,
    record_demo: str | Path | None = None,
    record_demo_steps: int | None = None,
    out: TextIO | None = None,
) -> PlayResult:
    """Play a run's policy (or with `heuristic`, a built-in task's scripted policy and no run) in its
    environment; see the module docstring. Prints to `out` (stdout)."""
    out = out if out is not None else sys.stdout
    if episodes is None:  # until --record-demo-steps decisions are recorded, else 3 episodes
        episodes = sys.maxsize if record_demo_steps is not None else 3
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}.")
    if max_steps is not None and max_steps < 0:
        raise ConfigError(f"--max-steps must be 0 or more, got {max_steps}.")
    if record is not None:
        _check_record_path(Path(record))
    if record_demo is not None:
        from fledge.imitation.protocol import require_protocol

        require_protocol(f"--record-demo {record_demo}")
        from fledge.imitation.record import check_demo_path

        check_demo_path(record_demo, record_demo_steps)
    elif record_demo_steps is not None:
        raise ConfigError("--record-demo-steps needs --record-demo PATH.demo.")
    policies: Any = None
    env_kwargs: dict[str, Any] = {}
    if heuristic is not None and keyboard is not None:
        raise ConfigError("fledge play: choose --heuristic or --keyboard, not both.")
    if heuristic is not None:
        env_name, label, name = heuristic, f"the {heuristic} heuristic", f"{heuristic} heuristic"
    elif keyboard is not None:
        from fledge.play_keyboard import KeyboardPolicies

        policies = KeyboardPolicies(keyboard, prompt=out)
        env_name, label, name, env_kwargs = keyboard, "the keyboard", "keyboard", {"num_agents": 1}
    else:
        if run_dir is None:
            raise ConfigError("fledge play needs a run to play, or --heuristic ENV for a built-in scripted policy.")
        run_dir = Path(run_dir)
        if not run_dir.is_dir():
            raise RunFolderError(f"No run folder at {run_dir}.")
        config = read_run_config(run_dir)
        env_name, env_kwargs = run_env(config)
        policies = Policies(run_dir, checkpoint=checkpoint, use_onnx=use_onnx, deterministic=deterministic, seed=seed)
        label, name = f"run '{run_dir.name}'", run_dir.name

    window = _Window(fps) if show else None  # checks for a display; opens on the first frame

    from fledge.envs.render import caption, make_for_rendering, render_rgb

    env = make_for_rendering(env_name, seed=seed, **env_kwargs)
    sinks: list[FrameRecorder | _Window] = []
    result = PlayResult(behavior=None, agent_id=None)
    recorder = None
    try:
        if heuristic is not None:
            from fledge.imitation.record import HeuristicPolicies

            policies = HeuristicPolicies(heuristic, env)
        env.reset()
        for behavior, spec in env.behavior_specs.items():
            policies.get(behavior, spec)  # load (and check) before the first frame
        if record_demo is not None:
            from fledge.imitation.record import DemoRecorder

            recorder = DemoRecorder(record_demo, env.behavior_specs, steps=record_demo_steps)
        if window is not None:
            sinks.append(window)
        if record is not None:
            sinks.append(FrameRecorder(record, fps))
        mode = "deterministic" if deterministic else "sampled"
        print(f"Playing {label} on {env_name} (seed {seed}, {mode} actions): {policies.labels()}", file=out)
        _loop(
            env,
            env_name,
            name,
            policies,
            result,
            episodes,
            max_steps,
            sinks,
            out,
            render_rgb,
            caption,
            recorder=recorder,
        )
    finally:
        for sink in sinks:
            sink.close()
        env.close()
    _summary(result, episodes, out)
    for sink in sinks:
        if isinstance(sink, FrameRecorder):
            print(f"Recorded {sink.frames} frames to {sink.path} ({sink.fps:g} fps).", file=out)
    if recorder is not None:
        print(recorder.close(), file=out)
    return result


def _loop(
    env: BaseEnv,
    env_name: str,
    run_name: str,
    policies: Policies,
    result: PlayResult,
    episodes: int,
    max_steps: int | None,
    sinks: list[Any],
    out: TextIO,
    render_rgb: Callable[..., np.ndarray],
    caption: Callable[..., np.ndarray],
    *,
    recorder: Any = None,
) -> None:
    """Play until `episodes` of the followed agent, `max_steps` steps, Ctrl-C or a full `recorder`
    (a DemoRecorder: it sees every behavior's terminal steps, then its decisions with their actions)."""
    returns: dict[tuple[str, int], float] = {}
    lengths: dict[tuple[str, int], int] = {}
    followed: tuple[str, int] | None = None

    def emit(actions: dict[str, ActionTuple] | None) -> None:
        if not sinks:
            return
        frame = render_rgb(env, actions)
        current = returns.get(followed, 0.0) if followed is not None else 0.0
        episode = min(len(result.returns) + 1, episodes)
        who = "" if followed is None else f"agent {followed[1]}"
        text = (
            f"{run_name} | {env_name} | step {result.steps} | {who} episode {episode}/{episodes} | return {current:.3f}"
        )
        frame = caption(frame, text)
        for sink in sinks:
            sink.add(frame)
        result.frames += 1

    try:
        while True:
            decisions: dict[str, DecisionSteps] = {}
            for behavior in sorted(env.behavior_specs):
                decision, terminal = env.get_steps(behavior)
                policies.end_episodes(behavior, terminal.agent_id)
                if recorder is not None:
                    recorder.terminal(behavior, terminal)
                for i, agent in enumerate(terminal.agent_id.tolist()):
                    key = (behavior, int(agent))
                    total = returns.pop(key, 0.0) + float(terminal.reward[i])
                    length = lengths.pop(key, 0)
                    result.all_returns.append(total)
                    if key == followed:
                        result.returns.append(total)
                        result.lengths.append(length)
                        kind = " (interrupted)" if bool(terminal.interrupted[i]) else ""
                        print(
                            f"episode {len(result.returns)}: return {total:.3f}, {_count(length, 'decision')}{kind}",
                            file=out,
                        )
                for i, agent in enumerate(decision.agent_id.tolist()):
                    key = (behavior, int(agent))
                    returns[key] = returns.get(key, 0.0) + float(decision.reward[i])
                if len(decision):
                    decisions[behavior] = decision
            if followed is None and decisions:
                first = min(decisions)
                followed = (first, int(decisions[first].agent_id.min()))
                result.behavior, result.agent_id = followed
                print(f"Following agent {followed[1]} of behavior '{followed[0]}'.", file=out)
            if len(result.returns) >= episodes or (max_steps is not None and result.steps >= max_steps):
                break
            if recorder is not None and recorder.full():
                break
            actions: dict[str, ActionTuple] = {}
            for behavior, decision in decisions.items():
                actions[behavior] = policies.get(behavior, env.behavior_specs[behavior]).decide(decision)
                env.set_actions(behavior, actions[behavior])
                if recorder is not None:
                    recorder.decided(behavior, decision, actions[behavior])
            emit(actions)
            env.step()
            result.steps += 1
            for behavior, decision in decisions.items():
                for agent in decision.agent_id.tolist():
                    key = (behavior, int(agent))
                    lengths[key] = lengths.get(key, 0) + 1
    except KeyboardInterrupt:
        result.interrupted = True
    if not result.interrupted:
        emit(None)
    if followed is not None and len(result.returns) < episodes and followed in lengths:
        result.unfinished_return = returns.get(followed, 0.0)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _summary(result: PlayResult, episodes: int, out: TextIO) -> None:
    who = f"agent {result.agent_id}" if result.agent_id is not None else "the followed agent"
    if result.unfinished_return is not None:
        why = "interrupted" if result.interrupted else f"stopped after {result.steps} steps (--max-steps)"
        print(
            f"episode {len(result.returns) + 1}: unfinished, {why}; return so far {result.unfinished_return:.3f}",
            file=out,
        )
    if result.returns:
        print(f"mean return of {who} over {_count(len(result.returns), 'episode')}: {result.mean_return:.3f}", file=out)
    else:
        print(f"{who} finished no episode in {result.steps} steps.", file=out)
    if result.all_returns:
        print(
            f"all agents: {_count(len(result.all_returns), 'episode')} finished, mean return "
            f"{float(np.mean(result.all_returns)):.3f} ({result.steps} steps)",
            file=out,
        )


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------


def add_play_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of `fledge play`."""
    parser.description = (
        "Watch a trained policy: play episodes in the run's environment, print their returns, and record "
        "them to a GIF or MP4. Episodes are those of the followed agent (agent 0)."
    )
    parser.add_argument("run_id", nargs="?", default=None, help="the run to play (a folder under --results-dir)")
    parser.add_argument("--results-dir", default="results", help="base folder of the runs (default: results)")
    parser.add_argument(
        "--checkpoint",
        default=None,
        metavar="B-<step>",
        help="a checkpoint, e.g. 3DBall-120000 (default: the newest of each behavior)",
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="run the exported ONNX model with onnxruntime instead of the torch checkpoint",
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=None,
        help="episodes of the followed agent to play (default 3; unlimited with --record-demo-steps)",
    )
    parser.add_argument(
        "--record",
        default=None,
        metavar="OUT.gif|OUT.mp4",
        help="write every frame to a .gif or .mp4 (steps + 1 frames)",
    )
    parser.add_argument("--fps", type=float, default=20.0, help="frames per second of the recording (default 20)")
    parser.add_argument("--deterministic", action="store_true", help="take the most likely action instead of sampling")
    parser.add_argument("--seed", type=int, default=0, help="environment (and torch policy sampling) seed (default 0)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many environment steps")
    parser.add_argument("--show", action="store_true", help="show the frames in a window (needs a display)")
    parser.add_argument(
        "--versus",
        default=None,
        metavar="RUN|random",
        help="self-play games: the run's policy against another run's (a run id under --results-dir, or a run "
        "folder) or against random actions; prints wins, draws and losses of each side (fledge.play_versus)",
    )
    parser.add_argument("--games", type=int, default=100, help="games to play with --versus (default 100)")
    parser.add_argument(
        "--heuristic",
        default=None,
        metavar="ENV",
        help="play a built-in task's scripted policy instead of a run (e.g. Basic, 3DBall, Hallway)",
    )
    parser.add_argument(
        "--keyboard",
        default=None,
        metavar="ENV",
        help="choose a built-in task's actions with keys, one line per decision (Basic, Hallway, GridWorld, ...)",
    )
    parser.add_argument(
        "--record-demo",
        default=None,
        metavar="PATH.demo",
        help="record the followed behavior's decisions to an ML-Agents .demo file (for behavioral cloning, GAIL)",
    )
    parser.add_argument(
        "--record-demo-steps",
        type=int,
        default=None,
        metavar="N",
        help="with --record-demo: stop once N decisions are recorded",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def run_play(args: argparse.Namespace) -> int:
    """`fledge play` with parsed arguments; 0 on success, 130 when stopped with Ctrl-C."""
    scripted = args.heuristic if args.heuristic is not None else args.keyboard
    if args.run_id is None and scripted is None:
        raise ConfigError(
            "fledge play: name a run to play, or --heuristic ENV (a built-in task's scripted policy) or --keyboard ENV."
        )
    if args.run_id is not None and scripted is not None:
        raise ConfigError(f"fledge play: --heuristic/--keyboard {scripted} plays no run; drop the run '{args.run_id}'.")
    run_dir = run_folder(args.results_dir, args.run_id) if args.run_id is not None else None
    if args.versus is not None:
        if run_dir is None:
            raise ConfigError("fledge play --versus needs a run.")
        if args.record_demo is not None:
            raise ConfigError("fledge play --versus records no demonstration; drop --record-demo.")
        from fledge.play_versus import versus_from_arguments

        return versus_from_arguments(run_dir, args)
    result = play(
        run_dir,
        checkpoint=args.checkpoint,
        use_onnx=args.onnx,
        episodes=args.episodes,
        record=args.record,
        fps=args.fps,
        deterministic=args.deterministic,
        seed=args.seed,
        max_steps=args.max_steps,
        show=args.show,
        heuristic=args.heuristic,
        keyboard=args.keyboard,
        record_demo=args.record_demo,
        record_demo_steps=args.record_demo_steps,
    )
    return 130 if result.interrupted else 0


def command(argv: Sequence[str]) -> int:
    """`fledge play` on its arguments."""
    from fledge.console_setup import setup_logging

    args = add_play_arguments(argparse.ArgumentParser(prog="fledge play")).parse_args(list(argv))
    setup_logging(args.debug)
    return run_play(args)


def main(argv: list[str] | None = None) -> int:
    """`python -m fledge.play ...` is `fledge play ...`."""
    from fledge.console_setup import run_command

    return run_command(command, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
