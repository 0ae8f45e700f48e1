"""Random network distillation (spec 8.6): rewarded where a trained predictor still misses a fixed random
network's features. Target and predictor are NetworkBodies of the signal's settings; the target is never
trained (its weights are still saved, so a resumed run keeps the same target). Returns bootstrap through
episode ends (ignore_done)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fledge.networks.body import NetworkBody
from fledge.rewards import fast
from fledge.rewards import losses as L
from fledge.rewards.base import LearnedSignal, SignalBatch


class RNDNetworks(nn.Module):
    def __init__(self, predictor: NetworkBody, target: NetworkBody) -> None:
        super().__init__()
        self.predictor = predictor
        self.target = target
        for p in self.target.parameters():
            p.requires_grad_(False)

    def error(self, obs: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.target.features(self.target.encode(obs))[0]
        return L.rnd_error(self.predictor.features(self.predictor.encode(obs))[0], target)


class RNDSignal(LearnedSignal):
    name = "rnd"
    label = "RND"
    ignore_done = True
    module: RNDNetworks

    def build(self) -> nn.Module:
        return RNDNetworks(self.make_body(), self.make_body())

    def trained_parameters(self) -> list[nn.Parameter]:
        return list(self.module.predictor.parameters())  # the target stays as it was drawn

    @torch.no_grad()
    def rewards(self, batch: SignalBatch) -> np.ndarray:
        return self.module.error(self.tensor(batch.next_obs)).cpu().numpy().astype(np.float32)

    def update(self, batch: SignalBatch) -> dict[str, float]:
        for body in (self.module.predictor, self.module.target):
            if body.normalizer is not None:
                body.normalizer.update(batch.next_obs)
        obs = self.tensor(batch.next_obs)
        predictor, target = self.module.predictor, self.module.target
        if not self.autograd and fast.covers_body(predictor) and fast.covers_body(target):
            with torch.no_grad():
                x_predictor, x_target = predictor.encode(obs), target.encode(obs)
            loss, grads = fast.rnd_gradients(predictor, target, x_predictor, x_target)
            self.apply(grads)
            return {"Losses/RND Loss": float(loss)}
        loss = self.module.error(obs).mean()
        self.step(loss)
        return {"Losses/RND Loss": float(loss.detach())}
