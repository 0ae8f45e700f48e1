"""`fledge play`: a real short run played with its torch checkpoint and its ONNX model, recorded frame by
frame (frames = environment steps + 1), with clear errors for a missing run, checkpoint or extension."""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fledge import api
from fledge.config import build_run_options
from fledge.errors import CheckpointError, ConfigError, RunFolderError
from fledge.play import FrameRecorder, add_play_arguments, find_onnx, play, run_folder, run_play

ENV = "MoveToGoal1D-Continuous"
pytest.importorskip("imageio")
from PIL import Image  # noqa: E402  (imageio needs Pillow)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("play")
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 64, "buffer_size": 256},
            "network_settings": {"hidden_units": 16, "normalize": True},
            "max_steps": 800,
            "summary_freq": 200,
            "checkpoint_interval": 200,
        },
        "env_settings": {"env_path": ENV, "seed": 2},
        "checkpoint_settings": {"run_id": "toy", "results_dir": str(base)},
    }
    api.run(build_run_options(raw))
    return base


def gif_frames(path: Path) -> int:
    with Image.open(path) as im:
        return int(im.n_frames)


def args(*argv: str) -> argparse.Namespace:
    return add_play_arguments(argparse.ArgumentParser()).parse_args(list(argv))


def test_torch_play_records_one_frame_per_step_plus_one(results: Path, tmp_path: Path) -> None:
    out = io.StringIO()
    gif = tmp_path / "torch.gif"
    result = play(results / "toy", episodes=2, record=gif, seed=1, out=out)
    assert result.behavior == ENV and result.agent_id == 0
    assert len(result.returns) == 2 and len(result.lengths) == 2
    assert result.steps == sum(result.lengths)  # agent 0 decides every step, episodes back to back
    assert result.frames == result.steps + 1
    assert gif_frames(gif) == result.steps + 1
    text = out.getvalue()
    assert "torch checkpoint" in text and "episode 1: return" in text and "episode 2: return" in text
    assert f"mean return of agent 0 over 2 episodes: {np.mean(result.returns):.3f}" in text
    assert f"Recorded {result.steps + 1} frames" in text
    with Image.open(gif) as im:
        assert im.size[0] >= 256
        im.seek(1)
        pixels = np.asarray(im.convert("RGB")).reshape(-1, 3)
        assert len(np.unique(pixels, axis=0)) >= 5  # a drawn frame, not a blank one


def test_onnx_play_through_the_command_arguments(
    results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gif = tmp_path / "onnx.gif"
    code = run_play(
        args(
            "toy",
            "--results-dir",
            str(results),
            "--onnx",
            "--episodes",
            "1",
            "--record",
            str(gif),
            "--deterministic",
            "--fps",
            "10",
        )
    )
    assert code == 0
    text = capsys.readouterr().out
    assert f"ONNX model {ENV}.onnx" in text and "deterministic" in text
    steps = int(text.split("finished, mean return")[1].split("(")[1].split(" steps")[0])
    assert gif_frames(gif) == steps + 1
    with Image.open(gif) as im:
        assert im.info["duration"] == 100  # 10 fps


def test_deterministic_torch_and_onnx_play_the_same_episodes(results: Path) -> None:
    run = results / "toy"
    torch_play = play(run, episodes=3, deterministic=True, seed=4, out=io.StringIO())
    onnx_play = play(run, episodes=3, deterministic=True, seed=4, use_onnx=True, out=io.StringIO())
    assert onnx_play.lengths == torch_play.lengths
    np.testing.assert_allclose(onnx_play.returns, torch_play.returns, atol=1e-4)


def test_max_steps_and_checkpoint_choice(results: Path, tmp_path: Path) -> None:
    run = results / "toy"
    units = sorted(p.stem for p in (run / ENV).glob(f"{ENV}-*.pt"))
    assert len(units) >= 2
    gif = tmp_path / "short.gif"
    result = play(run, checkpoint=units[0], episodes=1000, max_steps=7, record=gif, out=io.StringIO())
    assert result.steps == 7 and result.frames == 8 and gif_frames(gif) == 8
    assert find_onnx(run, ENV, units[0]) == run / ENV / f"{units[0]}.onnx"
    assert find_onnx(run, ENV) == run / f"{ENV}.onnx"


def test_mp4_frames(results: Path, tmp_path: Path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio.v2 as iio

    mp4 = tmp_path / "clip.mp4"
    result = play(results / "toy", episodes=1000, max_steps=9, record=mp4, out=io.StringIO())
    reader = iio.get_reader(str(mp4))
    try:
        assert reader.count_frames() == result.steps + 1 == 10
    finally:
        reader.close()


def test_recorder_keeps_identical_frames(tmp_path: Path) -> None:
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[5:10, 5:10] = (255, 0, 0)
    with FrameRecorder(tmp_path / "same.gif", fps=20) as rec:
        for _ in range(4):
            rec.add(frame)
    assert gif_frames(tmp_path / "same.gif") == 4  # never merged, so frames = steps + 1 holds


def test_clear_errors(results: Path, tmp_path: Path) -> None:
    with pytest.raises(RunFolderError, match="No run 'nope'.*toy"):
        run_folder(results, "nope")
    with pytest.raises(CheckpointError, match=f"No checkpoint '{ENV}-5'"):
        play(results / "toy", checkpoint=f"{ENV}-5", out=io.StringIO())
    with pytest.raises(CheckpointError, match="No ONNX model for checkpoint"):
        play(results / "toy", checkpoint=f"{ENV}-5", use_onnx=True, out=io.StringIO())
    with pytest.raises(ConfigError, match="unknown video extension '.avi'"):
        play(results / "toy", record=tmp_path / "x.avi", out=io.StringIO())
    # a run folder with a configuration but no checkpoint
    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(results / "toy" / "configuration.yaml", bare / "configuration.yaml")
    with pytest.raises(CheckpointError, match="No checkpoint"):
        play(bare, out=io.StringIO())
    with pytest.raises(CheckpointError, match="No ONNX model of behavior"):
        play(bare, use_onnx=True, out=io.StringIO())
    (bare / "configuration.yaml").unlink()
    with pytest.raises(RunFolderError, match="configuration.yaml"):
        play(bare, out=io.StringIO())


def test_command_line_error_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fledge.play", "missing", "--results-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("fledge: error: No run 'missing'")
    assert "Traceback" not in proc.stderr


def test_play_builds_the_environment_with_the_run_s_env_args(tmp_path: Path) -> None:
    """A GridWorld trained with its camera upsampled (`env_args: [scale=5]`, 25 pixels instead of 20) plays with the same camera."""
    raw = {
        "default_settings": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 32, "buffer_size": 64},
            "network_settings": {"hidden_units": 8, "vis_encode_type": "simple"},
            "max_steps": 64,
            "checkpoint_interval": 64,
        },
        "env_settings": {"env_path": "GridWorld", "env_args": ["scale=5"], "seed": 1},
        "checkpoint_settings": {"run_id": "scaled", "results_dir": str(tmp_path)},
    }
    api.run(build_run_options(raw), display="none")
    for use_onnx in (False, True):
        out = io.StringIO()
        result = play(tmp_path / "scaled", episodes=1, max_steps=30, use_onnx=use_onnx, out=out)
        assert result.steps > 0, out.getvalue()
