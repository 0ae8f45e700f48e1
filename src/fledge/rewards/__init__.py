"""Reward signals (spec 2.6, 8.6): extrinsic, curiosity (ICM), RND and GAIL (with VAIL) behind one interface.

Trainers build them with `build_signals` and use the `RewardSignals` they get; nothing in a trainer
asks which kind of signal it holds.
"""

from fledge.rewards.base import LearnedSignal, RewardSignal, SignalBatch
from fledge.rewards.signals import STATE_PREFIX, ExpertLoader, RewardSignals, build_signals

__all__ = [
    "STATE_PREFIX",
    "ExpertLoader",
    "LearnedSignal",
    "RewardSignal",
    "RewardSignals",
    "SignalBatch",
    "build_signals",
]
