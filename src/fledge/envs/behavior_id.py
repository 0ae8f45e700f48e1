"""Behavior ids of the form `Name?team=N`: the brain name (what a trainer and the YAML key use) and the team.

An environment may report one behavior per team of the same brain (`Striker?team=0`, `Striker?team=1`).
The run keeps one trainer per brain name and one agent processor per full behavior id; checkpoint
folders, stats categories, ONNX files and training_status keys use the brain name. The part after `?`
is a URL-style query string; `team` defaults to 0 when absent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple, TypeVar
from urllib.parse import parse_qs

from fledge.errors import EnvironmentFault, UnknownBehaviorError

T = TypeVar("T")


class BehaviorIdentifiers(NamedTuple):
    behavior_id: str  # the full name, as the environment reports it
    brain_name: str  # the part before '?'
    team_id: int  # from 'team=N'; 0 when absent


def parse_behavior_id(behavior_id: str) -> BehaviorIdentifiers:
    """Split `Name?team=N` into its parts; a team that is not an integer is refused with the name."""
    brain, sep, query = behavior_id.partition("?")
    if not sep:
        return BehaviorIdentifiers(behavior_id, behavior_id, 0)
    teams = parse_qs(query).get("team")
    if not teams:
        return BehaviorIdentifiers(behavior_id, brain, 0)
    try:
        team = int(teams[-1])
    except ValueError:
        raise EnvironmentFault(
            f"Behavior '{behavior_id}': the team '{teams[-1]}' is not an integer; the environment must name its "
            "behaviors '<name>' or '<name>?team=<integer>'."
        ) from None
    return BehaviorIdentifiers(behavior_id, brain, team)


def brain_name(behavior_id: str) -> str:
    """The brain name of a behavior id (the id itself when it has no '?')."""
    return behavior_id.partition("?")[0]


def behavior_ids_by_brain(behavior_ids: Iterable[str]) -> dict[str, list[str]]:
    """Behavior ids grouped by brain name, brains and ids in the order first seen."""
    groups: dict[str, list[str]] = {}
    for behavior_id in behavior_ids:
        groups.setdefault(parse_behavior_id(behavior_id).brain_name, []).append(behavior_id)
    return groups


def spec_for_brain(specs: Mapping[str, T], name: str) -> T:
    """The spec of behavior `name`, or of the first behavior id of brain `name` (its teams share one spec)."""
    if name in specs:
        return specs[name]
    for behavior_id, spec in specs.items():
        if brain_name(behavior_id) == name:
            return spec
    raise UnknownBehaviorError(f"Unknown behavior '{name}': the environment has {', '.join(specs) or 'no behaviors'}.")
