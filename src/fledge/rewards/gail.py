"""GAIL (spec 8.6): a discriminator learns to tell the expert's steps from the policy's, and the policy is
rewarded where it is taken for the expert.

D(s [, a, done]) = sigmoid(linear(h)), h = NetworkBody(obs [+ flat action + done flag with use_actions]).
With `use_vail` a 128-unit code z = mu(h) + noise x sigma (sigma learned, from 1; mu's layer drawn at
gain 0.1) sits between h and the estimator; noise only while training. Each update: an expert batch as
large as the policy's minibatch, the normaliser updated from it, discriminator loss + 10 x gradient
penalty on inputs interpolated between the two batches (+ beta (KL - 0.5) with VAIL, beta then updated).

The expert's steps come as an `ExpertData` (imitation/expert.py), from a `.demo` file through
`load_expert_data`, the one place that reads demonstrations for this signal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fledge.envs.api import ActionSpec, BehaviorSpec
from fledge.errors import ConfigError
from fledge.imitation.expert import ExpertData
from fledge.networks.body import NetworkBody
from fledge.rewards import fast
from fledge.rewards import losses as L
from fledge.rewards.base import LearnedSignal, SignalBatch, flat_actions

VAIL_CODE_SIZE = 128
VAIL_MU_GAIN = 0.1


def load_expert_data(demo_path: str, spec: BehaviorSpec, where: str) -> ExpertData:
    """The demonstrations of `demo_path` (a .demo file or a folder of them; a missing ML-Agents example path
    falls back to fledge's shipped demo of the same name) for a behavior of `spec`. The reader (protobuf) is
    imported here, lazily, so that runs without GAIL never load it."""
    from fledge.imitation.demo_reader import load_demonstrations
    from fledge.imitation.protocol import require_protocol

    require_protocol(f"{where}.demo_path")
    return load_demonstrations(demo_path, spec, f"{where}.demo_path")


def check_expert(expert: ExpertData, spec: BehaviorSpec, where: str) -> None:
    """Refuse demonstrations recorded for another behavior spec, naming what differs."""
    shapes = [tuple(o.shape) for o in spec.observation_specs]
    demo_shapes = [tuple(o.shape[1:]) for o in expert.obs]
    problems = []
    if shapes != demo_shapes:
        problems.append(f"observation shapes {demo_shapes} in the demonstrations, {shapes} in the environment")
    a, b = expert.spec.action_spec, spec.action_spec
    if (a.continuous_size, tuple(a.discrete_branches)) != (b.continuous_size, tuple(b.discrete_branches)):
        problems.append(
            f"actions (continuous {a.continuous_size}, branches {tuple(a.discrete_branches)}) in the demonstrations, "
            f"(continuous {b.continuous_size}, branches {tuple(b.discrete_branches)}) in the environment"
        )
    if expert.steps == 0:
        problems.append("the demonstrations hold no steps")
    if problems:
        raise ConfigError(
            f"{where}: the demonstrations do not fit this behavior: " + "; ".join(problems) + ". Record them from "
            "the same environment and behavior."
        )


class Discriminator(nn.Module):
    def __init__(self, body: NetworkBody, *, vail: bool) -> None:
        super().__init__()
        self.body = body
        self.vail = vail
        h = body.out_size
        if vail:
            self.mu = nn.Linear(h, VAIL_CODE_SIZE)
            with torch.no_grad():
                self.mu.weight.mul_(VAIL_MU_GAIN)
                self.mu.bias.zero_()
            self.sigma = nn.Parameter(torch.ones(VAIL_CODE_SIZE))
        self.estimator = nn.Linear(VAIL_CODE_SIZE if vail else h, 1)

    def estimate(
        self, x: torch.Tensor, extra: torch.Tensor | None, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """D (B,) of preprocessed rows, and the code's mean mu with VAIL (noise (B, 128) added x sigma)."""
        h = self.body.features(x, extra)[0]
        mu = None
        if self.vail:
            mu = self.mu(h)
            h = mu if noise is None else mu + noise * self.sigma
        return torch.sigmoid(self.estimator(h)).squeeze(1), mu


class GAILSignal(LearnedSignal):
    name = "gail"
    label = "GAIL"
    ignore_done = False
    module: Discriminator

    def __init__(self, *, expert: ExpertData, use_actions: bool, use_vail: bool, **kwargs: Any) -> None:
        self.use_actions = bool(use_actions)
        self.use_vail = bool(use_vail)
        self.beta = 0.0
        super().__init__(**kwargs)
        self.expert = _expert_rows(expert, self.action_spec)

    def build(self) -> nn.Module:
        aspec: ActionSpec = self.action_spec
        extra = aspec.continuous_size + int(sum(aspec.discrete_branches)) + 1 if self.use_actions else 0
        return Discriminator(self.make_body(extra_inputs=extra), vail=self.use_vail)

    def _inputs(
        self, obs: np.ndarray, cont: np.ndarray, disc: np.ndarray, done: np.ndarray
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.module.body.encode(self.tensor(obs))
        if not self.use_actions:
            return x, None
        action = flat_actions(self.tensor(cont), self.tensor(disc, torch.int64), self.action_spec)
        return x, torch.cat([action, self.tensor(done.reshape(-1, 1))], dim=1)

    @torch.no_grad()
    def rewards(self, batch: SignalBatch) -> np.ndarray:
        x, extra = self._inputs(batch.obs, batch.continuous, batch.discrete, batch.done)
        estimate, _ = self.module.estimate(x, extra)
        return L.gail_reward(estimate).cpu().numpy().astype(np.float32)

    def update(self, batch: SignalBatch) -> dict[str, float]:
        n = len(batch)
        index = self.rng.integers(0, len(self.expert["obs"]), size=n)
        expert = {k: v[index] for k, v in self.expert.items()}
        if self.module.body.normalizer is not None:
            self.module.body.normalizer.update(expert["obs"])
        if self.hand_gradients:  # the expert's rows then the policy's, preprocessed together
            x, extra = self._inputs(
                np.concatenate([expert["obs"], batch.obs]),
                np.concatenate([expert["continuous"], batch.continuous]),
                np.concatenate([expert["discrete"], batch.discrete]),
                np.concatenate([expert["done"], batch.done]),
            )
            u = x if extra is None else torch.cat([x, extra], dim=1)
            return self._hand_update(u[:n], u[n:])
        xe, ee = self._inputs(expert["obs"], expert["continuous"], expert["discrete"], expert["done"])
        xp, ep = self._inputs(batch.obs, batch.continuous, batch.discrete, batch.done)
        noise_e = noise_p = None
        if self.use_vail:
            noise_e = torch.randn((n, VAIL_CODE_SIZE), generator=self.generator).to(self.device)
            noise_p = torch.randn((n, VAIL_CODE_SIZE), generator=self.generator).to(self.device)
        d_expert, mu_e = self.module.estimate(xe, ee, noise_e)
        d_policy, mu_p = self.module.estimate(xp, ep, noise_p)
        d_loss = L.discriminator_loss(d_expert, d_policy)
        penalty = self._gradient_penalty(xe, ee, xp, ep)
        loss = d_loss + L.GRADIENT_PENALTY_WEIGHT * penalty
        stats = {
            "Policy/GAIL Policy Estimate": float(d_policy.detach().mean()),
            "Policy/GAIL Expert Estimate": float(d_expert.detach().mean()),
            "Policy/GAIL Grad Mag Loss": float(penalty.detach()),
        }
        if self.use_vail:
            assert mu_e is not None and mu_p is not None
            kl = L.vail_kl(torch.cat([mu_e, mu_p]), self.module.sigma)
            loss = loss + L.vail_loss_term(kl, self.beta)
            stats["Policy/GAIL Beta"] = self.beta
            stats["Losses/GAIL KL Loss"] = float(kl.detach())
            self.beta = L.vail_beta_update(self.beta, float(kl.detach()))
        self.step(loss)
        stats["Losses/GAIL Loss"] = float(d_loss.detach())
        return stats

    @property
    def hand_gradients(self) -> bool:
        """Whether updates use rewards/fast.py's closed-form gradients (a plain vector-observation body, no VAIL)."""
        return not (self.autograd or self.use_vail) and fast.covers_body(self.module.body)

    def _hand_update(self, ue: torch.Tensor, up: torch.Tensor) -> dict[str, float]:
        """One step on rewards/fast.py's gradients; ue, up: the expert's and the policy's input rows."""
        weights = torch.rand(len(ue), generator=self.generator).to(self.device)
        terms, grads = fast.gail_gradients(self.module, ue, up, weights)
        self.apply(grads)
        return {
            "Policy/GAIL Policy Estimate": float(terms["d_policy"].mean()),
            "Policy/GAIL Expert Estimate": float(terms["d_expert"].mean()),
            "Policy/GAIL Grad Mag Loss": float(terms["penalty"]),
            "Losses/GAIL Loss": float(terms["d_loss"]),
        }

    def _gradient_penalty(
        self, xe: torch.Tensor, ee: torch.Tensor | None, xp: torch.Tensor, ep: torch.Tensor | None
    ) -> torch.Tensor:
        weights = torch.rand(len(xe), generator=self.generator).to(self.device)
        x = L.interpolate(xe.detach(), xp.detach(), weights).requires_grad_(True)
        inputs = [x]
        extra = None
        if ee is not None and ep is not None:
            extra = L.interpolate(ee.detach(), ep.detach(), weights).requires_grad_(True)
            inputs.append(extra)
        estimate, _ = self.module.estimate(x, extra)
        grads = torch.autograd.grad(estimate.sum(), inputs, create_graph=True)
        return L.gradient_penalty(list(grads))

    def extra_meta(self) -> dict[str, Any]:
        return {"beta": self.beta}

    def load_extra_meta(self, meta: dict[str, Any]) -> None:
        self.beta = float(meta.get("beta", 0.0))


def _expert_rows(expert: ExpertData, aspec: ActionSpec) -> dict[str, np.ndarray]:
    """The expert's steps as flat rows like a SignalBatch's."""
    n = expert.steps
    obs = np.concatenate([np.asarray(o, dtype=np.float32).reshape(n, -1) for o in expert.obs], axis=1)
    cont = np.asarray(expert.continuous_actions, dtype=np.float32).reshape(n, aspec.continuous_size)
    disc = np.asarray(expert.discrete_actions, dtype=np.int64).reshape(n, len(aspec.discrete_branches))
    return {"obs": obs, "continuous": cont, "discrete": disc, "done": np.asarray(expert.done, dtype=np.bool_)}
