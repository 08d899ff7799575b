"""The machinery behind ``conv3t data check``: a report, per-video checks and a parallel scan.

Every dataset kind's checker (``check_jester``, ``check_video_list``, ...) lists its videos as
``(id, path, "file:line")`` rows, runs :func:`scan` over them with :func:`check_frame_files` or
:func:`check_video_file`, and names what lies on disk but in no list (:attr:`CheckReport.unlisted`).
By default JPEGs are checked for their start and end markers and videos by decoding their first
and last frames; ``decode=True`` decodes every frame (slower, also finds corrupt data inside a file).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from conv3t.data.decode import VideoFile, list_frame_files, read_jpeg_frames
from conv3t.data.errors import Problem, VideoReadError

#: How many unlisted folders / files :meth:`CheckReport.format` names before it only counts.
UNLISTED_SHOWN = 20

#: ``(id, path, decode) -> (problems, frames)``: the check of one listed video.
VideoCheck = Callable[[str, Path, bool], tuple[list[Problem], int]]


@dataclass
class CheckReport:
    """What a dataset checker found.

    Attributes:
        dataset: the registered dataset name (``"jester"``, ``"video_list"``, ...).
        problems: every problem found, in a stable order.
        videos_ok, videos_bad: listed videos that passed / failed.
        frame_counts: frames per good video.
        unlisted: frame folders / video files on disk that no list names (not an error), sorted.
        note: one sentence for datasets with nothing on disk to check (synthetic clips).
    """

    dataset: str
    problems: list[Problem] = field(default_factory=list)
    videos_ok: int = 0
    videos_bad: int = 0
    frame_counts: list[int] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems

    def histogram(self, bins: int = 8) -> list[tuple[int, int, int]]:
        """Frame-count histogram as ``(low, high, videos)`` rows, ``low <= count <= high``."""
        if not self.frame_counts:
            return []
        lo, hi = min(self.frame_counts), max(self.frame_counts)
        width = max(1, -(-(hi - lo + 1) // bins))
        counts = Counter((n - lo) // width for n in self.frame_counts)
        return [(lo + b * width, lo + (b + 1) * width - 1, counts.get(b, 0)) for b in range((hi - lo) // width + 1)]

    def format(self) -> str:
        """A plain-text report: every problem, the unlisted files, then the summary."""
        lines = [str(p) for p in self.problems]
        if lines:
            lines.append("")
        if self.note:
            lines.append(f"{self.dataset}: {self.note}")
            return "\n".join(lines)
        total = self.videos_ok + self.videos_bad
        lines.append(
            f"{self.dataset}: {total} listed videos, {self.videos_ok} ok, {self.videos_bad} bad; "
            f"{len(self.problems)} problem(s)"
        )
        if self.unlisted:
            lines.append(f"{len(self.unlisted)} folder(s)/file(s) on disk not in any list:")
            lines += [f"  {name}" for name in self.unlisted[:UNLISTED_SHOWN]]
            if len(self.unlisted) > UNLISTED_SHOWN:
                lines.append(f"  ... and {len(self.unlisted) - UNLISTED_SHOWN} more")
        hist = self.histogram()
        if hist:
            n = self.frame_counts
            lines.append(f"frames per good video: min {min(n)}, median {sorted(n)[len(n) // 2]}, max {max(n)}")
            peak = max(c for _, _, c in hist)
            for lo, hi, c in hist:
                bar = "#" * max(1 if c else 0, round(40 * c / peak))
                lines.append(f"  {lo:5d}-{hi:<5d} {c:7d} {bar}")
        return "\n".join(lines)


def jpeg_problem(path: Path) -> str:
    """Cheap structural check of one JPEG file ('' if it looks whole)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(max(0, size - 64))
            tail = f.read()
    except FileNotFoundError:
        return "frame file is missing"
    except OSError as err:
        return f"cannot read file ({err.strerror})"
    if size == 0:
        return "empty file"
    if head != b"\xff\xd8":
        return "not a JPEG file (no start-of-image marker)"
    if b"\xff\xd9" not in tail.rstrip(b"\x00"):  # some writers pad after the end marker
        return "truncated JPEG (no end-of-image marker)"
    return ""


def check_frame_paths(vid: str, files: Sequence[Path], decode: bool) -> tuple[list[Problem], int]:
    """Check the given JPEG frames of one video: every missing, empty, non-JPEG or truncated one."""
    problems = []
    for p in files:
        msg = jpeg_problem(p)
        if msg:
            problems.append(Problem(p, msg, video=vid))
    if decode and not problems:
        try:
            read_jpeg_frames(vid, files)
        except VideoReadError as err:
            problems.append(Problem(err.path, err.reason, video=vid))
    return problems, len(files)


def check_frame_files(vid: str, folder: Path, decode: bool) -> tuple[list[Problem], int]:
    """Check a folder of numbered frames (``00001.jpg``, ...): present, numbered 1..n, every JPEG whole."""
    try:
        files = list_frame_files(vid, folder)
    except VideoReadError as err:
        return [Problem(err.path, err.reason, video=vid)], 0
    return check_frame_paths(vid, files, decode)


def check_video_file(rel: str, path: Path, decode: bool) -> tuple[list[Problem], int]:
    """Check one video file: present, opens, has a video stream, first and last frame (or all) decode."""
    try:
        with VideoFile(rel, path) as video:
            n = video.num_frames
            if decode:
                video.read(range(n))
            else:
                video.read([0, n - 1])
    except VideoReadError as err:
        return [Problem(err.path, err.reason, video=rel)], 0
    except Exception as err:  # a decoder failure PyAV does not classify
        return [Problem(path, f"cannot decode video: {type(err).__name__}: {err}", video=rel)], 0
    return [], n


def scan(
    report: CheckReport,
    videos: Sequence[tuple[str, Path, str]],
    check: VideoCheck,
    decode: bool,
    workers: int,
    on_video: Callable[[], None] | None,
) -> None:
    """Run ``check`` on every ``(id, path, where)`` row in threads; problems get ``(listed at where)``
    (nothing when ``where`` is empty)."""

    def one(item: tuple[str, Path, str]) -> tuple[list[Problem], int, str]:
        probs, n = check(item[0], item[1], decode)
        return probs, n, item[2]

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for probs, n, where in pool.map(one, videos):
            if probs:
                report.videos_bad += 1
                for p in probs:
                    p.message += f" (listed at {where})" if where else ""
                report.problems.extend(probs)
            else:
                report.videos_ok += 1
                report.frame_counts.append(n)
            if on_video is not None:
                on_video()


def relative_names(paths: Sequence[Path], root: Path) -> list[str]:
    """Sorted ``paths`` relative to ``root`` (for :attr:`CheckReport.unlisted`)."""
    return sorted(str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in paths)
