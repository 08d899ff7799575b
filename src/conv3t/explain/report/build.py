"""The explanation report: one static, offline ``index.html`` with its images beside it.

:func:`build_report` takes an exported model (a run directory, or the loaded
:class:`~conv3t.exported.ExportedModel`, see :mod:`conv3t.exported`) and writes, into ``out``:

* ``index.html`` and ``report.css``: no scripts, no remote resources; every image by relative path;
* ``images/``: the PNG figures and GIF animations the page shows;
* ``parameters.csv`` (the full :func:`~conv3t.readout.temporal_parameters` table), ``ranking.csv``,
  ``statistics.md`` and ``statistics.tex`` (Table 2 for this model);
* ``analysis.json``: the computed analysis, keyed by the weights and settings
  (:mod:`conv3t.explain.report.saved`), and ``verification.store.json``, the verification a later report of the
  same weights and verification settings reuses (:mod:`conv3t.verify.store`).

The report is computed once (:func:`conv3t.explain.report.analysis.analyse`), its data files written from that
analysis (:mod:`conv3t.explain.report.artifacts`), then it is rendered (:mod:`conv3t.explain.report.render`):
the page is the sections of :data:`conv3t.explain.report.registry.SECTIONS` in order: the model summary and
its predictions on the clips used, Table 2 statistics and the parameter distributions (Fig. 4), then for each
chosen layer its most transformed channels (:func:`~conv3t.explain.rank_channels`), each with a plain sentence,
the parameter plots and trajectory (Fig. 3 right), the filter slices and animation (first layer only,
Fig. 2/3 bottom), gradient saliency and activation maximisation, and the verification against stimuli of
known motion.

Clips: ``options.videos`` (video files read with PyAV, or folders of frame images) are preprocessed like the
evaluation data; without them the report regenerates a few clips of the run's own validation data
(:mod:`conv3t.explain.report.analysis.inputs`).

Defaults are sized for a CPU: 3 layers (first, middle and last temporal layer) x 3 channels, 64 activation
maximisation steps on at most 8 frames of at most 64 x 64 pixels.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conv3t.explain.report.analysis import ReportAnalysis, analyse, check_selection, read_clips
from conv3t.explain.report.artifacts import write_artifacts
from conv3t.explain.report.options import ReportOptions
from conv3t.explain.report.progress import StepCounter
from conv3t.explain.report.registry import SECTIONS
from conv3t.explain.report.render import ReportContext, SectionEntry, render_report
from conv3t.exported import ExportedModel, load_exported

__all__ = ["build_report", "report_analysis"]


def build_report(
    model_or_run: ExportedModel | str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ReportOptions | None = None,
    *,
    progress: bool = True,
    sections: Sequence[SectionEntry] | None = None,
    extra_sections: Sequence[str] = (),
    **changes: Any,
) -> ReportAnalysis:
    """Write the explanation report of an exported model into ``out``; returns its analysis (the page is
    ``out / "index.html"``).

    Args:
        model_or_run: a loaded :class:`~conv3t.exported.ExportedModel` (model and ``model.json``), or a run
            directory, or the path of its ``model.safetensors`` or ``model.json``.
        out: the report folder (created; files of an earlier report are overwritten; a verification stored
            there by an earlier report of the same weights and settings is reused).
        options: the report's options (:class:`~conv3t.explain.report.options.ReportOptions`, every default
            and check); ``changes``: fields of it to change (``build_report(run, out, num_clips=1)``).
        progress: show a progress bar on the terminal (stderr).
        sections: the section entries to render, in order (default: the registry,
            :data:`conv3t.explain.report.registry.SECTIONS`); the analysis computes what they need.
        extra_sections: HTML fragments (e.g. ``<section>...</section>``) appended after the registered
            sections, as they are (trusted markup); their images must lie inside ``out``.

    Raises:
        :class:`~conv3t.explain.report.options.OptionError` (a ValueError) or FileNotFoundError naming the
        option (``layers``, ``channels``, ``videos[i]``).
    """
    options = (options or ReportOptions()).replace(**changes) if changes else (options or ReportOptions())
    entries = list(SECTIONS if sections is None else sections)
    counter = StepCounter(1, progress)  # reading the clips; the analysis and the sections add theirs
    try:
        ctx = report_analysis(model_or_run, out, options, entries=entries, progress=counter)
        counter.add(1 + sum(entry.steps(ctx) for entry in entries))  # the sections' steps, then writing the page
        render_report(ctx, entries, extra_sections)
    finally:
        counter.close()
    return ctx.analysis


def report_analysis(
    model_or_run: ExportedModel | str | os.PathLike[str],
    out: str | os.PathLike[str],
    options: ReportOptions,
    *,
    entries: Sequence[SectionEntry] | None = None,
    progress: StepCounter | None = None,
) -> ReportContext:
    """Load the model, read the clips, compute the analysis the sections ``entries`` (default the registry) need
    (:func:`~conv3t.explain.report.analysis.analyse`; a bad ``layers`` / ``channels`` fails before any slow
    work) and write its data files (:func:`~conv3t.explain.report.artifacts.write_artifacts`); returns what the
    sections read."""
    started = time.perf_counter()
    needs = frozenset().union(*(entry.needs for entry in (SECTIONS if entries is None else entries)))
    progress = progress or StepCounter(1, False)
    # read on the CPU (the file's tensors), then moved: one place to load from
    exported = model_or_run if isinstance(model_or_run, ExportedModel) else load_exported(model_or_run)
    check_selection(exported.model, options)
    folder = Path(out)
    with progress.step("reading clips"):
        clips, clip_source = read_clips(exported.info, options.videos, options.num_clips)
    analysis = analyse(
        exported.model,
        exported.info,
        clips,
        options,
        progress,
        clip_source=clip_source,
        needs=needs,
        source=exported.path,
        store=folder,
    )
    write_artifacts(analysis, folder)
    (folder / "images").mkdir(exist_ok=True)
    return ReportContext(analysis, folder, progress, started)
