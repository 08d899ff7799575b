"""The explanation report: one static, offline ``index.html`` with its images beside it.

:func:`build_report` loads an exported model (``model.safetensors`` + ``model.json``, see
:mod:`conv3t.exported`) and writes, into ``out_dir``:

* ``index.html`` and ``report.css``: no scripts, no remote resources; every image by relative path;
* ``images/``: the PNG figures and GIF animations the page shows;
* ``parameters.csv`` (the full :func:`~conv3t.readout.temporal_parameters` table), ``ranking.csv``,
  ``statistics.md`` and ``statistics.tex`` (Table 2 for this model);
* ``analysis.json``: the computed analysis, keyed by the weights and settings
  (:mod:`conv3t.explain.report.saved`), and ``verification.store.json``, the verification a later report of the
  same weights and verification settings reuses (:mod:`conv3t.verify.store`).

The report is computed once (:func:`conv3t.explain.report.analysis.analyse`), then rendered: the page is the
sections of :data:`conv3t.explain.report.registry.SECTIONS` in order: the model summary and its predictions on
the clips used, Table 2 statistics and the parameter distributions (Fig. 4), then for each
chosen layer its most transformed channels (:func:`~conv3t.explain.rank_channels`), each with a plain sentence,
the parameter plots and trajectory (Fig. 3 right), the filter slices and animation (first layer only,
Fig. 2/3 bottom), gradient saliency and activation maximisation, and the verification against stimuli of
known motion.

Clips: ``videos`` (video files read with PyAV, or folders of frame images) are preprocessed like the
evaluation data; without them the report regenerates a few clips of the run's own validation data
(:mod:`conv3t.explain.report.inputs`).

Defaults are sized for a CPU: 3 layers (first, middle and last temporal layer) x 3 channels, 64 activation
maximisation steps on at most 8 frames of at most 64 x 64 pixels.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from markupsafe import Markup

from conv3t.explain.report.analysis import analyse
from conv3t.explain.report.context import ReportContext, ReportOptions, StepCounter
from conv3t.explain.report.page import write_page
from conv3t.explain.report.registry import SECTIONS
from conv3t.explain.report.saved import save_analysis
from conv3t.explain.report.section import Need, Section, SectionEntry
from conv3t.exported import load_exported

__all__ = ["build_report", "report_context", "run_summary", "sections_of"]


def build_report(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    videos: Sequence[str | os.PathLike[str]] | None = None,
    layers: Sequence[str] | None = None,
    channels: Sequence[int] | None = None,
    progress: bool = True,
    num_clips: int = 3,
    num_channels: int = 3,
    actmax_steps: int = 64,
    actmax_frames: int = 8,
    actmax_size: int = 64,
    seed: int = 0,
    extra_sections: Sequence[str] = (),
    verify: bool = True,
    sections: Sequence[SectionEntry] | None = None,
    device: str = "auto",
    max_memory: str | None = None,
    verify_textures: int = 24,
    faithfulness: bool = True,
    faithfulness_draws: int = 19,
) -> Path:
    """Write the explanation report of an exported model; returns the path of ``index.html``.

    Args:
        run_dir: a run directory, or the path of its ``model.safetensors`` or ``model.json``.
        out_dir: the report folder (created; files of an earlier report are overwritten).
        videos: video files or frame folders to explain; default: ``num_clips`` clips of the run's own
            validation data. Errors name the entry (``videos[2]``).
        layers: qualified layer names (e.g. ``["conv1", "layer2.0.conv1"]``); default: the first, middle and
            last layer with a temporal extent.
        channels: channel indices shown for every chosen layer; default: the ``num_channels`` most transformed
            channels of each layer (3T: :func:`~conv3t.explain.rank_channels`; 3D: largest relative change
            between consecutive kernel slices).
        progress: show a progress bar on the terminal (stderr).
        actmax_steps: Adam steps of activation maximisation per layer (all channels of a layer in one batch).
        actmax_frames, actmax_size: caps on the clip length and side used for activation maximisation.
        seed: seeds activation maximisation.
        extra_sections: HTML fragments (e.g. ``<section>...</section>``) appended after the registered
            sections, as they are (trusted markup); their images must lie inside ``out_dir``.
        verify: for 3T models, add the section that drives every channel with stimuli of known motion and
            compares the measured preference with the parameters' reading (:func:`conv3t.verify.verify_model`).
        sections: the section entries to render, in order (default: the registry,
            :data:`conv3t.explain.report.registry.SECTIONS`).
        device: where the model is loaded and every computation of the report runs: ``"auto"`` (CUDA when
            available, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        max_memory: memory budget of the verification's streamed clips (``"4GB"``); default a fraction of the
            device's free memory (:func:`conv3t.verify.budget.memory_budget`).
        verify_textures: texture views per verification stimulus; fewer is faster and widens the agreement's
            confidence interval printed beside each count. The verification is stored in the report folder and
            reused by a later report of the same weights and settings (:mod:`conv3t.verify.store`).
        faithfulness: check every prediction explanation (channel ablation, frame deletion and insertion,
            Grad-CAM pixel deletion, weight randomisation; :mod:`conv3t.explain.faithfulness`).
        faithfulness_draws: the most random draws a Monte-Carlo check takes (>= 2; 19, the fewest with which
            p = 1 / (B + 1) reaches alpha 0.05; fewer makes those checks not testable).

    Raises:
        ValueError / FileNotFoundError naming the argument (``layers``, ``channels``, ``videos[i]``).
    """
    given = locals()  # every ReportOptions field is a parameter of the same name
    options = ReportOptions(**{f.name: given[f.name] for f in fields(ReportOptions)})
    if faithfulness_draws < 2:
        raise ValueError(f"faithfulness_draws must be >= 2, got {faithfulness_draws}")
    entries = list(SECTIONS if sections is None else sections)
    counter = StepCounter(1, progress)  # reading the clips; the analysis and the sections add theirs
    try:
        ctx = report_context(
            run_dir, out_dir, options, layers, channels, videos=videos, entries=entries, progress=counter
        )
        counter.add(1 + sum(entry.steps(ctx) for entry in entries))  # the sections' steps, then writing the page
        rendered = sections_of(ctx, entries)
        rendered += [Section(None, "", Markup(html), wrap=False) for html in extra_sections]
        rendered.insert(0, run_summary(ctx))
        index = _write_index(ctx, rendered)
    finally:
        counter.close()
    return index


def report_context(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    options: ReportOptions,
    layers: Sequence[str] | None = None,
    channels: Sequence[int] | None = None,
    *,
    videos: Sequence[str | os.PathLike[str]] | None = None,
    entries: Sequence[SectionEntry] | None = None,
    progress: StepCounter | None = None,
) -> ReportContext:
    """Load the model and compute the report's analysis (:func:`~conv3t.explain.report.analysis.analyse`; a bad
    ``layers`` / ``channels`` argument fails before any slow work), for the sections ``entries`` (default the
    registry): the verification and the clips' explanations only when an entry needs them."""
    started = time.perf_counter()
    needs = set().union(*(entry.needs for entry in (SECTIONS if entries is None else entries)))
    progress = progress or StepCounter(1, False)
    exported = load_exported(run_dir)  # read on the CPU (the file's tensors), then moved: one place to load from
    analysis = analyse(
        exported,
        options,
        out_dir,
        layers=layers,
        channels=channels,
        videos=videos,
        measure=Need.VERIFICATION in needs,
        explain=Need.PREDICTIONS in needs,
        progress=progress,
    )
    save_analysis(analysis, options, out_dir)
    return ReportContext(analysis, Path(out_dir), options, progress, started)


