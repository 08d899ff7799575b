"""Errors raised for bad input data, and the shared skip counter used by ``on_error="skip"``."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger("conv3t.data")


class DataError(Exception):
    """Bad dataset input (annotation file, layout). The message names the file and, if any, the line."""


class VideoReadError(DataError):
    """One video could not be read.

    Attributes:
        video: the video's id (Jester id or UCF101 relative path).
        path: the file or folder at fault.
        reason: what is wrong.
    """

    def __init__(self, video: str, path: str | Path, reason: str) -> None:
        self.video, self.path, self.reason = video, str(path), reason
        super().__init__(f"video {video!r}: {path}: {reason}")

    def __reduce__(self):  # keep the fields when a DataLoader worker re-raises in the main process
        return (type(self), (self.video, self.path, self.reason))


class SkipCounter:
    """How many samples were skipped, shared by the dataset copies in all DataLoader workers.

    The count lives in a shared-memory tensor, so increments made by worker processes are seen
    by the main process (e.g. a callback that reports it at the end of an epoch). Which videos
    were skipped is logged (once per video and process) on the ``conv3t.data`` logger.
    """

    def __init__(self) -> None:
        self._count = torch.zeros(1, dtype=torch.int64).share_memory_()
        self._warned: set[str] = set()

    @property
    def count(self) -> int:
        """Skipped samples since the last :meth:`reset`."""
        return int(self._count.item())

    def reset(self) -> int:
        """Zero the count; returns the count before."""
        n = self.count
        self._count.zero_()
        return n

    def record(self, err: VideoReadError) -> None:
        self._count += 1
        if err.video not in self._warned:
            self._warned.add(err.video)
            log.warning("skipping bad sample: %s", err)


class Problem:
    """One thing wrong with a dataset, located as precisely as known: ``path[:line]: message``."""

    __slots__ = ("line", "message", "path", "video")

    def __init__(self, path: str | Path, message: str, line: int | None = None, video: str | None = None):
        self.path, self.message, self.line, self.video = str(path), message, line, video

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.message}"

    def __repr__(self) -> str:
        return f"Problem({self})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Problem) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


def raise_or_warn(problems: list[Problem], on_error: str, what: str) -> None:
    """Annotation problems: raise them all (``"raise"``) or warn and go on (``"skip"``)."""
    if not problems:
        return
    listing = "\n  ".join(str(p) for p in problems[:20])
    more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
    if on_error == "raise":
        raise DataError(f"{len(problems)} problem(s) in {what}:\n  {listing}{more}")
    log.warning("ignoring %d bad annotation line(s) in %s:\n  %s%s", len(problems), what, listing, more)


def read_text_lines(path: str | Path, what: str = "list file") -> list[str]:
    """The lines of a UTF-8 text file; a missing, folder or undecodable ``path`` raises :class:`DataError`
    naming it (``what`` names the kind of file in the message, e.g. ``"annotation file"``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: {what} is missing") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a {what}") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return text.splitlines()
