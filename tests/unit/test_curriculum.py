"""Samplers (seeded moments), the lesson completion rule (hand-computed), and the controller's lessons."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest

from fledge.config import build_run_options
from fledge.config.environment_parameters import CompletionCriteriaSettings, EnvironmentParameterSettings
from fledge.curriculum.controller import CurriculumController
from fledge.curriculum.lessons import judge
from fledge.curriculum.samplers import Sampler, draw_of, lesson_seeds
from fledge.errors import CheckpointError, ConfigError


def draw(sampler_type: str, seed: int = 3, **params: Any) -> dict[str, Any]:
    return {"sampler_type": sampler_type, "sampler_parameters": params, "seed": seed}


N = 200_000


def test_uniform_moments() -> None:
    x = Sampler(draw("uniform", min_value=2.0, max_value=5.0)).sample(N)
    assert x.min() >= 2.0 and x.max() <= 5.0
    assert x.mean() == pytest.approx(3.5, abs=0.01)
    assert x.var() == pytest.approx(9.0 / 12.0, rel=0.02)


def test_gaussian_moments() -> None:
    x = Sampler(draw("gaussian", mean=-1.0, st_dev=0.5)).sample(N)
    assert x.mean() == pytest.approx(-1.0, abs=0.01)
    assert x.std() == pytest.approx(0.5, rel=0.02)


def test_multirangeuniform_picks_intervals_by_length() -> None:
    x = Sampler(draw("multirangeuniform", intervals=[[0.0, 1.0], [10.0, 13.0]])).sample(N)
    inside = ((x >= 0) & (x <= 1)) | ((x >= 10) & (x <= 13))
    assert inside.all()
    assert (x >= 10).mean() == pytest.approx(0.75, abs=0.01)  # length 3 of 4
    assert x.mean() == pytest.approx(0.25 * 0.5 + 0.75 * 11.5, abs=0.02)


def test_constant_and_zero_length_intervals() -> None:
    assert (Sampler(draw("constant", value=4.5)).sample(5) == 4.5).all()
    x = Sampler(draw("multirangeuniform", intervals=[[1.0, 1.0], [2.0, 2.0]])).sample(1000)
    assert set(np.unique(x)) == {1.0, 2.0}


def test_samplers_are_seeded_and_streams_differ() -> None:
    d = draw("uniform", seed=11, min_value=0.0, max_value=1.0)
    assert np.array_equal(Sampler(d).sample(10), Sampler(d).sample(10))
    assert not np.array_equal(Sampler(d).sample(10), Sampler({**d, "seed": 12}).sample(10))
    assert not np.array_equal(Sampler(d, stream=1).sample(10), Sampler(d, stream=2).sample(10))


def test_seeds_count_unseeded_lessons_in_file_order() -> None:
    options = build_run_options(
        {
            "environment_parameters": {
                "a": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 0, "max_value": 1}},
                "b": {"sampler_type": "uniform", "sampler_parameters": {"seed": 99}},
                "c": 3.0,
            }
        }
    )
    assert options.environment_parameters is not None
    assert lesson_seeds(options.environment_parameters, 10) == {("a", 0): 10, ("b", 0): 99, ("c", 0): 11}
    value = options.environment_parameters["c"].curriculum[0].value
    assert draw_of(value, 11) == {"sampler_type": "constant", "sampler_parameters": {"value": 3.0}, "seed": 11}


# -- the completion rule ---------------------------------------------------------------------------


def criteria(**kwargs: Any) -> CompletionCriteriaSettings:
    return CompletionCriteriaSettings(behavior="B", **kwargs)


def test_reward_with_smoothing_by_hand() -> None:
    c = criteria(measure="reward", threshold=0.5, signal_smoothing=True)
    v = judge(c, returns=[0.6, 0.8], progress=0.0, smoothed=0.2)
    # 0.25 * 0.2 + 0.75 * 0.7 = 0.575 > 0.5
    assert v.measure == pytest.approx(0.575) and v.smoothed == pytest.approx(0.575) and v.complete
    v = judge(c, returns=[0.6, 0.8], progress=0.0, smoothed=0.0)  # 0.525
    assert v.measure == pytest.approx(0.525) and v.complete
    v = judge(c, returns=[0.6], progress=0.0, smoothed=0.0)  # 0.45: not yet, but the smoothed value is kept
    assert not v.complete and v.smoothed == pytest.approx(0.45)


def test_reward_without_smoothing_and_empty_or_nan() -> None:
    c = criteria(measure="reward", threshold=0.5, signal_smoothing=False)
    v = judge(c, returns=[0.6], progress=0.0, smoothed=0.1)
    assert v.complete and v.measure == pytest.approx(0.6) and v.smoothed == 0.1
    assert not judge(c, returns=[], progress=1.0, smoothed=0.0).complete
    assert not judge(c, returns=[float("nan")], progress=1.0, smoothed=0.0).complete


def test_min_lesson_length_and_progress() -> None:
    c = criteria(measure="progress", threshold=0.3, min_lesson_length=3)
    assert not judge(c, returns=[1.0, 1.0], progress=0.9, smoothed=0.0).complete  # only 2 episodes
    assert judge(c, returns=[0.0, 0.0, 0.0], progress=0.31, smoothed=0.0).complete
    assert not judge(c, returns=[0.0, 0.0, 0.0], progress=0.3, smoothed=0.0).complete  # strictly above


# -- the controller ----------------------------------------------------------------------------------

WALL = {
    "wall": {
        "curriculum": [
            {
                "name": "low",
                "value": 1.0,
                "completion_criteria": {"behavior": "B", "measure": "reward", "threshold": 0.5, "min_lesson_length": 2},
            },
            {
                "name": "mid",
                "value": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 2, "max_value": 3}},
                "completion_criteria": {
                    "behavior": "B",
                    "measure": "progress",
                    "threshold": 0.5,
                    "require_reset": True,
                },
            },
            {"name": "high", "value": 4.0},
        ]
    },
    "fixed": 7.0,
}


def controller(seed: int = 5) -> CurriculumController:
    options = build_run_options({"environment_parameters": WALL})
    assert options.environment_parameters is not None
    return CurriculumController(options.environment_parameters, run_seed=seed)


def test_lessons_advance_with_min_length_smoothing_and_progress(caplog: pytest.LogCaptureFixture) -> None:
    c = controller()
    assert c.measured_behaviors == ["B"] and c.returns["B"].maxlen == 2
    c.record_returns("B", [1.0])
    assert c.advance(lambda b: 0.0) is None  # one episode, min_lesson_length 2
    c.record_returns("other", [5.0])  # not measured
    c.record_returns("B", [0.5])  # buffer [1.0, 0.5]: mean 0.75, smoothed 0.5625 > 0.5
    with caplog.at_level(logging.INFO, logger="fledge"):
        change = c.advance(lambda b: 0.0)
    assert change is not None and change.parameters == ("wall",) and not change.require_reset
    assert c.lessons == {"wall": 1, "fixed": 0}
    assert "Parameter 'wall' is in lesson 'mid' and has value 'uniform sampler" in caplog.text
    assert len(c.returns["B"]) == 0  # cleared on a change
    assert c.draws()["wall"]["sampler_type"] == "uniform"
    assert c.advance(lambda b: 0.5) is None  # progress must be above the threshold
    change = c.advance(lambda b: 0.51)
    assert change is not None and change.require_reset and c.lessons["wall"] == 2
    assert c.advance(lambda b: 1.0) is None  # the last lesson stays
    assert c.draws()["wall"]["sampler_parameters"] == {"value": 4.0}


def test_smoothing_remembers_earlier_measures() -> None:
    c = controller()
    c.record_returns("B", [0.0, 0.0])
    assert c.advance(lambda b: 0.0) is None and c.smoothed["wall"] == 0.0
    c.record_returns("B", [0.6, 0.6])  # 0.25 * 0 + 0.75 * 0.6 = 0.45: not yet
    assert c.advance(lambda b: 0.0) is None and c.smoothed["wall"] == pytest.approx(0.45)
    assert c.advance(lambda b: 0.0) is not None  # 0.25 * 0.45 + 0.75 * 0.6 = 0.5625


def test_resume_mid_curriculum_restores_lesson_numbers() -> None:
    c = controller()
    c.lessons["wall"] = 1
    status: dict[str, dict[str, Any]] = {"B": {"checkpoints": []}}
    c.store(status)
    assert status["wall"] == {"lesson_num": 1} and status["fixed"] == {"lesson_num": 0}
    resumed = controller()
    resumed.restore(status, where="status")
    assert resumed.lessons == {"wall": 1, "fixed": 0}
    assert resumed.draws() == c.draws()  # same seeds: the same sampler is sent again
    fresh = controller()
    fresh.restore({}, where="status")  # nothing stored: lessons start at 0
    assert fresh.lessons["wall"] == 0


@pytest.mark.parametrize("value", [3, -1, "1", True])
def test_a_stored_lesson_that_does_not_fit_is_a_clear_error(value: object) -> None:
    with pytest.raises(CheckpointError, match="lesson"):
        controller().restore({"wall": {"lesson_num": value}}, where="status")


def test_criteria_must_name_a_behavior_of_the_run() -> None:
    c = controller()
    c.check_behaviors(["B", "C"])
    with pytest.raises(ConfigError, match="names the behavior 'B'.*behaviors: C"):
        c.check_behaviors(["C"])


def test_config_refuses_a_criterion_for_an_unlisted_behavior() -> None:
    from fledge.preflight import check_run

    raw = {"behaviors": {"C": {"trainer_type": "ppo"}}, "environment_parameters": WALL}
    with pytest.raises(ConfigError, match="names the behavior 'B'"):
        check_run(build_run_options(raw))
    check_run(build_run_options({**raw, "default_settings": {"trainer_type": "ppo"}}))  # defaults cover B


def test_settings_normalise_every_form() -> None:
    settings = EnvironmentParameterSettings.from_entry("x", 2.0)
    assert settings.curriculum[0].name == "x" and settings.curriculum[0].value.sampler_type == "constant"
