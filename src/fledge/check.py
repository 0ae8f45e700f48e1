"""`fledge check CONFIG`: validate a configuration as a run would, and show the effective settings.

The checks are the ones `fledge learn` makes before training (fledge.preflight), in the same order.
With an environment (`--env`, or `env_settings.env_path` in the config) it is built and reset, and
a trainer is created for each of its behaviors (nothing is written), so every error a run would
raise before training is raised here (environment parameters the environment does not read, a
completion criterion naming a behavior it does not have); the results folder is not looked at.
Without one, the configuration alone is checked: every listed behavior and `default_settings`. Then
the environment parameters (samplers, lessons and their completion criteria) are listed as comments,
and the settings of each behavior are printed as YAML with every default filled in.
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
    curriculum = None
    if options.environment_parameters:
        from fledge.curriculum.controller import CurriculumController

        curriculum = CurriculumController(options.environment_parameters, run_seed=seed)
    draws = curriculum.draws() if curriculum is not None else None
    env = api.make_environment(options, seed, player_logs=False, draws=draws)  # check writes nothing
    try:
        env.reset()
        names = preflight.check_environment(options, env.behavior_specs)
        if curriculum is not None:
            curriculum.check_behaviors(names)
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
    lines[-1:-1] = parameter_lines(options)  # before the "effective settings" line
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


def parameter_lines(options: RunOptions) -> list[str]:
    """The environment parameters a run would send, as comment lines: each lesson's value and criteria."""
    from fledge.curriculum.controller import describe_value
    from fledge.curriculum.samplers import lesson_seeds

    parameters = options.environment_parameters or {}
    if not parameters:
        return []
    run_seed = int(options.env_settings.seed)
    fixed = run_seed != -1
    seeds = lesson_seeds(parameters, run_seed if fixed else 0)
    lines = ["# environment parameters (a sampler draws a value per agent at each episode start):"]
    for name, settings in parameters.items():
        lines.append(f"#   {name}:")
        for index, lesson in enumerate(settings.curriculum):
            text = f"#     lesson {index} '{lesson.name}': {describe_value(lesson)}"
            if lesson.value.sampler_type != "constant":
                own = lesson.value.sampler_parameters.seed != -1
                seed = seeds[name, index]
                text += f", seed {seed}" if own or fixed else f", seed run seed + {seed}"
            criteria = lesson.completion_criteria
            if criteria is not None:
                smoothing = ", smoothed" if criteria.signal_smoothing and criteria.measure == "reward" else ""
                reset = ", then the environments reset" if criteria.require_reset else ""
                text += (
                    f"; next lesson when {criteria.measure} of {criteria.behavior} > {criteria.threshold:g}{smoothing} "
                    f"after at least {criteria.min_lesson_length} episodes{reset}"
                )
            lines.append(text)
    return lines
