"""Scan a whole dataset on disk and list every problem at once (``conv3t data check``).

Checks: annotation files (missing, lines that do not parse, labels not in the labels file /
``classInd.txt``, repeated videos), and every listed video: Jester frame folders (missing,
empty, gaps in the numbering, JPEG files that are empty, not JPEG or truncated) and UCF101 video
files (missing, unreadable, no video stream, truncated). By default JPEGs are checked for their
start and end markers and videos by decoding their first and last frames; ``decode=True``
decodes every frame (slower, also catches corrupt data inside a file).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from conv3t.data.decode import VideoFile, list_frame_files, read_jpeg_frames
from conv3t.data.errors import DataError, Problem, VideoReadError
from conv3t.data.jester import JESTER_LABELS_FILE, JESTER_SPLITS, jester_paths, read_jester_labels, read_jester_split
from conv3t.data.ucf101 import UCF101_FOLDS, read_class_index, read_ucf101_split, ucf101_split_file


@dataclass
class CheckReport:
    """What :func:`check_jester` / :func:`check_ucf101` found.

    Attributes:
        dataset: ``"jester"`` or ``"ucf101"``.
        problems: every problem found, in a stable order.
        videos_ok, videos_bad: listed videos that passed / failed.
        frame_counts: frames per good video.
        unlisted: frame folders / video files on disk that no annotation lists (not an error).
    """

    dataset: str
    problems: list[Problem] = field(default_factory=list)
    videos_ok: int = 0
    videos_bad: int = 0
    frame_counts: list[int] = field(default_factory=list)
    unlisted: int = 0

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
        """A plain-text report: every problem, then the summary."""
        lines = [str(p) for p in self.problems]
        if lines:
            lines.append("")
        total = self.videos_ok + self.videos_bad
        lines.append(
            f"{self.dataset}: {total} listed videos, {self.videos_ok} ok, {self.videos_bad} bad; "
            f"{len(self.problems)} problem(s)"
            + (f"; {self.unlisted} folder(s)/file(s) on disk not in any list" if self.unlisted else "")
        )
        hist = self.histogram()
        if hist:
            n = self.frame_counts
            lines.append(f"frames per good video: min {min(n)}, median {sorted(n)[len(n) // 2]}, max {max(n)}")
            peak = max(c for _, _, c in hist)
            for lo, hi, c in hist:
                bar = "#" * max(1 if c else 0, round(40 * c / peak))
                lines.append(f"  {lo:5d}-{hi:<5d} {c:7d} {bar}")
        return "\n".join(lines)


def _jpeg_problem(path: Path) -> str:
    """Cheap structural check of one JPEG file ('' if it looks whole)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(max(0, size - 64))
            tail = f.read()
    except OSError as err:
        return f"cannot read file ({err.strerror})"
    if size == 0:
        return "empty file"
    if head != b"\xff\xd8":
        return "not a JPEG file (no start-of-image marker)"
    if b"\xff\xd9" not in tail.rstrip(b"\x00"):  # some writers pad after the end marker
        return "truncated JPEG (no end-of-image marker)"
    return ""


def _check_jester_video(vid: str, folder: Path, decode: bool) -> tuple[list[Problem], int]:
    try:
        files = list_frame_files(vid, folder)
    except VideoReadError as err:
        return [Problem(err.path, err.reason, video=vid)], 0
    problems = []
    for p in files:
        msg = _jpeg_problem(p)
        if msg:
            problems.append(Problem(p, msg, video=vid))
    if decode and not problems:
        try:
            read_jpeg_frames(vid, files)
        except VideoReadError as err:
            problems.append(Problem(err.path, err.reason, video=vid))
    return problems, len(files)


def _check_ucf_video(rel: str, path: Path, decode: bool) -> tuple[list[Problem], int]:
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


def _scan(
    report: CheckReport,
    videos: Sequence[tuple[str, Path, str]],
    check: Callable[[str, Path, bool], tuple[list[Problem], int]],
    decode: bool,
    workers: int,
    on_video: Callable[[], None] | None,
) -> None:
    def one(item: tuple[str, Path, str]) -> tuple[list[Problem], int, str]:
        probs, n = check(item[0], item[1], decode)
        return probs, n, item[2]

    with ThreadPoolExecutor(max(1, workers)) as pool:
        for probs, n, where in pool.map(one, videos):
            if probs:
                report.videos_bad += 1
                for p in probs:
                    p.message += f" (listed at {where})"
                report.problems.extend(probs)
            else:
                report.videos_ok += 1
                report.frame_counts.append(n)
            if on_video is not None:
                on_video()


