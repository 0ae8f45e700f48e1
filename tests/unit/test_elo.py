"""ELO arithmetic of self-play against hand computations (trainers/ghost/elo.py)."""

from __future__ import annotations

import pytest

from fledge.trainers.ghost.elo import expected_score, game_result, rating_change


def test_expected_score_by_hand() -> None:
    assert expected_score(1200.0, 1200.0) == pytest.approx(0.5)
    # 400 points above: 10^1 : 1 -> 10 / 11
    assert expected_score(1600.0, 1200.0) == pytest.approx(10.0 / 11.0)
    assert expected_score(1200.0, 1600.0) == pytest.approx(1.0 / 11.0)
    # 200 points above: sqrt(10) / (sqrt(10) + 1) = 0.759746...
    assert expected_score(1400.0, 1200.0) == pytest.approx(0.7597469266)
    # the two expectations of one game add up to 1
    assert expected_score(1337.0, 1111.0) + expected_score(1111.0, 1337.0) == pytest.approx(1.0)


def test_rating_change_with_k_factor_by_hand() -> None:
    # ML-Agents' K = 1: a win between equals moves the rating by 0.5
    assert rating_change(1200.0, 1200.0, 1.0) == pytest.approx(0.5)
    assert rating_change(1200.0, 1200.0, 0.0) == pytest.approx(-0.5)
    assert rating_change(1200.0, 1200.0, 0.5) == pytest.approx(0.0)
    # K = 32, 400 points below, a win: 32 * (1 - 1/11) = 29.0909...
    assert rating_change(1200.0, 1600.0, 1.0, k_factor=32.0) == pytest.approx(32.0 * 10.0 / 11.0)
    # K = 16, 200 points above, a draw: 16 * (0.5 - 0.7597469) = -4.15595...
    assert rating_change(1400.0, 1200.0, 0.5, k_factor=16.0) == pytest.approx(-4.155950826)


def test_game_result_from_the_final_reward() -> None:
    assert game_result(1.0) == 1.0 and game_result(0.01) == 1.0
    assert game_result(0.0) == 0.5
    assert game_result(-1.0) == 0.0 and game_result(-1e-6) == 0.0
