"""Refuse networks too large to build, before and while building them, with a ConfigError naming the key.

`mlp_parameters` estimates a trainer's parameter count from the observation size, hidden_units,
num_layers and outputs; `NetworkSize.check` refuses an estimate above `MAX_PARAMETERS` or one whose
training state (weights, gradients, two Adam moments: 16 bytes a parameter) exceeds the machine's
memory, without trying to allocate it; `NetworkSize.building` turns an allocation failure during
construction into the same error (true on any machine, whatever the estimate missed).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from fledge.errors import ConfigError

MAX_PARAMETERS = 2**31
_OUT_OF_MEMORY = (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))
BYTES_PER_PARAMETER = 16  # float32 weight, gradient and two Adam moments


def mlp_parameters(*, n_in: int, hidden: int, num_layers: int, n_out: int, copies: int) -> int:
    """Parameters of `copies` MLPs of num_layers hidden layers (weights and biases) and a linear head."""
    size, total = n_in, 0
    for _ in range(num_layers):
        total += size * hidden + hidden
        size = hidden
    total += size * n_out + n_out
    return copies * total


def physical_memory() -> int | None:
    """Bytes of physical memory of this machine, or None where the system does not say."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None
    return int(pages) * int(page_size) if pages > 0 and page_size > 0 else None


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


@dataclass(frozen=True)
class NetworkSize:
    """The networks a trainer is about to build: the settings that size them and the estimated parameters."""

    behavior: str
    hidden_units: int
    num_layers: int
    parameters: int

    def refusal(self, why: str) -> ConfigError:
        key = f"behaviors.{self.behavior}.network_settings.hidden_units"
        return ConfigError(
            f"{key}: {self.hidden_units} (with num_layers {self.num_layers}) makes networks of about "
            f"{self.parameters:,} parameters ({_gib(self.parameters * BYTES_PER_PARAMETER)} to train); {why}. "
            "Lower hidden_units (typical values: 32 to 512)."
        )

    def check(self) -> None:
        """Refuse an estimated size that cannot be trained, before anything is allocated."""
        if self.parameters > MAX_PARAMETERS:
            raise self.refusal(f"above the limit of {MAX_PARAMETERS:,} parameters")
        memory = physical_memory()
        if memory is not None and self.parameters * BYTES_PER_PARAMETER > memory:
            raise self.refusal(f"this machine has {_gib(memory)} of memory")

    @contextmanager
    def building(self) -> Iterator[None]:
        """Network construction; an allocation failure inside becomes a ConfigError naming hidden_units."""
        try:
            yield
        except (MemoryError, RuntimeError) as exc:
            if not (isinstance(exc, _OUT_OF_MEMORY) or "alloc" in str(exc).lower()):
                raise
            raise self.refusal(f"allocating them failed ({type(exc).__name__})") from None
