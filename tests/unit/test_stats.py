"""Stats reporter, console line and CSV writer (spec 1.4, 10.1, 10.2)."""

from __future__ import annotations

import csv
import logging
import math
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest

from fledge.files import current_umask
from fledge.stats import (
    HYPERPARAMETERS,
    Aggregation,
    ConsoleWriter,
    CSVWriter,
    StatsReporter,
    StatSummary,
    StatsWriter,
    format_summary_line,
)


class Recorder(StatsWriter):
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, StatSummary], int]] = []
        self.properties: list[tuple[str, str, object]] = []
        self.closed = 0

    def write_stats(self, category: str, summaries: Mapping[str, StatSummary], step: int) -> None:
        self.calls.append((category, dict(summaries), step))

    def add_property(self, category: str, name: str, value: object) -> None:
        self.properties.append((category, name, value))

    def close(self) -> None:
        self.closed += 1


def s(values: list[float], aggregation: Aggregation = Aggregation.AVERAGE) -> StatSummary:
    return StatSummary(np.array(values, dtype=np.float64), aggregation)


# ---------------------------------------------------------------- aggregation maths


def test_aggregation_values_match_spec() -> None:
    assert [int(a) for a in Aggregation] == [0, 1, 2, 3]
    assert [a.name for a in Aggregation] == ["AVERAGE", "MOST_RECENT", "SUM", "HISTOGRAM"]


def test_summary_maths_by_hand() -> None:
    vals = [1.0, 2.0, 6.0]  # mean 3, population variance (4 + 1 + 9) / 3 = 14/3
    avg = s(vals)
    assert avg.count == 3
    assert avg.mean == pytest.approx(3.0)
    assert avg.std == pytest.approx(math.sqrt(14 / 3))
    assert avg.sum == pytest.approx(9.0)
    assert avg.scalar == pytest.approx(3.0)
    assert s(vals, Aggregation.SUM).scalar == pytest.approx(9.0)
    assert s(vals, Aggregation.MOST_RECENT).scalar == 6.0
    assert s(vals, Aggregation.HISTOGRAM).scalar == pytest.approx(3.0)


def test_reporter_aggregations() -> None:
    rec = Recorder()
    rep = StatsReporter([rec])
    for v in (1.0, 2.0, 6.0):
        rep.add_stat("B", "avg", v)
        rep.add_stat("B", "sum", v, Aggregation.SUM)
        rep.add_stat("B", "last", v, Aggregation.MOST_RECENT)
        rep.add_stat("B", "hist", v, Aggregation.HISTOGRAM)
    rep.set_stat("B", "set", 5.0)
    rep.set_stat("B", "set", 7.0)
    assert rep.get_mean("B", "avg") == pytest.approx(3.0)
    assert rep.get_mean("B", "missing") is None
    out = rep.write_stats("B", 500)
    assert out["avg"].scalar == pytest.approx(3.0)
    assert out["sum"].scalar == pytest.approx(9.0)
    assert out["last"].scalar == 6.0
    assert out["hist"].scalar == pytest.approx(3.0)
    assert out["hist"].aggregation == Aggregation.HISTOGRAM
    assert out["set"].values.tolist() == [7.0] and out["set"].aggregation == Aggregation.MOST_RECENT
    assert rec.calls == [("B", out, 500)]


def test_add_stats_bulk_equals_repeated_add_stat() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=17).astype(np.float32), rng.normal(size=5)
    bulk, single = StatsReporter([]), StatsReporter([])
    bulk.add_stat("B", "k", 0.5)
    bulk.add_stats("B", "k", a)
    bulk.add_stats("B", "k", np.array([]))
    bulk.add_stats("B", "k", b.reshape(5, 1))
    for v in [0.5, *a.tolist(), *b.tolist()]:
        single.add_stat("B", "k", v)
    x, y = bulk.write_stats("B", 1)["k"], single.write_stats("B", 1)["k"]
    np.testing.assert_array_equal(x.values, y.values)
    assert (x.mean, x.std, x.sum, x.count) == (y.mean, y.std, y.sum, y.count)


def test_add_stats_copies_the_callers_array() -> None:
    rep = StatsReporter([])
    buf = np.array([1.0, 2.0])
    rep.add_stats("B", "k", buf)
    buf[:] = 100.0
    assert rep.write_stats("B", 1)["k"].values.tolist() == [1.0, 2.0]


