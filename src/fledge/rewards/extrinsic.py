"""The extrinsic signal: the environment's own reward (spec 8.6); no network, episode ends are final."""

from __future__ import annotations

import numpy as np

from fledge.rewards.base import RewardSignal, SignalBatch


class ExtrinsicSignal(RewardSignal):
    name = "extrinsic"
    label = "Extrinsic"
    ignore_done = False

    def rewards(self, batch: SignalBatch) -> np.ndarray:
        return np.asarray(batch.env_rewards, dtype=np.float32)
