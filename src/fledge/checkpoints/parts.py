"""Torch modules, optimisers and random generators as checkpoint entries (tensors plus JSON) and back.

Pure helpers with no knowledge of trainers: the trainers' state (trainers/state.py) and the reward
signals' state (rewards/base.py) both store their parts with them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import torch

from fledge.errors import CheckpointError
from fledge.networks.device import to_cpu


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
