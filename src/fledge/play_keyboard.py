"""`fledge play --keyboard ENV`: a person chooses the actions of a built-in task with discrete actions, one
line of text per decision (for recording demonstrations with `--record-demo`).

The task is built with a single agent. At each decision play prints the agent's observation (when it is
short enough to read; with `--show` the window shows the state) and the keys, and reads one line: its
first character picks the action, an empty line repeats the previous action, `q` (or the end of input)
stops play as Ctrl-C does (a demonstration being recorded is still written).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import MappingProxyType
from typing import TextIO

import numpy as np

from fledge.envs.api import ActionTuple, BehaviorSpec, DecisionSteps
from fledge.errors import ConfigError

__all__ = ["KEYMAPS", "KeyboardPolicies"]

_LEFT_STAY_RIGHT = MappingProxyType({"a": (0, "left"), "s": (1, "stay"), "d": (2, "right")})

#: Per task: key -> (discrete action of its single branch, what it does).
KEYMAPS: Mapping[str, Mapping[str, tuple[int, str]]] = MappingProxyType(
    {
        "Basic": _LEFT_STAY_RIGHT,
        "MoveToGoal1D-Discrete": _LEFT_STAY_RIGHT,
        "Hallway": MappingProxyType(
            {"w": (0, "forward"), "s": (1, "back"), "a": (2, "enter the green goal"), "d": (3, "enter the orange goal")}
        ),
        "GridWorld": MappingProxyType(
            {"x": (0, "stay"), "w": (1, "up"), "s": (2, "down"), "a": (3, "left"), "d": (4, "right")}
        ),
        "MaskedChoice": MappingProxyType({str(k): (k, f"action {k}") for k in range(4)}),
    }
)
MAX_SHOWN_VALUES = 32


class KeyboardPolicies:
    """Play's policy interface (`get`, `end_episodes`, `labels`) over lines of keys read from `keys`."""

    def __init__(self, env_name: str, *, keys: TextIO | None = None, prompt: TextIO | None = None) -> None:
        if env_name not in KEYMAPS:
            raise ConfigError(
                f"--keyboard {env_name}: no key map for this environment; the built-in tasks that take keys are "
                f"{', '.join(sorted(KEYMAPS))}."
            )
        self.env_name = env_name
        self.keymap = KEYMAPS[env_name]
        self.keys = keys if keys is not None else sys.stdin
        self.prompt = prompt if prompt is not None else sys.stdout
        self.label = f"keyboard ({', '.join(f'{k} = {what}' for k, (_, what) in self.keymap.items())}; q = stop)"
        self._last: dict[int, int] = {}

    def get(self, behavior: str, spec: BehaviorSpec) -> KeyboardPolicies:
        return self

    def labels(self) -> str:
        return self.label

    def end_episodes(self, behavior: str, agent_ids: np.ndarray) -> None:
        return None

    def decide(self, steps: DecisionSteps) -> ActionTuple:
        actions = np.zeros((len(steps), 1), np.int32)
        for row, agent in enumerate(steps.agent_id.tolist()):
            actions[row, 0] = self._read(int(agent), [o[row] for o in steps.obs])
        return ActionTuple(discrete=actions)

    def _read(self, agent: int, obs: list[np.ndarray]) -> int:
        size = sum(o.size for o in obs)
        shown = (
            " ".join(np.array2string(o.ravel(), precision=2, separator=",") for o in obs)
            if size <= MAX_SHOWN_VALUES
            else f"({size} values; watch with --show)"
        )
        while True:
            print(f"agent {agent} observes {shown}; key ({'/'.join(self.keymap)}, q): ", end="", file=self.prompt)
            self.prompt.flush()
            line = self.keys.readline()
            if not line or line.strip().lower() == "q":
                raise KeyboardInterrupt  # play stops as on Ctrl-C and still writes what it records
            key = line.strip()[:1].lower()
            if not key and agent in self._last:
                return self._last[agent]
            if key in self.keymap:
                self._last[agent] = self.keymap[key][0]
                return self._last[agent]
            print(f"unknown key {key!r}; {self.label}", file=self.prompt)
