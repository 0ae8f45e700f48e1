"""`fledge sweep CONFIG --seeds N [--space space.yaml]`: many `fledge learn` runs as Ray tasks.

Every point of the search space (sweep/space.py) runs with every seed 0..N-1 (`--seed-base` shifts
them): a trial. Each trial is one plain Ray task that writes its config into the sweep's folder and runs
`python -m fledge learn` in a subprocess (a fresh interpreter per run: no torch or random state shared
between trials), with its own results folder `<results-dir>/<sweep-id>/t<point>-s<seed>` (the `-s<seed>`
suffix lets `fledge plot` draw a point's seeds as one band). The task returns a small JSON record (exit
code, final mean reward of each behavior read from the run's CSV summaries, the node it ran on), so
the summary (sweep/summary.py) needs no shared file system; the results folders themselves lie on the
node that ran each trial (share `--results-dir` between nodes to have them in one place).

Every trial's config is validated before any task starts; a trial that fails is reported in the
summary with its exit code and the end of its error output, and the sweep goes on with the others.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fledge.errors import ConfigError, RunFolderError
from fledge.sweep.space import SearchSpace, apply_point, describe_point, load_space
from fledge.sweep.summary import TrialRow, render_table, write_summary

log = logging.getLogger("fledge")

REWARD = "Environment/Cumulative Reward"


@dataclass(frozen=True)
class Trial:
    index: int  # the point's index in the space
    point: str  # its description
    run_id: str
    seed: int
    config: dict[str, Any]  # the raw training config with the point applied


def plan_trials(config: dict[str, Any], space: SearchSpace, seeds: Sequence[int]) -> list[Trial]:
    """Every point with every seed; each trial's config is checked as `fledge learn` would check it."""
    from fledge.config import build_run_options

    trials = []
    for index, point in enumerate(space.points()):
        raw = apply_point(config, point)
        for seed in seeds:
            run_id = f"t{index:02d}-s{seed}"
            probe = {**raw, "env_settings": {**(raw.get("env_settings") or {}), "seed": seed}}
            try:
                build_run_options(probe)
            except ConfigError as exc:
                raise ConfigError(f"sweep trial {run_id} ({describe_point(point)}): {exc}") from None
            trials.append(Trial(index=index, point=describe_point(point), run_id=run_id, seed=seed, config=raw))
    return trials


def run_trial(spec: str) -> str:
    """One trial, inside a Ray task: `fledge learn` in a subprocess; returns a JSON record of the outcome."""
    from fledge.files import atomic_write_text

    values = json.loads(spec)
    folder, run_id = Path(values["folder"]), str(values["run_id"])
    config = atomic_write_text(folder / "configs" / f"{run_id}.yaml", values["config"])
    command = [sys.executable, "-m", "fledge", "learn", str(config), "--run-id", run_id]
    command += ["--results-dir", str(folder), "--seed", str(values["seed"]), "--quiet", "--force"]
    start = time.time()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    record: dict[str, Any] = {
        "run_id": run_id,
        "returncode": done.returncode,
        "elapsed_s": time.time() - start,
        "error": done.stderr[-2000:] if done.returncode else "",
        "node": _node_id(),
        "behaviors": final_rewards(folder / run_id),
    }
    return json.dumps(record)


def _node_id() -> str:
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:
        return ""


def final_rewards(run_dir: Path) -> dict[str, dict[str, float]]:
    """behavior -> {"reward": last Cumulative Reward summary, "step": its step}; {} when the run has none."""
    from fledge.plot import read_run_logs

    try:
        logs = read_run_logs(run_dir)
    except (RunFolderError, ConfigError):
        return {}
    out = {}
    for behavior, curves in logs.items():
        if REWARD in curves and len(curves[REWARD][0]):
            steps, values = curves[REWARD]
            out[behavior] = {"reward": float(values[-1]), "step": float(steps[-1])}
    return out


def rows_of(trial: Trial, record: dict[str, Any]) -> list[TrialRow]:
    status = "ok" if record["returncode"] == 0 else f"exit {record['returncode']}"
    elapsed, node = round(float(record["elapsed_s"]), 2), str(record.get("node", ""))
    behaviors: dict[str, dict[str, float]] = record.get("behaviors") or {"": {"reward": float("nan"), "step": 0.0}}
    return [
        TrialRow(
            trial=trial.index,
            point=trial.point,
            run_id=trial.run_id,
            seed=trial.seed,
            behavior=name,
            final_reward=float(v["reward"]),
            step=int(v["step"]),
            status=status,
            elapsed_s=elapsed,
            node=node,
        )
        for name, v in behaviors.items()
    ]


