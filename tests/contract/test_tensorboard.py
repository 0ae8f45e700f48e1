"""TensorBoard event files: tags, values and steps as ML-Agents writes them (spec 10.1, 10.3)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from conftest import SideBySide
from fledge.config import RunOptions
from fledge.envs import registry
from fledge.stats import HYPERPARAMETERS, Aggregation, StatsReporter, TensorboardWriter

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def _load(folder: Path) -> EventAccumulator:
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def _run(tmp_path: Path, **kwargs: object) -> StatsReporter:
    rep = StatsReporter([TensorboardWriter(tmp_path, **kwargs)])  # type: ignore[arg-type]
    rep.add_property("3DBall", HYPERPARAMETERS, {"trainer_type": "ppo", "hyperparameters": {"batch_size": 64}})
    for step, rewards in ((500, [1.0, 3.0]), (1000, [2.0, 4.0, 6.0])):
        rep.add_stats("3DBall", "Environment/Cumulative Reward", np.array(rewards), Aggregation.HISTOGRAM)
        rep.add_stat("3DBall", "Losses/Value Loss", 0.5)
        rep.add_stat("3DBall", "Losses/Value Loss", 1.5)
        rep.add_stat("3DBall", "Policy/Curiosity Reward", 2.0, Aggregation.SUM)
        rep.add_stat("3DBall", "Policy/Curiosity Reward", 3.0, Aggregation.SUM)
        rep.add_stat("3DBall", "Is Training", 1.0)
        rep.set_stat("3DBall", "Step", step + 7)
        rep.write_stats("3DBall", step)
    return rep


def test_tags_values_and_steps(tmp_path: Path) -> None:
    rep = _run(tmp_path)
    folder = tmp_path / "3DBall"
    assert len(list(folder.glob("events.out.tfevents*"))) == 1  # flushed before close
    rep.close()
    acc = _load(folder)
    tags = acc.Tags()
    assert sorted(tags["scalars"]) == [
        "Environment/Cumulative Reward",
        "Losses/Value Loss",
        "Policy/Curiosity Reward",
    ]
    assert tags["histograms"] == ["Environment/Cumulative Reward_hist"]
    assert tags["tensors"] == [HYPERPARAMETERS]

    def scalars(tag: str) -> list[tuple[int, float]]:
        return [(e.step, pytest.approx(e.value)) for e in acc.Scalars(tag)]

    assert scalars("Environment/Cumulative Reward") == [(500, 2.0), (1000, 4.0)]
    assert scalars("Losses/Value Loss") == [(500, 1.0), (1000, 1.0)]
    assert scalars("Policy/Curiosity Reward") == [(500, 5.0), (1000, 5.0)]

    hist = acc.Histograms("Environment/Cumulative Reward_hist")
    assert [h.step for h in hist] == [500, 1000]
    h = hist[1].histogram_value
    assert (h.min, h.max, h.num, h.sum, h.sum_squares) == (2.0, 6.0, 3.0, 12.0, 56.0)
    assert h.bucket_limit[0] == 2.0 and h.bucket_limit[-1] == 6.0 and sum(h.bucket) == 3.0

    (text,) = acc.Tensors(HYPERPARAMETERS)
    meta = acc.SummaryMetadata(HYPERPARAMETERS)
    assert meta.plugin_data.plugin_name == "text"
    body = text.tensor_proto.string_val[0].decode()
    assert "trainer_type" in body and "ppo" in body and "batch_size" in body and "64" in body


def test_clear_past_data(tmp_path: Path) -> None:
    _run(tmp_path).close()
    folder = tmp_path / "3DBall"
    (old,) = folder.glob("events.out.tfevents*")
    unrelated = folder / "notes.txt"
    unrelated.write_text("keep")

    _run(tmp_path).close()  # resume: old files stay
    assert old.exists() and len(list(folder.glob("events.out.tfevents*"))) == 2

    _run(tmp_path, clear_past_data=True).close()  # --force: old event files removed
    files = list(folder.glob("events.out.tfevents*"))
    assert len(files) == 1 and old not in files and unrelated.exists()
    assert [e.step for e in _load(folder).Scalars("Losses/Value Loss")] == [500, 1000]


def test_nothing_written_for_hidden_only(tmp_path: Path) -> None:
    rep = StatsReporter([TensorboardWriter(tmp_path)])
    rep.add_stat("B", "Is Training", 1.0)
    rep.write_stats("B", 500)
    rep.close()
    assert not (tmp_path / "B").exists()


def TwoTasks() -> SideBySide:
    """Two built-in tasks side by side: two behaviors in one environment."""
    return SideBySide({name: registry.make(name, seed=i) for i, name in enumerate(TWO)})


TWO = ("MoveToGoal1D-Continuous", "MoveToGoal1D-Discrete")


def test_a_run_writes_each_behaviors_hyperparameters_as_text_and_to_the_console(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from fledge import api
    from fledge.check import validate
    from fledge.config import build_run_options

    def options(**checkpoint: object) -> RunOptions:
        return build_run_options(
            {
                "behaviors": {
                    TWO[0]: {
                        "trainer_type": "ppo",
                        "max_steps": 300,
                        "hyperparameters": {"batch_size": 32, "buffer_size": 128},
                    },
                    TWO[1]: {"trainer_type": "sac", "max_steps": 300, "hyperparameters": {"batch_size": 16}},
                },
                "checkpoint_settings": {"run_id": "h", "results_dir": str(tmp_path), **checkpoint},
            }
        )

    api.run(options(), env=TwoTasks(), display="none")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fledge"):
        api.run(options(force=True), env=TwoTasks(), display="none")  # --force clears the folder first
    expected = validate(options(), build=False)  # what `fledge check` prints
    for name in TWO:
        acc = _load(tmp_path / "h" / name)
        (text,) = acc.Tensors(HYPERPARAMETERS)
        assert text.step == 0
        body = text.tensor_proto.string_val[0].decode()
        settings = expected[name]
        assert f"- **trainer_type**: `{settings['trainer_type']}`" in body
        assert f"  - **batch_size**: `{settings['hyperparameters']['batch_size']}`" in body  # type: ignore[index]
        assert f"  - **buffer_size**: `{settings['hyperparameters']['buffer_size']}`" in body  # type: ignore[index]
        (dump,) = [
            r.getMessage()
            for r in caplog.records
            if r.getMessage().startswith(f"Hyperparameters for behavior name {name}:")
        ]
        assert f"\n\ttrainer_type:\t{settings['trainer_type']}\n" in dump
        assert f"\n\t  batch_size:\t{settings['hyperparameters']['batch_size']}\n" in dump  # type: ignore[index]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="fledge"):
        api.run(options(inference=True), env=TwoTasks(), display="none")
    assert not [r for r in caplog.records if r.getMessage().startswith("Hyperparameters")]  # not in --inference
    assert all(len(list((tmp_path / "h" / name).glob("events.out.tfevents*"))) == 1 for name in TWO)
