"""One Adam step without the optimiser's per-call Python bookkeeping, on the optimiser's own state.

`torch.optim.Adam(fused=True).step()` spends most of its time for small networks grouping tensors by
device and checking options; the fused kernel itself is a small part. `AdamStepper` calls the same
kernel directly with the lists prepared once, so the numbers are identical (tested bit for bit) and
the optimiser's state_dict stays the real thing. Where the kernel is unavailable it falls back to
`optimizer.step()`.
"""

from __future__ import annotations

from typing import TypedDict

import torch


class AdamOptions(TypedDict, total=False):
    """Keyword arguments for torch.optim.Adam chosen for this torch build."""

    fused: bool


def fused_if_possible() -> AdamOptions:
    """`fused=True` for torch.optim.Adam where this torch build supports it on the CPU, else nothing."""
    try:
        torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], fused=True)
    except (RuntimeError, ValueError, TypeError):
        return {}
    return {"fused": True}


class AdamStepper:
    def __init__(self, optimizer: torch.optim.Adam) -> None:
        if len(optimizer.param_groups) != 1:
            raise ValueError("AdamStepper expects one parameter group")
        self.optimizer = optimizer
        self._lists: tuple[list[torch.Tensor], ...] | None = None
        group = optimizer.param_groups[0]
        self._usable = (
            hasattr(torch, "_fused_adam_")
            and bool(group.get("fused"))
            and not group.get("amsgrad")
            and not group.get("maximize")
            and not group.get("capturable")
            and not group.get("differentiable")
            and group.get("weight_decay", 0.0) == 0.0
        )

    def step(self) -> None:
        opt = self.optimizer
        if not self._usable:
            opt.step()
            return
        group = opt.param_groups[0]
        params: list[torch.Tensor] = group["params"]
        if self._lists is None or any(p not in opt.state for p in params):
            opt.step()  # the first step creates the state tensors
            state = [opt.state[p] for p in params]
            self._lists = (
                [s["exp_avg"] for s in state],
                [s["exp_avg_sq"] for s in state],
                [s["step"] for s in state],
            )
            return
        exp_avgs, exp_avg_sqs, steps = self._lists
        beta1, beta2 = group["betas"]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params,
            [p.grad for p in params],  # type: ignore[misc]  # set by the backward pass before every step
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            amsgrad=False,
            lr=float(group["lr"]),
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=group["eps"],
            maximize=False,
        )

    def reset(self) -> None:
        """Call after the optimiser's state was replaced (load_state_dict)."""
        self._lists = None
