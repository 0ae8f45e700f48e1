"""What `fledge play --record-demo` plugs into play's loop: a recorder of one behavior's steps, and the
scripted policies of `--heuristic` presented as play's policies.

The recorded behavior is the followed one (the first behavior, in name order, that asks for a decision);
every agent of it is recorded (records carry agent ids). With `steps`, recording stops once that many
decisions are recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fledge.envs.api import ActionTuple, BaseEnv, BehaviorSpec, DecisionSteps, TerminalSteps
from fledge.envs.builtin.heuristics import ScriptedPolicy, make_heuristic
from fledge.errors import ConfigError

if TYPE_CHECKING:
    from fledge.imitation.demo_writer import DemoWriter

__all__ = ["DemoRecorder", "HeuristicPolicies", "check_demo_path"]


def check_demo_path(path: str | Path, steps: int | None) -> Path:
    path = Path(path)
    if path.suffix != ".demo":
        raise ConfigError(f"--record-demo {path}: a demonstration file name must end in .demo (e.g. ExpertBasic.demo).")
    if path.is_dir():
        raise ConfigError(f"--record-demo {path}: this is a folder; name a .demo file.")
    if steps is not None and steps < 1:
        raise ConfigError(f"--record-demo-steps must be at least 1, got {steps}.")
    return path


class DemoRecorder:
    """Feeds the followed behavior's steps to a DemoWriter; `close` writes the file."""

    def __init__(self, path: str | Path, specs: Mapping[str, BehaviorSpec], *, steps: int | None = None) -> None:
        self.path = check_demo_path(path, steps)
        self.steps = steps
        self._specs = specs
        self.writer: DemoWriter | None = None

    def _writer_for(self, behavior: str) -> DemoWriter | None:
        if self.writer is None:
            from fledge.imitation.demo_writer import DemoWriter  # protobuf, checked by play before it starts

            self.writer = DemoWriter(self.path, behavior, self._specs[behavior])
        return self.writer if self.writer.behavior == behavior else None

    def terminal(self, behavior: str, steps: TerminalSteps) -> None:
        if self.writer is not None and self.writer.behavior == behavior and len(steps):
            self.writer.terminal(steps)

    def decided(self, behavior: str, steps: DecisionSteps, actions: ActionTuple) -> None:
        writer = self._writer_for(behavior)
        if writer is not None:
            writer.decided(steps, actions)

    def full(self) -> bool:
        return self.steps is not None and self.writer is not None and self.writer.decisions >= self.steps

    def close(self) -> str:
        """Write the file; a line saying what was recorded."""
        if self.writer is None or not self.writer.pairs:
            return "No decision was recorded; no demonstration written."
        w = self.writer
        w.close()
        return (
            f"Recorded a demonstration of '{w.behavior}' to {self.path}: {w.decisions} decisions, {w.episodes} "
            f"finished episodes, mean return {w.mean_return:.3f}."
        )


class HeuristicPolicies:
    """Play's policy interface (`get`, `end_episodes`, `labels`) over a built-in task's scripted policy."""

    def __init__(self, env_name: str, env: BaseEnv) -> None:
        self.env_name = env_name
        self.policy: ScriptedPolicy = make_heuristic(env_name, env)

    def get(self, behavior: str, spec: BehaviorSpec) -> ScriptedPolicy:
        return self.policy

    def labels(self) -> str:
        return self.policy.label

    def end_episodes(self, behavior: str, agent_ids: np.ndarray) -> None:
        self.policy.end_episodes(agent_ids)
