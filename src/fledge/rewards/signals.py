"""A trainer's reward signals as one object: per-signal rewards x strength, updates, stats, checkpoint state.

Trainers hold a `RewardSignals` built by `build_signals` from a behavior's `reward_signals` block, in the
block's order (the order of the critics' value heads). They ask it for the (n, S) rewards of a batch of
transitions, train it on minibatches, and save it under "signal.<name>." tensors and the "signals" entry
of the checkpoint's JSON metadata.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from fledge.envs.api import BehaviorSpec
from fledge.imitation.expert import ExpertData
from fledge.rewards.base import BodySettings, LearnedSignal, RewardSignal, SignalBatch
from fledge.rewards.curiosity import CuriositySignal
from fledge.rewards.extrinsic import ExtrinsicSignal
from fledge.rewards.gail import GAILSignal, check_expert, load_expert_data
from fledge.rewards.rnd import RNDSignal

log = logging.getLogger("fledge")

__all__ = ["RewardSignals", "build_signals"]

STATE_PREFIX = "signal."
MIN_UPDATE_ROWS = 256  # the smallest minibatch the on-policy trainers train their signals on

ExpertLoader = Callable[[str, BehaviorSpec, str], ExpertData]


class RewardSignals:
    def __init__(self, signals: Sequence[RewardSignal]) -> None:
        self.signals = tuple(signals)
        self.names = tuple(s.name for s in self.signals)
        self.labels = tuple(s.label for s in self.signals)
        self.gammas = np.array([s.gamma for s in self.signals])
        self.strengths = np.array([s.strength for s in self.signals], dtype=np.float32)
        self.ignore_done = np.array([s.ignore_done for s in self.signals], dtype=np.bool_)
        self.learned = any(s.learned for s in self.signals)
        self.only_extrinsic = self.names == ("extrinsic",)

    def __len__(self) -> int:
        return len(self.signals)

    def rewards(self, batch: SignalBatch) -> np.ndarray:
        """(n, S) float32: each signal's provider reward x its strength."""
        out = np.empty((len(batch), len(self.signals)), dtype=np.float32)
        for i, signal in enumerate(self.signals):
            out[:, i] = signal.rewards(batch) * signal.strength
        return out

    def update(self, batch: SignalBatch) -> dict[str, float]:
        """One optimiser step of every learned signal on the minibatch; their stats."""
        stats: dict[str, float] = {}
        for signal in self.signals:
            if signal.learned:
                stats.update(signal.update(batch))
        return stats

    def train(self, batch: SignalBatch, *, epochs: int, batch_size: int, rng: np.random.Generator) -> dict[str, float]:
        """`epochs` shuffled passes of minibatches of max(batch_size, MIN_UPDATE_ROWS) rows (leftovers dropped;
        at least one minibatch); the stats averaged over every update.

        ML-Agents updates the signals on each of the policy's minibatches. With small ones (3DBall: 64
        rows, 562 per update) the optimiser steps of the signals' small networks cost more than the rest of
        training together, for no better estimate; so they see the same rows in fewer, larger minibatches."""
        n = len(batch)
        size = max(1, min(max(batch_size, MIN_UPDATE_ROWS), n))
        collected: dict[str, list[float]] = defaultdict(list)
        used = n - n % size
        for _ in range(epochs):
            # one gather of the epoch's rows in shuffled order, then contiguous minibatches: the same rows as
            # gathering each minibatch on its own, far fewer scattered reads
            shuffled = batch.rows(rng.permutation(n)[:used])
            for first in range(0, used, size):
                for key, value in self.update(shuffled.rows(slice(first, first + size))).items():
                    collected[key].append(value)
        return {k: float(np.mean(v)) for k, v in collected.items()}

    # -- checkpoint ---------------------------------------------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        meta: dict[str, Any] = {}
        for s in self.signals:
            if s.learned:
                t, m = s.state(f"{STATE_PREFIX}{s.name}.")
                tensors.update(t)
                meta[s.name] = m
        return tensors, meta

    def check_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> list[str]:
        problems = []
        for s in self.signals:
            if s.learned:
                if s.name not in meta:
                    problems.append(f"the checkpoint has no state of the {s.name} reward signal")
                    continue
                problems += s.check_state(f"{STATE_PREFIX}{s.name}.", tensors, meta[s.name])
        return problems

    def load_state(self, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
        for s in self.signals:
            if s.learned:
                s.load_state(f"{STATE_PREFIX}{s.name}.", tensors, meta[s.name])


def signal_stat_names(signals: RewardSignals) -> dict[str, str]:
    return dict(zip(signals.names, signals.labels))


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def build_signals(
    settings: Any,
    spec: BehaviorSpec,
    *,
    where: str,
    seed: int,
    device: torch.device,
    expert_loader: ExpertLoader | None = None,
) -> RewardSignals:
    """The signals of a behavior's settings (`where` names it in errors, "behaviors.Pyramids").

    `seed` seeds every learned signal's networks and generators (signal i gets seed + i + 1);
    `expert_loader` reads GAIL's demo_path (default: `load_expert_data`)."""
    signals: list[RewardSignal] = []
    for i, (key, sig) in enumerate(settings.reward_signals.items()):
        if sig is None:
            continue
        name = str(_plain(key))
        gamma, strength = float(sig.gamma), float(sig.strength)
        if name == "extrinsic":
            signals.append(ExtrinsicSignal(gamma=gamma, strength=strength))
            continue
        net = sig.network_settings
        if net.memory is not None:
            log.warning(
                "%s.reward_signals.%s.network_settings.memory has no effect; the %s signal's networks have no memory.",
                where,
                name,
                name,
            )
        common: dict[str, Any] = {
            "gamma": gamma,
            "strength": strength,
            "learning_rate": float(sig.learning_rate),
            "observation_specs": spec.observation_specs,
            "action_spec": spec.action_spec,
            "body": BodySettings(
                hidden_units=int(net.hidden_units),
                num_layers=int(net.num_layers),
                normalize=bool(net.normalize),
                vis_encode_type=str(_plain(net.vis_encode_type)),
                goal_conditioning_type=str(_plain(net.goal_conditioning_type)),
            ),
            "seed": seed + i + 1,
            "device": device,
        }
        signal: LearnedSignal
        if name == "curiosity":
            signal = CuriositySignal(**common)
        elif name == "rnd":
            signal = RNDSignal(**common)
        elif name == "gail":
            here = f"{where}.reward_signals.gail"
            expert = (expert_loader or load_expert_data)(str(sig.demo_path), spec, here)
            check_expert(expert, spec, here)
            signal = GAILSignal(expert=expert, use_actions=sig.use_actions, use_vail=sig.use_vail, **common)
        else:
            raise ValueError(f"{where}.reward_signals: unknown reward signal '{name}'")
        signals.append(signal)
    return RewardSignals(signals)