def test_write_clears_category_only() -> None:
    rec = Recorder()
    rep = StatsReporter([rec])
    rep.add_stat("A", "k", 1.0)
    rep.add_stat("B", "k", 2.0)
    assert set(rep.write_stats("A", 10)) == {"k"}
    assert rep.write_stats("A", 20) == {}
    assert rep.get_mean("A", "k") is None
    assert rep.get_mean("B", "k") == 2.0
    assert rec.calls[1] == ("A", {}, 20)


def test_mismatched_aggregation_raises() -> None:
    rep = StatsReporter([])
    rep.add_stat("B", "k", 1.0, Aggregation.SUM)
    with pytest.raises(ValueError, match="SUM"):
        rep.add_stat("B", "k", 1.0)
    with pytest.raises(ValueError):
        rep.add_stats("B", "k", np.ones(3), Aggregation.HISTOGRAM)
    with pytest.raises(ValueError):
        rep.set_stat("B", "k", 1.0)
    rep.write_stats("B", 1)
    with pytest.raises(ValueError):  # the aggregation of a key is fixed for the run
        rep.add_stat("B", "k", 1.0, Aggregation.AVERAGE)
    rep.add_stat("C", "k", 1.0, Aggregation.AVERAGE)  # other category, other key


def test_properties_and_close_forwarded() -> None:
    rec1, rec2 = Recorder(), Recorder()
    rep = StatsReporter([rec1, rec2])
    rep.add_property("B", HYPERPARAMETERS, {"a": 1})
    rep.close()
    rep.close()
    for rec in (rec1, rec2):
        assert rec.properties == [("B", "Hyperparameters", {"a": 1})]
        assert rec.closed == 1


def test_failing_writer_does_not_starve_others() -> None:
    class Broken(StatsWriter):
        def write_stats(self, category: str, summaries: Mapping[str, StatSummary], step: int) -> None:
            raise OSError("disk full")

    rec = Recorder()
    rep = StatsReporter([Broken(), rec])
    rep.add_stat("B", "k", 1.0)
    with pytest.raises(OSError):
        rep.write_stats("B", 5)
    assert rec.calls[0][2] == 5


def test_two_reporters_do_not_share_state() -> None:
    r1, r2 = Recorder(), Recorder()
    a, b = StatsReporter([r1]), StatsReporter([r2])
    a.add_stat("B", "k", 1.0, Aggregation.SUM)
    b.add_stat("B", "k", 5.0, Aggregation.AVERAGE)  # no aggregation clash across reporters
    assert a.get_mean("B", "k") == 1.0 and b.get_mean("B", "k") == 5.0
    a.write_stats("B", 1)
    assert b.get_mean("B", "k") == 5.0
    assert len(r1.calls) == 1 and r2.calls == []


def test_package_import_is_light() -> None:
    code = "import sys, fledge.stats; print('torch' in sys.modules, 'tensorboard' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


# ---------------------------------------------------------------- console line (spec 10.2)


def _base(training: float = 1.0) -> dict[str, StatSummary]:
    return {
        "Environment/Cumulative Reward": s([1.0, 2.0, 6.0], Aggregation.HISTOGRAM),
        "Is Training": s([training]),
    }


def test_format_summary_line_four_formats() -> None:
    std = math.sqrt(14 / 3)
    assert format_summary_line("3DBall", 12000, 34.5678, _base()) == (
        f"3DBall. Step: 12000. Time Elapsed: 34.568 s. Mean Reward: 3.000. Std of Reward: {std:.3f}. Training."
    )
    group = _base(0.0) | {"Environment/Group Cumulative Reward": s([-0.5, 1.0], Aggregation.HISTOGRAM)}
    assert format_summary_line("Soccer", 500, 1.0, group) == (
        "Soccer. Step: 500. Time Elapsed: 1.000 s. Mean Reward: 3.000. Mean Group Reward: 0.250. Not Training."
    )
    elo = _base() | {"Self-play/ELO": s([1200.0, 1210.5])}
    assert format_summary_line("Tennis?team=0", 1000, 2.0, elo) == (
        f"Tennis?team=0. Step: 1000. Time Elapsed: 2.000 s. Mean Reward: 3.000. Std of Reward: {std:.3f}. "
        "Training. ELO: 1205.250."
    )
    assert format_summary_line("B", 1500, 0.25, {"Is Training": s([1.0])}) == (
        "B. Step: 1500. Time Elapsed: 0.250 s. No episode was completed since last summary. Training."
    )
    assert format_summary_line("B", 1500, 0.25, {}).endswith("summary. Not Training.")


