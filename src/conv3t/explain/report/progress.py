"""The report's progress: a count of steps with a rich progress bar on stderr (stdout carries the report's path),
and the wall time of each step (the stage times under the page's heading)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

__all__ = ["StepCounter"]


class StepCounter:
    """Counts progress steps, and draws a rich progress bar on stderr (stdout carries the report's path)."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.done = 0
        self.seconds: dict[str, float] = {}  # wall time per step description, in order
        self._what = ""
        self._bar: Progress | None = None
        self._console = Console(stderr=True)
        self.enabled = enabled
        if enabled:
            self._bar = Progress(
                TextColumn("[bold]conv3t explain[/]"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=self._console,
            )
            self._task = self._bar.add_task("", total=total)
            self._bar.start()

    @contextmanager
    def step(self, what: str) -> Iterator[None]:
        self._what = what
        if self._bar is not None:
            self._bar.update(self._task, description=what)
        start = time.perf_counter()
        yield
        self.seconds[what] = self.seconds.get(what, 0.0) + time.perf_counter() - start
        self.done += 1
        if self._bar is not None:
            self._bar.advance(self._task)

    def add(self, steps: int) -> None:
        """Add ``steps`` to the total (work learnt of on the way, e.g. once the clips are read)."""
        self.total += steps
        if self._bar is not None:
            self._bar.update(self._task, total=self.total)

    def detail(self, text: str) -> None:
        """Show ``text`` after the current step's description (e.g. a count and an ETA)."""
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self._what}: {text}")

    def say(self, text: str) -> None:
        """A line on stderr above the bar (shown also without a bar: it says something the user must know)."""
        self._console.print(text, highlight=False, markup=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
