"""`fledge play RUN --versus OTHER|random --games N`: a trained policy against another one in a game
with teams (behavior ids `Brain?team=N`, e.g. the built-in Tennis), counting wins, draws and losses.

The run's environment (its configuration.yaml) is built twice: in the first half of the games the run
plays the lowest team id and the opponent every other team; in the second half the run plays the next
team id, so a side's advantage cancels out. The run's policies are its torch checkpoints (the newest, or
`--checkpoint`) or with `--onnx` its ONNX models; the opponent is another run (a run id under
`--results-dir`, or a run folder), played the same way, or `random` (uniform random actions).

A game is one finished episode of the run's team: for each agent of that team whose episode ends (for
agents in a group, one per group), the result is its last reward plus group reward: above 0 a win, below
0 a loss, 0 or an interrupted episode a draw. Every match of the environment plays at once (`--num-areas`,
default 16), so N games take few steps. The counts of the two sides mirror each other.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from fledge.envs.api import ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps
from fledge.envs.behavior_id import parse_behavior_id
from fledge.errors import ConfigError, RunFolderError
from fledge.play_policies import AgentMemories, Policies, read_run_config, run_env, run_folder

RANDOM = "random"
STEPS_PER_GAME_LIMIT = 10_000  # a game that never ends stops the command with a clear error


@dataclass
class VersusResult:
    """Wins, draws and losses of the run (its opponent's are the mirror), in all and per team played."""

    games: int = 0
    wins: int = 0
    draws: int = 0
    losses: int = 0
    by_team: dict[str, list[int]] = field(default_factory=dict)  # team played -> [wins, draws, losses]

    def add(self, team: str, outcome: int) -> None:
        """outcome: 0 win, 1 draw, 2 loss."""
        self.games += 1
        if outcome == 0:
            self.wins += 1
        elif outcome == 1:
            self.draws += 1
        else:
            self.losses += 1
        self.by_team.setdefault(team, [0, 0, 0])[outcome] += 1


class _RandomSide:
    """Uniform random actions for every behavior (allowed ones where the environment masks)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.label = "random actions"
        self.memories = AgentMemories(0)

    def get(self, behavior: str, spec: BehaviorSpec) -> _RandomSide:
        self.spec = spec
        return self

    def decide(self, steps: DecisionSteps) -> ActionTuple:
        action = self.spec.action_spec.random_action(len(steps), self.rng)
        if steps.action_mask is not None:  # draw each branch among its allowed actions
            for b, mask in enumerate(steps.action_mask):
                p = (~mask).astype(np.float64)
                p /= np.maximum(p.sum(axis=1, keepdims=True), 1.0)
                action.discrete[:, b] = (self.rng.random((len(steps), 1)) > np.cumsum(p, axis=1)).sum(axis=1)
        return action

    def end_episodes(self, behavior: str, agent_ids: np.ndarray) -> None:
        return None

    def labels(self) -> str:
        return self.label


def team_ids(specs: dict[str, BehaviorSpec], env_name: str) -> list[int]:
    teams = sorted({parse_behavior_id(b).team_id for b in specs})
    if len(teams) < 2:
        raise ConfigError(
            f"--versus needs a game with teams (behavior ids Brain?team=N); {env_name} has only "
            f"{', '.join(sorted(specs))}."
        )
    return teams


def versus(
    run_dir: Path,
    opponent: str,
    *,
    games: int = 100,
    results_dir: str | Path = "results",
    checkpoint: str | None = None,
    use_onnx: bool = False,
    deterministic: bool = False,
    seed: int = 0,
    num_areas: int = 16,
    out: TextIO | None = None,
) -> VersusResult:
    """Play `games` games of the run against `opponent` (a run id or folder, or "random"); see the module text."""
    from fledge.envs import registry

    out = out if out is not None else sys.stdout
    if games < 1:
        raise ConfigError(f"--games must be at least 1, got {games}.")
    config = read_run_config(run_dir)
    env_name, env_kwargs = run_env(config)
    ours = Policies(run_dir, checkpoint=checkpoint, use_onnx=use_onnx, deterministic=deterministic, seed=seed)
    theirs: Any
    if opponent == RANDOM:
        theirs, their_name = _RandomSide(seed + 1), RANDOM
    else:
        other = Path(opponent)
        other_dir = other if (other / "configuration.yaml").is_file() else run_folder(results_dir, opponent)
        theirs = Policies(other_dir, checkpoint=None, use_onnx=use_onnx, deterministic=deterministic, seed=seed + 1)
        their_name = other_dir.name
    result = VersusResult()
    halves = [games - games // 2, games // 2]
    for half, count in enumerate(halves):
        if not count:
            continue
        env = registry.make(env_name, seed=seed + half, num_areas=num_areas, **env_kwargs)
        try:
            env.reset()
            specs = dict(env.behavior_specs)
            our_team = team_ids(specs, env_name)[half % 2]
            for behavior, spec in specs.items():  # load (and check) every policy before the first step
                (ours if parse_behavior_id(behavior).team_id == our_team else theirs).get(behavior, spec)
            _play_games(env, specs, ours, theirs, our_team, count, result)
        finally:
            env.close()
    print(
        f"Versus on {env_name}: '{run_dir.name}' ({ours.labels()}) against '{their_name}' ({theirs.labels()})", file=out
    )
    for team, (w, d, lost) in sorted(result.by_team.items()):
        print(f"  '{run_dir.name}' as {team}: {w} wins, {d} draws, {lost} losses", file=out)
    share = 100.0 * result.wins / result.games
    print(
        f"'{run_dir.name}': {result.wins} wins, {result.draws} draws, {result.losses} losses in {result.games} games "
        f"({share:.1f}% wins); '{their_name}': {result.losses} wins, {result.draws} draws, {result.wins} losses",
        file=out,
    )
    return result


def _play_games(
    env: BaseEnv,
    specs: dict[str, BehaviorSpec],
    ours: Any,
    theirs: Any,
    our_team: int,
    count: int,
    result: VersusResult,
) -> None:
    target = result.games + count
    team_name = f"team {our_team}"
    steps = 0
    while result.games < target:
        for behavior in sorted(specs):
            decision, terminal = env.get_steps(behavior)
            ours_now = parse_behavior_id(behavior).team_id == our_team
            side = ours if ours_now else theirs
            side.end_episodes(behavior, terminal.agent_id)
            if ours_now and len(terminal):
                seen_groups: set[int] = set()
                for i in range(len(terminal)):
                    group = int(terminal.group_id[i])
                    if group and group in seen_groups:
                        continue
                    seen_groups.add(group)
                    final = float(terminal.reward[i]) + float(terminal.group_reward[i])
                    outcome = 1 if bool(terminal.interrupted[i]) or final == 0.0 else 0 if final > 0.0 else 2
                    if result.games < target:
                        result.add(team_name, outcome)
            if len(decision):
                env.set_actions(behavior, side.get(behavior, specs[behavior]).decide(decision))
        env.step()
        steps += 1
        if steps > STEPS_PER_GAME_LIMIT * count:
            raise ConfigError(
                f"--versus: {steps} steps played and only {result.games} of the games finished; the environment's "
                "episodes do not end."
            )


def versus_from_arguments(run_dir: Path, args: argparse.Namespace) -> int:
    """`fledge play RUN --versus ...` with parsed arguments."""
    if args.record or args.show:
        raise ConfigError("--versus plays many matches at once without frames; leave out --record and --show.")
    if not run_dir.is_dir():
        raise RunFolderError(f"No run folder at {run_dir}.")
    versus(
        run_dir,
        str(args.versus),
        games=int(args.games),
        results_dir=args.results_dir,
        checkpoint=args.checkpoint,
        use_onnx=bool(args.onnx),
        deterministic=bool(args.deterministic),
        seed=int(args.seed),
    )
    return 0
