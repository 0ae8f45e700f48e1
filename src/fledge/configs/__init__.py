"""Trainer configurations shipped with fledge for the built-in environments (ML-Agents' YAML format)."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_ENV = "3DBall"


def shipped_config(env_name: str, trainer: str = "ppo") -> Path | None:
    """The shipped config of a built-in environment, if there is one."""
    path = CONFIG_DIR / trainer / f"{env_name}.yaml"
    return path if path.is_file() else None


def default_config_path(env_name: str | None) -> Path | None:
    """The config `fledge learn` uses when none is given: the environment's shipped PPO config, if any."""
    return shipped_config(env_name or DEFAULT_ENV)
