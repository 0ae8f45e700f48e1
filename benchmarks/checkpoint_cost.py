"""Cost of one checkpoint unit for the 3DBall PPO policy, against training time at the default interval.

One checkpoint = full trainer state (.pt) + ONNX export with the onnxruntime parity check + status
entry + checkpoint.pt, all written atomically (fsync included). Prints the median time of several
checkpoints and its share of the training time between two checkpoints, using the throughput
measured in the same run.

    .venv/bin/python benchmarks/checkpoint_cost.py [--repeats 10]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fledge import api
from fledge.checkpoints.manager import CheckpointManager
from fledge.checkpoints.status import TrainingStatus
from fledge.config import build_run_options, load_config_file
from fledge.configs import shipped_config
from fledge.envs import registry
from fledge.stats import StatsReporter
from fledge.trainers.ppo.trainer import PPOTrainer
from ppo_throughput import options_for, parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--train-steps", type=int, default=36_000)
    args = parser.parse_args()
    logging.getLogger("fledge").setLevel(logging.WARNING)
    raw = load_config_file(shipped_config("3DBall"))  # type: ignore[arg-type]
    options = build_run_options(raw)
    settings = options.behavior_settings("3DBall")
    interval = int(settings.checkpoint_interval)
    env = registry.make("3DBall", seed=0)
    trainer = PPOTrainer(
        behavior_name="3DBall", spec=env.behavior_specs["3DBall"], settings=settings, stats=StatsReporter([]), seed=0
    )
    with tempfile.TemporaryDirectory() as tmp:
        manager = CheckpointManager(run_dir=Path(tmp), status=TrainingStatus(Path(tmp) / "run_logs" / "status.json"))
        times = []
        for i in range(args.repeats):
            trainer.step = 1000 * (i + 1)
            start = time.perf_counter()
            manager.save(trainer, keep_checkpoints=5, run_meta={})
            times.append(time.perf_counter() - start)
        result = api.run(options_for(args.train_steps, Path(tmp), "train"))
    steps = result.behaviors["3DBall"].steps
    rate = steps / sum(parts(result.timers).values())
    per_checkpoint = statistics.median(times)
    train_time = interval / rate
    print(f"3DBall PPO policy (obs 8, 128x2, 2 continuous, normalised), {args.repeats} checkpoints")
    print(
        f"  one checkpoint: median {per_checkpoint * 1000:.1f} ms (range {min(times) * 1000:.1f} - {max(times) * 1000:.1f} ms)"
    )
    print(f"  training throughput in the same run: {rate:,.0f} steps/s")
    print(f"  checkpoint_interval {interval:,} steps = {train_time:.1f} s of training")
    print(f"  checkpoint share of training time: {100 * per_checkpoint / (train_time + per_checkpoint):.3f} %")
    small = 12_000
    print(f"  (at an interval of {small:,} steps: {100 * per_checkpoint / (small / rate + per_checkpoint):.2f} %)")


if __name__ == "__main__":
    main()
