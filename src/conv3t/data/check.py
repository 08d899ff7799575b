"""Scan a whole dataset on disk and list every problem at once (``conv3t data check``).

Each registered dataset kind brings its own checker (:meth:`DatasetSource.check`): list files
(missing, lines that do not parse, labels not in the class list, repeated videos) and every
listed video (frame folders: missing, empty, gaps in the numbering, missing frames, JPEG files
that are empty, not JPEG or truncated; video files: missing, unreadable, no video stream,
truncated). :func:`check_data_config` runs the checker of a ``data:`` config section.
The machinery is in :mod:`conv3t.data.scan`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from conv3t.data.jester import check_jester, jester_videos
from conv3t.data.registry import LOADER_OPTIONS, create_source
from conv3t.data.scan import CheckReport
from conv3t.data.ucf101 import check_ucf101, ucf101_videos

__all__ = ["CheckReport", "check_data_config", "check_jester", "check_ucf101", "jester_videos", "ucf101_videos"]


def check_data_config(
    data: Mapping[str, Any],
    *,
    decode: bool = False,
    workers: int = 1,
    on_start: Callable[[int], None] | None = None,
    on_video: Callable[[], None] | None = None,
) -> CheckReport:
    """Check the dataset a ``data:`` config section describes (loader keys are ignored).

    Raises ``ValueError`` for a bad section (unknown dataset or option, missing required option).
    """
    if not isinstance(data, Mapping) or "dataset" not in data:
        raise ValueError("the data section needs a 'dataset' key")
    options = {k: v for k, v in data.items() if k != "dataset" and k not in LOADER_OPTIONS}
    source = create_source(data["dataset"], options)
    return source.check(decode=decode, workers=workers, on_start=on_start, on_video=on_video)
