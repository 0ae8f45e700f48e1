"""One SAC gradient update, with as little per-update overhead as torch allows.

Per update: one actor pass on s (reparameterised continuous sample, branch probabilities), the twin
Q networks on (s, stored action) and on (s, fresh action) (the policy gradient reaches the fresh
action, never the Q weights; discrete-only policies reuse the first pass), V(s) and V_target(s')
(no gradient). Each parameter set receives exactly the gradient of its own loss, as ML-Agents' three
separate backward passes produce. `SACUpdater.update` computes those gradients by hand
(fast_update.py, no autograd); `update_autograd` is the same update through `losses()` and ONE
backward pass of the summed losses (the cross terms are detached), kept as the reference the hand
gradients are tested against. The three Adam optimisers (policy; Q1+Q2+V; entropy coefficients)
share the scheduled learning rate, so they are stepped by one fused Adam kernel call over all their
parameters (identical numbers to three `optimizer.step()`s, tested).
Batches for a whole update loop are sampled, normalised and converted to tensors at once (`Batches`, in
records.py with `UpdateStats`: the records this module and fast_update.py share).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from fledge.networks.device import as_device
from fledge.trainers.fast_adam import fused_if_possible
from fledge.trainers.sac import fast_update
from fledge.trainers.sac import losses as L
from fledge.trainers.sac.networks import SACNetworks
from fledge.trainers.sac.records import Batches, UpdateStats


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


@dataclass
class Losses:
    total: torch.Tensor  # the sum of every loss; each parameter set only receives its own loss's gradient
    stats: UpdateStats


class SACUpdater:
    """Owns the entropy coefficients and the three optimisers; `update(batch)` runs one gradient step."""

    def __init__(
        self,
        nets: SACNetworks,
        *,
        gammas: np.ndarray,
        tau: float,
        init_entcoef: float,
        lr: float,
        device: torch.device | str | None = None,
    ) -> None:
        """`nets` must already be on `device` (default: the CPU); every tensor made here goes there too."""
        self.nets = nets
        self.device = device = as_device(device)
        shape = nets.shape
        self.c, self.branches = shape.continuous_size, shape.branches
        self.gammas = torch.as_tensor(np.asarray(gammas, dtype=np.float32), device=device)
        self.tau = float(tau)
        log_init = math.log(float(init_entcoef))
        self.log_alpha_c = torch.nn.Parameter(torch.full((1,), log_init, device=device)) if self.c else None
        self.log_alpha_d = (
            torch.nn.Parameter(torch.full((len(self.branches),), log_init, device=device)) if self.branches else None
        )
        target_c, target_d = L.target_entropies(self.c, self.branches)
        self.target_c = target_c
        self.target_d = torch.tensor(target_d, dtype=torch.float32, device=device) if self.branches else None
        fused = fused_if_possible()
        self.policy_optimizer = torch.optim.Adam(nets.policy.parameters(), lr=lr, **fused)
        self.critic_optimizer = torch.optim.Adam([*nets.q.parameters(), *nets.value.parameters()], lr=lr, **fused)
        self.entropy_optimizer = torch.optim.Adam(self.entropy_parameters(), lr=lr, **fused)
        self.stepper = MultiAdamStepper([self.policy_optimizer, self.critic_optimizer, self.entropy_optimizer])
        k = shape.n_logits
        branch_matrix = torch.zeros(k, len(self.branches))  # (K, nb): column j belongs to branch b
        start = 0
        for i, size in enumerate(self.branches):
            branch_matrix[start : start + size, i] = 1.0
            start += size
        self.branch_matrix = branch_matrix.to(device)
        self._target: list[torch.Tensor] = list(nets.target_value.parameters())
        self._source: list[torch.Tensor] = list(nets.value.parameters())

    def entropy_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in (self.log_alpha_c, self.log_alpha_d) if p is not None]

    def optimizers(self) -> dict[str, torch.optim.Adam]:
        return {"policy": self.policy_optimizer, "critic": self.critic_optimizer, "entropy": self.entropy_optimizer}

    def update(self, b: Batches) -> UpdateStats:
        """One gradient update on a minibatch with hand-derived gradients (fast_update.py)."""
        return fast_update.update(self, b)

    def update_autograd(self, b: Batches) -> UpdateStats:
        """The same update through autograd: losses, one backward pass, one fused Adam step, soft update."""
        losses = self.losses(b)
        self.apply(losses.total)
        return losses.stats

    def losses(self, b: Batches) -> Losses:
        nets, n_b = self.nets, len(self.branches)
        sample = nets.policy.sample(b.x, b.noise, b.allowed)
        q = nets.q(b.q_input)  # (2, B, S, K)
        if self.c:
            assert sample.action is not None
            q_fresh = nets.q(torch.cat([b.x, sample.action], dim=1), detached=True)
        else:
            q_fresh = q.detach()
        alpha_c = torch.exp(self.log_alpha_c.detach()) if self.log_alpha_c is not None else None
        alpha_d = torch.exp(self.log_alpha_d.detach()) if self.log_alpha_d is not None else None
        penalty = L.entropy_penalty(alpha_c, sample.log_pi_c, alpha_d, sample.branch_log_probs)
        if n_b:
            assert b.one_hot is not None and sample.probs is not None
            q_taken = L.taken_action_values(q, b.one_hot, n_b)
            expected_q1 = L.expected_branch_values(q_fresh[0], sample.probs, n_b)
        else:
            q_taken = q[..., 0]
            expected_q1 = q_fresh[0, ..., 0]
        with torch.no_grad():
            q_min = torch.minimum(q_fresh[0], q_fresh[1])
            expected_min = (
                L.expected_branch_values(q_min, sample.probs.detach(), n_b)
                if n_b and sample.probs is not None
                else q_min[..., 0]
            )
            value_target = L.soft_value(expected_min, penalty.detach())
            y = L.q_target(b.rewards, b.done, nets.target_value(b.next_x), self.gammas)
        q1_loss = L.squared_error_loss(q_taken[0], y)
        q2_loss = L.squared_error_loss(q_taken[1], y)
        value_loss = L.squared_error_loss(nets.value(b.x), value_target)
        policy_loss = L.policy_loss(expected_q1, penalty)
        entropy_loss = L.entropy_coefficient_loss(
            self.log_alpha_c, sample.log_pi_c, self.target_c, self.log_alpha_d, sample.branch_log_probs, self.target_d
        )
        total = q1_loss + q2_loss + value_loss + policy_loss + entropy_loss
        stats = UpdateStats(policy_loss.detach(), value_loss.detach(), q1_loss.detach(), q2_loss.detach())
        return Losses(total, stats)

    def apply(self, total: torch.Tensor) -> None:
        """Backward pass of the summed losses, the fused Adam step, the target network's soft update."""
        self.stepper.zero_grad()
        total.backward()
        self.stepper.step()
        L.soft_update(self._target, self._source, self.tau)
