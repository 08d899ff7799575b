"""The context every report section receives: the report's analysis, the output folder and the options.

:class:`ReportContext` is built once per report by :func:`conv3t.explain.report.build_report`, after the
analysis (:mod:`conv3t.explain.report.analysis`) is computed; it is frozen, and sections only read it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from torch import Tensor

from conv3t.explain.report.section import Figure
from conv3t.verify.budget import parse_memory

if TYPE_CHECKING:  # the analysis module imports this one; annotations only
    from conv3t.explain.report.analysis import ReportAnalysis

__all__ = ["Card", "ReportClip", "ReportContext", "ReportOptions", "StepCounter"]


@dataclass
class ReportClip:
    """An input clip shown in the report: ``clip`` is the normalised model input ``(3, T, H, W)``."""

    name: str
    clip: Tensor
    label: str | None = None
    prediction: str | None = None
    probability: float | None = None


@dataclass(frozen=True)
class ReportOptions:
    """The knobs of :func:`~conv3t.explain.report.build_report` that sections read.

    ``actmax_frames`` / ``actmax_size`` cap the clip length (frames) and side (pixels) of activation
    maximisation; ``seed`` seeds it; ``verify`` asks for the verification section (3T models only), measured
    with ``verify_textures`` texture views per stimulus. ``device``: where every computation runs (``auto``,
    ``cpu``, ``cuda``, ``cuda:N``); ``max_memory``: the memory budget of the streamed stages (``"4GB"``; default
    a fraction of the device's free memory, :func:`conv3t.verify.budget.memory_budget`).
    """

    num_clips: int = 3
    num_channels: int = 3
    actmax_steps: int = 64
    actmax_frames: int = 8
    actmax_size: int = 64
    seed: int = 0
    verify: bool = True
    verify_textures: int = 24
    device: str = "auto"
    max_memory: str | None = None
    faithfulness: bool = True  # the faithfulness checks of the prediction explanations
    faithfulness_draws: int = 19  # their most random draws (channel sets, frame orders, maps): p >= 1 / (B + 1)

    def __post_init__(self) -> None:
        if self.verify_textures < 1:
            raise ValueError(f"verify_textures must be >= 1, got {self.verify_textures}")
        if self.max_memory is not None:
            parse_memory(self.max_memory)  # a bad size fails now, not after minutes of work


@dataclass
class Card:
    """One channel shown in a layer's section: what the page says and shows for it.

    ``figures``: the channel's images; ``notes``: plain sentences shown under them.
    """

    layer: str
    channel: int
    score: float | None = None
    sentence: str | None = None
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    readings: list[tuple[str, str]] = field(default_factory=list)  # (label, sentence): parameters, measured, ...


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


@dataclass(frozen=True)
class ReportContext:
    """What sections read: the computed :class:`~conv3t.explain.report.analysis.ReportAnalysis` and where and
    how to render it. Sections compute nothing they leave for others; everything they show is in ``analysis``.

    Attributes:
        analysis: the report's analysis (:func:`conv3t.explain.report.analysis.analyse`).
        out: the report folder; ``images``: its ``images/`` subfolder (write figures there).
        options: :class:`ReportOptions`.
        progress: the progress bar; a section takes ``steps(ctx)`` steps of it (``with ctx.step(...)``).

    ``model``, ``info``, ``source``, ``is_3t``, ``table``, ``ranking``, ``layers``, ``clips``, ``clip_source``,
    ``device`` and ``run_notes`` read the analysis; ``cards`` are new :class:`Card` objects of its chosen
    channels (a section adds figures to its own copies).
    """

    analysis: ReportAnalysis
    out: Path
    options: ReportOptions
    progress: StepCounter = field(default_factory=lambda: StepCounter(0, False))
    started: float = field(default_factory=time.perf_counter)

    model = property(lambda self: self.analysis.model)
    info = property(lambda self: self.analysis.info)
    source = property(lambda self: self.analysis.source)
    is_3t = property(lambda self: self.analysis.is_3t)
    table = property(lambda self: self.analysis.table)
    ranking = property(lambda self: self.analysis.ranking)
    device = property(lambda self: self.analysis.device)
    clip_source = property(lambda self: self.analysis.clip_source)

    @property
    def layers(self) -> list[str]:
        return list(self.analysis.layers)

    @property
    def clips(self) -> list[ReportClip]:
        return list(self.analysis.clips)

    @property
    def run_notes(self) -> list[str]:
        return list(self.analysis.notes)

    @property
    def cards(self) -> list[Card]:
        """A fresh :class:`Card` per chosen channel, in order."""
        return [
            Card(c.layer, c.channel, c.score, c.sentence, readings=list(c.readings)) for c in self.analysis.channels
        ]

    @property
    def images(self) -> Path:
        return self.out / "images"

    def rel(self, path: Path) -> str:
        """``path`` (inside the report folder) as the page references it: relative, with ``/``."""
        return path.relative_to(self.out).as_posix()

    def step(self, what: str) -> Any:
        """``with ctx.step("what it does"):`` one unit of the progress bar (see ``SectionEntry.steps``)."""
        return self.progress.step(what)

    def cards_of(self, layer: str) -> list[Card]:
        return [c for c in self.cards if c.layer == layer]