def test_console_writer_logs_exact_line(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fledge.stats.console.time.time", lambda: 110.0)
    rep = StatsReporter([ConsoleWriter(start_time=100.0)])
    rep.add_stats("B", "Environment/Cumulative Reward", np.array([1.0, 3.0]), Aggregation.HISTOGRAM)
    rep.add_stat("B", "Is Training", 1.0)
    rep.add_stat("other", "Custom", 1.0)
    with caplog.at_level(logging.INFO, logger="fledge"):
        rep.write_stats("B", 500)
        rep.write_stats("other", 500)  # not a trainer category: silent
        rep.add_stat("B", "Is Training", 0.0)
        rep.write_stats("B", 1000)
    assert [(r.name, r.levelno) for r in caplog.records] == [("fledge", logging.INFO)] * 2
    assert caplog.messages == [
        "B. Step: 500. Time Elapsed: 10.000 s. Mean Reward: 2.000. Std of Reward: 1.000. Training.",
        "B. Step: 1000. Time Elapsed: 10.000 s. No episode was completed since last summary. Not Training.",
    ]


def test_console_hyperparameters(caplog: pytest.LogCaptureFixture) -> None:
    settings = {"trainer_type": "ppo", "hyperparameters": {"batch_size": 64, "learning_rate": 0.0003}, "x": {}}
    with caplog.at_level(logging.INFO, logger="fledge"):
        ConsoleWriter().add_property("3DBall", HYPERPARAMETERS, settings)
        ConsoleWriter().add_property("3DBall", "Other", settings)
    assert caplog.messages == [
        "Hyperparameters for behavior name 3DBall:\n"
        "\ttrainer_type:\tppo\n"
        "\thyperparameters:\n"
        "\t  batch_size:\t64\n"
        "\t  learning_rate:\t0.0003\n"
        "\tx:\t{}"
    ]


# ---------------------------------------------------------------- CSV


def _read(path: Path) -> list[list[str]]:
    with path.open(newline="") as f:
        return list(csv.reader(f))


def test_csv_columns_grow_with_atomic_rewrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = CSVWriter(tmp_path)
    path = tmp_path / "run_logs" / "B.csv"
    writer.write_stats("B", {"a": s([1.0, 2.0]), "Step": s([7.0], Aggregation.MOST_RECENT)}, 100)
    assert _read(path) == [["Step", "a"], ["100", "1.5"]]

    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str, dst: str) -> None:
        replaced.append((str(src), str(dst)))
        assert Path(src).parent == path.parent  # temp file in the same folder
        real_replace(src, dst)

    monkeypatch.setattr("fledge.files.os.replace", spy)
    writer.write_stats("B", {"a": s([3.0])}, 200)  # same columns: appended, no rewrite
    assert replaced == []
    writer.write_stats("B", {"b": s([1.0, 4.0], Aggregation.SUM)}, 300)  # new column: rewrite
    assert [dst for _, dst in replaced] == [str(path)]
    assert _read(path) == [["Step", "a", "b"], ["100", "1.5", ""], ["200", "3.0", ""], ["300", "", "5.0"]]
    writer.write_stats("B", {"a": s([0.0]), "b": s([1.0], Aggregation.SUM)}, 400)
    assert _read(path)[-1] == ["400", "0.0", "1.0"]
    assert [p.name for p in path.parent.iterdir()] == ["B.csv"]  # no temp files left
    assert path.stat().st_mode & 0o777 == 0o666 & ~current_umask()  # created like any other file, not 0600


def test_csv_resume_continues_and_clear_starts_fresh(tmp_path: Path) -> None:
    CSVWriter(tmp_path).write_stats("B", {"a": s([1.0])}, 100)
    CSVWriter(tmp_path).write_stats("B", {"a": s([2.0]), "c": s([3.0])}, 200)
    path = tmp_path / "run_logs" / "B.csv"
    assert _read(path) == [["Step", "a", "c"], ["100", "1.0", ""], ["200", "2.0", "3.0"]]
    CSVWriter(tmp_path, clear_past_data=True).write_stats("B", {"a": s([4.0])}, 50)
    assert _read(path) == [["Step", "a"], ["50", "4.0"]]


def test_csv_rejects_path_like_category(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        CSVWriter(tmp_path).write_stats("../evil", {"a": s([1.0])}, 1)
