"""Soccer on a 2-D field, one physics module for two games: `SoccerTwos` (2 v 2, symmetric self-play) and
`StrikersVsGoalie` (two strikers against a goalie, asymmetric self-play), simulated for many matches at once.

The field (seen from above) spans x in [-3.5, 3.5] and y in [-2.5, 2.5], walled all round except the goal
mouths: |y| < 1 on the line x = -3.5 (team 0's goal) and on x = 3.5 (team 1's goal). Team 0 attacks +x, team 1
attacks -x. Agents are discs of radius 0.4 with a heading; the ball is a disc of radius 0.25. Every
decision lasts 0.1 s: agents turn (0.35 rad), then move (forward 3, back, sideways 2 units/s) and are kept
inside the field and apart from each other; the ball rolls with friction (its speed x 0.9 per decision, so
a kicked ball stops after a few units), bounces off the walls (losing 30% of its speed) and is put back on
the rim of any agent it touches. An agent kicks a ball that touches its front (within 60 degrees of its
heading): the ball leaves along the heading, 1 unit/s faster than the agent moves forward; a ball touching
its side or back is only pushed out along the contact normal by the agent's own motion (speeds capped at
9 units/s). Agents touching the ball in the same decision each act on the ball as it was, and their changes
add up (the ball goes to the mean of their rims), so neither team's touches take precedence. A goal is scored when the ball's centre crosses a goal line inside the mouth.

Actions (both games): 3 discrete branches of 3: forward/back (none, forward, back), sideways (none, left,
right), rotation (none, left = counter-clockwise, right).

Observations, egocentric (relative vectors in the agent's own frame: x ahead, y to its left, positions
divided by 3.5, velocities by 9) and mirrored per team (the own position and heading are in the team's
frame, where the team attacks +x), so both teams see the game the same way:
  0-1 own velocity; 2-3 cos and sin of the own heading (team frame); 4-5 own position (team frame,
  x / 3.5, y / 2.5); 6-7 ball position; 8-9 ball velocity relative to the agent's; then one (x, y) position per
  other agent; then the own goal's centre and the opponents' goal's centre.
Other agents, in order: SoccerTwos (20 values): teammate, the two opponents. StrikersVsGoalie (18 values):
a striker sees the other striker then the goalie; the goalie sees the two strikers.

Agents of a team form a group (group id 1 + 2 * match + team, unique per team and match).
SoccerTwos rewards (ML-Agents' SoccerTwos): group rewards only, 1 - (decisions so far / max_episode_steps)
to the scoring team and -1 to the conceding team; a goal ends the episode of all four agents, which
are interrupted after `max_episode_steps` (300) decisions. The environment parameter `ball_touch` (default 0,
as in ML-Agents' SoccerTwos, whose curriculum used it) adds 0.2 x `ball_touch` to an agent's own reward for
each decision in which it touches the ball.
StrikersVsGoalie rewards (ML-Agents' StrikersVsGoalie): strikers +1 (group reward) on a goal and -0.001
per decision; the goalie -1 (group reward) on a goal and +0.001 per decision. Only team 1's goal (x = 3.5)
is open; the strikers have `shot_clock` (200) decisions to score, after which the episode ends (a real
end, not an interruption: the goalie has won the game).
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.soccer_field import AGENT_RADIUS, BALL_RADIUS, GOAL_HALF_WIDTH, HALF_LENGTH, HALF_WIDTH
from fledge.envs.builtin.teams import TeamTask
from fledge.errors import ConfigError

DT = 0.1
FORWARD, BACK, SIDE = 3.0, 2.0, 2.0  # agent speeds, units/s
TURN = 0.35  # rad per decision
KICK = 1.0  # a kicked ball leaves this much faster than the kicking agent moves forward (along its heading)
FRONT_COS = 0.5  # the ball touches an agent's front (and is kicked) within 60 degrees of its heading
MAX_BALL_SPEED = 9.0
FRICTION = 0.9  # ball speed factor per decision
BOUNCE = 0.7  # ball speed factor at a wall
BRANCHES = (3, 3, 3)
SOCCER_TEAMS = ("SoccerTwos?team=0", "SoccerTwos?team=1")
STRIKERS_VS_GOALIE = ("Striker?team=0", "Goalie?team=1")
SOCCER_MAX_STEPS = 300
SHOT_CLOCK = 200
TOUCH_REWARD = 0.2  # times the `ball_touch` parameter, per decision in which an agent touches the ball
STEP_REWARD = 0.001  # StrikersVsGoalie's per-decision reward (- for strikers, + for the goalie)

_FWD = np.array([0.0, FORWARD, -BACK])
_SIDE = np.array([0.0, SIDE, -SIDE])
_TURN = np.array([0.0, TURN, -TURN])


def _complex(xy: np.ndarray) -> np.ndarray:
    """A (k,) complex view of a C-contiguous (k, 2) float64 array of points (x + iy): writes go through."""
    return xy.view(np.complex128)[:, 0]


def obs_size(others: int) -> int:
    """Observation size of an agent that sees `others` other agents."""
    return 10 + 2 * others + 4


class SoccerField(TeamTask):
    """The physics and observations shared by both games. A match holds `per_match` agents in consecutive
    rows; `team` (per slot) says which team each slot plays for, `others` (per slot) which slots it sees."""

    team_slots: tuple[int, ...]  # team of each slot of a match
    other_slots: tuple[tuple[int, ...], ...]  # the slots each slot observes, in order
    open_goals: tuple[bool, bool]  # whether the goal of team 0 (x = -L) / team 1 (x = +L) is open

    def __init__(self, *, num_agents: int, name: str) -> None:
        k = len(self.team_slots)
        self.num_agents = check_count(name, "num_agents", num_agents, minimum=k)
        if self.num_agents % k:
            raise ConfigError(
                f"Environment '{name}': num_agents must be a multiple of {k} (agents per match), got {num_agents}."
            )
        self.per_match = k
        self.matches = m = self.num_agents // k
        n = self.num_agents
        slot = np.arange(n) % k
        match = np.arange(n) // k
        self.team = np.asarray(self.team_slots)[slot]
        self.agent_behavior = self.team.copy()
        self.mirror = np.where(self.team == 0, 1.0, -1.0)  # world -> team frame (a half turn for team 1)
        self.others = match[:, None] * k + np.asarray(self.other_slots)[slot]  # (n, others)
        self._group_ids = (1 + 2 * match + self.team).astype(np.int32)
        self._match = match
        self._half_turn = np.where(self.team == 0, 0.0, np.pi)
        self._own_goal = -self.mirror * HALF_LENGTH  # x of the own goal's centre (y = 0)
        k_others = self.others.shape[1]
        self._scale = np.array(
            [1 / MAX_BALL_SPEED] * 2
            + [1.0] * 2
            + [1 / HALF_LENGTH, 1 / HALF_WIDTH]
            + [1 / HALF_LENGTH] * 2
            + [1 / MAX_BALL_SPEED] * 2
            + [1 / HALF_LENGTH] * (2 * k_others + 4)
        )
        size = obs_size(self.others.shape[1])
        self.spec = BehaviorSpec(observation_specs=[ObservationSpec.vector(size)], action_spec=ActionSpec(0, BRANCHES))
        self.pos = np.zeros((n, 2))
        self.vel = np.zeros((n, 2))
        self.heading = np.zeros(n)
        self.ball = np.zeros((m, 4))  # x, y, vx, vy
        self.steps = np.zeros(m, dtype=np.int64)  # decisions in the current episode, per match
        self.kicks = np.zeros(m, dtype=np.int64)
        self.touched = np.zeros(n, dtype=bool)  # per agent: whether it touched the ball in the last decision
        self._group_reward = np.zeros(n, dtype=np.float32)
        pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
        self._pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)

    # -- VectorTask hooks -------------------------------------------------------------------------------
    def group_ids(self) -> np.ndarray:
        return self._group_ids

    def group_rewards(self) -> np.ndarray:
        return self._group_reward

    def optimal_return(self) -> float | None:
        return None

    def observe(self) -> list[np.ndarray]:
        k = self.others.shape[1]
        pos, vel = _complex(self.pos), _complex(self.vel)
        ball = self.ball.view(np.complex128)[self._match]  # (n, 2): position, velocity
        rot = np.exp(-1j * self.heading)  # world -> the agent's frame
        z = np.empty((self.num_agents, 7 + k), dtype=np.complex128)  # one (x, y) pair per column
        z[:, 0] = vel * rot
        z[:, 1] = np.exp(1j * (self.heading + self._half_turn))
        z[:, 2] = pos * self.mirror
        z[:, 3] = (ball[:, 0] - pos) * rot
        z[:, 4] = (ball[:, 1] - vel) * rot
        z[:, 5 : 5 + k] = (pos[self.others] - pos[:, None]) * rot[:, None]
        z[:, 5 + k] = (self._own_goal - pos) * rot
        z[:, 6 + k] = (-self._own_goal - pos) * rot
        return [(z.view(np.float64) * self._scale).astype(np.float32)]

    # -- physics ---------------------------------------------------------------------------------------
    def _place(self, matches: np.ndarray, rng: np.random.Generator, starts: np.ndarray, ball_x: float) -> None:
        """Put the agents of `matches` at `starts` (per slot: x, y, heading; world frame) with some jitter."""
        k, count = self.per_match, len(matches)
        rows = (matches[:, None] * k + np.arange(k)).reshape(-1)
        base = np.tile(starts, (count, 1))
        self.pos[rows] = base[:, :2] + rng.uniform(-0.3, 0.3, (len(rows), 2))
        self.heading[rows] = base[:, 2] + rng.uniform(-0.3, 0.3, len(rows))
        self.vel[rows] = 0.0
        self.ball[matches, 0] = ball_x
        self.ball[matches, 1] = rng.uniform(-0.5, 0.5, count)
        self.ball[matches, 2:] = 0.0
        self.steps[matches] = 0
        self.kicks[matches] = 0

    def _move_agents(self, actions: ActionTuple) -> None:
        a = np.clip(actions.discrete, 0, 2)
        self.heading = (self.heading + _TURN[a[:, 2]] + np.pi) % (2.0 * np.pi) - np.pi
        pos_c, vel_c = _complex(self.pos), _complex(self.vel)
        vel_c[:] = np.exp(1j * self.heading) * (_FWD[a[:, 0]] + 1j * _SIDE[a[:, 1]])
        pos_c += vel_c * DT
        pos = pos_c.reshape(self.matches, self.per_match)
        for a_slot, b_slot in self._pairs:  # push overlapping agents apart, half each
            d = pos[:, a_slot] - pos[:, b_slot]
            dist = np.abs(d)
            overlap = np.maximum(2.0 * AGENT_RADIUS - dist, 0.0)
            if overlap.any():
                unit = np.where(dist > 1e-9, d / np.maximum(dist, 1e-9), 1.0)
                pos[:, a_slot] += 0.5 * overlap * unit
                pos[:, b_slot] -= 0.5 * overlap * unit
        lim = np.array([HALF_LENGTH - AGENT_RADIUS, HALF_WIDTH - AGENT_RADIUS])
        np.clip(self.pos, -lim, lim, out=self.pos)

    def _move_ball(self) -> np.ndarray:
        """Roll, kick and bounce the ball; returns per match the goal scored: +1 at x = +L (team 0 scored),
        -1 at x = -L (team 1 scored), 0 none."""
        b = self.ball
        ball = b.view(np.complex128)
        bp, bv = ball[:, 0], ball[:, 1]  # views: position, velocity
        bp += bv * DT
        bv *= FRICTION
        pos = _complex(self.pos).reshape(self.matches, self.per_match)
        vel = _complex(self.vel).reshape(self.matches, self.per_match)
        heading = self.heading.reshape(self.matches, self.per_match)
        reach = AGENT_RADIUS + BALL_RADIUS
        touched = self.touched.reshape(self.matches, self.per_match)
        # every touching agent acts on the ball as it was before the kicks, so the slot order favours no team
        start_p, start_v = bp.copy(), bv.copy()
        change = np.zeros_like(bv)
        rim = np.zeros_like(bp)
        for slot in range(self.per_match):  # kicks
            d = start_p - pos[:, slot]
            dist = np.abs(d)
            touched[:, slot] = touch = dist < reach
            unit = np.where(dist > 1e-9, d / np.maximum(dist, 1e-9), 1.0)
            along = unit.conj()  # (v * conj(u)).real is the dot product of v and u
            facing = np.exp(1j * heading[:, slot])
            front = (unit * facing.conj()).real > FRONT_COS
            push = (vel[:, slot] * along).real - (start_v * along).real  # the agent's motion pushes the ball out
            pushed = start_v + np.maximum(push, 0.0) * unit
            kicked = facing * (np.maximum((vel[:, slot] * facing.conj()).real, 0.0) + KICK)
            change += np.where(touch, np.where(front, kicked, pushed) - start_v, 0.0)
            rim += np.where(touch, pos[:, slot] + reach * unit, 0.0)
        count = touched.sum(axis=1)
        bv += change
        bp[:] = np.where(count > 0, rim / np.maximum(count, 1), bp)
        self.kicks += count
        speed = np.abs(bv)
        bv *= np.minimum(1.0, MAX_BALL_SPEED / np.maximum(speed, 1e-9))
        # side walls
        wall_y = HALF_WIDTH - BALL_RADIUS
        over = np.abs(b[:, 1]) > wall_y
        b[:, 1] = np.where(over, np.sign(b[:, 1]) * (2.0 * wall_y - np.abs(b[:, 1])), b[:, 1])
        b[:, 3] = np.where(over, -b[:, 3] * BOUNCE, b[:, 3])
        # goal lines: a goal inside an open mouth, a bounce elsewhere
        scored = np.zeros(self.matches)
        for side, is_open in ((-1.0, self.open_goals[0]), (1.0, self.open_goals[1])):
            mouth = np.abs(b[:, 1]) < GOAL_HALF_WIDTH - BALL_RADIUS if is_open else np.zeros(self.matches, bool)
            goal = mouth & (side * b[:, 0] > HALF_LENGTH)
            scored = np.where(goal, side, scored)
            wall_x = HALF_LENGTH - BALL_RADIUS
            hit = ~mouth & (side * b[:, 0] > wall_x)
            b[:, 0] = np.where(hit, side * (2.0 * wall_x - side * b[:, 0]), b[:, 0])
            b[:, 2] = np.where(hit, -b[:, 2] * BOUNCE, b[:, 2])
        return scored

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8 of the first matches, seen from above."""
        from fledge.envs.builtin.soccer_render import draw_soccer

        return draw_soccer(
            self.pos,
            self.heading,
            self.ball,
            team=self.team,
            per_match=self.per_match,
            open_goals=self.open_goals,
            title=self.behavior_name,
            steps=self.steps,
        )


