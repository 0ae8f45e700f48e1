"""The trainers this version has, by `trainer_type`: the learner class and the policy class of each.

Both are imported only when asked for, so that reading the registry (preflight, `fledge check`) costs no
torch import. A new trainer family adds one line to each table.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import TYPE_CHECKING, Any

from fledge.errors import ConfigError

if TYPE_CHECKING:
    from fledge.config import TrainerSettings

#: trainer_type -> (module, class) of the trainers (what learns).
TRAINER_CLASSES = {
    "ppo": ("fledge.trainers.ppo.trainer", "PPOTrainer"),
    "sac": ("fledge.trainers.sac.trainer", "SACTrainer"),
    "poca": ("fledge.trainers.poca.trainer", "POCATrainer"),
}

#: trainer_type -> (module, class) of their policies (what acts; usable without a trainer).
POLICY_CLASSES = {
    "ppo": ("fledge.trainers.ppo.policy", "PPOPolicy"),
    "sac": ("fledge.trainers.sac.policy", "SACPolicy"),
    "poca": ("fledge.trainers.poca.policy", "POCAPolicy"),
}


def _module(table: dict[str, tuple[str, str]], trainer_type: str) -> ModuleType | None:
    entry = table.get(trainer_type)
    if entry is None:
        return None
    try:
        return importlib.import_module(entry[0])
    except ModuleNotFoundError as exc:
        if exc.name != entry[0]:
            raise
        return None


def available() -> list[str]:
    """The trainer types whose modules are present."""
    return [k for k, (m, _) in TRAINER_CLASSES.items() if importlib.util.find_spec(m) is not None]


def _lookup(table: dict[str, tuple[str, str]], trainer_type: str, where: str) -> type[Any]:
    module = _module(table, trainer_type)
    if module is None:
        raise ConfigError(
            f"{where}.trainer_type: '{trainer_type}' is not available in this version of fledge "
            f"(available: {', '.join(available())})."
        )
    cls: type[Any] = getattr(module, table[trainer_type][1])
    return cls


def trainer_class(where: str, settings: TrainerSettings) -> type[Any]:
    """The trainer class of `settings.trainer_type`; `where` names the settings in the error
    (e.g. "behaviors.3DBall" or "default_settings")."""
    return _lookup(TRAINER_CLASSES, str(settings.trainer_type.value), where)


def trainer_class_of(trainer_type: str, *, where: str = "checkpoint") -> type[Any]:
    """The trainer class of a trainer type given as text (a checkpoint's fingerprint)."""
    return _lookup(TRAINER_CLASSES, trainer_type, where)


def policy_class_of(trainer_type: str, *, where: str = "checkpoint") -> type[Any]:
    """The policy class that acts for a trainer type (`fledge export`, `fledge play`, frozen copies)."""
    return _lookup(POLICY_CLASSES, trainer_type, where)
