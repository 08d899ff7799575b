"""Figures of the temporal parameters: per channel (paper Fig. 3, right) and per model (Figs. 4 and 5).

Public API::

    plot_channel(table: DataFrame, layer: str, channel: int, pixels: str = "image", title: str | None = None)
        -> Figure
    plot_distributions(source: nn.Module | DataFrame, units: str = "human", bins: int = 41,
                       title: str | None = None) -> Figure
    plot_distribution_grid(panels: Mapping[tuple[str, str], nn.Module | DataFrame], units: str = "human",
                           bins: int = 41) -> Figure
    distribution_values(source: nn.Module | DataFrame, units: str = "human") -> dict[str, numpy.ndarray]
    save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> pathlib.Path

``table`` is :func:`conv3t.explain.temporal_parameters` output; ``source`` a model or such a table. Figures are
plain :class:`matplotlib.figure.Figure` objects rendered with the Agg canvas; pyplot is never used, so no
global figure registry holds them and nothing needs closing (they are freed with their last reference).

Units. ``"human"`` (default): zoom as the log2 of the content's size factor per step (``log2(1/|s|)``: +1 =
doubles, positive = content grows; log units so that a few near-zero scales cannot stretch the axis), rotation
in degrees per step, clockwise positive, translation as the content motion of the kernel centre in kernel pixels
per step (x right, y down; the y axis of 2D plots points down as on screen). ``"raw"``: the paper's axes, ``s``,
``-r`` (radians, clockwise positive) and the raw ``t_x``, ``t_y`` (``affine_grid`` units, sign of the sampling offset).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from PIL import Image
from torch import nn

from conv3t.explain.methods.filters import filter_gif_frames
from conv3t.files import atomic_open
from conv3t.readout import temporal_parameters

__all__ = [
    "distribution_values",
    "plot_channel",
    "plot_distribution_grid",
    "plot_distributions",
    "save_figure",
    "save_filter_gif",
    "save_gif",
]

_FORMATS = {".png", ".svg", ".pdf"}
_UNITS = ("human", "raw")
_LABELS = {
    "human": (
        "zoom per step (log₂ size factor: +1 = doubles)",
        "rotation per step (° clockwise)",
        "x motion (kernel px)",
        "y motion (kernel px)",
    ),
    "raw": ("scale s", "−r (rad, clockwise +)", "t_x", "t_y"),
}
START_COLOR = "tab:blue"
END_COLOR = "tab:red"


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Write ``fig`` atomically; the format follows the extension (``.png``, ``.svg``, ``.pdf``).

    A path without extension gets ``.png``. Returns the written path. Pyplot-managed figures are closed
    afterwards so they do not accumulate.
    """
    target = Path(path)
    if target.suffix == "":
        target = target.with_suffix(".png")
    if target.suffix.lower() not in _FORMATS:
        raise ValueError(f"path {str(path)!r}: unsupported figure format {target.suffix!r}; use .png, .svg or .pdf")
    with atomic_open(target, fsync=False) as handle:
        fig.savefig(handle, format=target.suffix.lower()[1:], dpi=dpi)
    if getattr(fig.canvas, "manager", None) is not None:  # created through pyplot
        import matplotlib.pyplot as plt

        plt.close(fig)
    return target


def _table(source: nn.Module | pd.DataFrame) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source
    if isinstance(source, nn.Module):
        return temporal_parameters(source, input_size=None)
    raise TypeError(f"expected an nn.Module or a temporal_parameters() DataFrame, got {type(source).__name__}")


def _check_units(units: str) -> None:
    if units not in _UNITS:
        raise ValueError(f"units must be one of {_UNITS}, got {units!r}")


