"""Tennis: two agents per match hit a ball over a net, one behavior in two teams (`Tennis?team=0` left,
`Tennis?team=1` right), for self-play.

A 2-D side view, simulated for many matches at once. The court spans x in [-4, 4] with a net of height 1
at x = 0; each agent moves a paddle (a racket seen from the side) along its own half. Every decision
lasts 0.1 s under gravity 9.8. A point starts with a serve from above the net, to a random side, that
lands inside that side's half. The paddle hits the ball when the ball comes down through the paddle's
height within 0.6 of its centre (horizontally), on the paddle's side; the ball then leaves toward the
other side at speed 7 with the angle the agent chose (30 to 60 degrees). The point ends when the ball
touches the ground: inside a half, that half's agent loses; beyond the far line, the agent that hit it
last loses; a ball that crosses the net below its height loses the point for the agent that hit it.
Rewards: +1 to the point's winner, -1 to the loser (ML-Agents' Tennis rewards); a point is one episode,
interrupted after 100 decisions.

Actions (3 continuous, in [-1, 1]): move (toward the net +), jump (the paddle's height, 0.3 to 0.9),
angle (30 to 60 degrees). Observations (9), in each agent's own frame (its half is x < 0, scaled by 1/4
for positions and 1/7 for velocities): paddle x, paddle height, paddle velocity, ball x, ball height,
ball velocity x and y, opponent x and height. A random agent returns few serves; one that follows
the ball returns most, and the angle decides whether the return clears the net and stays in.
"""

from __future__ import annotations

import numpy as np

from fledge.envs.api import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec
from fledge.envs.builtin._common import check_count
from fledge.envs.builtin.teams import TeamTask
from fledge.errors import ConfigError

HALF = 4.0  # half the court's length
NET = 1.0  # the net's height
DT = 0.1
GRAVITY = 9.8
SPEED = 7.0  # the ball's speed after a hit
PADDLE_SPEED = 6.0
REACH = 0.6
LOW, HIGH = 0.3, 0.9  # paddle heights
MIN_ANGLE, MAX_ANGLE = np.radians(30.0), np.radians(60.0)
MAX_EPISODE_STEPS = 100
OBS_SIZE = 9
TEAMS = ("Tennis?team=0", "Tennis?team=1")


