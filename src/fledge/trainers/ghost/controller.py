"""`TeamController`: which team learns, shared by every ghost trainer of one run (the run owns it).

Each team id (`Behavior?team=N`) subscribes once with the ghost trainer that owns it (one ghost per
brain; a symmetric game subscribes both of its teams with the same ghost). The first team subscribed
learns first; the others wait in a queue. When the learning ghost's trainer has learned `team_change`
steps since its team began, it calls `change`: the learning team goes to the back of the queue, the
next one learns, every subscribed ghost is told (its teams' seats switch between the learning policy
and frozen opponents), and a reset of the environment is requested, so that no partial game or
trajectory played under the old roles is learned from. The session takes that request
(`take_reset_request`) before the next step.

The state (learning team, queue, number of changes) is saved in every ghost trainer's checkpoint; a
resumed run keeps the state with the most changes (the newest: it changes only at a change).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any, Protocol

log = logging.getLogger("fledge")


class TeamMember(Protocol):
    """What the controller needs from a ghost trainer."""

    name: str

    def on_team_change(self, learning_team: int) -> None: ...

    def is_rated(self, team: int) -> bool:
        """Whether games against the policy team `team` plays with now change ratings."""
        ...

    def opponent_rating(self, team: int) -> float:
        """The ELO of the policy that team `team` plays with now (a frozen snapshot or a latest copy)."""
        ...

    def rate_opponent(self, team: int, change: float) -> None:
        """Add `change` to the rating slot of the policy team `team` plays with now (no-op when unrated)."""
        ...


class TeamController:
    def __init__(self) -> None:
        self.learning_team: int | None = None
        self.queue: deque[int] = deque()
        self.changes = 0  # team changes so far (identifies the controller's state)
        self.members: dict[int, list[TeamMember]] = {}  # per team id: the ghosts of its brains
        self._reset_requested = False

    def subscribe(self, team: int, member: TeamMember) -> None:
        """A team joins: it learns if it is the first, else it waits in the queue. Several brains may share
        a team id (as ML-Agents allows): they learn and wait together."""
        members = self.members.setdefault(team, [])
        if member in members:
            return
        if members:
            log.info(
                "Behavior '%s': self_play: it shares team id %d with %s, so they learn at the same time and play "
                "against each other's learning policies; give each brain its own team (Behavior?team=N) to alternate.",
                member.name,
                team,
                ", ".join(f"'{m.name}'" for m in members),
            )
        members.append(member)
        if self.learning_team is None:
            self.learning_team = team
        elif team != self.learning_team and team not in self.queue:
            self.queue.append(team)

    def is_learning(self, team: int) -> bool:
        return team == self.learning_team

    def change(self) -> int | None:
        """Move the learning team to the back of the queue and let the next one learn; returns it."""
        if self.learning_team is None or not self.queue:
            return self.learning_team
        self.queue.append(self.learning_team)
        self.learning_team = self.queue.popleft()
        self.changes += 1
        self._reset_requested = True
        log.info("Self-play: team %d learns now (team change %d).", self.learning_team, self.changes)
        for member in {id(m): m for ms in self.members.values() for m in ms}.values():
            member.on_team_change(self.learning_team)
        return self.learning_team

    def take_reset_request(self) -> bool:
        """True once after each team change: the session resets the environment and its processors."""
        requested, self._reset_requested = self._reset_requested, False
        return requested

    # -- ratings across ghosts (asymmetric games have one ghost per brain) ---------------------------
    def opponents(self, team: int) -> list[tuple[int, TeamMember]]:
        return [(t, m) for t, ms in sorted(self.members.items()) if t != team for m in ms]

    # -- checkpoints ------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"learning_team": self.learning_team, "queue": list(self.queue), "changes": self.changes}

    def load_state(self, state: dict[str, Any]) -> bool:
        """Adopt a saved state unless this one has seen more changes; True when adopted."""
        changes = int(state.get("changes", 0))
        if changes < self.changes:
            return False
        self.learning_team = None if state.get("learning_team") is None else int(state["learning_team"])
        self.queue = deque(int(t) for t in state.get("queue", []))
        for team in self.members:  # teams subscribed now but absent from the saved queue wait last
            if team != self.learning_team and team not in self.queue:
                self.queue.append(team)
        self.changes = changes
        return True
