"""Section "Do channels prefer the motion their parameters say?", and the standalone ``verification.html``.

Both render a :class:`conv3t.verify.VerificationResult` with the same code (:func:`verification_section`):
the report measures its model with :func:`conv3t.verify.verify_model`; ``conv3t verify`` writes the page.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from markupsafe import Markup
from matplotlib.figure import Figure as MplFigure

from conv3t.explain.plots import save_figure
from conv3t.explain.report.context import ReportContext
from conv3t.explain.report.page import macros, write_page
from conv3t.explain.report.section import Figure, Section
from conv3t.verify import VerificationResult, verify_model

__all__ = [
    "measured_verification",
    "plot_first_layer",
    "report_verification",
    "verification_page",
    "verification_section",
    "verification_steps",
]

TITLE = "Do channels prefer the motion their parameters say?"

_EXPLANATION = (
    "Every Conv3T channel was driven with textures of known motion (translation in {directions} directions at "
    "{speeds} px/frame, rotation at ±{rotations} °/frame and zoom by {zooms} per frame, {textures} texture views "
    "each) and its response energy measured. Its preferred motion (the velocity with the largest energy; the "
    "rotation and zoom sense with the larger energy at the centre of rotation) is compared with the motion its "
    "temporal parameters predict (content motion per frame, averaged over the kernel's steps). 'image' drives "
    "the whole network with moving pictures, so deeper layers see features of them; 'layer' drives each layer "
    "alone with textures moving in its own input. Counted = strongly tuned (|index| ≥ {tt} translation, "
    "{rt} rotation, {zt} zoom) and predicted to move (≥ {ms} px, {mr}°, {mz} % per frame). Agreement: "
    "direction within 45° (chance 25 %) or the same sense (chance 50 %). Speed ρ: Spearman correlation of "
    "predicted and measured speed over the counted channels. 'Dominant': counted channels whose rotation (zoom) "
    "moves the kernel's edge further per step than their translation moves its centre; a translation-tuned "
    "channel with an asymmetric filter also prefers one rotation / zoom sense, so these are the cleaner test."
)
_HEADER = (
    "mode",
    "layer",
    "motion",
    "channels",
    "tuned",
    "counted",
    "agree",
    "agreement",
    "chance",
    "median angle error (°)",
    "speed ρ",
    "dominant: agree / counted",
)


def verification_steps(ctx: ReportContext) -> int:
    return int(ctx.options.verify and ctx.is_3t)


def measured_verification(ctx: ReportContext) -> VerificationResult:
    """The model's verification at its clip size, measured once per report (kept in ``ctx.shared``)."""
    if "verification" not in ctx.shared:
        info = ctx.info
        ctx.shared["verification"] = verify_model(
            ctx.model, num_frames=info.num_frames, size=info.size, mean=info.mean, std=info.std
        )
    return ctx.shared["verification"]


def report_verification(ctx: ReportContext) -> Section | None:
    """The report's section (3T models, unless ``verify=False``)."""
    if not verification_steps(ctx):
        return None
    with ctx.step("verification against motion stimuli"):
        return verification_section(measured_verification(ctx), ctx.out, "images")


