"""The one way conv3t writes a file: a temporary file in the target's folder, then an atomic rename.

A reader (a browser on a half-written report, ``--resume`` after a kill) therefore sees either the old file or
the complete new one, never a torn one. The file gets the permissions that the process's umask gives a new file
(``0o666 & ~umask``, e.g. ``-rw-r--r--`` under umask 022), as ``open(path, "w")`` would: ``tempfile.mkstemp``
would make every report, checkpoint and export ``-rw-------`` and unreadable for colleagues and web servers.

This module sits below every other part of the package except :mod:`conv3t.nn` (which writes nothing).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

__all__ = ["atomic_open", "atomic_write", "write_json"]

PathLike = str | os.PathLike[str]


def _open_new(path: Path) -> tuple[int, Path]:
    """Create a fresh temporary file beside ``path`` with mode ``0o666 & ~umask``; returns ``(fd, tmp)``."""
    for _ in range(16):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file beside {path}")


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: Literal["wb", "w"] = "wb", *, fsync: bool = True) -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces ``path`` when the ``with`` block ends without error.

    Parent folders are created. On an exception the temporary file is removed and ``path`` is left untouched.
    ``mode`` is ``"wb"`` (bytes) or ``"w"`` (UTF-8 text, ``"\\n"`` line ends). ``fsync``: flush the data to disk
    before the rename, so that a crash right after it cannot leave an empty file (checkpoints rely on this).
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_new(target)
    try:
        text = mode == "w"
        with os.fdopen(fd, mode, **({"encoding": "utf-8", "newline": "\n"} if text else {})) as handle:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: PathLike, data: bytes | str, *, fsync: bool = True) -> Path:
    """Write ``data`` (bytes, or str as UTF-8) to ``path`` atomically; returns ``path`` as a :class:`Path`."""
    with atomic_open(path, "w" if isinstance(data, str) else "wb", fsync=fsync) as handle:
        handle.write(data)
    return Path(path)


def write_json(obj: Any, path: PathLike) -> Path:
    """``obj`` as indented JSON with a final newline, written atomically; returns ``path``."""
    return atomic_write(path, json.dumps(obj, indent=2) + "\n")