class TennisTask(TeamTask):
    """`num_agents` = 2 x matches; agent 2m plays the left side of match m (team 0), 2m + 1 the right (team 1)."""

    behavior_name = "Tennis"
    behavior_ids = TEAMS

    def __init__(self, *, num_agents: int = 2, max_episode_steps: int = MAX_EPISODE_STEPS) -> None:
        self.num_agents = check_count("Tennis", "num_agents", num_agents, minimum=2)
        if self.num_agents % 2:
            raise ConfigError(f"Environment 'Tennis': num_agents must be even (two per match), got {num_agents}.")
        self.max_episode_steps = check_count("Tennis", "max_episode_steps", max_episode_steps, minimum=0)
        self.spec = BehaviorSpec(observation_specs=[ObservationSpec.vector(OBS_SIZE)], action_spec=ActionSpec(3, ()))
        n, m = self.num_agents, self.num_agents // 2
        self.agent_behavior = np.arange(n) % 2
        self.side = np.where(self.agent_behavior == 0, -1.0, 1.0)  # world side of each agent's half
        self.paddle = np.zeros((n, 3))  # x (world), height, x velocity
        self.ball = np.zeros((m, 4))  # x, y, vx, vy (world)
        self.hitter = np.zeros(m)  # side of the last hit (0: the serve)
        self.hits = np.zeros(m, dtype=np.int64)  # hits in the current point

    def optimal_return(self) -> float:
        """A zero-sum game: the mean return over both sides is 0 whatever the policies."""
        return 0.0

    # -- VectorTask -----------------------------------------------------------------------------------
    def reset_agents(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        matches = np.unique(np.asarray(idx) // 2)
        if not len(matches):
            return
        agents = np.concatenate([2 * matches, 2 * matches + 1])
        self.paddle[agents, 0] = self.side[agents] * HALF / 2
        self.paddle[agents, 1] = LOW
        self.paddle[agents, 2] = 0.0
        k = len(matches)
        to = np.where(rng.random(k) < 0.5, -1.0, 1.0)  # the side served to
        # from (0.05 * to, 2.5): vx in [1, 2.4] and vy in [0, 1.5] land it 1 to 3.7 into that half
        self.ball[matches, 0] = 0.05 * to
        self.ball[matches, 1] = 2.5
        self.ball[matches, 2] = to * rng.uniform(1.0, 2.4, k)
        self.ball[matches, 3] = rng.uniform(0.0, 1.5, k)
        self.hitter[matches] = 0.0
        self.hits[matches] = 0

    def observe(self) -> list[np.ndarray]:
        n = self.num_agents
        own = -self.side  # world -> own frame (own half x < 0)
        ball = self.ball[np.arange(n) // 2]
        other = self.paddle[np.arange(n) ^ 1]
        obs = np.empty((n, OBS_SIZE), dtype=np.float32)
        obs[:, 0] = own * self.paddle[:, 0] / HALF
        obs[:, 1] = self.paddle[:, 1]
        obs[:, 2] = own * self.paddle[:, 2] / SPEED
        obs[:, 3] = own * ball[:, 0] / HALF
        obs[:, 4] = ball[:, 1] / HALF
        obs[:, 5] = own * ball[:, 2] / SPEED
        obs[:, 6] = ball[:, 3] / SPEED
        obs[:, 7] = own * other[:, 0] / HALF
        obs[:, 8] = other[:, 1]
        return [obs]

    def apply(self, actions: ActionTuple, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        a = np.clip(actions.continuous.astype(np.float64), -1.0, 1.0)
        side = self.side
        # paddles: move toward the net with a[:, 0] > 0, inside the own half
        vx = -side * a[:, 0] * PADDLE_SPEED
        x = self.paddle[:, 0] + vx * DT
        near, far = side * 0.2, side * HALF  # the own half in world coordinates: from near the net to the line
        self.paddle[:, 0] = np.clip(x, np.minimum(near, far), np.maximum(near, far))
        self.paddle[:, 2] = vx
        self.paddle[:, 1] = LOW + (HIGH - LOW) * (a[:, 1] + 1.0) / 2.0
        # the ball flies
        b = self.ball
        x0, y0 = b[:, 0].copy(), b[:, 1].copy()
        b[:, 3] -= GRAVITY * DT
        b[:, 0] += b[:, 2] * DT
        b[:, 1] += b[:, 3] * DT
        m = len(b)
        lost = np.zeros(m)  # the side that lost the point (0: play on)
        # the net: crossing x = 0 below its height loses the point for the last hitter
        crossed = (np.sign(x0) != np.sign(b[:, 0])) & (x0 != 0.0)
        if crossed.any():
            frac = np.where(crossed, x0 / np.where(crossed, x0 - b[:, 0], 1.0), 0.0)
            y_net = y0 + frac * (b[:, 1] - y0)
            into = crossed & (y_net < NET) & (self.hitter != 0)
            lost = np.where(into, self.hitter, lost)
        # hits: the ball comes down through the paddle height of the side it is on, within reach
        on = np.where(b[:, 0] < 0.0, -1.0, 1.0)
        player = 2 * np.arange(m) + (on > 0)
        px, py = self.paddle[player, 0], self.paddle[player, 1]
        hit = (lost == 0) & (b[:, 3] < 0) & (y0 >= py) & (b[:, 1] < py) & (np.abs(b[:, 0] - px) < REACH)
        hit &= self.hitter != on
        if hit.any():
            angle = MIN_ANGLE + (MAX_ANGLE - MIN_ANGLE) * (a[player, 2] + 1.0) / 2.0
            b[:, 1] = np.where(hit, py, b[:, 1])
            b[:, 2] = np.where(hit, -on * SPEED * np.cos(angle), b[:, 2])
            b[:, 3] = np.where(hit, SPEED * np.sin(angle), b[:, 3])
            self.hitter = np.where(hit, on, self.hitter)
            self.hits += hit
        # the ground
        landed = (lost == 0) & (b[:, 1] <= 0.0)
        out = landed & (np.abs(b[:, 0]) > HALF)
        lost = np.where(landed & ~out, on, lost)
        lost = np.where(out, np.where(self.hitter != 0, self.hitter, on), lost)
        if self.stats is not None and (lost != 0).any():
            for hits in self.hits[lost != 0].tolist():
                self.stats.record("Environment/Hits per point", float(hits))
        # rewards per agent: -1 to the side that lost, +1 to the other
        per_match = np.repeat(lost, 2)
        reward = np.where(per_match == 0, 0.0, np.where(per_match == side, -1.0, 1.0)).astype(np.float32)
        done = per_match != 0
        return reward, done

    def render(self, actions: ActionTuple | None = None) -> np.ndarray:
        """An RGB frame (H, W, 3) uint8 of the first matches: court, net, paddles and ball."""
        from fledge.envs.builtin.tennis_render import draw_tennis

        return draw_tennis(self.paddle, self.ball, half=HALF, net=NET, reach=REACH, hits=self.hits)