class SoccerTwosTask(SoccerField):
    """2 v 2: agents 4m, 4m + 1 are team 0 of match m, 4m + 2, 4m + 3 team 1 (behavior ids `SoccerTwos?team=N`)."""

    behavior_name = "SoccerTwos"
    parameter_defaults = MappingProxyType({"ball_touch": 0.0})
    behavior_ids = SOCCER_TEAMS
    team_slots = (0, 0, 1, 1)
    other_slots = ((1, 2, 3), (0, 2, 3), (3, 0, 1), (2, 0, 1))
    open_goals = (True, True)
    STARTS = np.array([[-1.6, 1.0, 0.0], [-1.6, -1.0, 0.0], [1.6, -1.0, np.pi], [1.6, 1.0, np.pi]])

    def __init__(self, *, num_agents: int = 4, max_episode_steps: int = SOCCER_MAX_STEPS) -> None:
        super().__init__(num_agents=num_agents, name="SoccerTwos")
        self.max_episode_steps = check_count("SoccerTwos", "max_episode_steps", max_episode_steps, minimum=0)

    def optimal_return(self) -> float:
        """A zero-sum game between equal teams: no single best return."""
        return 0.0

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        matches = np.unique(np.asarray(idx) // 4)
        if len(matches):
            self._place(matches, rng, self.STARTS, 0.0)

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        self._move_agents(actions)
        scored = self._move_ball()
        self.steps += 1
        limit = self.max_episode_steps
        penalty = self.steps / limit if limit > 0 else np.zeros(self.matches)
        win = np.maximum(1.0 - penalty, 0.0)  # the scorers' reward, less the accumulated time penalty
        per_agent = np.repeat(scored, 4)  # +1: team 0 scored
        scorer = np.where(per_agent == 0, -1, np.where(per_agent > 0, 0, 1))  # the scoring team, -1: none
        team_win = np.repeat(win, 4)
        self._group_reward = np.where(scorer < 0, 0.0, np.where(self.team == scorer, team_win, -1.0)).astype(np.float32)
        done = per_agent != 0
        if self.stats is not None and (scored != 0).any():
            for steps in self.steps[scored != 0].tolist():
                self.stats.record("Environment/Decisions per goal", float(steps))
        reward = (TOUCH_REWARD * self.parameters.values["ball_touch"] * self.touched).astype(np.float32)
        return reward, done


class StrikersVsGoalieTask(SoccerField):
    """Agents 3m and 3m + 1 are the strikers of match m (`Striker?team=0`), 3m + 2 its goalie (`Goalie?team=1`)."""

    behavior_name = "StrikersVsGoalie"
    behavior_ids = STRIKERS_VS_GOALIE
    team_slots = (0, 0, 1)
    other_slots = ((1, 2), (0, 2), (0, 1))
    open_goals = (False, True)
    STARTS = np.array([[-1.5, 1.2, 0.0], [-1.5, -1.2, 0.0], [HALF_LENGTH - 0.8, 0.0, np.pi]])

    def __init__(self, *, num_agents: int = 3, shot_clock: int = SHOT_CLOCK) -> None:
        super().__init__(num_agents=num_agents, name="StrikersVsGoalie")
        self.shot_clock = check_count("StrikersVsGoalie", "shot_clock", shot_clock, minimum=1)
        self.max_episode_steps = 0  # the shot clock ends every game

    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        matches = np.unique(np.asarray(idx) // 3)
        if len(matches):
            self._place(matches, rng, self.STARTS, -0.5)

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        self._move_agents(actions)
        goal = np.repeat(self._move_ball() > 0, 3)
        self.steps += 1
        striker = self.team == 0
        self._group_reward = np.where(goal, np.where(striker, 1.0, -1.0), 0.0).astype(np.float32)
        reward = np.where(striker, -STEP_REWARD, STEP_REWARD).astype(np.float32)
        done = goal | np.repeat(self.steps >= self.shot_clock, 3)
        if self.stats is not None and done.any():
            for scored in goal[::3][done[::3]].tolist():
                self.stats.record("Environment/Goal rate", float(scored))
        return reward, done