def sweep(
    config_path: Path,
    *,
    seeds: int,
    space: SearchSpace,
    sweep_id: str,
    results_dir: Path,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    seed_base: int = 0,
    force: bool = False,
) -> list[TrialRow]:
    """Run every trial as a Ray task, then write the summary; returns its rows (trial order)."""
    from fledge.config.loading import load_config_file
    from fledge.config.sections import check_run_name
    from fledge.rollout.ray_connect import connect, require_ray

    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {seeds}.")
    try:
        check_run_name(sweep_id, "--sweep-id")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    require_ray()
    folder = Path(results_dir) / sweep_id
    trials = plan_trials(load_config_file(config_path), space, [seed_base + s for s in range(seeds)])
    if folder.exists() and not force:
        raise RunFolderError(
            f"The sweep folder {folder} exists already. Choose another --sweep-id, or pass --force to run the sweep "
            "again (its trials' folders are replaced)."
        )
    if force and folder.is_dir():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    connection = connect(address, cpus_needed=cpus_per_trial)
    ray = connection.ray
    try:
        task = ray.remote(run_trial).options(num_cpus=cpus_per_trial, max_retries=0)
        log.info(
            "Sweep %s: %d trial(s) (%d point(s) x %d seed(s)) as Ray tasks",
            sweep_id,
            len(trials),
            len(trials) // seeds,
            seeds,
        )
        pending = {
            task.remote(
                json.dumps(
                    {
                        "folder": str(folder.absolute()),
                        "run_id": t.run_id,
                        "seed": t.seed,
                        "config": yaml.safe_dump(t.config, sort_keys=False),
                    }
                )
            ): t
            for t in trials
        }
        records: dict[str, dict[str, Any]] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            trial = pending.pop(done[0])
            try:
                record = json.loads(ray.get(done[0]))
            except ray.exceptions.RayError as exc:
                record = {"returncode": -1, "elapsed_s": 0.0, "error": str(exc), "behaviors": {}}
            records[trial.run_id] = record
            if record["returncode"]:
                log.warning(
                    "Trial %s failed (exit %s):\n%s", trial.run_id, record["returncode"], record["error"][-600:]
                )
            else:
                log.info("Trial %s finished in %.1f s", trial.run_id, record["elapsed_s"])
    finally:
        connection.close()
    rows = [row for t in trials for row in rows_of(t, records[t.run_id])]
    print(render_table(rows))
    for path in write_summary(folder, rows):
        log.info("Wrote %s", path)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fledge sweep",
        description="Run `fledge learn` for every point of a search space and every seed, as Ray tasks "
        "(pip install 'fledge[ray]'), then write a summary table and a plot of the final rewards.",
    )
    parser.add_argument("config", type=Path, help="the training config (YAML) every trial starts from")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per point of the space (default 1)")
    parser.add_argument("--seed-base", type=int, default=0, help="the first seed (default 0)")
    parser.add_argument("--space", type=Path, default=None, help="search space YAML (grid or random over config keys)")
    parser.add_argument("--sweep-id", default="sweep", help="folder under --results-dir for the trials (default sweep)")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--ray-address", default=None, help="'auto' or host:port joins a Ray cluster; default: local")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="CPUs Ray reserves for each trial")
    parser.add_argument("--force", action="store_true", help="replace an existing sweep folder of this id")
    parser.add_argument("--debug", action="store_true")
    return parser


def command(argv: Sequence[str]) -> int:
    from fledge.console_setup import setup_logging

    args = build_parser().parse_args(list(argv))
    setup_logging(args.debug)
    rows = sweep(
        args.config,
        seeds=args.seeds,
        space=load_space(args.space),
        sweep_id=args.sweep_id,
        results_dir=args.results_dir,
        address=args.ray_address,
        cpus_per_trial=args.cpus_per_trial,
        seed_base=args.seed_base,
        force=args.force,
    )
    return 0 if all(r.status == "ok" for r in rows) else 1