def plot_channel(
    table: pd.DataFrame,
    layer: str,
    channel: int,
    pixels: str = "image",
    title: str | None = None,
) -> Figure:
    """The four parameters of one channel over its steps and the trajectory of its content.

    Args:
        table: ``temporal_parameters`` output.
        layer, channel: which channel.
        pixels: ``"image"`` (input-image pixels; falls back to kernel pixels if the table has no strides) or
            ``"kernel"``.
        title: figure title; default ``"<layer> channel <channel>"``.

    Returns:
        Figure with five panels: scale ``s`` per step (1 = identity, > 1 = content shrinks), rotation
        (degrees, clockwise positive), x and y motion of the content per step (pixels, right/down positive),
        and the trajectory: position of the content relative to slice 0 after each step, blue marker at the
        start, red at the end, y axis pointing down.
    """
    if pixels not in ("image", "kernel"):
        raise ValueError(f"pixels must be 'image' or 'kernel', got {pixels!r}")
    rows = table[(table["layer"] == layer) & (table["channel"] == channel)].sort_values("step")
    if rows.empty:
        raise ValueError(f"no rows for layer {layer!r} channel {channel} in the table (is it a Conv3T with D > 1?)")
    use_image = pixels == "image" and bool(np.isfinite(rows["dx_image_px"]).all())
    suffix = "image_px" if use_image else "kernel_px"
    unit = "input px" if use_image else "kernel px"
    steps = rows["step"].to_numpy() + 1  # step t produces slice t+1
    fig = Figure(figsize=(15.0, 2.9), layout="constrained")
    axes = fig.subplots(1, 5)
    series = (
        (rows["scale"], "scale s", 1.0),
        (rows["rotation_cw_deg"], "rotation (° clockwise)", 0.0),
        (rows[f"dx_{suffix}"], f"x motion ({unit}, right +)", 0.0),
        (rows[f"dy_{suffix}"], f"y motion ({unit}, down +)", 0.0),
    )
    for ax, (values, label, identity) in zip(axes[:4], series):
        ax.axhline(identity, color="0.7", lw=0.8, ls="--")
        ax.plot(steps, values.to_numpy(), marker="o", color="0.15")
        ax.set_xlabel("slice")
        ax.set_ylabel(label)
        ax.set_xticks(steps)
        _pad_limits(ax, values.to_numpy(), identity)
    xs = np.concatenate([[0.0], rows[f"traj_x_{suffix}"].to_numpy()])
    ys = np.concatenate([[0.0], rows[f"traj_y_{suffix}"].to_numpy()])
    ax = axes[4]
    ax.plot(xs, ys, color="0.4", lw=1.0)
    ax.scatter(xs[1:-1], ys[1:-1], color="0.4", s=12, zorder=3)
    ax.scatter(xs[:1], ys[:1], color=START_COLOR, s=50, zorder=4, label="start")
    ax.scatter(xs[-1:], ys[-1:], color=END_COLOR, s=50, zorder=4, label="end")
    span = max(float(np.abs(xs).max()), float(np.abs(ys).max()), 1e-3) * 1.2
    ax.set_xlim(-span, span)
    ax.set_ylim(span, -span)  # y down, as on screen
    ax.set_aspect("equal")
    ax.axhline(0, color="0.85", lw=0.6)
    ax.axvline(0, color="0.85", lw=0.6)
    ax.set_xlabel(f"x ({unit})")
    ax.set_ylabel(f"y ({unit}, down +)")
    ax.legend(loc="best", fontsize="small")
    fig.suptitle(title if title is not None else f"{layer} channel {channel}")
    return fig


def _pad_limits(ax: Axes, values: np.ndarray, identity: float) -> None:
    """Keep the identity line visible and avoid a zero-height axis for constant series."""
    low = min(float(values.min()), identity)
    high = max(float(values.max()), identity)
    pad = max((high - low) * 0.1, 1e-3 * max(1.0, abs(identity)))
    ax.set_ylim(low - pad, high + pad)


