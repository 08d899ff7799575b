"""The motion clips are rendered one motion at a time, in place: bit for bit the clips of the earlier renderer,
which computed every motion's sampling positions as one ``(M, T, H, W, 2)`` array (kept here as the oracle)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conv3t.verify.energies import StimulusSet
from conv3t.verify.stimuli import Motion, motion_clips, noise_texture, source_positions, standard_stimuli


def _reference_positions(motions: list[Motion], frames: int, height: int, width: int) -> torch.Tensor:
    """The earlier ``source_positions``: every motion at once, rotation and zoom applied to translations too."""
    f64 = {"dtype": torch.float64}
    ys = torch.arange(height, **f64) - (height - 1) / 2
    xs = torch.arange(width, **f64) - (width - 1) / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    t = torch.arange(frames, **f64)[None, :, None, None] - (frames - 1) / 2
    vx = torch.tensor([m.vx for m in motions], **f64)[:, None, None, None]
    vy = torch.tensor([m.vy for m in motions], **f64)[:, None, None, None]
    w = torch.tensor([math.radians(m.rotation_cw_deg) for m in motions], **f64)[:, None, None, None]
    z = torch.tensor([m.zoom for m in motions], **f64)[:, None, None, None]
    px, py = gx - vx * t, gy - vy * t
    angle = -w * t
    cos, sin, inv = torch.cos(angle), torch.sin(angle), z ** (-t)
    return torch.stack((inv * (cos * px - sin * py), inv * (sin * px + cos * py)), dim=-1)


def _reference_clips(texture: torch.Tensor, motions: list[Motion], frames: int, size: tuple[int, int], offset):  # type: ignore[no-untyped-def]
    h, w = size
    s = texture.shape[-1]
    q = _reference_positions(motions, frames, h, w)
    q = torch.remainder(q + torch.tensor(offset, dtype=q.dtype) + (s - 1) / 2, s)
    padded = F.pad(texture[None].float(), (1, 1, 1, 1), mode="circular")
    grid = (2 * (q + 1) / (s + 1) - 1).to(torch.float32)
    out = F.grid_sample(padded, grid.reshape(1, len(motions) * frames * h, w, 2), mode="bilinear", align_corners=True)
    return out.reshape(texture.shape[0], len(motions), frames, h, w).transpose(0, 1).contiguous()


MIXED = [Motion("mixed", vx=0.7, vy=-1.3, rotation_cw_deg=3.0, zoom=1.05), Motion("translation", vx=-2.5)]


@pytest.mark.parametrize(
    ("frames", "size", "offset"),
    [(8, (17, 24), (0.0, 0.0)), (7, (12, 12), (3.37, -250.9)), (5, (9, 31), (191.25, 64.5))],
)
def test_clips_are_bit_identical_to_the_whole_set_renderer(frames: int, size: tuple[int, int], offset) -> None:  # type: ignore[no-untyped-def]
    motions = standard_stimuli() + MIXED  # translations take the fast path, the rest the full inverse map
    texture = noise_texture(3, 64, generator=torch.Generator().manual_seed(1))
    got = motion_clips(texture, motions, frames, size, offset=offset)
    assert torch.equal(got, _reference_clips(texture, motions, frames, size, offset))
    assert torch.equal(source_positions(motions, frames, *size), _reference_positions(motions, frames, *size))


def test_normalised_clips_are_bit_identical() -> None:
    """:meth:`StimulusSet.render` normalises in place: the same numbers as the expression it replaces."""
    motions = tuple(standard_stimuli(4, (1.0,), (5.0,), (1.1,)))
    texture = noise_texture(3, 64, generator=torch.Generator().manual_seed(2))
    offsets = torch.tensor([[3.5, 9.25], [40.0, -7.5]])
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    stimuli = StimulusSet(texture, offsets, motions, 6, (10, 14), mean=mean, std=std)
    m = len(motions)
    got = stimuli.render(m - 3, 2 * m)  # across the views' boundary
    raw = torch.cat([_reference_clips(texture, list(motions), 6, (10, 14), tuple(o.tolist())) for o in offsets])
    mean_t, std_t = (torch.tensor(v).view(1, -1, 1, 1, 1) for v in (mean, std))
    assert torch.equal(got, (((0.5 + 0.18 * raw).clamp(0.0, 1.0) - mean_t) / std_t)[m - 3 : 2 * m])
