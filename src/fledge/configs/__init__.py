"""Trainer configurations shipped with fledge for the built-in environments (ML-Agents' YAML format)."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_ENV = "3DBall"


def shipped_config(env_name: str, trainer: str = "ppo") -> Path | None:
    """The shipped config of an environment, if there is one ("gym:CartPole-v1" -> ppo/CartPole-v1.yaml)."""
    base = env_name.split(":", 1)[1] if ":" in env_name else env_name
    path = CONFIG_DIR / trainer / f"{base.replace('/', '_')}.yaml"
    return path if path.is_file() else None


def default_config_path(env_name: str | None, trainer: str = "ppo") -> Path | None:
    """The config `fledge learn` uses when none is given: the environment's shipped config for `trainer`
    (its registered default trainer, PPO for most), if there is one."""
    return shipped_config(env_name or DEFAULT_ENV, trainer)
