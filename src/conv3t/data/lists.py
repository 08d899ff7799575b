"""List files in mmaction2's formats, and the class list they imply.

::

    video list:  relative/path.ext label              (e.g. "cats/jump_01.mp4 3" or "cats/jump_01.mp4 cat")
    frame list:  frame_dir num_frames label           (e.g. "jump_01 48 cat")
    classes:     one class name per line; line order = label

Paths are relative to the dataset root and may contain spaces (the label, and the frame count,
are the last whitespace-separated fields). A label is a class name or a 0-based class index.
Without a classes file the classes are the sorted set of the names found in all lists of the
dataset (a number is an index into it), or, when every label is a number, ``"0" .. "max"``.
Blank lines and lines starting with ``#`` are ignored. Every problem is reported as
``file:line: what is wrong``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from conv3t.data.base import ClipSource
from conv3t.data.errors import DataError, Problem, raise_or_warn, read_text_lines
from conv3t.data.scan import CheckReport, VideoCheck, relative_names, scan


@dataclass(frozen=True)
class ListEntry:
    """One parsed line: ``path`` relative to the root, the ``label`` as written, its ``line``
    number and, for frame lists, ``num_frames``."""

    path: str
    label: str
    line: int
    num_frames: int = 0


def read_classes_file(path: str | Path) -> tuple[list[str], list[Problem]]:
    """Class names from a classes file (one per line, line order = label) and any problems."""
    path = Path(path)
    classes: list[str] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(read_text_lines(path), start=1):
        name = raw.strip()
        if not name or name.startswith("#"):
            continue
        if name in seen:
            problems.append(Problem(path, f"class {name!r} repeats line {seen[name]}", n))
            continue
        seen[name] = n
        classes.append(name)
    if not classes:
        problems.append(Problem(path, "no class names"))
    return classes, problems


def _safe_relative(rel: str) -> bool:
    parts = rel.replace("\\", "/").split("/")
    return not rel.startswith(("/", "\\")) and ".." not in parts and ":" not in parts[0]


def parse_list(path: str | Path, frames: bool) -> tuple[list[ListEntry], list[Problem]]:
    """The entries of a video list (``frames=False``) or frame list (``frames=True``) and its problems."""
    path = Path(path)
    expected = "'<frame_dir> <num_frames> <label>'" if frames else "'<relative/path.ext> <label>'"
    entries: list[ListEntry] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(read_text_lines(path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 2 if frames else 1)
        if len(parts) != (3 if frames else 2):
            problems.append(Problem(path, f"cannot parse line {line!r}: expected {expected}", n))
            continue
        rel, label = parts[0], parts[-1]
        count = 0
        if frames:
            if not parts[1].isdigit() or int(parts[1]) < 1:
                problems.append(Problem(path, f"cannot parse line {line!r}: num_frames {parts[1]!r} is not >= 1", n))
                continue
            count = int(parts[1])
        if not _safe_relative(rel):
            problems.append(Problem(path, f"path {rel!r} must be relative to the root, inside it", n, rel))
            continue
        if rel in seen:
            problems.append(Problem(path, f"{rel!r} repeats line {seen[rel]}", n, rel))
            continue
        seen[rel] = n
        entries.append(ListEntry(rel, label, n, count))
    return entries, problems


def implied_classes(labels: Sequence[str]) -> list[str]:
    """Classes when there is no classes file: the sorted set of the labels that are names (numbers are
    indices into it), or ``"0" .. "max"`` when every label is a number."""
    names = sorted({label for label in labels if not label.isdigit()})
    if names or not labels:
        return names
    return [str(i) for i in range(max(int(label) for label in labels) + 1)]


def resolve_labels(
    path: str | Path, entries: Sequence[ListEntry], classes: Sequence[str]
) -> tuple[list[tuple[ListEntry, int]], list[Problem]]:
    """``(entry, 0-based label)`` for every entry whose label is a class name or an index in range."""
    index = {c: i for i, c in enumerate(classes)}
    out: list[tuple[ListEntry, int]] = []
    problems: list[Problem] = []
    for e in entries:
        if e.label in index:
            out.append((e, index[e.label]))
        elif e.label.isdigit() and int(e.label) < len(classes):
            out.append((e, int(e.label)))
        elif e.label.isdigit():
            problems.append(Problem(path, f"label {e.label} is out of range (classes 0..{len(classes) - 1})", e.line))
        else:
            problems.append(Problem(path, f"label {e.label!r} is not a class name", e.line, e.path))
    return out, problems


@dataclass
class ParsedLists:
    """Every list of a dataset, parsed: the classes, per split ``(entry, label)`` rows and all problems."""

    classes: list[str]
    splits: dict[str, list[tuple[ListEntry, int]]]
    files: dict[str, Path]
    problems: list[Problem]


def parse_lists(
    lists: dict[str, str | Path], classes_file: str | Path | None, frames: bool, *, missing_ok: bool = False
) -> ParsedLists:
    """Parse the list of each split (``{"train": path, ...}``) and derive or read the classes.

    A missing or unreadable list raises :class:`DataError`, or with ``missing_ok`` becomes a problem.
    """
    problems: list[Problem] = []
    parsed: dict[str, list[ListEntry]] = {}
    files = {split: Path(p) for split, p in lists.items()}
    for split, path in files.items():
        try:
            parsed[split], probs = parse_list(path, frames)
        except DataError as err:
            if not missing_ok:
                raise
            parsed[split], probs = [], [Problem(path, str(err).split(": ", 1)[-1])]
        problems += probs
    if classes_file is not None:
        try:
            classes, probs = read_classes_file(classes_file)
        except DataError as err:
            if not missing_ok:
                raise
            classes, probs = [], [Problem(classes_file, str(err).split(": ", 1)[-1])]
        problems += probs
    else:
        classes = implied_classes([e.label for entries in parsed.values() for e in entries])
    splits: dict[str, list[tuple[ListEntry, int]]] = {}
    for split, entries in parsed.items():
        splits[split], probs = resolve_labels(files[split], entries, classes)
        problems += probs
    return ParsedLists(classes, splits, files, problems)


@dataclass(kw_only=True)
class ListSource(ClipSource):
    """Options and checker shared by ``video_list`` and ``frame_list``.

    Args:
        root: the folder the paths in the lists are relative to.
        train_list, val_list: list files of the train and val splits.
        test_list: list file of the multi-view test split (default: ``val_list``).
        classes: classes file, one name per line (default: implied by the lists, see the module doc).
    """

    root: str | Path
    train_list: str | Path
    val_list: str | Path
    test_list: str | Path | None = None
    classes: str | Path | None = None
    frames: ClassVar[bool] = False  # frame lists carry a frame count per line

    def list_files(self) -> dict[str, Path]:
        """The list file of each split; the test split falls back to the val list."""
        return {
            "train": Path(self.train_list),
            "val": Path(self.val_list),
            "test": Path(self.test_list or self.val_list),
        }

    def _unique_files(self) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for split, path in self.list_files().items():
            if path not in out.values():
                out[split] = path
        return out

    def parsed(self) -> ParsedLists:
        """All lists parsed once; their problems raise (``on_error="raise"``) or are logged (``"skip"``)."""
        cached = self.__dict__.get("_parsed")
        if cached is None:
            cached = parse_lists(self._unique_files(), self.classes, self.frames)
            raise_or_warn(cached.problems, self.on_error, f"the {self.name} lists")
            if not cached.classes:
                raise DataError(f"{self.name}: no classes (an empty classes file or empty lists)")
            self.__dict__["_parsed"] = cached
        return cached

    def read_classes(self) -> list[str]:
        return self.parsed().classes

    def rows(self, split: str) -> list[tuple[ListEntry, int]]:
        """``(entry, label)`` of ``split``; an empty split raises naming its list file."""
        path = self.list_files()[split]
        parsed = self.parsed()
        rows = next(parsed.splits[s] for s, p in parsed.files.items() if p == path)
        if not rows:
            raise DataError(f"{path}: no usable entries for the {split} split")
        return rows

    def video_check(self, entries: dict[str, ListEntry]) -> VideoCheck:
        """The check of one listed video (``entries`` by path), for :func:`~conv3t.data.scan.scan`."""
        raise NotImplementedError

    def on_disk(self, root: Path) -> list[Path]:
        """The videos / frame folders under ``root`` that a list could name (for the unlisted report)."""
        raise NotImplementedError

    def check(
        self,
        *,
        decode: bool = False,
        workers: int = 1,
        on_start: Callable[[int], None] | None = None,
        on_video: Callable[[], None] | None = None,
    ) -> CheckReport:
        report = CheckReport(self.name)
        parsed = parse_lists(self._unique_files(), self.classes, self.frames, missing_ok=True)
        report.problems += parsed.problems
        listed: dict[str, tuple[str, Path, str]] = {}
        entries: dict[str, ListEntry] = {}
        root = Path(self.root)
        for split, rows in parsed.splits.items():
            path = parsed.files[split]
            for e, _ in rows:
                if e.path in listed:
                    message = f"{e.path!r} is also listed at {listed[e.path][2]} (a video in two splits)"
                    report.problems.append(Problem(path, message, e.line, e.path))
                    continue
                listed[e.path] = (e.path, root / e.path, f"{path.name}:{e.line}")
                entries[e.path] = e
        if not root.is_dir():
            report.problems.append(Problem(root, "root folder is missing"))
            report.videos_bad = len(listed)
            return report
        if on_start is not None:
            on_start(len(listed))
        scan(report, list(listed.values()), self.video_check(entries), decode, workers, on_video)
        known = {(root / rel).resolve() for rel in listed}
        report.unlisted = relative_names([p for p in self.on_disk(root) if p.resolve() not in known], root)
        return report