def jester_videos(
    root: str | Path | None,
    annotation_dir: str | Path | None = None,
    frames_dir: str | Path | None = None,
) -> tuple[list[tuple[str, Path, str]], list[Problem], Path]:
    """Every video listed by the Jester annotations: ``[(id, folder, "file:line")]``, problems, frames dir."""
    ann, frames = jester_paths(root, annotation_dir, frames_dir)
    problems: list[Problem] = []
    try:
        classes, probs = read_jester_labels(ann / JESTER_LABELS_FILE)
        problems += probs
    except DataError as err:
        return [], [Problem(ann / JESTER_LABELS_FILE, str(err).split(": ", 1)[-1])], frames
    videos: dict[str, tuple[str, Path, str]] = {}
    for split in JESTER_SPLITS:
        path = ann / f"jester-v1-{split}.csv"
        if not path.exists():
            problems.append(Problem(path, "annotation file is missing"))
            continue
        try:
            rows, probs = read_jester_split(path, classes, labeled=split != "test")
        except DataError as err:
            problems.append(Problem(path, str(err).split(": ", 1)[-1]))
            continue
        problems += probs
        for vid, _, line in rows:
            if vid in videos:
                problems.append(Problem(path, f"video {vid!r} is also listed at {videos[vid][2]}", line, vid))
            else:
                videos[vid] = (vid, frames / vid, f"{path.name}:{line}")
    return list(videos.values()), problems, frames


def check_jester(
    root: str | Path | None,
    annotation_dir: str | Path | None = None,
    frames_dir: str | Path | None = None,
    *,
    decode: bool = False,
    workers: int = 1,
    on_start: Callable[[int], None] | None = None,
    on_video: Callable[[], None] | None = None,
) -> CheckReport:
    """Check a Jester dataset; see the module doc. ``on_start(n)`` / ``on_video()`` drive a progress bar."""
    report = CheckReport("jester")
    videos, problems, frames = jester_videos(root, annotation_dir, frames_dir)
    report.problems += problems
    if not frames.is_dir():
        report.problems.append(Problem(frames, "frames folder is missing"))
        report.videos_bad = len(videos)
        return report
    if on_start is not None:
        on_start(len(videos))
    _scan(report, videos, _check_jester_video, decode, workers, on_video)
    listed = {v for v, _, _ in videos}
    report.unlisted = sum(1 for p in frames.iterdir() if p.is_dir() and p.name not in listed)
    return report


def ucf101_videos(
    root: str | Path, annotation_path: str | Path, folds: Sequence[int] = UCF101_FOLDS
) -> tuple[list[tuple[str, Path, str]], list[Problem]]:
    """Every video listed by the UCF101 split files of ``folds``: ``[(rel, path, "file:line")]``, problems."""
    root, ann = Path(root), Path(annotation_path)
    try:
        classes, problems = read_class_index(ann / "classInd.txt")
    except DataError as err:
        return [], [Problem(ann / "classInd.txt", str(err).split(": ", 1)[-1])]
    videos: dict[str, tuple[str, Path, str]] = {}
    for fold in folds:
        for train in (True, False):
            path = ucf101_split_file(ann, fold, train)
            if not path.exists():
                problems.append(Problem(path, "annotation file is missing"))
                continue
            try:
                rows, probs = read_ucf101_split(path, classes, labeled=train)
            except DataError as err:
                problems.append(Problem(path, str(err).split(": ", 1)[-1]))
                continue
            problems += probs
            for rel, _, line in rows:
                videos.setdefault(rel, (rel, root / rel, f"{path.name}:{line}"))
    return list(videos.values()), problems


def check_ucf101(
    root: str | Path,
    annotation_path: str | Path,
    folds: Sequence[int] = UCF101_FOLDS,
    *,
    decode: bool = False,
    workers: int = 1,
    on_start: Callable[[int], None] | None = None,
    on_video: Callable[[], None] | None = None,
) -> CheckReport:
    """Check a UCF101 dataset (the split files of ``folds``); see the module doc."""
    report = CheckReport("ucf101")
    videos, problems = ucf101_videos(root, annotation_path, folds)
    report.problems += problems
    if not Path(root).is_dir():
        report.problems.append(Problem(root, "video folder is missing"))
        report.videos_bad = len(videos)
        return report
    if on_start is not None:
        on_start(len(videos))
    _scan(report, videos, _check_ucf_video, decode, workers, on_video)
    listed = {str(p) for _, p, _ in videos}
    report.unlisted = sum(1 for p in Path(root).glob("*/*.avi") if str(p) not in listed)
    return report
