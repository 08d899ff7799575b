"""20BN-Jester v1 (27 hand gestures) in its official layout.

::

    root/jester-v1-labels.csv        27 class names, one per line; line order = class index
    root/jester-v1-train.csv         "<id>;<Class Name>" per line, no header
    root/jester-v1-validation.csv    same
    root/jester-v1-test.csv          "<id>" per line (unlabeled: label -1)
    root/20bn-jester-v1/<id>/00001.jpg, 00002.jpg, ...   (1-based, %05d.jpg, ~100 px high)

The annotation folder and the frames folder may be given separately.

The official test split has no labels. By default the validation split serves for validation and for the
multi-view test; with ``val_test_halves`` (the paper's protocol) the validation list is cut in two in file
order: the first ``floor(n / 2)`` videos (7,393 of 14,787) are the validation split, the rest (7,394) the test
split, so that model selection and the reported accuracy use different videos.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from conv3t.data.base import ClipOptions, ClipSource, ClipTransform, VideoClipDataset
from conv3t.data.decode import list_frame_files, read_jpeg_frames
from conv3t.data.errors import DataError, Problem, raise_or_warn, read_text_lines
from conv3t.data.registry import register_dataset
from conv3t.data.scan import CheckReport, check_frame_files, relative_names, scan
from conv3t.data.transforms import JESTER_SIZE, symmetric_label_map

JESTER_SPLITS = ("train", "validation", "test")
JESTER_FRAMES_DIR = "20bn-jester-v1"
JESTER_LABELS_FILE = "jester-v1-labels.csv"
#: The paper's Jester clips: 30 frames of 150×224, no flip.
JESTER_CLIPS = ClipOptions(num_frames=30, size=JESTER_SIZE)

#: Classes a horizontal mirror swaps (a mirror also reverses the sense of rotation).
JESTER_FLIP_NAME_PAIRS: tuple[tuple[str, str], ...] = (
    ("Swiping Left", "Swiping Right"),
    ("Sliding Two Fingers Left", "Sliding Two Fingers Right"),
    ("Turning Hand Clockwise", "Turning Hand Counterclockwise"),
)
#: The same by the official label order: 0 <-> 1, 6 <-> 7, 14 <-> 15.
JESTER_FLIP_LABEL_MAP: dict[int, int] = symmetric_label_map(((0, 1), (6, 7), (14, 15)))


def jester_flip_label_map(classes: Sequence[str]) -> dict[int, int]:
    """Mirror label swaps for the given class order (pairs whose names are absent are left out)."""
    index = {c: i for i, c in enumerate(classes)}
    return symmetric_label_map([(index[a], index[b]) for a, b in JESTER_FLIP_NAME_PAIRS if a in index and b in index])


def read_jester_labels(path: str | Path) -> tuple[list[str], list[Problem]]:
    """Class names from ``jester-v1-labels.csv`` (blank lines ignored) and any problems."""
    path = Path(path)
    classes, problems, seen = [], [], {}
    for n, line in enumerate(read_text_lines(path, "annotation file"), start=1):
        name = line.strip()
        if not name:
            continue
        if name in seen:
            problems.append(Problem(path, f"class {name!r} repeats line {seen[name]}", n))
            continue
        seen[name] = n
        classes.append(name)
    if not classes:
        problems.append(Problem(path, "no class names"))
    return classes, problems


def read_jester_split(
    path: str | Path, classes: Sequence[str], labeled: bool = True
) -> tuple[list[tuple[str, int, int]], list[Problem]]:
    """``(id, label, line)`` rows of a split file (label -1 when ``labeled`` is False) and problems."""
    path = Path(path)
    index = {c: i for i, c in enumerate(classes)}
    entries: list[tuple[str, int, int]] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(read_text_lines(path, "annotation file"), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(";")
        vid = parts[0].strip()
        if not vid or any(c in vid for c in "/\\ ") or vid in (".", ".."):
            problems.append(Problem(path, f"cannot parse line {line!r}: bad video id", n))
            continue
        if labeled:
            if len(parts) != 2 or not parts[1].strip():
                problems.append(Problem(path, f"cannot parse line {line!r}: expected '<id>;<Class Name>'", n))
                continue
            name = parts[1].strip()
            if name not in index:
                problems.append(Problem(path, f"label {name!r} is not in the labels file", n, vid))
                continue
            label = index[name]
        else:
            if len(parts) > 2 or (len(parts) == 2 and parts[1].strip()):
                problems.append(Problem(path, f"cannot parse line {line!r}: expected '<id>'", n))
                continue
            label = -1
        if vid in seen:
            problems.append(Problem(path, f"video {vid!r} repeats line {seen[vid]}", n, vid))
            continue
        seen[vid] = n
        entries.append((vid, label, n))
    return entries, problems


def jester_paths(
    root: str | Path | None, annotation_dir: str | Path | None = None, frames_dir: str | Path | None = None
) -> tuple[Path, Path]:
    """Resolve ``(annotation_dir, frames_dir)``: defaults are ``root`` and ``root/20bn-jester-v1``."""
    if root is None and (annotation_dir is None or frames_dir is None):
        raise ValueError("give root, or both annotation_dir and frames_dir")
    ann = Path(annotation_dir) if annotation_dir is not None else Path(root)  # type: ignore[arg-type]
    frames = Path(frames_dir) if frames_dir is not None else Path(root) / JESTER_FRAMES_DIR  # type: ignore[arg-type]
    return ann, frames


class JesterDataset(VideoClipDataset):
    """Jester clips: items are ``(clip, label)``, ``clip`` float32 ``(3, T, H, W)``, ImageNet-normalised.

    Args:
        root: dataset folder in the official layout (or None when both folders below are given).
        split: ``"train"``, ``"validation"`` or ``"test"`` (test items have label -1).
        clips: sampling, crops, views and bad-video policy (:class:`~conv3t.data.base.ClipOptions`); default
            :data:`JESTER_CLIPS`, the paper's 30 frames of 150×224. ``mode`` None = ``"train"`` for the train
            split, else ``"eval"``. A flip (``clips.flip``, off by default: it changes gesture meaning) swaps
            labels by :func:`jester_flip_label_map`, for the official order :data:`JESTER_FLIP_LABEL_MAP`.
        annotation_dir: folder of the ``jester-v1-*.csv`` files (default ``root``).
        frames_dir: folder of the per-video frame folders (default ``root/20bn-jester-v1``).
        transform: replaces the built-in transform; called as ``transform(frames, label)`` with
            ``uint8 (T, 3, h, w)`` frames (``(V, T, 3, h, w)`` in multiview mode).
        half: ``None`` (every listed video), ``0`` (the first ``floor(n / 2)`` videos of the split file, in
            file order, after dropping bad lines) or ``1`` (the others).
    """

    def __init__(
        self,
        root: str | Path | None,
        split: str = "train",
        clips: ClipOptions | None = None,
        *,
        annotation_dir: str | Path | None = None,
        frames_dir: str | Path | None = None,
        transform: ClipTransform | None = None,
        half: int | None = None,
    ) -> None:
        if split not in JESTER_SPLITS:
            raise ValueError(f"Jester split must be one of {JESTER_SPLITS}, got {split!r}")
        if half not in (None, 0, 1):
            raise ValueError(f"half must be None, 0 or 1, got {half!r}")
        self.annotation_dir, self.frames_dir = jester_paths(root, annotation_dir, frames_dir)
        self.split = split
        classes, problems = read_jester_labels(self.annotation_dir / JESTER_LABELS_FILE)
        if not classes:
            raise DataError(str(problems[0]))
        self.classes = classes
        self.flip_label_map = jester_flip_label_map(classes)
        split_file = self.annotation_dir / f"jester-v1-{split}.csv"
        entries, split_problems = read_jester_split(split_file, classes, labeled=split != "test")
        clips = (clips or JESTER_CLIPS).with_mode("train" if split == "train" else "eval")
        raise_or_warn(problems + split_problems, clips.on_error, f"Jester annotations ({self.annotation_dir})")
        if half is not None:
            cut = len(entries) // 2
            entries = entries[:cut] if half == 0 else entries[cut:]
        if not entries:
            raise DataError(f"{split_file}: no videos listed" + ("" if half is None else f" in half {half}"))
        self.videos = [e[0] for e in entries]
        self.labels = [e[1] for e in entries]
        super().__init__(clips, transform)

    def read_frames(self, index: int, rng: np.random.Generator) -> torch.Tensor:
        vid = self.videos[index]
        files = list_frame_files(vid, self.frames_dir / vid)
        idx = self.sample(len(files), rng)
        unique, inverse = np.unique(idx, return_inverse=True)
        frames = read_jpeg_frames(vid, [files[i] for i in unique])
        return frames[torch.from_numpy(inverse.reshape(idx.shape))]


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
    """Check a Jester dataset: the annotation files (lines that do not parse, unknown labels, repeated
    videos) and every listed frame folder (missing, empty, gaps in the numbering, bad JPEGs)."""
    report = CheckReport("jester")
    videos, problems, frames = jester_videos(root, annotation_dir, frames_dir)
    report.problems += problems
    if not frames.is_dir():
        report.problems.append(Problem(frames, "frames folder is missing"))
        report.videos_bad = len(videos)
        return report
    if on_start is not None:
        on_start(len(videos))
    scan(report, videos, check_frame_files, decode, workers, on_video)
    listed = {v for v, _, _ in videos}
    report.unlisted = relative_names([p for p in frames.iterdir() if p.is_dir() and p.name not in listed], frames)
    return report


@register_dataset("jester")
@dataclass(kw_only=True)
class JesterSource(ClipSource):
    """20BN-Jester in its official layout: splits train / validation / validation (multi-view).

    Args:
        root: dataset folder (frames in ``root/20bn-jester-v1``; may be None when both
            ``annotation_path`` and ``frames_dir`` are given).
        annotation_path: folder of the ``jester-v1-*.csv`` files (default ``root``).
        frames_dir: frames folder when not ``root/20bn-jester-v1``.
        val_test_halves: split the official validation list in file order: first ``floor(n / 2)``
            videos = validation split, the rest = test split (the paper's 7,393 / 7,394); false: both
            splits use the whole list.
        The clip options are those of :class:`~conv3t.data.base.ClipSource`; the paper's
        30 frames of 150 x 224 by default, flip off (a mirror changes a gesture's meaning;
        when on, left/right labels are swapped by :func:`jester_flip_label_map`).
    """

    fps: ClassVar[float | None] = 12.0  # Jester's frames were extracted at 12 per second

    root: str | Path | None = None
    annotation_path: str | Path | None = None
    frames_dir: str | Path | None = None
    num_frames: int = 30
    size: int | Sequence[int] = JESTER_SIZE
    val_test_halves: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.root is None and (self.annotation_path is None or self.frames_dir is None):
            raise ValueError("data.root is required for dataset 'jester' (or both annotation_path and frames_dir)")
        if not isinstance(self.val_test_halves, bool):
            raise ValueError(f"data.val_test_halves must be true or false, got {self.val_test_halves!r}")

    def read_classes(self) -> list[str]:
        ann, _ = jester_paths(self.root, self.annotation_path, self.frames_dir)
        classes, problems = read_jester_labels(ann / JESTER_LABELS_FILE)
        if problems and (self.on_error == "raise" or not classes):
            raise DataError("; ".join(str(p) for p in problems))
        return classes

    def flip_label_map(self) -> dict[int, int]:
        return jester_flip_label_map(self.class_names())

    def dataset(self, split: str) -> JesterDataset:
        half = None
        if self.val_test_halves and split != "train":
            half = 0 if split == "val" else 1
        return JesterDataset(
            self.root,
            "train" if split == "train" else "validation",  # the official test split has no labels
            annotation_dir=self.annotation_path,
            frames_dir=self.frames_dir,
            half=half,
            clips=self.clip_options(split),
        )

    def check(self, **kwargs) -> CheckReport:
        return check_jester(self.root, self.annotation_path, self.frames_dir, **kwargs)
