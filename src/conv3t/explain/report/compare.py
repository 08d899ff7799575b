"""The comparison page (``conv3t compare``): several runs side by side, the Fig. 4/5 grid and Table 2/4."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from markupsafe import Markup

from conv3t.data import describe_data
from conv3t.explain.plots import plot_distribution_grid, save_figure
from conv3t.explain.report.render.page import macros, write_page
from conv3t.explain.report.render.section import Figure, Section
from conv3t.exported import ExportedModel, load_exported
from conv3t.files import atomic_write
from conv3t.readout import (
    format_statistics,
    statistics_latex,
    statistics_markdown,
    summary_statistics,
    temporal_parameters,
)

__all__ = ["build_comparison"]

_GRIDS = (
    ("human", "zoom as log₂ size factor per step, rotation ° clockwise per step, content motion in kernel pixels"),
    ("raw", "the paper's axes: s, −r (radians, clockwise positive), t_x, t_y"),
)
_STATS_INTRO = "<p>Mean μ / standard deviation σ over all Conv3T channels and steps, raw units ×10<sup>−3</sup>.</p>"
_STATS_FILES = (
    '<p class="files">Also as <a href="statistics.md">Markdown</a>, <a href="statistics.tex">LaTeX</a> and '
    '<a href="statistics.csv">CSV</a>.</p>'
)


def _run_label(exported: ExportedModel) -> tuple[str, str]:
    return exported.info.model, describe_data(exported.info.data)


def _folder_name(run: str | os.PathLike[str]) -> str:
    path = Path(run).resolve()
    return path.parent.name if path.is_file() else path.name


def build_comparison(
    runs: Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    names: Sequence[str] | None = None,
) -> Path:
    """Several runs side by side: the Fig. 4/5 grid and Table 2/4; returns the path of ``index.html``.

    Args:
        runs: run directories (or their ``model.safetensors`` / ``model.json``), 3T models.
        out_dir: output folder: ``index.html``, ``report.css``, ``statistics.md``, ``statistics.tex``,
            ``statistics.csv`` and ``images/distributions_{human,raw}.png``.
        names: one label per run for the table columns and the grid rows (default: the model name, or the run
            folder's name where two runs share model and dataset). Grid columns are the runs' datasets.

    Raises:
        ValueError naming the argument (``runs``, ``names``).
    """
    if not runs:
        raise ValueError("runs: compare needs at least one run directory")
    if names is not None and len(names) != len(runs):
        raise ValueError(f"names: got {len(names)} names for {len(runs)} runs")
    loaded = [load_exported(r) for r in runs]
    labels = [_run_label(e) for e in loaded]
    if names is None:
        names = [_folder_name(r) if labels.count(lab) > 1 else lab[0] for r, lab in zip(runs, labels, strict=True)]
    if len(set(zip(names, (lab[1] for lab in labels), strict=True))) != len(names):
        raise ValueError(f"names: two runs have the same name and dataset {list(zip(names, labels, strict=True))}")
    tables, skipped = {}, []
    for run, exp, name in zip(runs, loaded, names, strict=True):
        table = temporal_parameters(exp.model)
        if len(table):
            tables[name] = table
        else:
            skipped.append(f"{run} ({exp.info.model}: no temporal parameters)")
    if not tables:
        raise ValueError("runs: none of them has Conv3T layers with temporal parameters to compare")
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = [(n, e.info.model, lab[1], str(r)) for n, e, lab, r in zip(names, loaded, labels, runs, strict=True)]
    intro = macros().table(("name", "model", "data", "weights"), rows)
    if skipped:
        intro += Markup('<p class="note">Left out: {}.</p>').format("; ".join(skipped))
    dataset_of = dict(zip(names, (lab[1] for lab in labels), strict=True))
    sections = [
        Section(None, "", intro, wrap=False),
        _statistics(out, tables),
        _distributions(out, {(name, dataset_of[name]): table for name, table in tables.items()}),
    ]
    return write_page(
        out / "index.html",
        title="conv3t comparison",
        heading=f"Temporal parameters of {len(tables)} runs",
        sections=sections,
        footer=Markup("Written by <code>conv3t compare</code>."),
        nav=False,
    )


def _statistics(out: Path, tables: dict) -> Section:
    """Tables 2/4 on the page, and as ``statistics.{md,tex,csv}``."""
    stats = summary_statistics(tables)
    atomic_write(out / "statistics.md", statistics_markdown(stats).encode())
    atomic_write(out / "statistics.tex", statistics_latex(stats).encode())
    atomic_write(out / "statistics.csv", stats.to_csv(index=False).encode())
    shown = format_statistics(stats).rename_axis(None).to_html(index=True, border=0, classes="table", escape=True)
    html = Markup(_STATS_INTRO) + Markup(shown) + Markup(_STATS_FILES)
    return Section("statistics", "Statistics (Tables 2 and 4)", html)


def _distributions(out: Path, panels: dict) -> Section:
    """Figs. 4/5: a runs x datasets grid, identical axes in every panel."""
    figures = []
    for units, caption in _GRIDS:
        path = out / "images" / f"distributions_{units}.png"
        save_figure(plot_distribution_grid(panels, units=units), path, dpi=80)
        figures.append(Figure(path.relative_to(out).as_posix(), caption, "plot wide"))
    intro = Markup("<p>Identical axes in every panel, so panels compare directly.</p>")
    return Section("distributions", "Distributions (Figs. 4 and 5)", intro, figures)
