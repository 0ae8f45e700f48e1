"""The torch device of a run: resolving `torch_settings.device`, and moving numpy batches onto it.

Trainers keep their networks, optimiser state and update tensors on the run's device; acting stays in
numpy on the CPU (a synchronised copy of the weights), and checkpoints always hold CPU tensors. On the
CPU nothing here copies: `to_device` shares the numpy array's memory.
"""

from __future__ import annotations

import numpy as np
import torch

from fledge.errors import ConfigError

CPU = torch.device("cpu")

__all__ = ["CPU", "as_device", "is_cpu", "resolve_device", "to_cpu", "to_device"]


def resolve_device(requested: str | None) -> torch.device:
    """`torch_settings.device` as a torch.device: null picks CUDA when torch has it, else the CPU.

    'cpu', 'cuda' and 'cuda:N' are accepted; CUDA must be available and N in range. Anything else is a
    ConfigError that says what to use instead.
    """
    if requested is None:
        return torch.device("cuda") if torch.cuda.is_available() else CPU
    text = requested.strip().lower()
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise ConfigError(
            f"torch_settings.device: '{requested}' is not a device name; use 'cpu', 'cuda' or 'cuda:N' "
            "(--torch-device), or leave it unset to use CUDA when available."
        ) from None
    if device.type == "cpu":
        return CPU
    if device.type != "cuda":
        raise ConfigError(
            f"torch_settings.device: '{requested}' is not supported; fledge trains on 'cpu' or 'cuda' ('cuda:N'). "
            "Use --torch-device cpu."
        )
    if not torch.cuda.is_available():
        raise ConfigError(
            f"torch_settings.device: '{requested}' was asked for, but CUDA is not available "
            f"(torch {torch.__version__}{'' if torch.version.cuda else ', a build without CUDA'}). "
            "Use --torch-device cpu (or torch_settings.device: cpu)."
        )
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f"torch_settings.device: '{requested}' does not exist; this machine has {count} CUDA device(s) "
            f"(cuda:0 to cuda:{count - 1})."
        )
    return device


def as_device(device: torch.device | str | None) -> torch.device:
    """A torch.device from what a caller passes (None means the CPU); no checks beyond torch's."""
    if device is None:
        return CPU
    return device if isinstance(device, torch.device) else torch.device(device)


def is_cpu(device: torch.device) -> bool:
    return device.type == "cpu"


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A numpy array as a tensor on `device`: the same memory on the CPU, one copy elsewhere."""
    tensor = torch.from_numpy(array)
    return tensor if device.type == "cpu" else tensor.to(device)


def to_cpu(tensor: torch.Tensor) -> torch.Tensor:
    """A detached CPU copy of a tensor (what checkpoints store), whatever its device."""
    return tensor.detach().to(CPU, copy=True)
