"""What a run checks before it trains, shared by `fledge learn` (api.run) and `fledge check`.

Two steps, in this order:

- `check_run(options)`: everything that needs no environment: sections and features this version
  refuses, and the settings of every listed behavior and of `default_settings` (`check_behavior`).
  A new config-level rule (a refusal, or a warning that a key has no effect here) belongs in one of
  these two functions, so that `learn` and `check` both apply it.
- `check_environment(options, names)`: the behaviors of the built environment are all covered by
  the configuration.

Building each behavior's trainer against its environment spec (api.make_trainer) comes after these
and adds the checks that need the spec (e.g. each observation's kind and a visual encoder's minimum size).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fledge.config.schema import GAILSettings
from fledge.envs.behavior_id import behavior_ids_by_brain
from fledge.errors import ConfigError
from fledge.trainers.registry import trainer_class
from fledge.trainers.settings import reward_signals

#: Trainers that honour a behavioral_cloning block.
BC_TRAINERS = ("ppo", "sac")

if TYPE_CHECKING:
    from fledge.config import RunOptions, TrainerSettings

#: TrainerSettings sections of features not built yet.
REFUSED_FEATURES: tuple[str, ...] = ()


def check_behavior(where: str, settings: TrainerSettings) -> None:
    """Refuse, before anything is built, what a trainer of these settings would not honour."""
    for key in REFUSED_FEATURES:
        if getattr(settings, key, None) is not None:
            raise ConfigError(f"{where}.{key}: not available in this version of fledge; remove it from the config.")
    trainer_class(where, settings)
    reward_signals(settings, where)
    check_behavioral_cloning(where, settings)
    for signal in settings.reward_signals.values():
        if isinstance(signal, GAILSettings):
            check_demo_path(signal.demo_path, f"{where}.reward_signals.gail.demo_path")


def check_demo_path(path: str, where: str) -> None:
    """A demo_path (BC, GAIL) that is missing, empty, damaged or not a demonstration is refused before a run
    builds anything (the behavior's spec is checked when its trainer is built)."""
    from fledge.imitation.protocol import require_protocol

    require_protocol(where)
    from fledge.imitation.demo_reader import check_demonstrations

    check_demonstrations(path, where)


def check_behavioral_cloning(where: str, settings: TrainerSettings) -> None:
    """A behavioral_cloning block: for a trainer that clones (PPO, SAC), with readable demonstrations."""
    block = getattr(settings, "behavioral_cloning", None)
    if block is None:
        return
    trainer = str(getattr(settings.trainer_type, "value", settings.trainer_type))
    if trainer not in BC_TRAINERS:
        raise ConfigError(
            f"{where}.behavioral_cloning: behavioral cloning is available for {', '.join(BC_TRAINERS)} only, not "
            f"for trainer_type '{trainer}'; remove the block or change the trainer."
        )
    check_demo_path(block.demo_path, f"{where}.behavioral_cloning.demo_path")


def check_run(options: RunOptions) -> None:
    """Every check of a run's configuration that needs no environment (see the module text)."""
    if options.environment_parameters:
        check_criteria_behaviors(options)
    for name, settings in options.behaviors.items():
        check_behavior(f"behaviors.{name}", settings)
    if options.default_settings is not None:
        check_behavior("default_settings", options.default_settings)


def check_criteria_behaviors(options: RunOptions) -> None:
    """A completion criterion names a behavior the configuration can train: one it lists, or any when
    `default_settings` (or an empty `behaviors`) covers the rest; the environment's behaviors are checked
    once it is built (curriculum.controller.CurriculumController.check_behaviors)."""
    if not options.behaviors or options.default_settings is not None:
        return
    for name, settings in (options.environment_parameters or {}).items():
        for index, lesson in enumerate(settings.curriculum):
            criteria = lesson.completion_criteria
            if criteria is not None and criteria.behavior not in options.behaviors:
                raise ConfigError(
                    f"environment_parameters.{name}.curriculum[{index}] ('{lesson.name}'): completion_criteria "
                    f"names the behavior '{criteria.behavior}', which the configuration does not list (behaviors: "
                    f"{', '.join(options.behaviors)}) and no default_settings covers; name one of them."
                )


def check_environment(options: RunOptions, names: Iterable[str]) -> list[str]:
    """The environment's behaviors (`names`) are all covered by the configuration; returns their brain names.

    Their settings were checked by `check_run` (listed behaviors and `default_settings`; a behavior
    of a config that names none gets all defaults, which need no check).
    """
    behaviors = list(behavior_ids_by_brain(names))  # one trainer per brain name (teams `B?team=N` share it)
    for name in behaviors:
        options.behavior_settings(name)  # an uncovered behavior is a ConfigError naming it
    return behaviors


def effective_settings(settings: TrainerSettings) -> dict[str, Any]:
    """A behavior's settings with every default filled in, as plain values: what `fledge check` prints
    and what a run reports as its Hyperparameters (console and TensorBoard)."""
    dumped: dict[str, Any] = settings.model_dump(mode="json")
    return dumped
