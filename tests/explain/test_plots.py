"""Figures show the table's values, share axes across the grid, and save atomically in the asked format."""

from __future__ import annotations

import math
import stat

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from conv3t import Conv3T
from conv3t.explain import (
    distribution_values,
    plot_channel,
    plot_distribution_grid,
    plot_distributions,
    save_figure,
    temporal_parameters,
)


def small_model(seed: int, spread: float) -> nn.Module:
    torch.manual_seed(seed)
    model = nn.Sequential(Conv3T(3, 4, (4, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2)), Conv3T(4, 6, 3, padding=1))
    with torch.no_grad():
        for layer in (model[0], model[1]):
            layer.scale.add_(spread * torch.randn_like(layer.scale))
            layer.rotation.normal_(0.0, spread)
            layer.translation_x.normal_(0.0, spread)
            layer.translation_y.normal_(0.0, spread)
    return model


def test_channel_figure_plots_the_table_values():
    model = small_model(0, 0.05)
    with torch.no_grad():
        model[1].translation_x[2] = torch.tensor([-1.0, 0.0])  # 1 kernel px right = 2 image px, then still
        model[1].rotation[2] = torch.tensor([0.0, math.pi / 2])  # then a quarter turn counter-clockwise
        model[1].scale[2] = 1.0
        model[1].translation_y[2] = 0.0
    table = temporal_parameters(model, input_size=(8, 16, 16))
    fig = plot_channel(table, "1", 2)
    assert isinstance(fig, Figure)
    axes = fig.axes
    assert len(axes) == 5
    rows = table[(table["layer"] == "1") & (table["channel"] == 2)]
    np.testing.assert_allclose(axes[0].lines[-1].get_ydata(), rows["scale"])
    np.testing.assert_allclose(axes[1].lines[-1].get_ydata(), [0.0, -90.0], atol=1e-5)  # clockwise positive
    np.testing.assert_allclose(axes[2].lines[-1].get_ydata(), [2.0, 0.0], atol=1e-6)  # image px: stride 2
    assert "input px" in axes[2].get_ylabel()
    path = axes[4].lines[0].get_xydata()
    np.testing.assert_allclose(path, [[0, 0], [2, 0], [0, -2]], atol=1e-5)  # right, then turned up
    start, end = axes[4].collections[1], axes[4].collections[2]
    np.testing.assert_allclose(start.get_offsets(), [[0, 0]])
    np.testing.assert_allclose(end.get_offsets(), [[0, -2]], atol=1e-5)
    assert matplotlib.colors.same_color(start.get_facecolor()[0], "tab:blue")
    assert matplotlib.colors.same_color(end.get_facecolor()[0], "tab:red")
    bottom, top = axes[4].get_ylim()
    assert bottom > top  # y points down as on screen
    kernel = plot_channel(table, "1", 2, pixels="kernel")
    np.testing.assert_allclose(kernel.axes[2].lines[-1].get_ydata(), [1.0, 0.0], atol=1e-6)
    no_strides = plot_channel(temporal_parameters(model, input_size=None), "1", 2)
    assert "kernel px" in no_strides.axes[2].get_ylabel()
    with pytest.raises(ValueError, match="no rows for layer"):
        plot_channel(table, "1", 99)


def test_grid_has_identical_axes_and_fractions_that_match_numpy():
    models = {("net", "jester"): small_model(0, 0.08), ("net", "ucf"): small_model(1, 0.01)}
    models[("other", "jester")] = temporal_parameters(small_model(2, 0.03), input_size=None)
    bins = 11
    fig = plot_distribution_grid(models, bins=bins)
    grid = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(grid) == 2 * 3 * 2
    scale_axes = [grid[0], grid[3], grid[6]]
    rotation_axes = [grid[1], grid[4], grid[7]]
    joint_axes = [grid[2], grid[5], grid[8]]
    for group in (scale_axes, rotation_axes, joint_axes):
        assert len({ax.get_xlim() for ax in group}) == 1
        assert len({ax.get_ylim() for ax in group}) == 1
    assert not any(ax.axison for ax in grid[9:12])  # ("other", "ucf") has no run
    meshes = [ax.collections[0] for ax in joint_axes]
    assert len({(m.norm.vmin, m.norm.vmax) for m in meshes}) == 1
    # the wide model's scale histogram: fraction of values per bin, outliers clipped into the edge bins
    values = distribution_values(models[("net", "jester")])
    lo, hi = scale_axes[0].get_xlim()
    expected, _ = np.histogram(np.clip(values["scale"], lo, hi), bins=bins, range=(lo, hi))
    heights = scale_axes[0].patches[0].get_data()[0]
    np.testing.assert_allclose(heights, expected / values["scale"].size)
    assert heights.sum() == pytest.approx(1.0)
    assert meshes[0].get_array().sum() == pytest.approx(1.0)


def test_distribution_units():
    model = small_model(3, 0.05)
    table = temporal_parameters(model, input_size=None)
    human = distribution_values(table)
    raw = distribution_values(model, units="raw")
    np.testing.assert_allclose(human["scale"], np.log2(1 / table["scale"].abs()), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(human["rotation"], -np.degrees(table["rotation"]))
    np.testing.assert_allclose(human["x"], table["dx_kernel_px"])
    np.testing.assert_allclose(raw["scale"], table["scale"])
    np.testing.assert_allclose(raw["rotation"], -table["rotation"])
    np.testing.assert_allclose(raw["y"], table["translation_y"])
    fig = plot_distributions(model, units="raw", bins=5, title="net")
    assert len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"]) == 3
    with pytest.raises(ValueError, match="units"):
        distribution_values(model, units="pixels")
    with pytest.raises(ValueError, match="pairs"):
        plot_distribution_grid({"net": model})  # type: ignore[dict-item]


def test_save_figure_formats_atomically(tmp_path):
    fig = plot_distributions(small_model(4, 0.02), bins=5)
    png = save_figure(fig, tmp_path / "dist", dpi=40)
    assert png.name == "dist.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(png.stat().st_mode) == 0o644
    svg = save_figure(fig, tmp_path / "sub" / "dist.svg")
    assert b"<svg" in svg.read_bytes()[:2000]
    pdf = save_figure(fig, tmp_path / "dist.pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(ValueError, match=r"\.gif"):
        save_figure(fig, tmp_path / "dist.gif")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dist.pdf", "dist.png", "dist.svg", "sub"]


def test_figures_stay_out_of_pyplot():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    plot_distributions(small_model(5, 0.02), bins=5)
    assert plt.get_fignums() == before


def test_one_wild_zoom_does_not_stretch_the_zoom_axis():
    rng = np.random.default_rng(0)
    n = 400
    zoom = rng.normal(0.0, 3.0, n)  # a few percent per step
    zoom[0] = 20_000.0  # one near-zero scale: the content grows 200-fold
    table = pd.DataFrame(
        {"zoom_percent": zoom, "rotation_cw_deg": rng.normal(0, 2, n), "dx_kernel_px": rng.normal(0, 0.3, n)}
    ).assign(dy_kernel_px=lambda t: -t["dx_kernel_px"])
    fig = plot_distributions(table, bins=11)
    lo, hi = fig.axes[0].get_xlim()
    assert hi < 0.2 and lo == pytest.approx(-hi)  # log2 units: about +-9 %, not +-20,000 %
    assert distribution_values(table)["scale"][0] == pytest.approx(np.log2(201.0))
