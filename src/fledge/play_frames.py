"""Where `fledge play` sends frames: a .gif or .mp4 file written as frames come (`FrameRecorder`), or a
live matplotlib window (`_Window`, `--show`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from fledge.errors import ConfigError

__all__ = ["VIDEO_EXTENSIONS", "FrameRecorder"]

VIDEO_EXTENSIONS = (".gif", ".mp4")

# ----------------------------------------------------------------------------------------------
# Recording
# ----------------------------------------------------------------------------------------------


def _check_record_path(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in VIDEO_EXTENSIONS:
        raise ConfigError(
            f"--record {path}: unknown video extension '{path.suffix or '(none)'}'; use a .gif or .mp4 file name."
        )
    try:
        import imageio  # noqa: F401
        from PIL import Image  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"Recording a video needs the 'imageio' package (and Pillow): pip install 'imageio>=2.30,<3' ({exc})."
        ) from exc
    if ext == ".mp4":
        try:
            import imageio_ffmpeg

            imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError) as exc:
            raise ConfigError(
                "Recording an .mp4 needs ffmpeg, which the 'imageio-ffmpeg' package ships: "
                f"pip install imageio-ffmpeg (or record a .gif instead) ({exc})."
            ) from exc
    return ext


class _GifStream:
    """An animated GIF written frame by frame (constant memory; every frame kept, none merged)."""

    def __init__(self, path: Path, fps: float) -> None:
        from PIL import GifImagePlugin, Image

        self._image = Image
        self._getdata = GifImagePlugin.getdata
        self.delay_ms = 10 * max(2, int(round(100.0 / fps)))  # GIF delays are centiseconds, >= 2
        self._file: BinaryIO = open(path, "wb")
        self._size: tuple[int, int] | None = None

    def add(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if self._size is None:
            self._size = (w, h)
            header = b"GIF89a" + w.to_bytes(2, "little") + h.to_bytes(2, "little")
            header += bytes([0x80, 0, 0]) + bytes(6)  # a 2-colour global table (each frame has its own)
            header += b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever
            self._file.write(header)
        Image = self._image
        im = Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
        for chunk in self._getdata(im, offset=(0, 0), duration=self.delay_ms, include_color_table=True):
            self._file.write(chunk)

    def close(self) -> None:
        if not self._file.closed:
            self._file.write(b";")
            self._file.close()


class _Mp4Stream:
    def __init__(self, path: Path, fps: float) -> None:
        import imageio.v2 as iio

        self._writer = iio.get_writer(
            str(path),
            format="FFMPEG",
            mode="I",
            fps=fps,
            codec="libx264",
            pixelformat="yuv420p",
            macro_block_size=1,
            quality=8,
            ffmpeg_log_level="error",
        )

    def add(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if h % 2 or w % 2:  # yuv420p needs even sizes
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        self._writer.append_data(frame)

    def close(self) -> None:
        self._writer.close()


class FrameRecorder:
    """Writes RGB frames to a .gif or .mp4 as they come; all frames get the first frame's size."""

    def __init__(self, path: str | Path, fps: float = 20.0) -> None:
        self.path = Path(path)
        if not fps > 0 or not math.isfinite(fps):
            raise ConfigError(f"--fps must be a positive number, got {fps}.")
        ext = _check_record_path(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fps = float(fps)
        self.frames = 0
        self._shape: tuple[int, ...] | None = None
        self._stream: _GifStream | _Mp4Stream = (
            _GifStream(self.path, fps) if ext == ".gif" else _Mp4Stream(self.path, fps)
        )

    def add(self, frame: np.ndarray) -> None:
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:  # pad or crop to the first frame's size
            h, w = self._shape[:2]
            fixed = np.zeros(self._shape, dtype=np.uint8)
            fixed[: min(h, frame.shape[0]), : min(w, frame.shape[1])] = frame[:h, :w]
            frame = fixed
        self._stream.add(np.ascontiguousarray(frame, dtype=np.uint8))
        self.frames += 1

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> FrameRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Window:
    """A live matplotlib window showing the frames (needs a display)."""

    def __init__(self, fps: float) -> None:
        try:
            import matplotlib
            import matplotlib.pyplot as plt
        except ImportError as exc:
            raise ConfigError("--show needs matplotlib: pip install 'matplotlib>=3.7,<4'.") from exc
        backend = str(matplotlib.get_backend()).lower()
        if backend in ("agg", "pdf", "ps", "svg", "pgf", "cairo", "template") or "inline" in backend:
            raise ConfigError(
                f"--show needs a display (matplotlib's backend is '{backend}'); use --record out.gif instead."
            )
        self._plt = plt
        self._pause = 1.0 / fps
        self._image: Any = None
        self._fig: Any = None

    def add(self, frame: np.ndarray) -> None:
        plt = self._plt
        if self._image is None:
            self._fig, ax = plt.subplots(figsize=(frame.shape[1] / 100, frame.shape[0] / 100), dpi=100)
            self._fig.subplots_adjust(0, 0, 1, 1)
            ax.set_axis_off()
            self._image = ax.imshow(frame)
            plt.show(block=False)
        else:
            self._image.set_data(frame)
        plt.pause(self._pause)

    def close(self) -> None:
        if self._fig is not None:
            self._plt.close(self._fig)
