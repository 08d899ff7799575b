"""Reading frames from disk: JPEG folders (Jester) and video files (UCF101, via PyAV).

Both readers return ``uint8`` tensors shaped ``(N, 3, h, w)`` in RGB and raise
:class:`~conv3t.data.errors.VideoReadError` naming the video and the file at fault.
"""

from __future__ import annotations

import io
import itertools
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from conv3t.data.errors import VideoReadError

_FRAME_NAME = re.compile(r"^(\d+)\.jpe?g$", re.IGNORECASE)

#: A decodable video may end up to this many frames before its header's frame count (container
#: headers are often off by a frame or two). A shorter video is reported as truncated.
FRAME_COUNT_TOLERANCE = 3


def list_frame_files(video: str, folder: str | Path) -> list[Path]:
    """The numbered JPEG frames of ``folder`` in order (``00001.jpg``, ``00002.jpg``, ...).

    Raises if the folder is missing or empty, or the numbering does not run 1, 2, ..., n.
    """
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        raise VideoReadError(video, folder, "frame folder is missing") from None
    except NotADirectoryError:
        raise VideoReadError(video, folder, "is a file, expected a folder of frames") from None
    numbered = []
    for name in names:
        m = _FRAME_NAME.match(name)
        if m:
            numbered.append((int(m.group(1)), name))
    if not numbered:
        raise VideoReadError(video, folder, "frame folder has no numbered .jpg files")
    numbered.sort()
    numbers = [n for n, _ in numbered]
    gaps = frame_number_gaps(numbers)
    if gaps:
        raise VideoReadError(video, folder, f"frame numbering has gaps: {gaps}")
    return [folder / name for _, name in numbered]


def frame_number_gaps(numbers: Sequence[int]) -> str:
    """Describe what breaks the run 1..n in sorted frame numbers ('' if nothing)."""
    problems = []
    if numbers and numbers[0] != 1:
        problems.append(f"first frame is {numbers[0]}, expected 1")
    dup = sorted({a for a, b in itertools.pairwise(numbers) if a == b})
    if dup:
        problems.append(f"duplicate frame numbers {dup[:5]}")
    missing = []
    for a, b in itertools.pairwise(numbers):
        if b > a + 1:
            missing.extend(range(a + 1, b))
    if missing:
        shown = ", ".join(str(m) for m in missing[:5]) + (", ..." if len(missing) > 5 else "")
        problems.append(f"missing frame numbers {shown}")
    return "; ".join(problems)


def read_jpeg_frames(video: str, paths: Sequence[str | Path]) -> torch.Tensor:
    """Decode JPEG files into ``uint8 (N, 3, h, w)`` (channels-last memory); all frames must share one size.

    Pillow decodes (as fast as torchvision's deprecated ``decode_jpeg`` here once the resize,
    which prefers channels-last input, is counted; see benchmarks/data_speed.py).
    """
    arrays = []
    for p in paths:
        try:
            with open(p, "rb") as f:
                raw = f.read()
        except OSError as err:
            raise VideoReadError(video, p, f"cannot read file ({err.strerror})") from None
        if len(raw) < 4 or raw[:2] != b"\xff\xd8":
            raise VideoReadError(video, p, "not a JPEG file (no start-of-image marker)")
        try:
            with Image.open(io.BytesIO(raw)) as img:
                img.load()
                if img.mode != "RGB":
                    img = img.convert("RGB")
                arr = np.asarray(img)
        except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError... for bad data
            reason = "truncated JPEG" if "truncated" in str(err) else f"cannot decode JPEG: {err}"
            raise VideoReadError(video, p, reason) from None
        if arrays and arr.shape != arrays[0].shape:
            raise VideoReadError(video, p, f"frame size {arr.shape[:2]} differs from {arrays[0].shape[:2]}")
        arrays.append(arr)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


