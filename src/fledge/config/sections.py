"""Sections mirrored by `fledge learn` flags (spec 2.9): env, engine, checkpoint and torch settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, overload

from pydantic import Field, ValidationInfo, field_validator, model_validator

from fledge.config._base import Float, Int, StrictModel

__all__ = [
    "DEFAULT_ENV",
    "CheckpointSettings",
    "EngineSettings",
    "EnvironmentSettings",
    "TorchSettings",
    "check_run_name",
]

logger = logging.getLogger(__name__)

DEFAULT_ENV = "3DBall"
"""The built-in environment fledge trains when ``env_settings.env_path`` is null."""


@overload
def check_run_name(value: str, what: str) -> str: ...
@overload
def check_run_name(value: None, what: str) -> None: ...
def check_run_name(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    if value in {".", ".."} or any(ch in value for ch in "/\\\0"):
        raise ValueError(f"{what} {value!r} must be a plain folder name (no '/', '\\' or '..')")
    return value


class EnvironmentSettings(StrictModel):
    env_path: str | None = None
    """A built-in environment name ("3DBall"), "gym:CartPole-v1", or a path; null means DEFAULT_ENV."""
    env_args: list[str] | None = None
    base_port: Int = Field(default=5005, ge=1, le=65535)
    num_envs: Int = Field(default=1, ge=1)
    """fledge runs built-in environments in-process, so num_envs > 1 is allowed without env_path."""
    num_areas: Int = Field(default=1, ge=1)
    timeout_wait: Int = Field(default=60, ge=1)
    seed: Int = Field(default=-1, ge=-1)
    max_lifetime_restarts: Int = Field(default=10, ge=-1)
    restarts_rate_limit_n: Int = Field(default=1, ge=-1)
    restarts_rate_limit_period_s: Int = Field(default=60, ge=1)
    worker_processes: bool | None = None
    """fledge: with num_envs > 1, step the copies in worker processes (true) or in this process (false);
    null chooses: in-process for built-in environments (cheap), processes for Gymnasium/PettingZoo ones."""
    workers: Literal["local", "processes", "ray"] | None = None
    """fledge: where environment copies are stepped: "local" (this process), "processes" (worker processes),
    "ray" (Ray actors, locally or on a cluster; needs `pip install fledge[ray]`); null: as worker_processes says.
    With "ray", even one copy (num_envs 1) runs in an actor."""
    ray_address: str | None = None
    """fledge, with workers: ray: null starts a local Ray instance; "auto" or "host:port" joins a running cluster."""
    ray_num_cpus: Float = Field(default=1.0, ge=0.0)
    """fledge, with workers: ray: CPUs Ray reserves for each environment actor (placement across nodes)."""
    ray_envs_per_worker: Int = Field(default=1, ge=1)
    """fledge, with workers: ray: environment copies each actor hosts (num_envs / this many actors)."""

    @model_validator(mode="after")
    def _workers_agree(self) -> EnvironmentSettings:
        if self.workers is not None and self.worker_processes is not None:
            if self.worker_processes != (self.workers == "processes"):
                raise ValueError(
                    f"workers: {self.workers} and worker_processes: {str(self.worker_processes).lower()} disagree; "
                    "set only workers (local, processes or ray)"
                )
        if self.workers == "ray" and self.num_envs % self.ray_envs_per_worker:
            raise ValueError(
                f"ray_envs_per_worker {self.ray_envs_per_worker} must divide num_envs {self.num_envs} (every Ray "
                "actor hosts as many environment copies)"
            )
        if self.ray_address is not None and not self.ray_address.strip():
            raise ValueError("ray_address must not be empty (null starts a local Ray instance)")
        return self

    @property
    def environment_name(self) -> str:
        """`env_path`, or fledge's default built-in environment when it is null."""
        return self.env_path if self.env_path is not None else DEFAULT_ENV


class EngineSettings(StrictModel):
    width: Int = Field(default=84, ge=1)
    height: Int = Field(default=84, ge=1)
    quality_level: Int = Field(default=5, ge=0)
    time_scale: Float = Field(default=20.0, gt=0.0)
    target_frame_rate: Int = -1
    capture_frame_rate: Int = 60
    no_graphics: bool = False
    no_graphics_monitor: bool = False


class CheckpointSettings(StrictModel):
    run_id: str = "ppo"
    initialize_from: str | None = None
    load_model: bool = False
    """Deprecated alias of `resume`: folded into it (with a warning) and cleared."""
    resume: bool = False
    force: bool = False
    train_model: bool = False
    inference: bool = False
    results_dir: str = "results"
    resume_from: str | None = None
    """fledge: resume from this checkpoint (e.g. ``3DBall-12000``) instead of ``checkpoint.pt``; implies resume."""
    onnx_opset: int = Field(default=9, ge=9, le=17)
    """fledge: ONNX opset of exported models (ML-Agents 1.1.0 writes 9; Unity's Sentis also reads newer ones)."""

    @field_validator("run_id")
    @classmethod
    def _run_id(cls, value: str) -> str:
        return check_run_name(value, "run_id")

    @field_validator("initialize_from")
    @classmethod
    def _init_from(cls, value: str | None) -> str | None:
        return check_run_name(value, "initialize_from")

    @field_validator("resume_from", "results_dir")
    @classmethod
    def _not_empty(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and not value.strip():
            raise ValueError(f"{info.field_name} must not be empty")
        return value

    @model_validator(mode="after")
    def _resolve_resume(self) -> CheckpointSettings:
        if self.load_model:
            logger.warning("'load_model' (--load) is deprecated; use 'resume' (--resume) instead.")
            self.resume = True
            self.load_model = False
        if self.resume_from is not None:
            self.resume = True
        if self.resume and self.initialize_from is not None:
            logger.warning(
                "Both resume and initialize_from=%s were set; resuming, so initialize_from is ignored.",
                self.initialize_from,
            )
            self.initialize_from = None
        return self

    @property
    def write_path(self) -> Path:
        return Path(self.results_dir) / self.run_id

    @property
    def run_logs_dir(self) -> Path:
        return self.write_path / "run_logs"

    @property
    def maybe_init_path(self) -> Path | None:
        return None if self.initialize_from is None else Path(self.results_dir) / self.initialize_from


class TorchSettings(StrictModel):
    device: str | None = None