def _write_index(ctx: ReportContext, rendered: list[Section]) -> Path:
    with ctx.step("writing index.html"):
        footer = Markup(
            "Written by <code>conv3t explain</code> in {:.0f} s. "
            "Static page: no scripts, nothing loaded from the network."
        ).format(time.perf_counter() - ctx.started)
        return write_page(
            ctx.out / "index.html",
            title=f"{ctx.info.model} — conv3t explanation report",
            heading=f"{ctx.info.model}: what its temporal filters learned",
            sections=rendered,
            footer=footer,
        )


def run_summary(ctx: ReportContext) -> Section:
    """The paragraph under the page's heading: device, precision, batch sizes and what each stage took (the
    stages done so far; the page itself is written after)."""
    stages = ", ".join(stage_times(ctx.progress.seconds))
    notes = Markup("").join(Markup("; {}").format(note) for note in ctx.run_notes)
    html = Markup('<p class="files">Computed on <code>{}</code> in float32{}. Time per stage: {}.</p>').format(
        str(ctx.device), notes, stages or "–"
    )
    return Section(None, "", html, wrap=False)


def stage_times(seconds: dict[str, float]) -> list[str]:
    """``"what 12 s"`` per stage, in order; the steps of one stage (``"saliency: conv1 #6"``, ``"saliency: conv1
    #39"``, ...) summed under its name (``"saliency 3 s in 6 parts"``): one entry per channel made the line of a
    paper-size report a paragraph of mostly "0 s"."""
    totals: dict[str, list[float]] = {}
    for what, s in seconds.items():
        totals.setdefault(what.split(":")[0], []).append(s)
    return [
        f"{what} {sum(parts):.0f} s" + (f" in {len(parts)} parts" if len(parts) > 1 else "")
        for what, parts in totals.items()
    ]


def sections_of(ctx: ReportContext, entries: Sequence[SectionEntry]) -> list[Section]:
    """Render ``entries`` in order; a section may return one Section, several, or None (left out).

    Raises RuntimeError when a section advances the progress bar more or less often than its ``steps`` say
    (the bar's total is their sum).
    """
    rendered: list[Section] = []
    for entry in entries:
        expected, before = entry.steps(ctx), ctx.progress.done
        result = entry.render(ctx)
        if ctx.progress.done - before != expected:
            raise RuntimeError(
                f"section {entry.name!r} took {ctx.progress.done - before} progress steps but declares {expected}"
            )
        if result is None:
            continue
        if isinstance(result, Section):
            rendered.append(result)
        elif all(isinstance(s, Section) for s in result):
            rendered.extend(result)
        else:
            raise TypeError(f"section {entry.name!r} returned {type(result).__name__}, not Section(s) or None")
    return rendered
