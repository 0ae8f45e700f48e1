"""ELO ratings of self-play: pure arithmetic on floats, tested against hand computations.

A game between a player rated `r` and an opponent rated `r_opp` has the expected score
E = 1 / (1 + 10 ** ((r_opp - r) / 400)) for the player (the same value as
10^(r/400) / (10^(r/400) + 10^(r_opp/400))). After a game with the result S (1 win, 0.5 draw,
0 loss) the player's rating moves by K * (S - E) and the opponent's by the opposite amount.
ML-Agents 1.1.0 uses K = 1; fledge makes K a setting (`self_play.elo_k_factor`, default 1).
"""

from __future__ import annotations

import math

WIN, DRAW, LOSS = 1.0, 0.5, 0.0


def expected_score(rating: float, opponent: float) -> float:
    """The player's expected score against the opponent (between 0 and 1; 0.5 for equal ratings)."""
    return 1.0 / (1.0 + math.pow(10.0, (opponent - rating) / 400.0))


def rating_change(rating: float, opponent: float, result: float, *, k_factor: float = 1.0) -> float:
    """How much the player's rating moves after one game with `result` (the opponent's moves by minus this)."""
    return k_factor * (result - expected_score(rating, opponent))


def game_result(final_reward: float) -> float:
    """The result of a finished game from the learner's last reward (its own plus any group reward):
    a win above 0, a draw at 0, a loss below 0."""
    if final_reward > 0.0:
        return WIN
    if final_reward < 0.0:
        return LOSS
    return DRAW