def distribution_values(source: nn.Module | pd.DataFrame, units: str = "human") -> dict[str, np.ndarray]:
    """The values the distribution plots show, over all Conv3T channels and steps.

    Returns:
        ``{"scale", "rotation", "x", "y"}`` -> 1D float arrays, in the chosen ``units`` (module docstring).
    """
    _check_units(units)
    table = _table(source)
    if units == "human":
        # zoom in log units: a few wild scales (|s| near 0) would otherwise stretch a percent axis to 10^4
        return {
            "scale": np.log2(1.0 + table["zoom_percent"].to_numpy(float) / 100.0),
            "rotation": table["rotation_cw_deg"].to_numpy(float),
            "x": table["dx_kernel_px"].to_numpy(float),
            "y": table["dy_kernel_px"].to_numpy(float),
        }
    return {
        "scale": table["scale"].to_numpy(float),
        "rotation": -table["rotation"].to_numpy(float),
        "x": table["translation_x"].to_numpy(float),
        "y": table["translation_y"].to_numpy(float),
    }


def _limits(all_values: list[dict[str, np.ndarray]], units: str) -> dict[str, tuple[float, float]]:
    """Shared, symmetric ranges: the 99.5th percentile of the distance from identity over all sources."""
    centre = {"scale": 1.0 if units == "raw" else 0.0, "rotation": 0.0, "x": 0.0, "y": 0.0}
    limits = {}
    for key in ("scale", "rotation"):
        deviations = np.concatenate([np.abs(v[key] - centre[key]) for v in all_values] + [np.zeros(1)])
        half = max(float(np.percentile(deviations, 99.5)) * 1.05, 1e-6)
        limits[key] = (centre[key] - half, centre[key] + half)
    xy = np.concatenate([np.abs(np.concatenate([v["x"], v["y"]])) for v in all_values] + [np.zeros(1)])
    half = max(float(np.percentile(xy, 99.5)) * 1.05, 1e-6)
    limits["x"] = limits["y"] = (-half, half)
    return limits


