"""Console writer: the one-line progress summary of ML-Agents (spec 10.2) and the hyperparameters."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from fledge.stats.reporter import HYPERPARAMETERS, StatSummary, StatsWriter

CUMULATIVE_REWARD = "Environment/Cumulative Reward"
GROUP_CUMULATIVE_REWARD = "Environment/Group Cumulative Reward"
IS_TRAINING = "Is Training"
ELO = "Self-play/ELO"


def format_summary_line(
    category: str,
    step: int,
    elapsed: float,
    summaries: Mapping[str, StatSummary],
) -> str:
    """The summary line of one category, without the ``[INFO]`` prefix."""
    training = IS_TRAINING in summaries and summaries[IS_TRAINING].mean > 0.5
    flag = "Training" if training else "Not Training"
    parts = [category, f"Step: {step}", f"Time Elapsed: {elapsed:0.3f} s"]
    reward = summaries.get(CUMULATIVE_REWARD)
    if reward is not None and reward.count:
        parts.append(f"Mean Reward: {reward.mean:0.3f}")
        group = summaries.get(GROUP_CUMULATIVE_REWARD)
        if group is not None and group.count:
            parts.append(f"Mean Group Reward: {group.mean:0.3f}")
        else:
            parts.append(f"Std of Reward: {reward.std:0.3f}")
        parts.append(flag)
        elo = summaries.get(ELO)
        if elo is not None and elo.count:
            parts.append(f"ELO: {elo.mean:0.3f}")
    else:
        parts.append("No episode was completed since last summary")
        parts.append(flag)
    return ". ".join(parts) + "."


def format_settings(settings: object, depth: int = 0) -> list[str]:
    """``key:\\tvalue`` lines of a nested settings mapping, nested settings indented further."""
    if hasattr(settings, "model_dump"):  # a pydantic model
        settings = settings.model_dump()
    if not isinstance(settings, Mapping):
        return ["\t" + "  " * depth + str(settings)]
    lines: list[str] = []
    for key, value in settings.items():
        if hasattr(value, "model_dump"):
            value = value.model_dump()
        prefix = "\t" + "  " * depth + f"{key}:"
        if isinstance(value, Mapping) and value:
            lines.append(prefix)
            lines.extend(format_settings(value, depth + 1))
        else:
            lines.append(f"{prefix}\t{value}")
    return lines


class ConsoleWriter(StatsWriter):
    """Logs the summary line of every trainer category at INFO on the ``fledge`` logger.

    A category's summaries are logged when they contain ``Is Training`` or
    ``Environment/Cumulative Reward`` (i.e. they come from a trainer); other categories are silent.
    """

    def __init__(self, *, start_time: float | None = None, log: logging.Logger | None = None) -> None:
        self._start = time.time() if start_time is None else start_time
        self._log = log if log is not None else logging.getLogger("fledge")

    def write_stats(self, category: str, summaries: Mapping[str, StatSummary], step: int) -> None:
        if IS_TRAINING not in summaries and CUMULATIVE_REWARD not in summaries:
            return
        self._log.info(format_summary_line(category, step, time.time() - self._start, summaries))

    def add_property(self, category: str, name: str, value: object) -> None:
        if name == HYPERPARAMETERS:
            lines = [f"Hyperparameters for behavior name {category}:", *format_settings(value)]
            self._log.info("\n".join(lines))
