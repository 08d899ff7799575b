"""``video_folder``: your own videos sorted into one folder per class, no list files (like
torchvision's ImageFolder).

::

    root/train/<class name>/<video file>     e.g. root/train/cat/jump_01.mp4
    root/val/<class name>/<video file>
    root/test/<class name>/<video file>      optional; the multi-view test split (default: val)

The classes are the sorted names of the class folders in ``root/train`` (label = position);
a val or test class folder that ``train`` lacks is a problem. Video files are those ending in
one of :data:`~conv3t.data.video_list.VIDEO_EXTENSIONS`; names starting with ``.`` are ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from conv3t.data.base import ClipSource
from conv3t.data.errors import DataError, Problem, raise_or_warn
from conv3t.data.registry import register_dataset
from conv3t.data.scan import CheckReport, check_video_file, relative_names, scan
from conv3t.data.video_list import VideoFileDataset, is_video_file

FOLDER_SPLITS = {"train": "train", "val": "val", "test": "test"}


def _visible(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if not p.name.startswith("."))


def class_folders(split_dir: Path) -> list[str]:
    """The class folder names of one split folder, sorted; ``DataError`` if it is missing."""
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: split folder is missing")
    return [p.name for p in _visible(split_dir) if p.is_dir()]


def folder_videos(split_dir: Path, classes: list[str]) -> tuple[list[tuple[str, int]], list[Problem], list[Path]]:
    """``(path relative to the split's parent, label)`` of every video of a split, problems, ignored files."""
    index = {c: i for i, c in enumerate(classes)}
    videos: list[tuple[str, int]] = []
    problems: list[Problem] = []
    ignored: list[Path] = []
    for entry in _visible(split_dir):
        if not entry.is_dir():
            ignored.append(entry)  # a file outside any class folder
            continue
        if entry.name not in index:
            problems.append(Problem(entry, f"class folder {entry.name!r} is not in {split_dir.parent / 'train'}"))
            continue
        for f in _visible(entry):
            if is_video_file(f):
                videos.append((f"{split_dir.name}/{entry.name}/{f.name}", index[entry.name]))
            else:
                ignored.append(f)
    return videos, problems, ignored


@register_dataset("video_folder")
@dataclass(kw_only=True)
class VideoFolderSource(ClipSource):
    """Video files in ``root/<split>/<class>/`` folders.

    Options: ``root`` (holding ``train``, ``val`` and optionally ``test``) and the clip options
    of :class:`~conv3t.data.base.ClipSource` (16 frames of 112 x 112 by default).
    """

    root: str | Path
    num_frames: int = 16

    def split_dir(self, split: str) -> Path:
        """The folder of ``split``; the test split falls back to ``val`` when there is no ``test`` folder."""
        path = Path(self.root) / FOLDER_SPLITS[split]
        if split == "test" and not path.is_dir():
            return Path(self.root) / FOLDER_SPLITS["val"]
        return path

    def read_classes(self) -> list[str]:
        classes = class_folders(Path(self.root) / FOLDER_SPLITS["train"])
        if not classes:
            raise DataError(f"{Path(self.root) / 'train'}: no class folders")
        return classes

    def dataset(self, split: str) -> VideoFileDataset:
        folder = self.split_dir(split)
        videos, problems, _ = folder_videos(folder, self.class_names())
        raise_or_warn(problems, self.on_error, f"the video folders of {folder}")
        if not videos:
            raise DataError(f"{folder}: no video files in its class folders")
        return VideoFileDataset(
            self.root,
            [v for v, _ in videos],
            [label for _, label in videos],
            self.class_names(),
            clips=self.clip_options(split),
        )

    def check(
        self,
        *,
        decode: bool = False,
        workers: int = 1,
        on_start: Callable[[int], None] | None = None,
        on_video: Callable[[], None] | None = None,
    ) -> CheckReport:
        report = CheckReport(self.name)
        root = Path(self.root)
        try:
            classes = self.read_classes()
        except DataError as err:
            report.problems.append(Problem(root / "train", str(err).split(": ", 1)[-1]))
            return report
        rows: list[tuple[str, Path, str]] = []
        ignored: list[Path] = []
        for split in ("train", "val", "test"):
            folder = root / FOLDER_SPLITS[split]
            if split == "test" and not folder.is_dir():
                continue
            if not folder.is_dir():
                report.problems.append(Problem(folder, "split folder is missing"))
                continue
            videos, problems, skipped = folder_videos(folder, classes)
            report.problems += problems
            ignored += skipped
            if not videos:
                report.problems.append(Problem(folder, "no video files in its class folders"))
            rows += [(rel, root / rel, "") for rel, _ in videos]
        if on_start is not None:
            on_start(len(rows))
        scan(report, rows, check_video_file, decode, workers, on_video)
        report.unlisted = relative_names(ignored, root)
        return report
