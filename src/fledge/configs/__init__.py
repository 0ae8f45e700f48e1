"""Trainer configurations shipped with fledge for the built-in environments (ML-Agents' YAML format)."""

from __future__ import annotations

from pathlib import Path

from fledge.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent
DEFAULT_ENV = "3DBall"


def shipped_config(env_name: str, trainer: str = "ppo") -> Path | None:
    """The shipped config of a built-in environment, if there is one."""
    path = CONFIG_DIR / trainer / f"{env_name}.yaml"
    return path if path.is_file() else None


def default_config_path(env_name: str | None) -> Path:
    """The config `fledge learn` uses when none is given: the environment's shipped PPO config."""
    name = env_name or DEFAULT_ENV
    path = shipped_config(name)
    if path is None:
        shipped = sorted(p.stem for p in (CONFIG_DIR / "ppo").glob("*.yaml"))
        raise ConfigError(
            f"No config file was given and fledge ships none for environment '{name}' "
            f"(shipped: {', '.join(shipped)}). Pass a config file: fledge learn my_config.yaml --env {name}"
        )
    return path
