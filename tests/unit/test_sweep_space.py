"""The search space of `fledge sweep` and its summary, without Ray: points, overrides, refusals, files."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from fledge.errors import ConfigError
from fledge.sweep.runner import plan_trials
from fledge.sweep.space import apply_point, describe_point, parse_space
from fledge.sweep.summary import TrialRow, render_table, write_summary

LR = "behaviors.Basic.hyperparameters.learning_rate"
BETA = "behaviors.Basic.hyperparameters.beta"


def test_a_grid_is_every_combination_in_file_order() -> None:
    space = parse_space({"parameters": {LR: [1e-3, 3e-4], BETA: [0.01, 0.001, 0.0]}})
    points = space.points()
    assert len(points) == 6
    assert points[0] == ((LR, 1e-3), (BETA, 0.01)) and points[-1] == ((LR, 3e-4), (BETA, 0.0))
    assert parse_space(None).points() == [()]  # seeds only


def test_random_draws_are_seeded_and_inside_their_ranges() -> None:
    raw: dict[str, Any] = {
        "method": "random",
        "num_samples": 50,
        "seed": 3,
        "parameters": {
            LR: {"loguniform": [1e-4, 1e-2]},
            BETA: {"uniform": [0.0, 0.5]},
            "behaviors.Basic.network_settings.hidden_units": {"randint": [16, 18]},
            "behaviors.Basic.hyperparameters.batch_size": {"choice": [32, 64]},
        },
    }
    points = parse_space(raw).points()
    assert points == parse_space(raw).points()  # the same file draws the same points
    assert len(points) == 50
    values = {path: [dict(p)[path] for p in points] for path in dict(points[0])}
    assert all(1e-4 <= v <= 1e-2 for v in values[LR]) and all(0.0 <= v <= 0.5 for v in values[BETA])
    assert set(values["behaviors.Basic.network_settings.hidden_units"]) == {16, 17, 18}  # both ends included
    assert set(values["behaviors.Basic.hyperparameters.batch_size"]) == {32, 64}
    # log-uniform: about half the draws below the geometric middle 1e-3
    assert 15 <= sum(v < 1e-3 for v in values[LR]) <= 35


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"method": "bayes", "parameters": {}}, "not one of grid, random"),
        ({"parameters": {LR: {"uniform": [0, 1]}}}, "a grid takes a list"),
        ({"method": "random", "parameters": {LR: [1]}}, "needs num_samples"),
        ({"method": "random", "num_samples": 2, "parameters": {LR: {"loguniform": [0, 1]}}}, "low > 0"),
        ({"method": "random", "num_samples": 2, "parameters": {LR: {"normal": [0, 1]}}}, "not one of choice"),
        ({"parameters": {LR: []}}, "empty"),
        ({"parameters": {"a..b": [1]}}, "dotted path"),
        ({"num_samples": 3, "parameters": {LR: [1]}}, "random only"),
        ({"paramters": {}}, "unknown key"),
    ],
)
def test_bad_spaces_are_refused_naming_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_space(raw, where="space.yaml")


def test_a_point_sets_dotted_keys_on_a_copy_of_the_config() -> None:
    config = {"behaviors": {"Basic": {"hyperparameters": {"learning_rate": 1.0}}}}
    out = apply_point(config, ((LR, 0.5), ("env_settings.num_areas", 2)))
    assert out["behaviors"]["Basic"]["hyperparameters"]["learning_rate"] == 0.5
    assert out["env_settings"] == {"num_areas": 2}
    assert config["behaviors"]["Basic"]["hyperparameters"]["learning_rate"] == 1.0  # untouched
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_point(config, (("behaviors.Basic.hyperparameters.learning_rate.x", 1),))
    assert describe_point(((LR, 0.001), ("x.y", "linear"))) == "learning_rate=0.001 y=linear"


def test_every_trial_is_validated_before_anything_runs() -> None:
    config = {"behaviors": {"Basic": {"trainer_type": "ppo"}}, "env_settings": {"env_path": "Basic"}}
    trials = plan_trials(config, parse_space({"parameters": {LR: [1e-3, 3e-4]}}), [0, 1, 2])
    assert [t.run_id for t in trials] == ["t00-s0", "t00-s1", "t00-s2", "t01-s0", "t01-s1", "t01-s2"]
    assert trials[3].config["behaviors"]["Basic"]["hyperparameters"]["learning_rate"] == 3e-4
    bad = parse_space({"parameters": {"behaviors.Basic.hyperparameters.learning_rat": [1e-3]}})
    with pytest.raises(ConfigError, match="sweep trial t00-s0 .*learning_rat"):
        plan_trials(config, bad, [0])


def test_the_summary_table_csv_json_and_plot(tmp_path: Path) -> None:
    rows = [
        TrialRow(0, "learning_rate=0.001", f"t00-s{s}", s, "Basic", r, 1000, "ok", 1.0, "n")
        for s, r in enumerate([0.25, 0.5])
    ] + [TrialRow(1, "learning_rate=0.0003", "t01-s0", 0, "", math.nan, 0, "exit 1", 1.0, "n")]
    table = render_table(rows)
    assert "trial 0 Basic: 0.375 over 2 seed(s) (min 0.250, max 0.500)" in table
    assert "exit 1" in table and "n/a" in table
    paths = write_summary(tmp_path, rows)
    assert [p.name for p in paths] == ["summary.csv", "summary.json", "final_rewards.png"]
    with (tmp_path / "summary.csv").open(newline="") as f:
        read = list(csv.DictReader(f))
    assert [r["run_id"] for r in read] == ["t00-s0", "t00-s1", "t01-s0"] and read[1]["final_reward"] == "0.5"
    records = json.loads((tmp_path / "summary.json").read_text())["trials"]
    assert records[2]["final_reward"] is None and records[2]["status"] == "exit 1"
    assert (tmp_path / "final_rewards.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
