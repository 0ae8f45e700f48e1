"""One SAC gradient update: the gradients of one minibatch, one fused Adam step, the target network's soft update.

The gradients come from one of two sources with the same signature, `(batch) -> (gradients, losses)`,
chosen when the updater is built: the hand-derived gradients (fast_update.py, no autograd) where they
cover the networks, otherwise `AutogradGradients`, one backward pass of `losses.sac_losses` (the
reference, in which each parameter set receives exactly the gradient of its own loss, as ML-Agents'
three separate backward passes produce). The three Adam optimisers (policy; Q1+Q2+V; entropy
coefficients) share the scheduled learning rate, so they are stepped by one fused Adam kernel call
over all their parameters (identical numbers to three `optimizer.step()`s, tested).
Batches for a whole update loop are sampled, normalised and converted to tensors at once (`Batches`,
records.py).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch

from fledge.networks.device import as_device
from fledge.networks.sac import SACNetworks
from fledge.trainers.fast_adam import fused_if_possible
from fledge.trainers.sac import fast_update
from fledge.trainers.sac import losses as L
from fledge.trainers.sac.records import Batches, SACCoefficients, UpdateStats


def init_adam_state(optimizer: torch.optim.Adam) -> None:
    """Create the state Adam would create at its first step (step 0, zero moments), so that it always exists."""
    fused = bool(optimizer.param_groups[0].get("fused"))
    for group in optimizer.param_groups:
        for p in group["params"]:
            if optimizer.state.get(p):
                continue
            # fused Adam keeps its step counts on the parameter's device, the other kernels on the CPU
            step = torch.zeros((), dtype=torch.float32, device=p.device if fused else None)
            optimizer.state[p] = {
                "step": step,
                "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format),
            }


class MultiAdamStepper:
    """Steps several Adam optimisers with the same learning rate in one fused kernel call.

    The state lists are read once from the optimisers' own state (prepared by `init_adam_state`), so
    their state_dicts stay the real thing; `set_state` must copy INTO those tensors (it does).
    Falls back to each optimiser's `step()` where the fused kernel is unavailable.
    """

    def __init__(self, optimizers: list[torch.optim.Adam]) -> None:
        self.optimizers = optimizers
        groups = [g for opt in optimizers for g in opt.param_groups]
        first = groups[0]
        self._usable = hasattr(torch, "_fused_adam_") and all(
            bool(g.get("fused"))
            and not g.get("amsgrad")
            and not g.get("maximize")
            and not g.get("capturable")
            and not g.get("differentiable")
            and g.get("weight_decay", 0.0) == 0.0
            and g["betas"] == first["betas"]
            and g["eps"] == first["eps"]
            for g in groups
        )
        for opt in optimizers:
            init_adam_state(opt)
        self.params: list[torch.Tensor] = [p for g in groups for p in g["params"]]
        states = [opt.state[p] for opt in optimizers for g in opt.param_groups for p in g["params"]]
        self._exp_avgs = [s["exp_avg"] for s in states]
        self._exp_avg_sqs = [s["exp_avg_sq"] for s in states]
        self._steps = [s["step"] for s in states]
        self._betas = first["betas"]
        self._eps = first["eps"]

    def step_with(self, grads: dict[torch.Tensor, torch.Tensor]) -> None:
        """Step with gradients given per parameter (the hand-derived path), without touching `.grad`."""
        if not self._usable:
            for p in self.params:
                p.grad = grads[p]
            self.step()
            return
        self._fused([grads[p] for p in self.params])

    def set_lr(self, lr: float) -> None:
        for opt in self.optimizers:
            for g in opt.param_groups:
                g["lr"] = lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        if not self._usable:
            for opt in self.optimizers:
                opt.step()
            return
        self._fused([p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params])

    def _fused(self, grads: list[torch.Tensor]) -> None:
        torch._foreach_add_(self._steps, 1)
        beta1, beta2 = self._betas
        torch._fused_adam_(
            self.params,
            grads,
            self._exp_avgs,
            self._exp_avg_sqs,
            [],
            self._steps,
            amsgrad=False,
            lr=float(self.optimizers[0].param_groups[0]["lr"]),
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=self._eps,
            maximize=False,
        )


def discrete_one_hot(discrete: np.ndarray, branches: tuple[int, ...]) -> np.ndarray:
    """(N, n_branches) int -> (N, sum(branches)) float32 with one 1 per branch."""
    offsets = np.concatenate([[0], np.cumsum(branches)[:-1]]).astype(np.int64)
    out = np.zeros((discrete.shape[0], int(sum(branches))), dtype=np.float32)
    np.put_along_axis(out, discrete.astype(np.int64) + offsets, 1.0, axis=1)
    return out


class Gradients(Protocol):
    """The gradient of every trained parameter for one minibatch, and the losses."""

    def __call__(self, b: Batches) -> tuple[dict[torch.Tensor, torch.Tensor], UpdateStats]: ...


class AutogradGradients:
    """The reference gradients: one backward pass of `losses.sac_losses`, which covers any networks."""

    def __init__(self, nets: SACNetworks, coefs: SACCoefficients, params: list[torch.Tensor]) -> None:
        self.nets, self.coefs, self.params = nets, coefs, params

    def __call__(self, b: Batches) -> tuple[dict[torch.Tensor, torch.Tensor], UpdateStats]:
        for p in self.params:
            p.grad = None
        losses = L.sac_losses(self.nets, self.coefs, b)
        losses.total().backward()
        grads = {p: p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params}
        for p in self.params:
            p.grad = None
        return grads, losses.stats()


class SACUpdater:
    """Owns the entropy coefficients and the three optimisers; `update(batch)` runs one gradient step.

    `autograd=True` trains through the reference gradients even where the hand-derived ones cover the networks.
    """

    def __init__(
        self,
        nets: SACNetworks,
        *,
        gammas: np.ndarray,
        tau: float,
        init_entcoef: float,
        lr: float,
        device: torch.device | str | None = None,
        autograd: bool = False,
    ) -> None:
        """`nets` must already be on `device` (default: the CPU); every tensor made here goes there too."""
        self.nets = nets
        self.device = device = as_device(device)
        shape = nets.shape
        self.c, self.branches = shape.continuous_size, shape.branches
        self.tau = float(tau)
        log_init = math.log(float(init_entcoef))
        self.log_alpha_c = torch.nn.Parameter(torch.full((1,), log_init, device=device)) if self.c else None
        self.log_alpha_d = (
            torch.nn.Parameter(torch.full((len(self.branches),), log_init, device=device)) if self.branches else None
        )
        target_c, target_d = L.target_entropies(self.c, self.branches)
        branch_matrix = torch.zeros(shape.n_logits, len(self.branches))  # (K, nb): column k belongs to branch b
        start = 0
        for i, size in enumerate(self.branches):
            branch_matrix[start : start + size, i] = 1.0
            start += size
        self.coefficients = SACCoefficients(
            log_alpha_c=self.log_alpha_c,
            log_alpha_d=self.log_alpha_d,
            target_c=target_c,
            target_d=torch.tensor(target_d, dtype=torch.float32, device=device) if self.branches else None,
            gammas=torch.as_tensor(np.asarray(gammas, dtype=np.float32), device=device),
            branch_matrix=branch_matrix.to(device),
        )
        fused = fused_if_possible()
        self.policy_optimizer = torch.optim.Adam(nets.policy.parameters(), lr=lr, **fused)
        self.critic_optimizer = torch.optim.Adam([*nets.q.parameters(), *nets.value.parameters()], lr=lr, **fused)
        self.entropy_optimizer = torch.optim.Adam(self.entropy_parameters(), lr=lr, **fused)
        self.stepper = MultiAdamStepper([self.policy_optimizer, self.critic_optimizer, self.entropy_optimizer])
        self.gradients: Gradients = (
            fast_update.HandGradients(nets, self.coefficients)
            if not autograd and fast_update.covers(nets)
            else AutogradGradients(nets, self.coefficients, self.stepper.params)
        )
        self._target: list[torch.Tensor] = list(nets.target_value.parameters())
        self._source: list[torch.Tensor] = list(nets.value.parameters())

    def entropy_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in (self.log_alpha_c, self.log_alpha_d) if p is not None]

    def optimizers(self) -> dict[str, torch.optim.Adam]:
        return {"policy": self.policy_optimizer, "critic": self.critic_optimizer, "entropy": self.entropy_optimizer}

    def update(self, b: Batches) -> UpdateStats:
        """One gradient update on a minibatch; returns its losses."""
        grads, stats = self.gradients(b)
        self.stepper.step_with(grads)
        self.soft_update()
        return stats

    def soft_update(self) -> None:
        """target value network = tau value network + (1 - tau) target value network."""
        L.soft_update(self._target, self._source, self.tau)
