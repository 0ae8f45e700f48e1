"""`RunLifecycle`: one run from the checks before its first write to its last checkpoint.

It owns the run's resolved seed, its folder, its training status (`run_logs/training_status.json`) and
its checkpoint manager. It restores the trainers before anything is written (--resume and --inference
from the newest or the named checkpoint; --initialize-from and init_path copy weights only), prepares
the folder, decides when a trainer's next checkpoint is due, and saves a trainer's checkpoint together
with the run's own state: the seed and the torch, Python and environment random generators, so that a
resumed run continues the numbers of the original one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fledge import __version__
from fledge.checkpoints import run_fit
from fledge.checkpoints.manager import CheckpointManager
from fledge.checkpoints.status import TrainingStatus
from fledge.config.sections import DEFAULT_ENV
from fledge.errors import CheckpointError
from fledge.preflight import check_run
from fledge.run.folder import check_run_folder, prepare_run_folder
from fledge.run.seeds import run_seed
from fledge.trainers.base import RUN_PREFIX, trainer_part

if TYPE_CHECKING:
    from fledge.config import RunOptions
    from fledge.envs.api import BaseEnv
    from fledge.trainers.base import Trainer

log = logging.getLogger("fledge")

TORCH_RNG = f"{RUN_PREFIX}torch_rng"


class RunLifecycle:
    """The run's seed, folder, status and checkpoints; `open` it, then restore, prepare, begin and save."""

    def __init__(self, *, options: RunOptions, path: Path, seed: int) -> None:
        """A run in `path` with its resolved `seed`; with --resume or --inference its status is read."""
        self.options, self.path, self.seed = options, Path(path), seed
        cp = options.checkpoint_settings
        self.inference = bool(cp.inference)
        status_path = self.path / "run_logs" / "training_status.json"
        self.status = TrainingStatus.load(status_path) if cp.resume or cp.inference else TrainingStatus(status_path)
        self.status.seed = seed
        self.checkpoints = CheckpointManager(run_dir=self.path, status=self.status, opset=int(cp.onnx_opset))
        self.next_checkpoint: dict[str, int] = {}  # per behavior: the step at which its next checkpoint is due

    @classmethod
    def open(cls, options: RunOptions) -> RunLifecycle:
        """Check the run folder and the configuration, then resolve the seed; nothing is written."""
        path = check_run_folder(options)
        check_run(options)
        return cls(options=options, path=path, seed=run_seed(options, path))

    def seed_generators(self) -> None:
        """Seed torch's and Python's global generators (before the trainers are built)."""
        torch.manual_seed(self.seed)
        random.seed(self.seed)

    # -- before the first step --------------------------------------------------------------------
    def restore(self, trainers: Mapping[str, Trainer], env: BaseEnv) -> None:
        """What the options ask for: resume every trainer (--resume, --inference), or copy weights into the
        ones that have a source (--initialize-from, init_path); nothing otherwise."""
        cp = self.options.checkpoint_settings
        if cp.resume or cp.inference:
            self.resume(trainers, env)
        elif cp.initialize_from is not None or any(self.options.behavior_settings(n).init_path for n in trainers):
            self.initialize_from(trainers, Path(cp.results_dir) / cp.initialize_from if cp.initialize_from else None)

    def resume(self, trainers: Mapping[str, Trainer], env: BaseEnv) -> None:
        """--resume: every behavior continues from its newest (or the named) checkpoint."""
        resume_from = self.options.checkpoint_settings.resume_from
        if resume_from and not any(resume_from.startswith(f"{b}-") for b in trainers):
            raise CheckpointError(
                f"--resume-from {resume_from}: no behavior of this run is called that way "
                f"(behaviors: {', '.join(trainers)}); use <behavior>-<step>."
            )
        flag = "--inference" if self.inference else "--resume"
        env_name = str(self.options.env_settings.env_path or DEFAULT_ENV)
        for name, trainer in trainers.items():
            chosen = resume_from if resume_from and resume_from.startswith(f"{name}-") else None
            path = self.checkpoints.resume_path(name, chosen)
            if path is None:
                raise CheckpointError(
                    run_fit.missing_checkpoint_message(
                        checkpoints=self.checkpoints,
                        behavior=name,
                        specs=env.behavior_specs,
                        flag=flag,
                        env_name=env_name,
                    )
                )
            state, run_meta = self.checkpoints.load(path)
            try:
                trainer.set_state(trainer_part(state))
            except CheckpointError as exc:
                advice = run_fit.how_to_go_on(self.path, flag, env_name)
                raise CheckpointError(f"{path}: {exc}\n{advice}") from None
            self._restore_random_state(state.tensors, run_meta, env)
            trainer.load_auxiliary(self.checkpoints.folder(name))
            self.schedule_checkpoint(trainer)
            if self.inference:
                log.info("Running the policy of %s from step %d (%s) without training.", name, trainer.step, path)
            else:
                log.info("Resuming training of %s from step %d (%s).", name, trainer.step, path)

    def initialize_from(self, trainers: Mapping[str, Trainer], source_dir: Path | None) -> None:
        """--initialize-from / init_path: copy network weights (and normaliser) from another run; start at step 0."""
        for name, trainer in trainers.items():
            init_path = self.options.behavior_settings(name).init_path
            if init_path:
                path = Path(init_path)
                if source_dir is not None and not path.is_absolute() and not path.exists():
                    path = source_dir / name / init_path
            elif source_dir is not None:
                path = source_dir / name / "checkpoint.pt"
            else:
                continue
            if not path.is_file():
                raise CheckpointError(
                    f"Could not initialize '{name}' from {path}: the file does not exist. "
                    f"Check --initialize-from / init_path (run folder: {source_dir})."
                )
            state, _ = self.checkpoints.load(path)
            try:
                trainer.set_state(trainer_part(state), weights_only=True)
            except CheckpointError as exc:
                raise CheckpointError(f"{path}: {exc}") from None
            log.info("Initializing %s from %s.", name, path)

    def _restore_random_state(self, tensors: dict[str, torch.Tensor], run_meta: dict[str, Any], env: BaseEnv) -> None:
        if TORCH_RNG in tensors:
            torch.set_rng_state(tensors[TORCH_RNG].to(torch.uint8))
        if "python_random" in run_meta:
            version, internal, gauss = run_meta["python_random"]
            random.setstate((version, tuple(internal), gauss))
        env_state = run_meta.get("environment_random")
        if env_state is not None and hasattr(env, "set_random_state"):
            env.set_random_state(env_state)

    def prepare_folder(self) -> None:
        """Clear (--force), check and write the run folder's configuration; --inference writes nothing."""
        if not self.inference:
            prepare_run_folder(self.options, self.path, self.seed)

    def begin(self, names: list[str]) -> None:
        """Training starts: leftovers of an interrupted checkpoint are cleaned and the status is written."""
        for name in names:
            self.checkpoints.clean_orphans(name)
        self.status.write()

    # -- checkpoints ------------------------------------------------------------------------------
    def schedule_checkpoint(self, trainer: Trainer) -> None:
        """The trainer's next checkpoint: the next multiple of its checkpoint_interval after its step."""
        interval = max(1, int(self.options.behavior_settings(trainer.name).checkpoint_interval))
        self.next_checkpoint[trainer.name] = (trainer.step // interval + 1) * interval

    def checkpoint_due(self, trainer: Trainer) -> bool:
        return trainer.step >= self.next_checkpoint[trainer.name] and trainer.should_train

    def run_meta(self, env: BaseEnv) -> dict[str, Any]:
        """The run's part of a checkpoint: versions, run id, seed and the Python and environment generators."""
        env_state = env.random_state() if hasattr(env, "random_state") else None
        return {
            "fledge_version": __version__,
            "torch_version": torch.__version__,
            "run_id": self.options.checkpoint_settings.run_id,
            "seed": self.seed,
            "python_random": list(random.getstate()),
            "environment_random": env_state,
        }

    def save_checkpoint(self, trainer: Trainer, env: BaseEnv, *, final: bool = False) -> None:
        """Write the trainer's checkpoint unit with the run's state (a final one is also copied to <run>/<B>.onnx)."""
        self.checkpoints.save(
            trainer,
            keep_checkpoints=int(self.options.behavior_settings(trainer.name).keep_checkpoints),
            run_meta=self.run_meta(env),
            extra_tensors={TORCH_RNG: torch.get_rng_state()},
            final=final,
        )
