"""UCF101 (101 actions) in its official layout.

::

    root/<Class>/v_<Class>_gXX_cYY.avi      320×240 xvid/mpeg4, 25 fps
    annotation_path/classInd.txt            "1 ApplyEyeMakeup" ... (1-based)
    annotation_path/trainlist0{1,2,3}.txt   "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1" (1-based label)
    annotation_path/testlist0{1,2,3}.txt    "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi" (label from folder)

Labels are 0-based in conv3t (classInd number - 1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from conv3t.data.base import ClipOptions, ClipSource, ClipTransform
from conv3t.data.errors import DataError, Problem, raise_or_warn, read_text_lines
from conv3t.data.registry import register_dataset
from conv3t.data.scan import CheckReport, check_video_file, relative_names, scan
from conv3t.data.transforms import UCF101_SIZE
from conv3t.data.video_list import VideoFileDataset

UCF101_FOLDS = (1, 2, 3)
#: The paper's UCF101 clips: 30 frames of 168×224, a random horizontal flip in training.
UCF101_CLIPS = ClipOptions(num_frames=30, size=UCF101_SIZE, flip=True)


def read_class_index(path: str | Path) -> tuple[list[str], list[Problem]]:
    """Class names, 0-based, from ``classInd.txt`` (numbers must run 1..n) and any problems."""
    path = Path(path)
    numbered: dict[int, str] = {}
    problems: list[Problem] = []
    for n, raw in enumerate(read_text_lines(path, "annotation file"), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            problems.append(Problem(path, f"cannot parse line {line!r}: expected '<number> <ClassName>'", n))
            continue
        k, name = int(parts[0]), parts[1]
        if k in numbered:
            problems.append(Problem(path, f"class number {k} appears twice", n))
            continue
        if name in numbered.values():
            problems.append(Problem(path, f"class {name!r} appears twice", n))
            continue
        numbered[k] = name
    if numbered and sorted(numbered) != list(range(1, len(numbered) + 1)):
        problems.append(Problem(path, f"class numbers must run 1..{len(numbered)} without gaps"))
    if not numbered:
        problems.append(Problem(path, "no classes"))
    return [numbered[k] for k in sorted(numbered)], problems


def read_ucf101_split(
    path: str | Path, classes: Sequence[str], labeled: bool
) -> tuple[list[tuple[str, int, int]], list[Problem]]:
    """``(relative path, 0-based label, line)`` rows of a train/test list and any problems.

    ``labeled`` lists (trainlist) carry a 1-based number that must agree with the folder.
    """
    path = Path(path)
    index = {c: i for i, c in enumerate(classes)}
    entries: list[tuple[str, int, int]] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(read_text_lines(path, "annotation file"), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split()
        expected = "'<Class>/<file>.avi <number>'" if labeled else "'<Class>/<file>.avi'"
        # testlists carry no label; one with a label column is accepted (and checked) too
        counts_ok = len(parts) == 2 if labeled else len(parts) in (1, 2)
        if not counts_ok or "/" not in parts[0]:
            problems.append(Problem(path, f"cannot parse line {line!r}: expected {expected}", n))
            continue
        rel = parts[0]
        folder = rel.split("/", 1)[0]
        if ".." in rel.split("/") or rel.startswith("/"):
            problems.append(Problem(path, f"cannot parse line {line!r}: path leaves the dataset root", n))
            continue
        if folder not in index:
            problems.append(Problem(path, f"class folder {folder!r} is not in classInd.txt", n, rel))
            continue
        label = index[folder]
        if len(parts) == 2:
            if not parts[1].isdigit():
                problems.append(Problem(path, f"cannot parse line {line!r}: label {parts[1]!r} is not a number", n))
                continue
            k = int(parts[1])
            if not 1 <= k <= len(classes):
                problems.append(Problem(path, f"label {k} is not in classInd.txt (1..{len(classes)})", n, rel))
                continue
            if k - 1 != label:
                problems.append(Problem(path, f"label {k} ({classes[k - 1]}) disagrees with folder {folder!r}", n, rel))
                continue
        if rel in seen:
            problems.append(Problem(path, f"video {rel!r} repeats line {seen[rel]}", n, rel))
            continue
        seen[rel] = n
        entries.append((rel, label, n))
    return entries, problems


def ucf101_split_file(annotation_path: str | Path, fold: int, train: bool) -> Path:
    if fold not in UCF101_FOLDS:
        raise ValueError(f"UCF101 fold must be one of {UCF101_FOLDS}, got {fold!r}")
    return Path(annotation_path) / f"{'trainlist' if train else 'testlist'}0{fold}.txt"


class UCF101Dataset(VideoFileDataset):
    """UCF101 clips: items are ``(clip, label)``, ``clip`` float32 ``(3, T, H, W)``, ImageNet-normalised.

    Args:
        root: folder holding ``<Class>/<video>.avi``.
        annotation_path: folder holding ``classInd.txt``, ``trainlist0?.txt``, ``testlist0?.txt``.
        fold: official split 1, 2 or 3.
        train: trainlist (True) or testlist (False).
        clips: sampling, crops, views and bad-video policy (:class:`~conv3t.data.base.ClipOptions`); default
            :data:`UCF101_CLIPS`, the paper's 30 frames of 168×224 with a random flip in training (label-neutral
            for UCF101). ``mode`` None = ``"train"`` if ``train`` else ``"eval"``.
        transform: replaces the built-in transform, as for :class:`~conv3t.data.JesterDataset`.

    Frames are decoded with PyAV, seeking to the keyframe before the clip.
    """

    def __init__(
        self,
        root: str | Path,
        annotation_path: str | Path,
        fold: int = 1,
        train: bool = True,
        clips: ClipOptions | None = None,
        *,
        transform: ClipTransform | None = None,
    ) -> None:
        self.annotation_path = Path(annotation_path)
        self.fold, self.train = fold, train
        split_file = ucf101_split_file(annotation_path, fold, train)
        classes, problems = read_class_index(self.annotation_path / "classInd.txt")
        if not classes:
            raise DataError(str(problems[-1]))
        entries, split_problems = read_ucf101_split(split_file, classes, labeled=train)
        clips = (clips or UCF101_CLIPS).with_mode("train" if train else "eval")
        raise_or_warn(problems + split_problems, clips.on_error, f"UCF101 annotations ({self.annotation_path})")
        if not entries:
            raise DataError(f"{split_file}: no videos listed")
        super().__init__(  # UCF101 is a list of videos with labels: the generic video-file dataset reads it
            root,
            [e[0] for e in entries],
            [e[1] for e in entries],
            classes,
            clips=clips,
            transform=transform,
        )


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
    """Check a UCF101 dataset (the split files of ``folds``): list lines, and every listed video file
    (missing, unreadable, no video stream, truncated)."""
    report = CheckReport("ucf101")
    videos, problems = ucf101_videos(root, annotation_path, folds)
    report.problems += problems
    if not Path(root).is_dir():
        report.problems.append(Problem(root, "video folder is missing"))
        report.videos_bad = len(videos)
        return report
    if on_start is not None:
        on_start(len(videos))
    scan(report, videos, check_video_file, decode, workers, on_video)
    listed = {str(p) for _, p, _ in videos}
    unlisted = [p for p in Path(root).glob("*/*.avi") if str(p) not in listed]
    report.unlisted = relative_names(unlisted, Path(root))
    return report


@register_dataset("ucf101")
@dataclass(kw_only=True)
class UCF101Source(ClipSource):
    """UCF101 in its official layout: splits trainlist / testlist / testlist (multi-view) of ``fold``.

    Args:
        root: folder of the class folders with the ``.avi`` files.
        annotation_path: folder of ``classInd.txt`` and the split lists.
        fold: official split 1, 2 or 3.
        The clip options are those of :class:`~conv3t.data.base.ClipSource`; the paper's
        30 frames of 168 x 224 by default, flip on (label-neutral for UCF101).
    """

    fps: ClassVar[float | None] = 25.0  # UCF101's videos are 25 frames per second

    root: str | Path
    annotation_path: str | Path
    fold: int = 1
    num_frames: int = 30
    size: int | Sequence[int] = UCF101_SIZE
    flip: bool = True

    def read_classes(self) -> list[str]:
        classes, problems = read_class_index(Path(self.annotation_path) / "classInd.txt")
        if problems and (self.on_error == "raise" or not classes):
            raise DataError("; ".join(str(p) for p in problems))
        return classes

    def dataset(self, split: str) -> UCF101Dataset:
        clips = self.clip_options(split)
        return UCF101Dataset(self.root, self.annotation_path, self.fold, train=split == "train", clips=clips)

    def check(self, **kwargs) -> CheckReport:
        return check_ucf101(self.root, self.annotation_path, (self.fold,), **kwargs)
