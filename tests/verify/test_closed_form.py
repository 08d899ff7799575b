"""Layer-mode energies in closed form against the sampled measurement they are the expectation of.

The oracle is the production estimator (:class:`conv3t.verify.energies.EnergyAccumulator` on clips rendered by
:class:`~conv3t.verify.energies.StimulusSet`). With one drawn texture and ``V`` random offsets, the sampled
energies converge to the closed form computed from *that texture's* autocorrelation, with an error that
shrinks like ``1 / sqrt(V)``; over independently drawn textures they converge to the closed form of the
noise spectrum (what ``verify_model`` uses).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from conv3t import Conv3T
from conv3t.verify.closed_form import PatchGeometry, _Generic, layer_energies, patch_covariances
from conv3t.verify.covariance import TextureCovariance, autocorrelation, noise_autocorrelation
from conv3t.verify.energies import EnergyAccumulator, StimulusSet
from conv3t.verify.stimuli import Motion, noise_texture, source_positions

MOTIONS = (
    Motion("static"),
    Motion("translation", vx=2.0 * math.cos(0.5), vy=2.0 * math.sin(0.5)),
    Motion("rotation", rotation_cw_deg=10.0),
    Motion("zoom", zoom=1.12),
)


def _moving(layer: nn.Module, seed: int) -> nn.Module:
    """Random weights and, for a Conv3T, random temporal parameters (so responses differ between motions)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=g))
        if isinstance(layer, Conv3T):
            steps = layer.scale.shape
            layer.scale.copy_(1 + 0.1 * torch.randn(steps, generator=g))
            layer.rotation.copy_(0.2 * torch.randn(steps, generator=g))
            layer.translation_x.copy_(0.3 * torch.randn(steps, generator=g))
            layer.translation_y.copy_(0.3 * torch.randn(steps, generator=g))
    return layer.eval()


def _kernel(layer: nn.Module) -> torch.Tensor:
    return layer.kernel() if isinstance(layer, Conv3T) else layer.weight


def _clip(layer: nn.Module) -> tuple[int, int, int]:
    """The layer-mode clip of :mod:`conv3t.verify.network`: ``D * dt + 6`` frames of ``k * d + 8`` pixels."""
    frames = layer.kernel_size[0] * layer.dilation[0] + 6
    side = max(layer.kernel_size[1] * layer.dilation[1], layer.kernel_size[2] * layer.dilation[2]) + 8
    return frames, side, side


