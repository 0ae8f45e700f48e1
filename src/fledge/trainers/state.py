"""Helpers to turn trainer parts into TrainerState entries and back, with checks before any change.

Modules are stored under a prefix ("policy." for the networks), optimisers as their tensors plus
JSON param groups, generators as JSON (numpy) or base64 text (torch). Loading checks every name and shape first and raises a
CheckpointError listing the mismatches, so a failed load never leaves a half-restored trainer.
"""

from __future__ import annotations

from typing import Any

import torch

from fledge.checkpoints.parts import (
    check_module,
    check_optimizer,
    generator_state,
    live_tensors,
    load_module,
    load_optimizer,
    module_tensors,
    optimizer_entries,
    set_generator_state,
    set_torch_generator_state,
    torch_generator_state,
)
from fledge.errors import CheckpointError
from fledge.trainers.base import TrainerState

__all__ = [  # the helpers are shared with the reward signals (checkpoints/parts.py)
    "module_tensors",
    "check_module",
    "load_module",
    "optimizer_entries",
    "check_optimizer",
    "load_optimizer",
    "live_tensors",
    "generator_state",
    "set_generator_state",
    "torch_generator_state",
    "set_torch_generator_state",
    "ABSENT_WHEN_OFF",
    "require_fit",
    "policy_optimizer_state",
    "load_policy_optimizer_state",
]


#: Fingerprint entries that runs without the feature leave out ("memory": [memory_size, sequence_length]).
ABSENT_WHEN_OFF = ("memory",)


def require_fit(state: TrainerState, expected: dict[str, Any], problems: list[str], *, what: str) -> None:
    """Raise one CheckpointError listing every mismatch between a stored state and this run."""
    stored = state.meta.get("fingerprint", {})
    for key, value in expected.items():
        if key in stored and stored[key] != value:
            problems.insert(0, f"{key} is {stored[key]!r} in the checkpoint but {value!r} in this run")
    for key in ABSENT_WHEN_OFF:
        if key in stored and key not in expected:
            problems.insert(0, f"{key} is {stored[key]!r} in the checkpoint but not set in this run")
    if problems:
        raise CheckpointError(f"The checkpoint does not fit {what}:\n  " + "\n  ".join(problems))


# -- the state of a trainer with one policy and one Adam optimiser (PPO, POCA) ----------------------------------


def policy_optimizer_state(trainer: Any, modules: dict[str, torch.nn.Module] | None = None) -> TrainerState:
    """The policy, any further `modules` (prefix -> module), the optimiser, the reward signals' networks and
    optimisers ("signal.<name>." tensors, "signals" metadata), counters and generators of `trainer`."""
    tensors = trainer.policy.policy_state()
    for prefix, module in (modules or {}).items():
        tensors.update(module_tensors(prefix, module))
    opt_tensors, opt_meta = optimizer_entries("optimizer.", trainer.optimizer)
    tensors.update(opt_tensors)
    signal_tensors, signal_meta = trainer.signals.state()
    tensors.update(signal_tensors)
    meta: dict[str, Any] = {
        **({"signals": signal_meta} if signal_meta else {}),
        "fingerprint": trainer.fingerprint(),
        "step": trainer.step,
        "update_count": trainer.update_count,
        "optimizer": opt_meta,
        "rng": generator_state(trainer.rng),
        "actor_rng": generator_state(trainer.policy.rng),
        "episode_rewards_since_update": list(trainer.episode_rewards_since_update),
    }
    return TrainerState(tensors=tensors, meta=meta)


def load_policy_optimizer_state(
    trainer: Any,
    state: TrainerState,
    *,
    weights_only: bool,
    label: str,
    modules: dict[str, torch.nn.Module] | None = None,
) -> None:
    """Check `state` against `trainer` (naming every problem, `label` says whose) and load what
    `policy_optimizer_state` saved; with `weights_only` the policy alone. The rollout buffer is cleared."""
    modules = modules or {}
    problems = trainer.policy.check_policy_state(state.tensors)
    if not weights_only:
        for prefix, module in modules.items():
            problems += check_module(prefix, module, state.tensors)
        problems += check_optimizer("optimizer.", trainer.optimizer, state.tensors)
        problems += trainer.signals.check_state(state.tensors, state.meta.get("signals", {}))
        for key in ("step", "update_count", "optimizer", "rng", "actor_rng"):
            if key not in state.meta:
                problems.append(f"the metadata has no '{key}'")
    require_fit(state, trainer.fingerprint(), problems, what=label)
    trainer.policy.load_policy_state(state.tensors)
    if not weights_only:
        for prefix, module in modules.items():
            load_module(prefix, module, state.tensors)
        load_optimizer("optimizer.", trainer.optimizer, state.tensors, state.meta["optimizer"])
        trainer.signals.load_state(state.tensors, state.meta.get("signals", {}))
        trainer.adam.reset()
        trainer.step = int(state.meta["step"])
        trainer.update_count = int(state.meta["update_count"])
        set_generator_state(trainer.rng, state.meta["rng"])
        set_generator_state(trainer.policy.rng, state.meta["actor_rng"])
        trainer.episode_rewards_since_update = list(state.meta.get("episode_rewards_since_update", []))
    trainer.buffer.clear()
    if hasattr(trainer, "signal_transitions"):
        trainer.signal_transitions = []
