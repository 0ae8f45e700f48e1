"""When a lesson is complete (spec 2.10), as a pure function of what the controller measured.

- fewer finished episodes in the behavior's buffer than `min_lesson_length`: not complete;
- `progress`: complete when the trainer's step / its max_steps is above the threshold;
- `reward`: the mean of the buffer (nothing to decide when it is empty or NaN); with
  `signal_smoothing` the measure is 0.25 x the previous smoothed value + 0.75 x that mean (the smoothed
  value starts at 0.0 and is kept whether or not the lesson completes); complete when above the threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fledge.config.environment_parameters import CompletionCriteriaSettings, MeasureType

__all__ = ["SMOOTHING_KEEP", "Verdict", "judge"]

SMOOTHING_KEEP = 0.25  # weight of the previous smoothed value; the new mean gets 1 - SMOOTHING_KEEP


@dataclass(frozen=True)
class Verdict:
    complete: bool
    smoothed: float  # the smoothed reward to keep (unchanged unless the reward measure was taken)
    measure: float | None  # the value compared with the threshold, None when nothing was measured


def judge(
    criteria: CompletionCriteriaSettings, *, returns: Sequence[float], progress: float, smoothed: float
) -> Verdict:
    """Whether the lesson that has these criteria is complete.

    `returns`: the behavior's most recent finished episode returns (the controller's buffer);
    `progress`: its trainer's step / max_steps; `smoothed`: the parameter's smoothed reward so far.
    """
    if len(returns) < criteria.min_lesson_length:
        return Verdict(False, smoothed, None)
    if criteria.measure is MeasureType.PROGRESS:
        return Verdict(progress > criteria.threshold, smoothed, progress)
    if not returns:
        return Verdict(False, smoothed, None)
    mean = math.fsum(returns) / len(returns)
    if math.isnan(mean):
        return Verdict(False, smoothed, None)
    if criteria.signal_smoothing:
        mean = SMOOTHING_KEEP * smoothed + (1.0 - SMOOTHING_KEEP) * mean
        smoothed = mean
    return Verdict(mean > criteria.threshold, smoothed, mean)
