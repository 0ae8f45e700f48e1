"""`GhostTrainer`: self-play around any trainer (PPO, SAC, POCA), as spec section 11 describes, with
the weaknesses it lists fixed.

One ghost wraps the trainer of one brain. Each behavior id of that brain (`Brain?team=N`) gets a seat
(trainers/seats.py): the seats of the learning team act with the wrapped trainer's own policy and feed
it; the seats of other teams act with a frozen opponent policy (weights copied, never trained) and
their outcomes only count the opponents' steps (`ghost_step`). Which team learns is decided by the
run's `TeamController`, shared by the ghosts of every brain, so asymmetric games (one brain per team)
alternate too.

Schedule (steps of the wrapped trainer unless said otherwise):
- every `save_steps`: a snapshot of the current policy goes into the pool (a ring of `window`), rated
  with the learner's ELO; the initial weights are the first snapshot;
- every `swap_steps` opponent steps, and at each team change: every non-learning team of this brain
  gets new weights: with probability `play_against_latest_model_ratio` a copy of the current policy,
  otherwise a snapshot drawn uniformly from the pool;
- every `team_change` steps of the learning brain: the controller lets the next team learn and asks
  the session to reset the environment (no game played under the old roles is learned from or rated).

ELO (trainers/ghost/elo.py): every trajectory of the learning team that ends a game for real (done,
not interrupted) is one rated game; its result comes from its last reward. The opponent's rating is
the slot of the policy it plays with: a snapshot's own slot, or for another brain's latest weights that
brain's ELO. A game against a copy of the learner's own latest weights (symmetric games) is not rated:
both sides are the same player, so it says nothing about progress (ML-Agents moves the ELO by +change
and -change on the same slot, which cancels). The change is `elo_k_factor` x (result - expected).

Checkpoints hold the wrapped trainer's state plus the pool (tensors `ghost.snapshot.<slot>.`), the
opponents' current weights (`ghost.opponent.<team>.`) and JSON under meta["ghost"]: ELOs, chosen
opponents, counters, generators and the controller's state, so `--resume` continues exactly.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fledge.envs.behavior_id import parse_behavior_id
from fledge.errors import CheckpointError
from fledge.networks.numpy_actor import ActOutput
from fledge.rollout.processor import StepOutcome, Trajectory
from fledge.trainers.base import TrainerBase, TrainerState
from fledge.trainers.ghost.controller import TeamController
from fledge.trainers.ghost.elo import game_result, rating_change
from fledge.trainers.ghost.pool import SNAPSHOT_PREFIX, SnapshotPool
from fledge.trainers.policy import Policy
from fledge.trainers.seats import Seat
from fledge.trainers.state import generator_state, set_generator_state

log = logging.getLogger("fledge")

ELO_STAT = "Self-play/ELO"
OPPONENT_PREFIX = "ghost.opponent."
LATEST = -1  # the chosen opponent is a copy of the learner's latest weights


class TeamPolicy:
    """The policy a seat acts with: the learner's or a frozen opponent's, switched by the ghost."""

    def __init__(self, current: Policy) -> None:
        self.current = current

    @property
    def memory_size(self) -> int:
        return self.current.memory_size

    def act(self, obs: np.ndarray, allowed: np.ndarray | None, memory: np.ndarray | None = None) -> ActOutput:
        return self.current.act(obs, allowed, memory)

    def values(self, obs: np.ndarray) -> np.ndarray:
        return self.current.values(obs)

    def env_actions(self, out: ActOutput) -> Any:
        return self.current.env_actions(out)


class GhostTrainer:
    """Self-play around `inner` (see the module text); the run loop sees it as the brain's trainer."""

    def __init__(self, inner: TrainerBase, *, settings: Any, controller: TeamController, stats: Any, seed: int) -> None:
        self.inner = inner
        self.name = inner.name
        self.controller = controller
        self.stats = stats
        self.save_steps = int(settings.save_steps)
        self.swap_steps = int(settings.swap_steps)
        self.team_change = int(settings.team_change)
        self.latest_ratio = float(settings.play_against_latest_model_ratio)
        self.k_factor = float(getattr(settings, "elo_k_factor", 1.0))
        self.elo = float(settings.initial_elo)
        self.rng = np.random.default_rng(seed)
        self.seed = seed
        self.pool = SnapshotPool(int(settings.window))
        self.pool.add(inner.policy.policy_state(), self.elo)  # the initial weights
        self.seats: dict[int, TeamPolicy] = {}  # per team id of this brain
        self.opponents: dict[int, Policy] = {}  # frozen policies of the teams that do not learn
        self.chosen: dict[int, int] = {}  # per opponent team: pool slot, or LATEST
        self.ghost_step = 0  # steps of this brain's non-learning teams
        self.last_save = 0
        self.last_swap = 0
        self.last_team_change = 0
        self.games = 0  # rated games
        if self.team_change > inner.max_steps:
            log.warning(
                "Behavior '%s': self_play.team_change (%d) is above max_steps (%d): the learning team never changes.",
                self.name,
                self.team_change,
                inner.max_steps,
            )

    # -- what the run loop reads ----------------------------------------------------------------------
    @property
    def step(self) -> int:
        return self.inner.step

    @property
    def policy(self) -> Policy:
        return self.inner.policy

    @property
    def should_train(self) -> bool:
        return self.inner.should_train

    @property
    def mean_reward_since_update(self) -> float | None:
        return self.inner.mean_reward_since_update

    def __getattr__(self, name: str) -> Any:  # everything else is the wrapped trainer's (trainer_type, spec, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def observe(self, outcome: StepOutcome) -> None:
        """Outcomes without a team (no seat asked) belong to the learner."""
        self.inner.observe(outcome)

    def finish(self) -> None:
        self.inner.finish()

    def save_auxiliary(self, folder: Path) -> list[Path]:
        return self.inner.save_auxiliary(folder)

    def load_auxiliary(self, folder: Path) -> None:
        self.inner.load_auxiliary(folder)

    # -- seats --------------------------------------------------------------------------------------
    def seat(self, behavior_id: str) -> Seat:
        team = parse_behavior_id(behavior_id).team_id
        self.controller.subscribe(team, self)
        if team not in self.seats:
            self.seats[team] = TeamPolicy(self.inner.policy)
            self._seat_team(team)

        def observe(outcome: StepOutcome) -> None:
            self.observe_team(team, outcome)

        return Seat(policy=self.seats[team], observe=observe)

    def _opponent(self, team: int) -> Policy:
        if team not in self.opponents:
            inner = self.inner
            self.opponents[team] = type(inner.policy).build(  # type: ignore[attr-defined]
                inner.policy_settings,
                inner.settings.hyperparameters,
                seed=self.seed * 1009 + team + 1,
                device=inner.device,
            )
            self._load_opponent(team, 0)  # the initial weights until the first swap
        return self.opponents[team]

    def _load_opponent(self, team: int, slot: int) -> None:
        policy = self.opponents[team]
        tensors = self.inner.policy.policy_state() if slot == LATEST else self.pool.snapshots[slot]
        policy.load_policy_state(tensors)
        self.chosen[team] = slot

    def _seat_team(self, team: int) -> None:
        learning = self.controller.is_learning(team)
        self.seats[team].current = self.inner.policy if learning else self._opponent(team)

    # -- the controller's calls -------------------------------------------------------------------------
    def owns_learning_team(self) -> bool:
        return self.controller.learning_team in self.seats

    def on_team_change(self, learning_team: int) -> None:
        if learning_team in self.seats:
            self.last_team_change = self.inner.step
        for team in self.seats:
            self._seat_team(team)
        self._swap()

    def is_rated(self, team: int) -> bool:
        """Whether games against the policy `team` plays with now change ratings (see the module text)."""
        return not (self.chosen.get(team) == LATEST and self.owns_learning_team())

    def opponent_rating(self, team: int) -> float:
        slot = self.chosen.get(team, 0)
        return self.elo if slot == LATEST else self.pool.elos[slot]

    def rate_opponent(self, team: int, change: float) -> None:
        slot = self.chosen.get(team, 0)
        if slot == LATEST:
            if not self.owns_learning_team():
                self.elo -= change  # another brain's latest weights: its own rating
        else:
            self.pool.elos[slot] -= change

    # -- observing ------------------------------------------------------------------------------------
    def observe_team(self, team: int, outcome: StepOutcome) -> None:
        """One step of one team: the learning team's outcome goes to the wrapped trainer, others are counted."""
        if not self.controller.is_learning(team):
            self.inner.watch(outcome)
            added = sum(len(t) for t in outcome.trajectories)
            self.ghost_step += added
            if added and self.ghost_step - self.last_swap > self.swap_steps:
                self._swap()
            return
        if self.inner.should_train:
            self._rate_games(team, outcome.trajectories)
        self.inner.observe(outcome)
        step = self.inner.step
        if step - self.last_save > self.save_steps:
            self.pool.add(self.inner.policy.policy_state(), self.elo)
            self.last_save = step
        # a brain that reached max_steps hands over at once, so other brains' teams keep learning
        if step - self.last_team_change > self.team_change or not self.inner.should_train:
            self.last_team_change = step
            self.controller.change()

    def _rate_games(self, team: int, trajectories: list[Trajectory]) -> None:
        for traj in trajectories:
            if not traj.terminal:
                continue
            rated = [(t, m) for t, m in self.controller.opponents(team) if m.is_rated(t)]
            if not rated:
                continue
            opponent = sum(m.opponent_rating(t) for t, m in rated) / len(rated)
            change = rating_change(self.elo, opponent, game_result(float(traj.rewards[-1])), k_factor=self.k_factor)
            self.elo += change
            for t, m in rated:
                m.rate_opponent(t, change)
            self.games += 1
            self.stats.add_stat(self.name, ELO_STAT, self.elo)

    def _swap(self) -> None:
        """New weights for every team of this brain that does not learn now."""
        self.last_swap = self.ghost_step
        for team in self.seats:
            if self.controller.is_learning(team):
                continue
            self._opponent(team)
            latest = self.rng.random() < self.latest_ratio
            slot = LATEST if latest else int(self.rng.integers(len(self.pool)))
            self._load_opponent(team, slot)

    # -- checkpoints ---------------------------------------------------------------------------------
    def get_state(self) -> TrainerState:
        state = self.inner.get_state()
        tensors = dict(state.tensors)
        tensors.update(self.pool.tensors())
        for team, policy in self.opponents.items():
            tensors.update({f"{OPPONENT_PREFIX}{team}.{k}": v for k, v in policy.policy_state().items()})
        ghost = {
            "elo": self.elo,
            "pool": self.pool.meta(),
            "chosen": {str(t): s for t, s in self.chosen.items()},
            "ghost_step": self.ghost_step,
            "last_save": self.last_save,
            "last_swap": self.last_swap,
            "last_team_change": self.last_team_change,
            "games": self.games,
            "rng": generator_state(self.rng, as_text=True),
            "opponent_rngs": {str(t): generator_state(p.rng, as_text=True) for t, p in self.opponents.items()},
            "controller": self.controller.state(),
        }
        meta = {**state.meta, "ghost": ghost, "status_entries": {"elo": self.elo}}
        return TrainerState(tensors=tensors, meta=meta)

    def set_state(self, state: TrainerState, *, weights_only: bool = False) -> None:
        own = {k: v for k, v in state.tensors.items() if k.startswith(("ghost.",))}
        inner = TrainerState(
            tensors={k: v for k, v in state.tensors.items() if k not in own},
            meta={k: v for k, v in state.meta.items() if k not in ("ghost", "status_entries")},
        )
        self.inner.set_state(inner, weights_only=weights_only)
        ghost = state.meta.get("ghost")
        if weights_only or ghost is None:
            if not weights_only and ghost is None:
                log.warning("The checkpoint of '%s' has no self-play state: the opponents start afresh.", self.name)
            self.pool = SnapshotPool(self.pool.window)
            self.pool.add(self.inner.policy.policy_state(), self.elo)
            return
        try:
            self._load_ghost(ghost, own)
        except (KeyError, ValueError, IndexError, TypeError) as exc:
            raise CheckpointError(f"the self-play state of '{self.name}' is incomplete or invalid ({exc!r})") from None

    def _load_ghost(self, ghost: dict[str, Any], tensors: dict[str, torch.Tensor]) -> None:
        slots = self.pool.load({k: v for k, v in tensors.items() if k.startswith(SNAPSHOT_PREFIX)}, ghost["pool"])
        if len(slots) != len(ghost["pool"]["elos"]) or int(ghost["pool"]["window"]) != self.pool.window:
            log.warning(
                "Behavior '%s': self_play.window is %d, the checkpoint's pool was %d; the newest %d snapshots are kept.",
                self.name,
                self.pool.window,
                int(ghost["pool"]["window"]),
                len(self.pool),
            )
        self.elo = float(ghost["elo"])
        self.ghost_step = int(ghost["ghost_step"])
        self.last_save = int(ghost["last_save"])
        self.last_swap = int(ghost["last_swap"])
        self.last_team_change = int(ghost["last_team_change"])
        self.games = int(ghost["games"])
        set_generator_state(self.rng, ghost["rng"])
        self.controller.load_state(ghost["controller"])
        for team in self.seats:
            self._seat_team(team)
        for key, slot in ghost["chosen"].items():
            team = int(key)
            policy = self._opponent(team)
            weights = {
                k[len(f"{OPPONENT_PREFIX}{team}.") :]: v
                for k, v in tensors.items()
                if k.startswith(f"{OPPONENT_PREFIX}{team}.")
            }
            policy.load_policy_state(weights)
            # an opponent whose snapshot left a smaller window plays on, unrated until the next swap
            self.chosen[team] = LATEST if int(slot) == LATEST else slots.get(int(slot), LATEST)
            rng_state = ghost["opponent_rngs"].get(key)
            if rng_state is not None:
                set_generator_state(policy.rng, rng_state)
