"""Helpers to turn trainer parts into TrainerState entries and back, with checks before any change.

Modules are stored under a prefix ("policy." for the networks), optimisers as their tensors plus
JSON param groups, generators as JSON (numpy) or base64 text (torch). Loading checks every name and shape first and raises a
CheckpointError listing the mismatches, so a failed load never leaves a half-restored trainer.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import torch

from fledge.errors import CheckpointError
from fledge.networks.device import to_cpu
from fledge.trainers.base import TrainerState


def module_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """CPU copies of a module's state, whatever its device (checkpoints always hold CPU tensors)."""
    return {f"{prefix}{k}": to_cpu(v) for k, v in module.state_dict().items()}


def check_module(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> list[str]:
    """Mismatches between a module and the tensors stored under `prefix` (empty when they fit)."""
    problems = []
    own = module.state_dict()
    stored = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    for name, value in own.items():
        if name not in stored:
            problems.append(f"'{prefix}{name}' is missing")
        elif tuple(stored[name].shape) != tuple(value.shape):
            problems.append(
                f"'{prefix}{name}' has shape {tuple(stored[name].shape)}, this run's network needs {tuple(value.shape)}"
            )
    for name in stored:
        if name not in own:
            problems.append(f"'{prefix}{name}' is not part of this run's network")
    return problems


def load_module(prefix: str, module: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy stored (CPU) tensors into the module's parameters and buffers, on the module's device."""
    module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, strict=True)


def optimizer_entries(prefix: str, optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors = {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            tensors[f"{prefix}{idx}.{key}"] = to_cpu(torch.as_tensor(value))
    groups = json.loads(json.dumps(sd["param_groups"]))  # plain JSON values (tuples become lists)
    return tensors, {"param_groups": groups}


def check_optimizer(prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor]) -> list[str]:
    problems = []
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for idx, param in enumerate(params):
        for key in ("exp_avg", "exp_avg_sq"):
            name = f"{prefix}{idx}.{key}"
            if name in tensors and tuple(tensors[name].shape) != tuple(param.shape):
                problems.append(
                    f"'{name}' has shape {tuple(tensors[name].shape)}, this run's optimiser needs {tuple(param.shape)}"
                )
    return problems


def load_optimizer(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]
) -> None:
    """Restore an optimiser's state; torch moves each moment onto its parameter's device."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        if not name.startswith(prefix):
            continue
        idx_str, key = name[len(prefix) :].split(".", 1)
        state.setdefault(int(idx_str), {})[key] = value.clone()
    groups = [dict(g) for g in meta["param_groups"]]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def live_tensors(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's parameters and buffers themselves (not copies) under `prefix`."""
    return {f"{prefix}{k}": t for k, t in module.state_dict(keep_vars=True).items()}


def generator_state(rng: np.random.Generator, *, as_text: bool = False) -> dict[str, Any]:
    """A numpy Generator's state for the metadata JSON; `as_text` writes its integers as decimal strings
    (they exceed 64 bits, which not every JSON reader keeps)."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return str(int(value))
        return value

    state = dict(rng.bit_generator.state)
    return convert(state) if as_text else state


def set_generator_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    """Restore what `generator_state` wrote (either form), refusing a state of another generator kind."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        return value

    restored = convert(state)
    if restored.get("bit_generator") != rng.bit_generator.state["bit_generator"]:
        raise CheckpointError(
            f"random generator state of kind {restored.get('bit_generator')!r} does not fit this trainer"
        )
    rng.bit_generator.state = restored


def torch_generator_state(gen: torch.Generator) -> str:
    """A torch Generator's state as base64 text."""
    return base64.b64encode(gen.get_state().numpy().tobytes()).decode("ascii")


def set_torch_generator_state(gen: torch.Generator, text: str) -> None:
    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8).copy()
    gen.set_state(torch.from_numpy(raw))


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
