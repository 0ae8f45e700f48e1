"""`fledge check CONFIG`: validate a configuration as a run would, and show the effective settings.

The checks are the ones `fledge learn` makes before training (fledge.preflight), in the same order.
With an environment (`--env`, or `env_settings.env_path` in the config) it is built and reset, and
a trainer is created for each of its behaviors (nothing is written), so every error a run would
raise before training is raised here; the results folder is not looked at. Without one, the
configuration alone is checked: every listed behavior and `default_settings`. Then the settings of
each behavior are printed as YAML with every default filled in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import yaml

from fledge import preflight

if TYPE_CHECKING:
    from fledge.config import RunOptions


def validate(options: RunOptions, *, build: bool = True) -> dict[str, dict[str, object]]:
    """Run the pre-training checks; return behavior name -> fully resolved TrainerSettings (plain values).

    With `build` the environment is built and every behavior it has is checked and returned; without,
    the listed behaviors are returned (`default_settings` is checked too; `render` shows it).
    """
    from fledge import api

    preflight.check_run(options)
    api.configure_torch(options, 1)
    if not build:
        api.report_effects(options, None, own_env=True)
        return {name: preflight.effective_settings(s) for name, s in options.behaviors.items()}
    import torch

    from fledge.stats import StatsReporter
    from fledge.stats.timers import Timers

    seed = api.resolve_seed(options.env_settings.seed)
    env = api.make_environment(options, seed, player_logs=False)  # check writes nothing
    try:
        env.reset()
        names = preflight.check_environment(options, env.behavior_specs)
        api.report_effects(options, env, own_env=True)
        for name in names:
            # on the CPU: building the networks is the check, and needs no accelerator
            api.make_trainer(options, name, env, StatsReporter([]), seed, Timers(), device=torch.device("cpu"))
    finally:
        env.close()
    return {name: preflight.effective_settings(options.behavior_settings(name)) for name in names}


def render(options: RunOptions, settings: dict[str, dict[str, object]], *, built: bool = True) -> str:
    """The report `fledge check` prints: what was checked, then the settings as YAML."""
    if built:
        env_name = options.env_settings.env_path or "3DBall (default)"
        lines = [
            f"# environment: {env_name}; num_envs: {options.env_settings.num_envs}",
            "# effective settings per behavior:",
        ]
    else:
        lines = [
            "# no environment given (--env or env_settings.env_path): the configuration alone was checked;",
            "# behaviors were not checked against an environment",
            "# effective settings of the listed behaviors and of default_settings:",
        ]
    shown: dict[str, object] = {"behaviors": settings} if settings else {}
    if not built and options.default_settings is not None:
        shown["default_settings"] = preflight.effective_settings(options.default_settings)
    if shown:
        lines.append(yaml.safe_dump(shown, sort_keys=False, default_flow_style=False).rstrip())
    else:
        lines.append("# (none listed: every behavior of the environment would use the default settings)")
    if built:
        lines.append("# the configuration is valid for this environment")
    else:
        lines.append("# the configuration is valid (give --env to check it against an environment)")
    return "\n".join(lines)