def verification_section(
    result: VerificationResult, out_dir: str | os.PathLike[str] | None = None, image_subdir: str = "images"
) -> Section:
    """The section for ``result``; with ``out_dir``, the first-layer scatter plots are written to
    ``out_dir/image_subdir/verification_<mode>.png`` and shown."""
    cfg = result.config
    intro = _EXPLANATION.format(
        directions=cfg.get("directions", "?"),
        speeds=", ".join(f"{v:g}" for v in cfg.get("speeds", ())),
        rotations=", ".join(f"{v:g}" for v in cfg.get("rotations", ())),
        zooms=", ".join(f"{v:g}" for v in cfg.get("zooms", ())),
        textures=cfg.get("textures", "?"),
        tt=cfg.get("translation_threshold"),
        rt=cfg.get("rotation_threshold"),
        zt=cfg.get("zoom_threshold"),
        ms=cfg.get("min_speed"),
        mr=cfg.get("min_rotation"),
        mz=cfg.get("min_zoom_percent"),
    )
    rows = [
        (
            r.mode,
            r.layer,
            r.motion,
            r.channels,
            r.tuned,
            r.counted,
            r.agree,
            "–" if not math.isfinite(r.agreement) else f"{r.agreement:.0%}",
            f"{r.chance:.0%}",
            _number(r.median_angle_error_deg),
            _number(r.speed_spearman),
            "–" if r.dominant_counted < 0 else f"{r.dominant_agree} / {r.dominant_counted}",
        )
        for r in result.summary.itertuples(index=False)
    ]
    figures = []
    for mode in ("image", "layer") if out_dir is not None else ():
        rel = f"{image_subdir}/verification_{mode}.png"
        if plot_first_layer(result, mode, Path(out_dir) / rel) is not None:
            caption = f"First layer, {mode} mode: measured against predicted motion."
            figures.append(Figure(rel, caption, alt=f"verification scatter, {mode} mode"))
    html = Markup("<p>{}</p><p>{}</p>").format(intro, _overall(result.summary)) + macros().table(_HEADER, rows)
    return Section("verification", TITLE, html, figures, nav="Verification")


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


def _number(value: float) -> str:
    return "–" if not math.isfinite(value) else f"{value:.2f}"


def _overall(summary: pd.DataFrame) -> str:
    """One sentence per motion type: pooled agreement over all layers of each mode."""
    parts = []
    for (mode, motion), df in summary.groupby(["mode", "motion"], sort=False):
        counted, agree = int(df["counted"].sum()), int(df["agree"].sum())
        if counted:
            parts.append(f"{mode}/{motion}: {agree}/{counted} ({agree / counted:.0%})")
        else:
            parts.append(f"{mode}/{motion}: no counted channel")
    return "Pooled over layers — " + "; ".join(parts) + "."


def plot_first_layer(result: VerificationResult, mode: str, path: str | os.PathLike[str]) -> Path | None:
    """Scatter plots for the first layer in ``mode``: measured vs predicted direction, rotation and zoom.

    Returns the written PNG's path, or None if the mode was not measured.
    """
    df = result.channels[result.channels["mode"] == mode]
    if df.empty:
        return None
    layer = df["layer"].iloc[0]
    df = df[df["layer"] == layer]
    fig = MplFigure(figsize=(11, 3.4))
    axes = fig.subplots(1, 3)
    counted = df["translation_counted"].to_numpy()
    ax = axes[0]
    ax.scatter(df["pred_direction_deg"][~counted], df["measured_direction_deg"][~counted], s=10, c="0.75")
    colors = np.where(df["translation_agree"][counted], "tab:green", "tab:red")
    ax.scatter(df["pred_direction_deg"][counted], df["measured_direction_deg"][counted], s=14, c=colors)
    ax.plot([0, 360], [0, 360], "k:", lw=0.8)
    ax.set(xlim=(0, 360), ylim=(0, 360), xlabel="predicted direction (°, 0 = right, 90 = down)")
    ax.set(ylabel="measured direction (°)", title="translation")
    for ax, pred, index, title, unit in (
        (axes[1], "pred_rotation_cw", "rotation_index", "rotation", "°/frame, + = clockwise"),
        (axes[2], "pred_zoom", "zoom_index", "zoom", "%/frame, + = zoom in"),
    ):
        c = np.where(df[f"{title}_counted"], np.where(df[f"{title}_agree"], "tab:green", "tab:red"), "0.75")
        ax.scatter(df[pred], df[index], s=12, c=c)
        ax.axhline(0, color="k", lw=0.6)
        ax.axvline(0, color="k", lw=0.6)
        ax.set(xlabel=f"predicted {title} ({unit})", ylabel=f"{title} index (measured)", title=title)
    fig.suptitle(f"{layer} ({mode} mode): green = agrees, red = disagrees, grey = not counted", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, Path(path), dpi=110)
