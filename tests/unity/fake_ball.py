"""The fake player's task: every agent tilts a 5 x 5 platform to keep a ball on it (numpy, all agents at once).

Part of the fake Unity player (fake_player.py); it imports nothing but numpy.
"""

from __future__ import annotations

import numpy as np

GRAVITY, SUBSTEPS, DT, DAMPING = 4.0, 5, 0.02, 1.0  # a light world: learnable in a few PPO updates
TURN = np.deg2rad(2.0)  # platform turn per decision at |action| = 1
MAX_TILT = np.deg2rad(25.0)
START_TILT, START_SPAN, HALF_SIZE, BALL_RADIUS = np.deg2rad(3.0), 0.5, 2.5, 0.5
STEP_REWARD, FALL_REWARD = 0.1, -1.0


class BallPlatforms:
    """n platforms (tilt about z and x) with a ball rolling on each; numpy over agents.

    3DBall's task in a lighter world (g = 4, strong rolling damping 1/s, gentle starts: tilts within
    +-3 degrees, the ball at rest within +-0.5 of the centre), so that PPO with the 3DBall config learns
    it in a few updates. A decision turns each platform by up to 2 degrees per axis (tilt limited to 25
    degrees), then the ball rolls for 5 substeps of 0.02 s with 5/7 g times the slope. It falls (reward
    -1, episode over) once it leaves the platform (|x| or |z| > 2.5); otherwise +0.1 a decision.
    Observations (8): sin of half of each tilt, ball position (x, height, z) and velocity relative to
    the platform centre. Measured with fledge's PPO 3DBall config, 12 agents, 500-decision episodes:
    the mean return of the last 50 episodes is about 11-13 at first and 39-44 after 60k steps (18-23
    after 30k; seeds 1 to 3); the optimum is 50.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.tilt = np.zeros((n, 2))  # about z, about x
        self.pos = np.zeros((n, 2))  # ball x, z on the platform
        self.vel = np.zeros((n, 2))

    def reset(self, idx: np.ndarray, rng: np.random.Generator) -> None:
        self.tilt[idx] = rng.uniform(-START_TILT, START_TILT, size=(len(idx), 2))
        self.pos[idx] = rng.uniform(-START_SPAN, START_SPAN, size=(len(idx), 2))
        self.vel[idx] = 0.0

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Advance one decision; returns (reward float32 (n,), fell bool (n,))."""
        turn = np.clip(np.nan_to_num(actions, nan=0.0), -1.0, 1.0) * TURN
        self.tilt = np.clip(self.tilt + turn, -MAX_TILT, MAX_TILT)
        # positive tilt about z raises +x (the ball rolls to -x); about x it lowers +z (rolls to +z)
        accel = 5.0 / 7.0 * GRAVITY * np.stack([-np.sin(self.tilt[:, 0]), np.sin(self.tilt[:, 1])], axis=1)
        for _ in range(SUBSTEPS):
            self.vel = (1.0 - DAMPING * DT) * self.vel + accel * DT
            self.pos = self.pos + self.vel * DT
        fell = (np.abs(self.pos) > HALF_SIZE).any(axis=1)
        reward = np.where(fell, FALL_REWARD, STEP_REWARD).astype(np.float32)
        return reward, fell

    def observe(self) -> np.ndarray:
        out = np.empty((self.n, 8), dtype=np.float32)
        out[:, 0:2] = np.sin(self.tilt / 2.0)
        slope = np.stack([np.sin(self.tilt[:, 0]), -np.sin(self.tilt[:, 1])], axis=1)
        out[:, 2] = self.pos[:, 0]
        out[:, 3] = BALL_RADIUS + (slope * self.pos).sum(axis=1)
        out[:, 4] = self.pos[:, 1]
        out[:, 5] = self.vel[:, 0]
        out[:, 6] = (slope * self.vel).sum(axis=1)
        out[:, 7] = self.vel[:, 1]
        return out

    def camera(self, channels: int = 3, size: int = 84) -> np.ndarray:
        """Top views (n, channels, size, size) float32 in [0, 1] (multiples of 1/255): red and green shade
        the platform by its tilts, blue is the ball; a 4th channel is the ball alone, further ones zero."""
        coords = (np.arange(size) + 0.5) / size * 6.0 - 3.0  # the view spans +-3 around the centre
        x = coords[None, None, :]
        z = coords[None, :, None]
        on_platform = (np.abs(x) <= HALF_SIZE) & (np.abs(z) <= HALF_SIZE)
        ball = (x - self.pos[:, 0, None, None]) ** 2 + (z - self.pos[:, 1, None, None]) ** 2 <= BALL_RADIUS**2
        shade = np.clip(0.5 + self.tilt / (2 * MAX_TILT), 0.0, 1.0)  # (n, 2)
        image = np.zeros((self.n, channels, size, size), dtype=np.uint8)
        for c in range(min(channels, 2)):
            image[:, c] = np.where(on_platform, np.round(40 + 200 * shade[:, c, None, None]), 0).astype(np.uint8)
        if channels > 2:
            image[:, 2] = np.where(ball, 255, np.where(on_platform, 60, 0)).astype(np.uint8)
        if channels > 3:
            image[:, 3] = np.where(ball, 255, 0).astype(np.uint8)
        return image.astype(np.float32) / 255.0