class VideoFile:
    """A video file opened with PyAV, for reading a few frames by index with seeking.

    Frame indices are 0-based and count decoded frames from the stream's start. Use as a
    context manager or call :meth:`close`.
    """

    def __init__(self, video: str, path: str | Path) -> None:
        import av

        self.video, self.path = video, Path(path)
        if not self.path.is_file():
            raise VideoReadError(video, self.path, "video file is missing")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, UnicodeDecodeError) as err:
            raise VideoReadError(video, self.path, f"cannot open video: {err}") from None
        if not self._container.streams.video:
            self._container.close()
            raise VideoReadError(video, self.path, "file has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_count = 1  # DataLoader workers already run in parallel
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        self.fps = float(rate) if rate else 0.0
        self._tb = float(self._stream.time_base) if self._stream.time_base else 0.0
        self._start = self._stream.start_time or 0
        self.num_frames = self._header_frame_count()
        if self.num_frames < 1:
            self.close()
            raise VideoReadError(video, self.path, "video stream reports no frames")

    def _header_frame_count(self) -> int:
        n = int(self._stream.frames or 0)
        if n <= 0 and self._stream.duration and self._tb and self.fps:
            n = round(self._stream.duration * self._tb * self.fps)
        if n <= 0 and self._container.duration and self.fps:
            n = round(self._container.duration / 1_000_000 * self.fps)
        return n

    def _index(self, frame) -> int:
        if frame.pts is None or not (self._tb and self.fps):
            return -1
        return round((frame.pts - self._start) * self._tb * self.fps)

    def _pts(self, index: int) -> int:
        return self._start + int(index / self.fps / self._tb)

    def read(self, indices: Sequence[int] | np.ndarray) -> torch.Tensor:
        """Frames at ``indices`` (any order, repeats allowed) as ``uint8 (len(indices), 3, h, w)``.

        Seeks to the keyframe before the first wanted frame and decodes up to the last one.
        Indices beyond the decodable end within :data:`FRAME_COUNT_TOLERANCE` frames of the
        header count get the last decoded frame; further ones raise (truncated file).
        """
        import av

        idx = np.asarray(indices, dtype=np.int64)
        wanted = sorted(set(idx.tolist()))
        if wanted[0] < 0 or wanted[-1] >= self.num_frames:
            raise IndexError(f"{self.path}: frame indices must be in [0, {self.num_frames}), got {wanted}")
        got: dict[int, np.ndarray] = {}
        last_index, last_frame = -1, None
        try:
            for attempt in range(2):
                if attempt == 0 and wanted[0] > 0 and self.fps and self._tb:
                    self._container.seek(self._pts(wanted[0]), stream=self._stream, backward=True)
                else:
                    self._container.seek(self._start, stream=self._stream, backward=True)
                got.clear()
                last_index, last_frame = -1, None
                counter = -1
                for frame in self._container.decode(self._stream):
                    counter += 1
                    i = self._index(frame)
                    if i < 0:  # no timestamps: count frames (only right when decoding from the start)
                        i = counter
                    if attempt == 0 and last_frame is None and i > wanted[0]:
                        break  # the seek overshot: retry from the start
                    # A jump in timestamps (dropped frame) shows the previous frame, like a player.
                    for w in wanted:
                        if last_index < w < i and w not in got and last_frame is not None:
                            got[w] = last_frame.to_ndarray(format="rgb24")
                    if i in wanted and i not in got:
                        got[i] = frame.to_ndarray(format="rgb24")
                    last_index, last_frame = i, frame
                    if i >= wanted[-1]:
                        break
                if wanted[0] in got:
                    break
        except av.error.FFmpegError as err:
            raise VideoReadError(self.video, self.path, f"cannot decode video: {err}") from None
        missing = [i for i in wanted if i not in got]
        if missing:
            if last_frame is None:
                raise VideoReadError(self.video, self.path, "no frame could be decoded")
            if self.num_frames - (last_index + 1) > FRAME_COUNT_TOLERANCE:
                raise VideoReadError(
                    self.video,
                    self.path,
                    f"truncated: header says {self.num_frames} frames, decoding stopped after frame {last_index + 1}",
                )
            tail = last_frame.to_ndarray(format="rgb24")
            for i in missing:
                got[i] = tail
        arr = np.stack([got[i] for i in idx.tolist()])
        return torch.from_numpy(arr).permute(0, 3, 1, 2)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
