"""Stimuli of known motion: a periodic noise texture translated, rotated or zoomed at a constant rate.

Convention (the project's): x to the right, y down, pixels with centres at integer coordinates and ``(0, 0)``
the top-left pixel. Frame ``t`` shows the texture transformed by ``u = t - (T-1)/2`` steps of one constant
motion about the frame centre ``c``: texture content at ``q`` is at

    p = c + z^u R(w u) (q - c) + v u

in frame ``t``, with ``v = (vx, vy)`` pixels per frame, ``w`` the rotation per frame (degrees, positive =
clockwise on screen, which with y down is the usual ``R(w) = [[cos w, -sin w], [sin w, cos w]]``) and ``z``
the zoom factor per frame (> 1 = content grows = zoom in). Frames are rendered by inverting this map for
every pixel and sampling the texture bilinearly (``grid_sample``) with periodic wrap-around, so a clip never
runs out of texture and nothing but the motion changes from frame to frame.

Time is counted from the middle of the clip so that a motion and its opposite show the *same* frames in
reverse order (zoom in by ``z`` = zoom out by ``1/z`` played backwards; likewise for rotation and direction).
Comparing a channel's responses to the two senses therefore isolates its preference for the temporal order,
i.e. for the motion, from everything else (e.g. a zoomed-in frame being blurrier than a zoomed-out one).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["Motion", "motion_clips", "noise_texture", "source_positions", "standard_stimuli", "texture_amplitude"]


@dataclass(frozen=True)
class Motion:
    """One constant motion per frame (see the module notes for the convention).

    Attributes:
        kind: ``"translation"``, ``"rotation"``, ``"zoom"`` or ``"static"`` (a label; the motion is given by
            the numbers, which may be combined).
        vx, vy: translation in pixels per frame (x right, y down).
        rotation_cw_deg: rotation in degrees per frame about the frame centre, positive = clockwise.
        zoom: content size factor per frame about the frame centre (> 1 = zoom in).
    """

    kind: str
    vx: float = 0.0
    vy: float = 0.0
    rotation_cw_deg: float = 0.0
    zoom: float = 1.0

    @property
    def speed(self) -> float:
        """Translation speed in pixels per frame."""
        return math.hypot(self.vx, self.vy)

    @property
    def direction_deg(self) -> float:
        """Translation direction in degrees: 0 = right, 90 = down (y down), in ``[0, 360)``."""
        return math.degrees(math.atan2(self.vy, self.vx)) % 360.0


def standard_stimuli(
    directions: int = 12,
    speeds: Sequence[float] = (0.5, 1.0, 2.0, 3.0),
    rotations: Sequence[float] = (2.0, 5.0, 10.0, 20.0),
    zooms: Sequence[float] = (1.03, 1.06, 1.12, 1.25),
) -> list[Motion]:
    """The probe set: one static clip, ``directions x speeds`` translations (direction ``k * 360/directions``
    degrees), each rotation speed in both senses (deg/frame) and each zoom factor in and out (``z`` and ``1/z``).
    """
    if directions < 3:
        raise ValueError(f"directions must be >= 3 to estimate a preferred direction, got {directions}")
    out = [Motion("static")]
    for speed in speeds:
        for k in range(directions):
            a = 2 * math.pi * k / directions
            out.append(Motion("translation", vx=speed * math.cos(a), vy=speed * math.sin(a)))
    for w in rotations:
        out += [Motion("rotation", rotation_cw_deg=w), Motion("rotation", rotation_cw_deg=-w)]
    for z in zooms:
        out += [Motion("zoom", zoom=z), Motion("zoom", zoom=1.0 / z)]
    return out


def noise_texture(
    channels: int,
    size: int = 128,
    exponent: float = 0.0,
    shared: float = 0.7,
    cutoff: float = 2.0,
    highcut: float = 0.2,
    generator: torch.Generator | None = None,
) -> Tensor:
    """A periodic random texture ``(channels, size, size)`` with zero mean and unit variance per channel.

    Amplitude spectrum ``exp(-(f / highcut)^2) / (f + f0)^exponent`` with ``f`` in cycles per pixel and
    ``f0 = cutoff / size``; the DC component is removed. The default (``exponent = 0``) is white noise with a
    Gaussian roll-off above ``highcut``: every spatial frequency a small filter passes carries motion
    information (a natural-image 1/f spectrum, ``exponent = 1``, puts most energy in frequencies too low for a
    shift of a few pixels to matter), and the roll-off keeps bilinear resampling at sub-pixel positions from
    changing the texture. A fraction ``shared`` of the variance is common to all channels (a
    luminance component), the rest independent per channel (colour / feature contrast).
    """
    if channels < 1 or size < 4:
        raise ValueError(f"channels must be >= 1 and size >= 4, got {channels}, {size}")
    if not 0.0 <= shared <= 1.0:
        raise ValueError(f"shared must be in [0, 1], got {shared}")
    amplitude = texture_amplitude(size, exponent, cutoff, highcut)[:, : size // 2 + 1].float()
    noise = torch.randn(channels + 1, size, size, generator=generator)
    field = torch.fft.irfft2(torch.fft.rfft2(noise) * amplitude, s=(size, size))
    field = field - field.mean(dim=(-2, -1), keepdim=True)
    field = field / field.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    mixed = math.sqrt(shared) * field[:1] + math.sqrt(1 - shared) * field[1:]
    return mixed / mixed.std(dim=(-2, -1), keepdim=True).clamp_min(1e-12)


def texture_amplitude(size: int, exponent: float = 0.0, cutoff: float = 2.0, highcut: float = 0.2) -> Tensor:
    """The amplitude spectrum of :func:`noise_texture` on the full ``(size, size)`` FFT grid (float64, rows =
    vertical frequency ``fftfreq``, DC zero): what both the rendered textures and the closed-form energies
    (:mod:`conv3t.verify.covariance`) are made from."""
    fy = torch.fft.fftfreq(size, dtype=torch.float64).abs()[:, None]
    fx = torch.fft.fftfreq(size, dtype=torch.float64).abs()[None, :]
    f = torch.sqrt(fx**2 + fy**2)
    amplitude = torch.exp(-((f / highcut) ** 2)) / (f + cutoff / size) ** exponent
    amplitude[0, 0] = 0.0
    return amplitude


def _motion_factors(motions: Sequence[Motion], num_frames: int, device: torch.device | None) -> tuple[Tensor, ...]:
    """Per motion and frame (``(M, T, 1, 1)`` float64): the translation ``vx u``, ``vy u``, the inverse rotation's
    ``cos``, ``sin`` and the inverse zoom ``z^-u`` of :func:`source_positions` (``u = t - (T-1)/2``)."""
    if any(m.zoom <= 0 for m in motions):  # checked on the host numbers: no device sync per rendered batch
        raise ValueError("zoom factors must be positive")
    f64 = {"dtype": torch.float64, "device": device}
    t = torch.arange(num_frames, **f64)[None, :, None, None] - (num_frames - 1) / 2
    vx = torch.tensor([m.vx for m in motions], **f64)[:, None, None, None]
    vy = torch.tensor([m.vy for m in motions], **f64)[:, None, None, None]
    w = torch.tensor([math.radians(m.rotation_cw_deg) for m in motions], **f64)[:, None, None, None]
    z = torch.tensor([m.zoom for m in motions], **f64)[:, None, None, None]
    angle = -w * t
    return vx * t, vy * t, torch.cos(angle), torch.sin(angle), z ** (-t)


def _pixel_grid(height: int, width: int, device: torch.device | None) -> tuple[Tensor, Tensor]:
    """Frame pixel coordinates relative to the frame centre: ``(gy, gx)``, each ``(H, W)`` float64."""
    f64 = {"dtype": torch.float64, "device": device}
    ys = torch.arange(height, **f64) - (height - 1) / 2
    xs = torch.arange(width, **f64) - (width - 1) / 2
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return gy, gx


def _positions(factors: tuple[Tensor, ...], gy: Tensor, gx: Tensor, translation_only: bool = False) -> Tensor:
    """:func:`source_positions` from :func:`_motion_factors` of any number of motions: ``(M, T, H, W, 2)``.

    Inverts ``p = z^u R(w u) q + v u`` (coordinates relative to the centre). ``translation_only`` (every motion
    has no rotation and zoom 1, known from the host numbers: no device sync) skips the rotation and zoom: then
    ``cos`` is 1, ``sin`` 0 and ``z^-u = 1^-u`` 1 exactly, and ``1 * (1 * p - 0 * p') = p`` in floating point
    too, so the positions are bit for bit the same at a third of the arithmetic."""
    vxt, vyt, cos, sin, inv = factors
    px, py = gx - vxt, gy - vyt
    if translation_only:
        return torch.stack((px, py), dim=-1)
    qx = inv * (cos * px - sin * py)
    qy = inv * (sin * px + cos * py)
    return torch.stack((qx, qy), dim=-1)


def source_positions(
    motions: Sequence[Motion], num_frames: int, height: int, width: int, device: torch.device | None = None
) -> Tensor:
    """Texture position (pixels, relative to the frame centre) shown at each frame pixel: ``(M, T, H, W, 2)``."""
    gy, gx = _pixel_grid(height, width, device)
    plain = all(m.rotation_cw_deg == 0 and m.zoom == 1 for m in motions)
    return _positions(_motion_factors(motions, num_frames, device), gy, gx, plain)


def motion_clips(
    texture: Tensor,
    motions: Sequence[Motion],
    num_frames: int,
    size: int | tuple[int, int],
    offset: tuple[float, float] = (0.0, 0.0),
) -> Tensor:
    """Render ``texture`` under each motion.

    Args:
        texture: ``(C, S, S)`` periodic texture (e.g. :func:`noise_texture`); any value range.
        motions: ``M`` motions.
        num_frames: ``T``.
        size: frame side ``H = W`` or ``(H, W)``.
        offset: texture position (pixels) shown at the frame centre in frame 0; different offsets give
            different views of the same texture.

    Returns:
        ``(M, C, T, H, W)`` float32 clips on the texture's device, the texture's values resampled bilinearly
        (``grid_sample``). One motion at a time: its float64 sampling positions are worked in place (no
        full-set temporaries of ``M x T x H x W x 2`` doubles), with the same operations in the same order as
        one call for all clips, so the clips are bit for bit those of rendering the set at once.
    """
    if texture.dim() != 3 or texture.shape[-1] != texture.shape[-2]:
        raise ValueError(f"texture must be (C, S, S), got shape {tuple(texture.shape)}")
    if num_frames < 1 or not motions:
        raise ValueError(f"need num_frames >= 1 and at least one motion, got {num_frames}, {len(motions)}")
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    s, t = texture.shape[-1], num_frames
    factors = _motion_factors(motions, num_frames, texture.device)
    gy, gx = _pixel_grid(h, w, texture.device)
    shift = torch.tensor(offset, dtype=torch.float64, device=texture.device)
    # one pixel of circular padding so positions in [S-1, S) interpolate with pixel 0, then align_corners=True
    padded = F.pad(texture[None].float(), (1, 1, 1, 1), mode="circular")
    out = torch.empty(len(motions), texture.shape[0], t, h, w, dtype=torch.float32, device=texture.device)
    for k in range(len(motions)):
        plain = motions[k].rotation_cw_deg == 0 and motions[k].zoom == 1
        q = _positions(tuple(f[k : k + 1] for f in factors), gy, gx, plain)  # (1, T, H, W, 2)
        q.add_(shift).add_((s - 1) / 2)
        torch.remainder(q, s, out=q)  # periodic texture; [0, S)
        grid = q.add_(1).mul_(2).div_(s + 1).sub_(1).to(torch.float32)  # 2 (q + 1) / (S + 1) - 1
        sampled = F.grid_sample(padded, grid.reshape(1, t * h, w, 2), mode="bilinear", align_corners=True)
        out[k] = sampled.reshape(texture.shape[0], t, h, w)
    return out
