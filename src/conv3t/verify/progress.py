"""Progress of a long measurement in words: its stage, the count done and the time left."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["StageETA", "format_duration"]


def format_duration(seconds: float) -> str:
    """``75 -> "1 min 15 s"``, ``3725 -> "1 h 2 min"``, ``8 -> "8 s"``."""
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    if s >= 60:
        return f"{s // 60} min {s % 60} s"
    return f"{s} s"


class StageETA:
    """A ``progress(stage, done, total)`` callback that shows ``"image mode 120/1560 clips, 3 min 10 s left"``.

    The time left is the stage's rate so far times the clips left (the first clip is excluded from the rate:
    it is measured under the memory probe and carries the start-up cost). ``clock`` is for tests.
    """

    def __init__(self, show: Callable[[str], None], clock: Callable[[], float] = time.perf_counter) -> None:
        self.show = show
        self.clock = clock
        self._stage = ""
        self._start = 0.0
        self._first = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self.clock()
        if stage != self._stage:
            self._stage, self._start, self._first = stage, now, done
        text = f"{stage} {done}/{total} clips"
        if done > self._first and done < total:
            left = (now - self._start) / (done - self._first) * (total - done)
            text += f", {format_duration(left)} left"
        self.show(text)