def _histograms(
    values: dict[str, np.ndarray], limits: dict[str, tuple[float, float]], bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fractions per bin (values outside the limits are clipped into the edge bins)."""
    n = max(values["scale"].size, 1)

    def clip(key: str) -> np.ndarray:
        return np.clip(values[key], *limits[key])

    scale, _ = np.histogram(clip("scale"), bins=bins, range=limits["scale"])
    rotation, _ = np.histogram(clip("rotation"), bins=bins, range=limits["rotation"])
    joint, _, _ = np.histogram2d(clip("x"), clip("y"), bins=bins, range=(limits["x"], limits["y"]))
    return scale / n, rotation / n, joint / n


def _draw_panel(
    axes: list[Axes],
    values: dict[str, np.ndarray],
    limits: dict[str, tuple[float, float]],
    bins: int,
    units: str,
    ymax: tuple[float, float],
    norm: Normalize,
) -> object:
    scale, rotation, joint = _histograms(values, limits, bins)
    labels = _LABELS[units]
    for ax, counts, key, label, top in (
        (axes[0], scale, "scale", labels[0], ymax[0]),
        (axes[1], rotation, "rotation", labels[1], ymax[1]),
    ):
        edges = np.linspace(*limits[key], bins + 1)
        ax.stairs(counts, edges, fill=True, color="tab:gray")
        ax.set_xlim(*limits[key])
        ax.set_ylim(0, top * 1.05 if top > 0 else 1)
        ax.set_xlabel(label)
        ax.set_ylabel("fraction")
    ax = axes[2]
    mesh = ax.pcolormesh(
        np.linspace(*limits["x"], bins + 1),
        np.linspace(*limits["y"], bins + 1),
        joint.T,
        cmap="viridis",
        norm=norm,
    )
    ax.set_xlim(*limits["x"])
    if units == "human":
        ax.set_ylim(limits["y"][1], limits["y"][0])  # content motion: y down, as on screen
    else:
        ax.set_ylim(*limits["y"])
    ax.set_aspect("equal")
    ax.set_xlabel(labels[2])
    ax.set_ylabel(labels[3])
    return mesh


def plot_distributions(
    source: nn.Module | pd.DataFrame,
    units: str = "human",
    bins: int = 41,
    title: str | None = None,
) -> Figure:
    """Scale histogram, rotation histogram and joint translation histogram of one model (Fig. 4 panel).

    Histograms show the fraction of all (channel, step) values per bin, so models of different sizes compare;
    ranges are symmetric about the identity and cover the 99.5th percentile (values beyond land in the edge
    bins). An odd ``bins`` puts the identity in the middle of a bin.
    """
    return plot_distribution_grid({(title or "", ""): source}, units=units, bins=bins)


def plot_distribution_grid(
    panels: Mapping[tuple[str, str], nn.Module | pd.DataFrame],
    units: str = "human",
    bins: int = 41,
) -> Figure:
    """Models x datasets grid of distribution panels with identical axes everywhere (Figs. 4 and 5).

    Args:
        panels: ``{(model name, dataset name): model or temporal_parameters table}``; rows follow the first
            appearance of each model name, columns of each dataset name; missing pairs stay empty.
        units: ``"human"`` or ``"raw"`` (module docstring).
        bins: histogram bins per axis.

    Returns:
        Figure with ``rows x (3 * columns)`` axes; every scale histogram shares one x range and one y range,
        likewise rotation, and every joint translation histogram shares its ranges and colour scale.
    """
    _check_units(units)
    if not isinstance(panels, Mapping) or not panels:
        raise ValueError("panels must be a non-empty mapping {(model, dataset): model or table}")
    if bins < 2:
        raise ValueError(f"bins must be >= 2, got {bins}")
    for key in panels:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"panels keys must be (model, dataset) pairs, got {key!r}")
    values = {key: distribution_values(source, units) for key, source in panels.items()}
    models = list(dict.fromkeys(k[0] for k in panels))
    datasets = list(dict.fromkeys(k[1] for k in panels))
    limits = _limits(list(values.values()), units)
    hists = {key: _histograms(v, limits, bins) for key, v in values.items()}
    ymax = (max(float(h[0].max()) for h in hists.values()), max(float(h[1].max()) for h in hists.values()))
    norm = Normalize(vmin=0.0, vmax=max(max(float(h[2].max()) for h in hists.values()), 1e-12))
    fig = Figure(figsize=(3.2 * 3 * len(datasets) + 0.8, 3.0 * len(models) + 0.4), layout="constrained")
    axes = np.asarray(fig.subplots(len(models), 3 * len(datasets), squeeze=False))
    mesh = None
    for i, model in enumerate(models):
        for j, dataset in enumerate(datasets):
            panel_axes = list(axes[i, 3 * j : 3 * j + 3])
            if (model, dataset) not in values:
                for ax in panel_axes:
                    ax.set_axis_off()
                panel_axes[1].text(0.5, 0.5, "no run", ha="center", va="center", transform=panel_axes[1].transAxes)
                continue
            mesh = _draw_panel(panel_axes, values[(model, dataset)], limits, bins, units, ymax, norm)
            heading = " · ".join(part for part in (model, dataset) if part)
            if heading:
                panel_axes[1].set_title(heading)
    if mesh is not None:
        fig.colorbar(mesh, ax=axes.ravel().tolist(), label="fraction of (channel, step) pairs", shrink=0.8)
    return fig


def save_filter_gif(
    model: nn.Module,
    channel: int,
    path: str | os.PathLike,
    layer: str | None = None,
    upscale: int = 12,
    frame_ms: int = 300,
) -> Path:
    """Write the animated GIF of :func:`filter_gif_frames` atomically (loops forever). Returns the path."""
    return save_gif(filter_gif_frames(model, channel, layer, upscale), path, frame_ms)


def save_gif(frames: Sequence[Image.Image], path: str | os.PathLike, frame_ms: int = 300) -> Path:
    """Write ``frames`` as an animated GIF atomically (loops forever, ``frame_ms`` per frame). Returns the path."""
    if frame_ms < 10:
        raise ValueError(f"frame_ms must be at least 10 (GIF timing is in 10 ms units), got {frame_ms}")
    target = Path(path)
    if target.suffix.lower() != ".gif":
        raise ValueError(f"path {str(path)!r} must end in .gif")
    with atomic_open(target, fsync=False) as handle:
        frames[0].save(handle, format="GIF", save_all=True, append_images=list(frames[1:]), duration=frame_ms, loop=0)
    return target
