"""`fledge plot`: fixed-size PNG of real runs' curves, seed groups (mean + min-max band), clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image

from fledge import api
from fledge.config import build_run_options
from fledge.errors import ConfigError, RunFolderError
from fledge.plot import (
    DEFAULT_STATS,
    _band,
    add_plot_arguments,
    group_runs,
    plot_runs,
    read_run_logs,
    run_plot,
    seed_stem,
    smooth,
)

ENV = "MoveToGoal1D-Continuous"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real short runs that differ only by seed: ppo-s1 and ppo-s2."""
    base = tmp_path_factory.mktemp("plot")
    for seed in (1, 2):
        raw = {
            "default_settings": {
                "trainer_type": "ppo",
                "hyperparameters": {"batch_size": 64, "buffer_size": 256},
                "network_settings": {"hidden_units": 16},
                "max_steps": 1000,
                "summary_freq": 250,
                "checkpoint_interval": 10**6,
            },
            "env_settings": {"env_path": ENV, "seed": seed},
            "checkpoint_settings": {"run_id": f"ppo-s{seed}", "results_dir": str(base)},
        }
        api.run(build_run_options(raw))
    return base


def png_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        assert im.format == "PNG"
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
        assert len(np.unique(pixels[::3], axis=0)) > 20  # lines, text and bands, not a blank page
        return im.size


def args(*argv: str) -> argparse.Namespace:
    return add_plot_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_one_real_run_gives_a_1200x800_png_with_the_four_panels(results: Path, tmp_path: Path) -> None:
    logs = read_run_logs(results / "ppo-s1")
    assert set(logs) == {ENV}
    assert all(stat in logs[ENV] for stat in DEFAULT_STATS)
    out = tmp_path / "one.png"
    result = plot_runs([results / "ppo-s1"], out)
    assert result.panels == list(DEFAULT_STATS)
    assert result.lines == ["ppo-s1"]
    assert png_size(out) == (1200, 800) == result.size_px


def test_two_seeds_are_one_group_with_a_band(results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "seeds.png"
    assert run_plot(args("ppo-s*", "--results-dir", str(results), "--output", str(out), "--smooth", "2")) == 0
    assert png_size(out) == (1200, 800)
    text = capsys.readouterr().out
    assert "Groups (mean and min-max band): ppo = ppo-s1, ppo-s2" in text
    result = plot_runs([results / "ppo-s1", results / "ppo-s2"], tmp_path / "g.png")
    assert result.groups == [("ppo", ["ppo-s1", "ppo-s2"])]
    assert result.lines == ["ppo (mean, min-max of 2)"]
    separate = plot_runs([results / "ppo-s1", results / "ppo-s2"], tmp_path / "s.png", auto_group=False)
    assert separate.lines == ["ppo-s1", "ppo-s2"]
    assert png_size(tmp_path / "s.png") == (1200, 800)


def test_grouping_rule() -> None:
    assert seed_stem("ppo-s1") == "ppo" and seed_stem("ppo_seed12") == "ppo" and seed_stem("ppo-3") == "ppo"
    assert seed_stem("ppo1") == "ppo1" and seed_stem("3DBall") == "3DBall"
    ids = ["ppo-s1", "sac", "ppo-s2", "ppo_seed3", "lone-s1", "x1", "x2"]
    assert group_runs(ids) == [
        ("ppo", ["ppo-s1", "ppo-s2", "ppo_seed3"]),
        ("sac", ["sac"]),
        ("lone-s1", ["lone-s1"]),  # a group needs two runs
        ("x1", ["x1"]),
        ("x2", ["x2"]),  # no separator: not a seed suffix
    ]
    assert group_runs(["a", "b", "c"], {"ab": ["a", "b"]}) == [("ab", ["a", "b"]), ("c", ["c"])]
    assert group_runs(["ppo-s1", "ppo-s2"], auto=False) == [("ppo-s1", ["ppo-s1"]), ("ppo-s2", ["ppo-s2"])]
    with pytest.raises(ConfigError, match="not one of the runs"):
        group_runs(["a"], {"g": ["a", "zzz"]})


def test_band_and_smoothing_maths() -> None:
    np.testing.assert_allclose(smooth(np.array([1.0, 3.0, 5.0, 7.0]), 2), [1.0, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(smooth(np.array([1.0, 2.0]), 1), [1.0, 2.0])
    a = (np.array([0.0, 10.0, 20.0]), np.array([0.0, 1.0, 2.0]))
    b = (np.array([0.0, 20.0]), np.array([2.0, 4.0]))  # other summary steps: interpolated at 10
    steps, mean, lo, hi = _band([a, b])
    np.testing.assert_array_equal(steps, [0.0, 10.0, 20.0])
    np.testing.assert_allclose(mean, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(lo, [0.0, 1.0, 2.0])
    np.testing.assert_allclose(hi, [2.0, 3.0, 4.0])
    c = (np.array([0.0, 10.0]), np.array([5.0, 5.0]))  # shorter run: not extrapolated beyond 10
    steps, mean, lo, hi = _band([a, c])
    np.testing.assert_allclose(mean, [2.5, 3.0, 2.0])


def test_other_stats_and_synthetic_logs(tmp_path: Path) -> None:
    run = tmp_path / "custom" / "run_logs"
    run.mkdir(parents=True)
    (run / "Walker.csv").write_text("Step,Policy/Entropy,Environment/Cumulative Reward\n100,1.5,\n200,1.2,3.0\n")
    result = plot_runs([tmp_path / "custom"], tmp_path / "c.png", stats=["Policy/Entropy", "Losses/Value Loss"])
    assert result.panels == ["Policy/Entropy"]  # panels only for the stats present
    assert png_size(tmp_path / "c.png") == (1200, 800)


def test_clear_errors(results: Path, tmp_path: Path) -> None:
    empty = results / "no-logs"
    empty.mkdir(exist_ok=True)
    with pytest.raises(RunFolderError, match="Run 'no-logs' has no training summaries"):
        plot_runs([empty], tmp_path / "x.png")
    with pytest.raises(RunFolderError, match="No run 'missing'"):
        run_plot(args("missing", "--results-dir", str(results), "--output", str(tmp_path / "x.png")))
    with pytest.raises(RunFolderError, match="No run matches 'zzz\\*'"):
        run_plot(args("zzz*", "--results-dir", str(results)))
    with pytest.raises(ConfigError, match="None of the stats"):
        plot_runs([results / "ppo-s1"], tmp_path / "x.png", stats=["Nope/Stat"])
    with pytest.raises(ConfigError, match=".png"):
        plot_runs([results / "ppo-s1"], tmp_path / "x.jpgg")
    with pytest.raises(ConfigError, match="has no behavior 'Other'"):
        plot_runs([results / "ppo-s1"], tmp_path / "x.png", behavior="Other")
    with pytest.raises(ConfigError, match="LABEL=RUN1,RUN2"):
        run_plot(args("ppo-s1", "--results-dir", str(results), "--group", "oops"))
    empty.rmdir()
