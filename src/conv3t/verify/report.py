"""Presenting a :class:`~conv3t.verify.network.VerificationResult`: terminal table, JSON/CSV files, HTML section."""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from conv3t.files import atomic_open, atomic_write
from conv3t.verify.network import VerificationResult

__all__ = ["format_summary", "plot_first_layer", "verification_page", "verification_section", "write_outputs"]

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


def format_summary(result: VerificationResult) -> str:
    """The summary as a plain-text table (what ``conv3t verify`` prints)."""
    df = result.summary.copy()
    df["agreement"] = [("-" if not math.isfinite(v) else f"{v:.0%}") for v in df["agreement"]]
    df["chance"] = [f"{v:.0%}" for v in df["chance"]]
    for col in ("median_angle_error_deg", "speed_spearman"):
        df[col] = ["-" if not math.isfinite(v) else f"{v:.2f}" for v in df[col]]
    df["dominant"] = [
        "-" if n < 0 else f"{a}/{n}" for a, n in zip(df.pop("dominant_agree"), df.pop("dominant_counted"), strict=True)
    ]
    df = df.rename(columns={"median_angle_error_deg": "median angle err", "speed_spearman": "speed rho"})
    return df.to_markdown(index=False, tablefmt="simple")


def write_outputs(result: VerificationResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``verification.json`` (config, summary, channels), ``verification_summary.csv`` and
    ``verification_channels.csv`` into ``out_dir`` (atomically); returns the paths by kind."""
    out = Path(out_dir)
    paths = {
        "json": out / "verification.json",
        "summary": out / "verification_summary.csv",
        "channels": out / "verification_channels.csv",
    }
    text = json.dumps(result.to_json(), indent=1, default=_json_default) + "\n"
    atomic_write(paths["json"], text.encode())
    atomic_write(paths["summary"], result.summary.to_csv(index=False).encode())
    atomic_write(paths["channels"], result.channels.to_csv(index=False).encode())
    return paths


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple | set):
        return list(obj)
    return str(obj)


def plot_first_layer(result: VerificationResult, mode: str, path: str | os.PathLike[str]) -> Path | None:
    """Scatter plots for the first layer in ``mode``: measured vs predicted direction, rotation and zoom.

    Returns the written PNG's path, or None if the mode was not measured.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = result.channels[result.channels["mode"] == mode]
    if df.empty:
        return None
    layer = df["layer"].iloc[0]
    df = df[df["layer"] == layer]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
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
    path = Path(path)
    with atomic_open(path, fsync=False) as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return path


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.2f}"
    return html.escape(str(value))


def verification_section(
    result: VerificationResult,
    out_dir: str | os.PathLike[str] | None = None,
    image_subdir: str = "images",
) -> str:
    """An HTML ``<section id="verification">`` fragment for the explanation report.

    Args:
        result: from :func:`conv3t.verify.verify_model` / :func:`conv3t.verify.verify_run`.
        out_dir: the report folder; if given, the first-layer scatter plots are written to
            ``out_dir/image_subdir/verification_<mode>.png`` and referenced relatively.
        image_subdir: folder for the images inside ``out_dir``.

    Returns:
        HTML text (no scripts, no external resources).
    """
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
    summary = result.summary
    head = (
        "<tr><th>mode</th><th>layer</th><th>motion</th><th>channels</th><th>tuned</th><th>counted</th>"
        "<th>agree</th><th>agreement</th><th>chance</th><th>median angle error (°)</th><th>speed ρ</th>"
        "<th>dominant: agree / counted</th></tr>"
    )
    rows = []
    for r in summary.itertuples(index=False):
        agreement = "–" if not math.isfinite(r.agreement) else f"{r.agreement:.0%}"
        rows.append(
            f"<tr><td>{_cell(r.mode)}</td><td>{_cell(r.layer)}</td><td>{_cell(r.motion)}</td>"
            f"<td>{r.channels}</td><td>{r.tuned}</td><td>{r.counted}</td><td>{r.agree}</td>"
            f"<td>{agreement}</td><td>{r.chance:.0%}</td><td>{_cell(r.median_angle_error_deg)}</td>"
            f"<td>{_cell(r.speed_spearman)}</td><td>{_dominant(r.dominant_agree, r.dominant_counted)}</td></tr>"
        )
    figures = ""
    if out_dir is not None:
        for mode in ("image", "layer"):
            rel = f"{image_subdir}/verification_{mode}.png"
            if plot_first_layer(result, mode, Path(out_dir) / rel) is not None:
                figures += (
                    f'<figure><img src="{html.escape(rel)}" alt="verification scatter, {mode} mode">'
                    f"<figcaption>First layer, {mode} mode: measured against predicted motion.</figcaption></figure>"
                )
    overall = _overall(summary)
    return (
        '<section id="verification"><h2>Do channels prefer the motion their parameters say?</h2>'
        f"<p>{html.escape(intro)}</p><p>{html.escape(overall)}</p>"
        f'<table class="summary">{head}{"".join(rows)}</table>{figures}</section>'
    )


def _dominant(agree: int, counted: int) -> str:
    return "–" if counted < 0 else f"{agree} / {counted}"


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


_PAGE_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
    "td:nth-child(-n+3),th{text-align:left}img{max-width:100%}figure{margin:1em 0}"
)


def verification_page(result: VerificationResult, out_dir: str | os.PathLike[str]) -> Path:
    """A standalone ``verification.html`` (the report section plus a title) with its images, in ``out_dir``."""
    out = Path(out_dir)
    section = verification_section(result, out, "images")
    title = html.escape(str(result.config.get("run", "model")))
    text = (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>conv3t verify — {title}</title>\n<style>{_PAGE_CSS}</style>\n</head>\n<body>\n"
        f"<h1>Verification of {title}</h1>\n{section}\n"
        f"<footer>Written by <code>conv3t verify</code>; measured in {result.seconds:.0f} s.</footer>\n"
        "</body>\n</html>\n"
    )
    path = out / "verification.html"
    atomic_write(path, text.encode())
    return path
