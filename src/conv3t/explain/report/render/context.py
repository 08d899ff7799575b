"""What every report section reads: the report's analysis and where to draw it.

:class:`ReportContext` is built once per report by :func:`conv3t.explain.report.render.render_report`, after
the analysis (:mod:`conv3t.explain.report.analysis`) is computed; it is frozen, and sections only read it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conv3t.explain.report.analysis import ReportAnalysis, ReportClip
from conv3t.explain.report.progress import StepCounter
from conv3t.explain.report.render.section import Figure

__all__ = ["Card", "ReportContext"]


@dataclass(frozen=True)
class Card:
    """One channel shown in a layer's section: what the page says and shows for it.

    ``figures``: the channel's images; ``notes``: plain sentences shown under them; ``readings``:
    ``(label, sentence)`` pairs (parameters, measured, agreement).
    """

    layer: str
    channel: int
    score: float | None = None
    sentence: str | None = None
    figures: tuple[Figure, ...] = ()
    notes: tuple[str, ...] = ()
    readings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ReportContext:
    """What sections read: the computed :class:`~conv3t.explain.report.analysis.ReportAnalysis` and where to
    draw it. Sections compute nothing: everything they show is in ``analysis``; they write images only.

    Attributes:
        analysis: the report's analysis (:func:`conv3t.explain.report.analysis.analyse`).
        out: the report folder; ``images``: its ``images/`` subfolder (write figures there).
        progress: the progress bar; a section takes ``steps(ctx)`` steps of it (``with ctx.step(...)``).

    ``model``, ``info``, ``options``, ``source``, ``is_3t``, ``table``, ``ranking``, ``layers``, ``clips``,
    ``clip_source``, ``device`` and ``run_notes`` read the analysis; ``cards`` are :class:`Card` objects of its
    chosen channels, without figures.
    """

    analysis: ReportAnalysis
    out: Path
    progress: StepCounter = field(default_factory=lambda: StepCounter(0, False))
    started: float = field(default_factory=time.perf_counter)

    model = property(lambda self: self.analysis.model)
    info = property(lambda self: self.analysis.info)
    options = property(lambda self: self.analysis.options)
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
        """A :class:`Card` per chosen channel, in order, without figures."""
        return [Card(c.layer, c.channel, c.score, c.sentence, readings=c.readings) for c in self.analysis.channels]

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
