"""`fledge check CONFIG`: validate a configuration as a run would, and show the effective settings.

The environment is built and reset, and a trainer is created for each of its behaviors (nothing is
written), so every error a run would raise before training is raised here. Then the settings of each
behavior are printed as YAML with every default filled in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from fledge.config import RunOptions


def effective_settings(options: RunOptions, *, build: bool = True) -> dict[str, dict[str, object]]:
    """Behavior name -> fully resolved TrainerSettings (as plain values)."""
    from fledge import api
    from fledge.envs.behavior_id import behavior_ids_by_brain

    names = list(options.behaviors)
    if build:
        from fledge.stats import StatsReporter
        from fledge.stats.timers import Timers

        seed = api.resolve_seed(options.env_settings.seed)
        env = api.make_environment(options, seed)
        try:
            env.reset()
            names = list(behavior_ids_by_brain(env.behavior_specs))  # one trainer per brain name
            api.configure_torch(options, 1)
            for name in names:
                api.make_trainer(options, name, env, StatsReporter([]), seed, Timers())
        finally:
            env.close()
    return {name: options.behavior_settings(name).model_dump(mode="json") for name in names}


def render(options: RunOptions, settings: dict[str, dict[str, object]]) -> str:
    env_name = options.env_settings.env_path or "3DBall (default)"
    lines = [f"# environment: {env_name}; num_envs: {options.env_settings.num_envs}", "# effective settings per behavior:"]
    lines.append(yaml.safe_dump({"behaviors": settings}, sort_keys=False, default_flow_style=False).rstrip())
    return "\n".join(lines)
