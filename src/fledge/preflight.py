"""What a run checks before it trains, shared by `fledge learn` (api.run) and `fledge check`.

Two steps, in this order:

- `check_run(options)`: everything that needs no environment: sections and features this version
  refuses, and the settings of every listed behavior and of `default_settings` (`check_behavior`).
  A new config-level rule (a refusal, or a warning that a key has no effect here) belongs in one of
  these two functions, so that `learn` and `check` both apply it.
- `check_environment(options, names)`: the behaviors of the built environment are all covered by
  the configuration.

Building each behavior's trainer against its environment spec (api.make_trainer) comes after these
and adds the checks that need the spec (e.g. vector observations only).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fledge.envs.behavior_id import behavior_ids_by_brain
from fledge.errors import ConfigError

if TYPE_CHECKING:
    from fledge.config import RunOptions, TrainerSettings

#: trainer_type -> (module, class) of the trainers this version has.
TRAINER_CLASSES = {
    "ppo": ("fledge.trainers.ppo.trainer", "PPOTrainer"),
    "sac": ("fledge.trainers.sac.trainer", "SACTrainer"),
}

#: TrainerSettings sections of features not built yet.
REFUSED_FEATURES = ("self_play", "behavioral_cloning")


def _trainer_module(trainer_type: str) -> ModuleType | None:
    entry = TRAINER_CLASSES.get(trainer_type)
    if entry is None:
        return None
    try:
        return importlib.import_module(entry[0])
    except ModuleNotFoundError as exc:
        if exc.name != entry[0]:
            raise
        return None


def trainer_class(where: str, settings: TrainerSettings) -> type[Any]:
    """The trainer class of `settings.trainer_type`; `where` names the settings in the error
    (e.g. "behaviors.3DBall" or "default_settings")."""
    trainer_type = str(settings.trainer_type.value)
    module = _trainer_module(trainer_type)
    if module is None:
        available = ", ".join(k for k, (m, _) in TRAINER_CLASSES.items() if importlib.util.find_spec(m) is not None)
        raise ConfigError(
            f"{where}.trainer_type: '{trainer_type}' is not available in this version of fledge "
            f"(available: {available})."
        )
    cls: type[Any] = getattr(module, TRAINER_CLASSES[trainer_type][1])
    return cls


def check_behavior(where: str, settings: TrainerSettings) -> None:
    """Refuse, before anything is built, what a trainer of these settings would not honour."""
    from fledge.trainers.base import refuse_memory, reward_signals  # (imports torch: only when a run is checked)

    for key in REFUSED_FEATURES:
        if getattr(settings, key, None) is not None:
            raise ConfigError(f"{where}.{key}: not available in this version of fledge; remove it from the config.")
    trainer_class(where, settings)
    refuse_memory(settings, where)
    reward_signals(settings, where)


def check_run(options: RunOptions) -> None:
    """Every check of a run's configuration that needs no environment (see the module text)."""
    if options.environment_parameters:
        raise ConfigError(
            "environment_parameters (samplers and curriculum) are not available in this version of fledge; "
            "remove the section from the config."
        )
    for name, settings in options.behaviors.items():
        check_behavior(f"behaviors.{name}", settings)
    if options.default_settings is not None:
        check_behavior("default_settings", options.default_settings)


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
