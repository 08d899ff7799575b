"""Stimuli of known motion show that motion, and the tuning read-out finds it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conv3t.verify.stimuli import Motion, motion_clips, noise_texture, source_positions, standard_stimuli
from conv3t.verify.tuning import response_energy, tuning_table


@pytest.fixture(scope="module")
def texture() -> torch.Tensor:
    return noise_texture(2, 64, generator=torch.Generator().manual_seed(0))


def test_texture_is_standardised_and_smooth(texture: torch.Tensor) -> None:
    assert texture.shape == (2, 64, 64)
    torch.testing.assert_close(texture.mean(dim=(1, 2)), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(texture.std(dim=(1, 2)), torch.ones(2), atol=1e-4, rtol=0)
    # the Gaussian roll-off at 0.2 cycles/pixel leaves little energy in neighbour differences (white noise: 2)
    diff = (texture[:, :, 1:] - texture[:, :, :-1]).pow(2).mean()
    assert float(diff) < 1.0


def test_integer_translation_shifts_frames_by_whole_pixels(texture: torch.Tensor) -> None:
    clips = motion_clips(texture, [Motion("translation", vx=1.0), Motion("translation", vx=-2.0, vy=3.0)], 4, 16)
    assert clips.shape == (2, 2, 4, 16, 16)
    right, diag = clips[0], clips[1]
    torch.testing.assert_close(right[:, 1:, :, 1:], right[:, :-1, :, :-1], atol=1e-5, rtol=0)
    # content moves left 2 and down 3 per frame: frame t+1 at (y+3, x-2) shows frame t at (y, x)
    torch.testing.assert_close(diag[:, 1:, 3:, :-2], diag[:, :-1, :-3, 2:], atol=1e-5, rtol=0)


def test_rotation_is_clockwise_on_screen(texture: torch.Tensor) -> None:
    clip = motion_clips(texture, [Motion("rotation", rotation_cw_deg=90.0)], 3, 15)[0]
    # torch.rot90 with k=-1 over (H, W) turns an image clockwise as displayed (y down)
    torch.testing.assert_close(clip[:, 1], torch.rot90(clip[:, 0], k=-1, dims=(1, 2)), atol=1e-5, rtol=0)


def test_zoom_in_magnifies_about_the_centre(texture: torch.Tensor) -> None:
    clip = motion_clips(texture, [Motion("zoom", zoom=2.0)], 2, 17)[0]  # odd side: the centre is pixel 8
    # the content at centre + d in frame 0 is at centre + 2 d in frame 1
    for dy, dx in [(0, 0), (1, 2), (-3, 1), (4, -4)]:
        torch.testing.assert_close(clip[:, 1, 8 + 2 * dy, 8 + 2 * dx], clip[:, 0, 8 + dy, 8 + dx], atol=1e-5, rtol=0)


def test_opposite_motions_are_time_reversals(texture: torch.Tensor) -> None:
    pairs = [
        (Motion("translation", vx=0.7, vy=-1.3), Motion("translation", vx=-0.7, vy=1.3)),
        (Motion("rotation", rotation_cw_deg=7.0), Motion("rotation", rotation_cw_deg=-7.0)),
        (Motion("zoom", zoom=1.1), Motion("zoom", zoom=1 / 1.1)),
    ]
    for a, b in pairs:
        clips = motion_clips(texture, [a, b], 5, 12)
        torch.testing.assert_close(clips[0], clips[1].flip(1), atol=1e-4, rtol=0)


def _global_flow(clip: torch.Tensor) -> tuple[float, float]:
    """Least-squares (Lucas-Kanade over the whole clip) velocity in pixels per frame: an independent estimate."""
    x = clip.double().mean(dim=0)  # (T, H, W)
    mid = 0.5 * (x[1:] + x[:-1])
    gx = (mid[:, 1:-1, 2:] - mid[:, 1:-1, :-2]) / 2
    gy = (mid[:, 2:, 1:-1] - mid[:, :-2, 1:-1]) / 2
    gt = (x[1:] - x[:-1])[:, 1:-1, 1:-1]
    a = torch.tensor([[(gx * gx).sum(), (gx * gy).sum()], [(gx * gy).sum(), (gy * gy).sum()]])
    b = -torch.tensor([(gx * gt).sum(), (gy * gt).sum()])
    vx, vy = torch.linalg.solve(a, b).tolist()
    return vx, vy


@pytest.mark.parametrize(("vx", "vy"), [(0.4, 0.0), (-0.3, 0.25), (0.0, -0.5)])
def test_measured_flow_matches_the_set_velocity(vx: float, vy: float) -> None:
    tex = noise_texture(1, 128, highcut=0.08, generator=torch.Generator().manual_seed(1))
    clip = motion_clips(tex, [Motion("translation", vx=vx, vy=vy)], 6, 48)[0]
    mx, my = _global_flow(clip)
    assert math.hypot(mx - vx, my - vy) < 0.05


def test_standard_stimuli_layout() -> None:
    motions = standard_stimuli(directions=8, speeds=(1.0, 2.0), rotations=(5.0,), zooms=(1.1,))
    assert [m.kind for m in motions].count("static") == 1
    assert len(motions) == 1 + 16 + 2 + 2
    assert sorted({round(m.direction_deg) for m in motions if m.kind == "translation"}) == list(range(0, 360, 45))
    with pytest.raises(ValueError, match="directions"):
        standard_stimuli(directions=2)


def test_response_energy_crops_borders() -> None:
    out = torch.zeros(1, 1, 8, 8, 8)
    out[..., 0, :, :] = 100.0  # only the first time step (cut by the 25 % border) varies
    assert float(response_energy(out)[0, 0]) == 0.0
    out[..., 4, 4, 4] = 1.0
    expected = np.var(np.r_[1.0, np.zeros(4 * 4 * 4 - 1)])
    assert float(response_energy(out)[0, 0]) == pytest.approx(expected)


def test_tuning_table_reads_hand_made_energies() -> None:
    motions = standard_stimuli(directions=8, speeds=(1.0, 2.0), rotations=(5.0, 10.0), zooms=(1.1,))
    energy = np.ones((len(motions), 2))
    for i, m in enumerate(motions):
        if m.kind == "translation":
            # channel 0: a bump at 90 deg (down), speed 2; channel 1: flat
            energy[i, 0] += (m.speed == 2.0) * max(0.0, math.cos(math.radians(m.direction_deg - 90.0))) * 3
        if m.kind == "rotation":
            energy[i, 1] = 2.0 if m.rotation_cw_deg < 0 else 1.0  # channel 1 prefers counter-clockwise
        if m.kind == "zoom":
            energy[i, 0] = 1.5 if m.zoom > 1 else 0.5  # channel 0 prefers zoom in
    table = tuning_table(energy, motions)
    assert table.loc[0, "measured_direction_deg"] == pytest.approx(90.0)
    assert table.loc[0, "measured_speed"] == 2.0
    assert table.loc[0, "translation_index"] == pytest.approx((4.0 - 1.0) / (4.0 + 1.0))
    assert table.loc[0, "zoom_index"] == pytest.approx(0.5)
    assert table.loc[0, "measured_zoom"] == pytest.approx(1.1)
    assert table.loc[1, "translation_index"] == 0.0
    assert table.loc[1, "measured_speed"] == 0.0  # nothing beats the static clip
    assert table.loc[1, "rotation_index"] == pytest.approx(-1 / 3)
    assert table.loc[1, "measured_rotation_speed"] == 5.0  # the first magnitude at the maximum


def test_non_positive_zoom_is_refused_before_rendering() -> None:
    with pytest.raises(ValueError, match="zoom factors must be positive"):
        source_positions([Motion("zoom", zoom=0.0)], 3, 4, 4)
