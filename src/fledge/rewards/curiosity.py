"""Curiosity (ICM, spec 8.6): rewarded where the forward model cannot yet predict the next state's encoding.

phi = NetworkBody of the signal's settings. Inverse model: [phi(s), phi(s')] -> 256 Swish -> the action
(continuous values, logits of each discrete branch). Forward model: [phi(s), action (continuous values,
one-hot branches)] -> 256 Swish -> phi(s'). The reward is the forward error clipped at 1 / strength, and
0 until the module has been updated once; returns bootstrap through episode ends (ignore_done).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fledge.envs.api import ActionSpec
from fledge.networks.body import NetworkBody
from fledge.rewards import fast
from fledge.rewards import losses as L
from fledge.rewards.base import LearnedSignal, SignalBatch, flat_actions

MODEL_UNITS = 256
REWARD_ROWS = 1024  # rewards are computed this many transitions at a time, so the temporaries stay in cache


class CuriosityNetworks(nn.Module):
    def __init__(self, body: NetworkBody, action_spec: ActionSpec) -> None:
        super().__init__()
        self.body = body
        h = body.out_size
        c, branches = int(action_spec.continuous_size), [int(b) for b in action_spec.discrete_branches]
        self.branches = branches
        self.inverse = nn.Sequential(nn.Linear(2 * h, MODEL_UNITS), nn.SiLU())
        self.inverse_continuous = nn.Linear(MODEL_UNITS, c) if c else None
        self.inverse_discrete = nn.Linear(MODEL_UNITS, sum(branches)) if branches else None
        self.forward_model = nn.Sequential(
            nn.Linear(h + c + sum(branches), MODEL_UNITS), nn.SiLU(), nn.Linear(MODEL_UNITS, h)
        )

    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body.features(self.body.encode(obs))[0]

    def predict_next(self, encoding: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.forward_model(torch.cat([encoding, action], dim=1))

    def predict_action(
        self, encoding: torch.Tensor, next_encoding: torch.Tensor
    ) -> tuple[torch.Tensor | None, list[torch.Tensor]]:
        hidden = self.inverse(torch.cat([encoding, next_encoding], dim=1))
        cont = self.inverse_continuous(hidden) if self.inverse_continuous is not None else None
        logits: list[torch.Tensor] = []
        if self.inverse_discrete is not None:
            logits = list(torch.split(self.inverse_discrete(hidden), self.branches, dim=1))
        return cont, logits


class CuriositySignal(LearnedSignal):
    name = "curiosity"
    label = "Curiosity"
    ignore_done = True
    module: CuriosityNetworks
    _tensors: fast.CuriosityTensors | None = None
    _covered: bool | None = None

    def build(self) -> nn.Module:
        return CuriosityNetworks(self.make_body(), self.action_spec)

    @property
    def tensors(self) -> fast.CuriosityTensors:
        """The networks' parameters as rewards/fast.py reads them (looked up once)."""
        if self._tensors is None:
            self._tensors = fast.CuriosityTensors(self.module)
        return self._tensors

    @property
    def hand_gradients(self) -> bool:
        """Whether updates use rewards/fast.py's closed-form gradients and rewards its forward pass (a plain
        vector-observation body)."""
        if self._covered is None:
            self._covered = fast.covers_body(self.module.body)
        return not self.autograd and self._covered

    def _inputs(self, batch: SignalBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        obs = self.tensor(np.concatenate([batch.obs, batch.next_obs]))
        cont = self.tensor(batch.continuous)
        disc = self.tensor(batch.discrete, torch.int64)
        return obs, cont, disc, flat_actions(cont, disc, self.action_spec)

    @torch.no_grad()
    def rewards(self, batch: SignalBatch) -> np.ndarray:
        if self.update_count == 0:
            return np.zeros(len(batch), dtype=np.float32)
        if self.hand_gradients:
            out = np.empty(len(batch), dtype=np.float32)
            for first in range(0, len(batch), REWARD_ROWS):
                rows = batch.rows(slice(first, first + REWARD_ROWS))
                obs, _, _, action = self._inputs(rows)
                target, predicted = fast.curiosity_prediction(self.tensors, self.module.body.encode(obs), action)
                out[first : first + len(rows)] = L.curiosity_reward(target, predicted, self.strength).cpu().numpy()
            return out
        obs, _, _, action = self._inputs(batch)
        enc = self.module.encode(obs)
        n = len(batch)
        predicted = self.module.predict_next(enc[:n], action)
        return L.curiosity_reward(enc[n:], predicted, self.strength).cpu().numpy().astype(np.float32)

    def update(self, batch: SignalBatch) -> dict[str, float]:
        if self.module.body.normalizer is not None:
            self.module.body.normalizer.update(batch.obs)
        obs, cont, disc, action = self._inputs(batch)
        if self.hand_gradients:
            with torch.no_grad():
                x = self.module.body.encode(obs)
            forward, inverse, grads = fast.curiosity_gradients(self.tensors, x, action, cont, disc)
            self.apply(grads)
            return {
                "Losses/Curiosity Forward Loss": float(forward),
                "Losses/Curiosity Inverse Loss": float(inverse),
            }
        enc = self.module.encode(obs)
        n = len(batch)
        forward = L.forward_error(enc[n:], self.module.predict_next(enc[:n], action)).mean()
        pred_cont, logits = self.module.predict_action(enc[:n], enc[n:])
        inverse = L.inverse_loss(
            predicted_continuous=pred_cont,
            continuous=cont if pred_cont is not None else None,
            logits=logits,
            discrete=disc,
        )
        self.step(L.curiosity_loss(forward, inverse))
        return {
            "Losses/Curiosity Forward Loss": float(forward.detach()),
            "Losses/Curiosity Inverse Loss": float(inverse.detach()),
        }