def _sampled(layer: nn.Module, texture: torch.Tensor, offsets: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per view: ``(V, M, C)`` whole-map energies and centre-window mean squares (``EnergyAccumulator.reduce``)."""
    frames, side, _ = _clip(layer)
    stimuli = StimulusSet(texture, offsets, MOTIONS, frames, side)
    energy, square = [], []
    with torch.no_grad():
        for lo in range(0, len(stimuli), 256):
            e, mean, m2, n = EnergyAccumulator.reduce(layer(stimuli.render(lo, min(lo + 256, len(stimuli)))), 2)
            bias = 0.0 if layer.bias is None else layer.bias.double()
            energy.append(e)
            square.append(m2 / n + (mean - bias).square())  # mean square of the bias-free window responses
    shape = (len(offsets), len(MOTIONS), -1)
    return torch.cat(energy).reshape(shape).numpy(), torch.cat(square).reshape(shape).numpy()


GEOMETRIES = {
    "kernel 1": lambda: nn.Conv3d(1, 3, (3, 1, 1), padding=(1, 0, 0)),
    "kernel 3": lambda: Conv3T(1, 3, 3, padding=1),
    "kernel 5": lambda: Conv3T(1, 3, (3, 5, 5), padding=(1, 2, 2)),
    "kernel 7": lambda: Conv3T(1, 3, (3, 7, 7), padding=(1, 3, 3)),
    "dilation": lambda: Conv3T(1, 3, 3, padding=(1, 2, 2), dilation=(1, 2, 2)),
    "stride": lambda: Conv3T(1, 3, 3, padding=1, stride=2),
    "replicate padding": lambda: Conv3T(1, 3, 3, padding=1, padding_mode="replicate"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_sampled_energies_converge_to_the_closed_form(name: str) -> None:
    layer = _moving(GEOMETRIES[name](), seed=len(name))
    g = torch.Generator().manual_seed(7)
    texture = noise_texture(1, size=256, shared=0.0, generator=g)
    covariance = TextureCovariance.from_autocorrelation(autocorrelation(texture))
    exact = layer_energies(_kernel(layer), PatchGeometry.of_layer(layer, _clip(layer)), MOTIONS, covariance).numpy()
    errors = {}
    for views in (32, 512):
        energy, square = _sampled(layer, texture, torch.rand(views, 2, generator=g) * 256)
        for k, per_view in enumerate((energy, square)):
            estimate = per_view.mean(axis=0)  # (M, C)
            se = per_view.std(axis=0, ddof=1) / math.sqrt(views)
            z = (estimate - exact[..., k]) / se
            # within sampling error (which shrinks like 1 / sqrt(views)) of the exact value, for every motion
            # (translation, rotation, zoom) and channel, and not systematically off (root mean square of z)
            assert np.abs(z).max() < 5.0, (name, views, k, z)
            assert np.sqrt(np.mean(z**2)) < 2.5, (name, views, k, z)
            errors[views, k] = np.sqrt(np.mean(((estimate - exact[..., k]) / exact[..., k]) ** 2))
    for k in (0, 1):
        # 16x the views: the error shrinks (~4x expected); a bias of the closed form would stay
        assert errors[32, k] / errors[512, k] > 1.5, (name, k, errors)


@pytest.mark.slow
def test_independent_channels_share_one_covariance() -> None:
    """Three input channels drawn independently (``shared = 0``): over fresh textures the sampled energies
    converge to the closed form of the noise spectrum, whose one covariance serves every channel."""
    layer = _moving(Conv3T(3, 4, 3, padding=1), seed=3)
    exact = layer_energies(
        layer.kernel(), PatchGeometry.of_layer(layer, _clip(layer)), MOTIONS, TextureCovariance.of_noise(256)
    ).numpy()
    g = torch.Generator().manual_seed(11)
    parts = [
        _sampled(layer, noise_texture(3, 256, shared=0.0, generator=g), torch.rand(4, 2, generator=g) * 256)
        for _ in range(64)
    ]
    for k in (0, 1):
        per_view = np.concatenate([p[k] for p in parts])
        z = (per_view.mean(axis=0) - exact[..., k]) / (per_view.std(axis=0, ddof=1) / math.sqrt(len(per_view)))
        assert np.abs(z).max() < 5.0, z


def test_noise_autocorrelation_is_the_average_over_drawn_textures() -> None:
    drawn = noise_texture(400, size=64, shared=0.0, generator=torch.Generator().manual_seed(0))
    expected = noise_autocorrelation(64)
    assert expected[0, 0] == pytest.approx(1.0)
    assert torch.allclose(autocorrelation(drawn), expected, atol=0.02)
    # independent channels: their correlation is zero on average (0.7 with the image-mode default shared = 0.7)
    assert abs(float((drawn[0::2] * drawn[1::2]).mean())) < 0.02
    mixed = noise_texture(400, size=64, generator=torch.Generator().manual_seed(0))
    assert float((mixed[0::2] * mixed[1::2]).mean()) == pytest.approx(0.7, abs=0.05)


def test_separable_and_direct_covariances_agree() -> None:
    covariance = TextureCovariance.of_noise(256)
    assert len(covariance.weights) == 1  # a separable Gaussian spectrum (its DC term is the constant)
    dx, dy = torch.rand(500, dtype=torch.float64) * 40 - 20, torch.rand(500, dtype=torch.float64) * 40 - 20
    assert torch.allclose(covariance(dx, dy), covariance._direct(dx, dy), atol=1e-12)
    # symmetric, and at zero lag the variance of a bilinearly sampled pixel (below the texture's 1)
    assert torch.allclose(covariance(dx, dy), covariance(-dx, -dy), atol=1e-12)
    assert 0.5 < float(covariance(torch.zeros(1, dtype=torch.float64), torch.zeros(1, dtype=torch.float64))) < 1.0


def test_shortcuts_equal_the_pixel_covariance_path() -> None:
    """Box sums (translations) and time-flipped reverses (rotation, zoom) give what the clip's full pixel
    covariance gives, to rounding."""
    layer = Conv3T(1, 2, 3, padding=1, stride=(2, 1, 1))
    geometry = PatchGeometry.of_layer(layer, (9, 11, 11))
    reverse = (Motion("rotation", rotation_cw_deg=-10.0), Motion("zoom", zoom=1 / 1.12))
    motions = (*MOTIONS, Motion("translation", vx=-2.0 * math.cos(0.5), vy=-2.0 * math.sin(0.5)), *reverse)
    covariance = TextureCovariance.of_noise(256)
    fast = patch_covariances(geometry, motions, covariance)
    generic = _Generic(geometry, 2, 0.25)
    positions = source_positions(motions, 9, 11, 11).reshape(len(motions), -1, 2)
    for m in range(len(motions)):
        full, centre = generic(positions[m], covariance)
        assert torch.allclose(full, fast[0][m], atol=1e-12) and torch.allclose(centre, fast[1][m], atol=1e-12), m


def test_layer_energies_setting_is_checked() -> None:
    from conv3t.verify.network import VerifyConfig

    with pytest.raises(ValueError, match="layer_energies"):
        VerifyConfig(layer_energies="closed")
