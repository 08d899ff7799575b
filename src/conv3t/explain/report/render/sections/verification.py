"""Section "Can the parameters be read as motion?", and the standalone ``verification.html``.

Both render a :class:`conv3t.verify.VerificationResult` with the same code (:func:`verification_section`):
one figure (agreement per layer and motion type, in both modes, against chance), a summary table of one row
per layer and mode (:func:`conv3t.verify.readings.layer_verdicts`), one sentence per layer saying whether its
parameters can be read as image motion, and links to the full numbers in CSV files (written by
:func:`conv3t.verify.write_outputs`: the report's artifacts, ``conv3t verify --out``). The report's analysis
measures its model once (:func:`conv3t.explain.report.analysis.measured_verification`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure as MplFigure
from matplotlib.lines import Line2D

from conv3t.explain.plots import save_figure
from conv3t.explain.report.analysis.verification import views
from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.page import macros, write_page
from conv3t.explain.report.render.section import Figure, Section
from conv3t.verify import VerificationResult
from conv3t.verify.network import CHANCE
from conv3t.verify.readings import ALPHA, MIN_COUNTED, MOTION_TYPES, layer_verdicts, wilson_interval

__all__ = [
    "plot_agreement",
    "report_verification",
    "verification_page",
    "verification_section",
]

TITLE = "Can the parameters be read as motion?"

_EXPLANATION = (
    "Every Conv3T channel was driven with textures of known motion (translation in {directions} directions at "
    "{speeds} px/frame, rotation at ±{rotations} °/frame, zoom by {zooms} per frame; {textures}) and the motion "
    "it responds to most was measured. 'image' mode moves the network's input, so a layer "
    "sees that motion through the layers before it; 'layer' mode moves each layer's own input. A channel is "
    "counted when it is strongly tuned (|index| ≥ {tt} translation, {rt} rotation, {zt} zoom) and its parameters "
    "predict a motion (≥ {ms} px, {mr}°, {mz} % per frame); it agrees when the predicted direction is within "
    "45° of the measured one (chance 25 %) or the predicted sense is the measured one (chance 50 %). A layer's "
    "parameters read as motion of a type when at least {mc} channels are counted, their agreement is at least "
    "halfway from chance to 100 % and a binomial test against chance gives p < {alpha:g}. These rules were fixed "
    "before looking at trained models."
)
_MARKERS = {"translation": "o", "rotation": "s", "zoom": "^"}


def report_verification(ctx: ReportContext) -> Section | None:
    """The report's section (3T models, unless ``verify=False``): the analysis' verification, its figure and
    files; no section when it was not measured."""
    if ctx.analysis.verification is None:
        return None
    return verification_section(ctx.analysis.verification, ctx.out, "images")


def _counts(row: pd.Series, motion: str) -> str:
    counted = int(row[f"{motion}_counted"])
    if counted == 0:
        return "–"
    verdict = {"agrees": " ✓", "disagrees": " ✗", "too few": ""}[row[f"{motion}_verdict"]]
    agree = int(row[f"{motion}_agree"])
    low, high = wilson_interval(agree, counted)
    cell = f"{agree}/{counted}{verdict} ({low:.0%}–{high:.0%})"
    inside, outside = int(row.get(f"{motion}_undecided_in", 0)), int(row.get(f"{motion}_undecided_out", 0))
    if inside or outside:
        cell += f"; undecided: {inside} of these" + (f", {outside} other{'s' * (outside != 1)}" if outside else "")
    return cell


def verification_section(
    result: VerificationResult, out_dir: str | os.PathLike[str] | None = None, image_subdir: str = "images"
) -> Section:
    """The section for ``result``; with ``out_dir``, the figure goes to ``out_dir/image_subdir/verification.png``
    and the page links the full numbers, ``verification_{summary,channels}.csv`` and ``verification.json`` (which
    :func:`conv3t.verify.write_outputs` writes there)."""
    cfg = result.config
    intro = _EXPLANATION.format(
        directions=cfg.get("directions", "?"),
        speeds=", ".join(f"{v:g}" for v in cfg.get("speeds", ())),
        rotations=", ".join(f"{v:g}" for v in cfg.get("rotations", ())),
        zooms=", ".join(f"{v:g}" for v in cfg.get("zooms", ())),
        textures=views(cfg),
        tt=cfg.get("translation_threshold"),
        rt=cfg.get("rotation_threshold"),
        zt=cfg.get("zoom_threshold"),
        ms=cfg.get("min_speed"),
        mr=cfg.get("min_rotation"),
        mz=cfg.get("min_zoom_percent"),
        mc=MIN_COUNTED,
        alpha=ALPHA,
    )
    verdicts = layer_verdicts(result)
    header = (
        "mode",
        "layer",
        "channels",
        "translation agree / counted",
        "rotation",
        "zoom",
        "parameters read as motion",
    )
    rows = [
        (r["mode"], r["layer"], int(r["channels"]), *(_counts(r, m) for m in MOTION_TYPES), r["verdict"])
        for _, r in verdicts.iterrows()
    ]
    image = verdicts[verdicts["mode"] == "image"]
    sentences = Markup("").join(Markup("<li>{}</li>").format(s) for s in image["sentence"])
    figures = []
    links = Markup("")
    if out_dir is not None:
        out = Path(out_dir)
        rel = f"{image_subdir}/verification.png"
        save_figure(plot_agreement(verdicts), out / rel, dpi=80)
        figures.append(Figure(rel, "agreement of parameters and measurement per layer; chance dashed", "plot wide"))
        links = Markup(
            '<p class="files">Every number per layer and motion in <a href="verification_summary.csv">'
            'verification_summary.csv</a>, per channel in <a href="verification_channels.csv">'
            'verification_channels.csv</a> (and <a href="verification.json">verification.json</a>).</p>'
        )
    html = (
        Markup("<p>{}</p>").format(intro)
        + (Markup('<ul class="verdicts">{}</ul>').format(sentences) if len(image) else Markup(""))
        + macros().table(header, rows)
        + Markup(
            "<p>✓: agrees, ✗: disagrees (above); no mark: too few counted channels to tell. In brackets: the "
            "95 % Wilson interval of the agreement rate (fewer texture views, <code>--verify-textures</code>, "
            "measure each channel's preference less reliably; fewer counted channels widen the interval). "
            "<em>Undecided</em>: channels whose counting or agreement is within its sampling error over the texture "
            "views, among the counted ones (the count could lose them) and among the others (it could gain them); "
            "the verdict does not wait for them.</p>"
        )
        + links
    )
    return Section("verification", TITLE, html, figures, nav="Verification")


def plot_agreement(verdicts: pd.DataFrame) -> MplFigure:
    """One panel per mode: agreement per layer (x) and motion type (marker), chance dashed; hollow markers for
    fewer than ``MIN_COUNTED`` counted channels; the marker's area grows with the counted channels."""
    modes = list(dict.fromkeys(verdicts["mode"])) or ["image"]
    fig = MplFigure(figsize=(11, 3.2 * len(modes)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(modes), 1, squeeze=False)[:, 0])
    colours = {"translation": "tab:blue", "rotation": "tab:orange", "zoom": "tab:green"}
    for ax, mode in zip(axes, modes):
        df = verdicts[verdicts["mode"] == mode].reset_index(drop=True)
        x = np.arange(len(df))
        for k, motion in enumerate(MOTION_TYPES):
            counted = df[f"{motion}_counted"].to_numpy(float)
            rate = np.where(counted > 0, df[f"{motion}_agree"] / np.maximum(counted, 1), np.nan)
            few = counted < MIN_COUNTED
            offset = (k - 1) * 0.12
            size = 20 + 4 * np.sqrt(counted)
            ax.scatter(x[~few] + offset, rate[~few], s=size[~few], marker=_MARKERS[motion], color=colours[motion])
            ax.scatter(
                x[few] + offset,
                rate[few],
                s=size[few],
                marker=_MARKERS[motion],
                facecolors="none",
                edgecolors=colours[motion],
            )
            ax.axhline(CHANCE[motion], color=colours[motion], lw=0.8, ls="--")
        ax.set_xticks(x, df["layer"], rotation=20, ha="right", fontsize=8)
        ax.set_xlim(-0.5, len(df) - 0.5)
        ax.set_ylim(-0.03, 1.03)
        ax.set_ylabel("agreement")
        ax.set_title(
            f"{mode} mode"
            + (
                ": stimuli move in the network's input"
                if mode == "image"
                else ": stimuli move in each layer's own input"
            ),
            fontsize=9,
        )
        # fixed-size legend markers (a plotted marker's size follows its counted channels); hollow = too few
        handles = [
            Line2D([], [], ls="", marker=_MARKERS[m], color=colours[m], markersize=7, label=m) for m in MOTION_TYPES
        ]
        handles.append(Line2D([], [], ls="", marker="o", markerfacecolor="none", color="0.4", label="too few"))
        ax.legend(handles=handles, loc="lower right", fontsize="small", ncols=4)
    return fig


def verification_page(result: VerificationResult, out_dir: str | os.PathLike[str]) -> Path:
    """A standalone ``verification.html`` (the report's section under a title) with its images, in ``out_dir``."""
    out = Path(out_dir)
    name = str(result.config.get("run", "model"))
    footer = Markup("Written by <code>conv3t verify</code>; measured in {:.0f} s.").format(result.seconds)
    return write_page(
        out / "verification.html",
        title=f"conv3t verify — {name}",
        heading=f"Verification of {name}",
        sections=[verification_section(result, out, "images")],
        footer=footer,
        nav=False,
    )
