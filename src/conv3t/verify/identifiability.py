"""Layer-level identifiability: can a Conv3T's temporal parameters be recovered from its outputs?

A *teacher* :class:`~conv3t.Conv3T` with known temporal parameters produces outputs for random clips; a
*student* with the same 2D filter ``K_1`` and identity temporal parameters is fitted to those outputs, with only
its temporal parameters trainable. If the student ends at the teacher's parameters, the parameters are
identifiable from the layer's behaviour and can be read literally; if it ends elsewhere with a small loss,
several parameter sets describe (almost) the same 3D filter.

Two diagnostics are provided:

* :func:`recover_temporal_parameters` -- the fit itself (what training does, from the identity init).
* :func:`kernel_jacobian_singular_values` -- local identifiability at the true parameters: the singular
  values of ``d kernel / d parameters`` per output channel. A (near-)zero singular value means some
  combination of parameters does not change the filter (e.g. rotating a radially symmetric ``K_1``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from conv3t.nn import TEMPORAL_PARAMETER_NAMES, Conv3T
from conv3t.nn.functional import generate_kernel

__all__ = [
    "PARAMETER_NAMES",
    "RecoveryResult",
    "kernel_jacobian",
    "kernel_jacobian_singular_values",
    "parameter_sensitivity",
    "radial_filters",
    "random_temporal_parameters",
    "recover_temporal_parameters",
    "smooth_filters",
]

PARAMETER_NAMES: tuple[str, ...] = TEMPORAL_PARAMETER_NAMES


def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of ``(N, 1, H, W)`` maps, ``valid`` convolution with a ``2*ceil(3 sigma)+1`` tap."""
    radius = max(1, int(torch.tensor(3.0 * sigma).ceil().item()))
    r = torch.arange(-radius, radius + 1, dtype=x.dtype)
    taps = torch.exp(-(r**2) / (2 * sigma**2))
    taps = taps / taps.sum()
    x = F.conv2d(x, taps.view(1, 1, 1, -1))
    return F.conv2d(x, taps.view(1, 1, -1, 1))


def smooth_filters(
    out_channels: int,
    in_channels: int,
    size: int,
    sigma: float,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Random 2D filters ``(out, in, size, size)`` like learned ones: white noise blurred by a Gaussian.

    ``sigma`` is the blur's standard deviation in kernel pixels; ``sigma = 0`` gives white noise. Each output
    channel's filter is scaled to unit L2 norm. The blur is applied to a larger noise field and cropped, so
    the filters do not fade towards the border.
    """
    if size < 1 or out_channels < 1 or in_channels < 1:
        raise ValueError(f"sizes must be positive, got out={out_channels}, in={in_channels}, size={size}")
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        w = torch.randn(out_channels, in_channels, size, size, generator=generator)
    else:
        radius = max(1, int(torch.tensor(3.0 * sigma).ceil().item()))
        big = size + 2 * radius
        noise = torch.randn(out_channels * in_channels, 1, big, big, generator=generator)
        w = _gaussian_blur(noise, sigma).reshape(out_channels, in_channels, size, size)
    return w / w.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


def radial_filters(
    out_channels: int,
    in_channels: int,
    size: int,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Radially symmetric random filters ``(out, in, size, size)``: a random profile of the distance to the centre.

    Rotating such a filter about its centre changes nothing (up to bilinear resampling error), so its
    rotation parameter is not identifiable.
    """
    c = (size - 1) / 2
    yy, xx = torch.meshgrid(torch.arange(size) - c, torch.arange(size) - c, indexing="ij")
    dist = torch.sqrt(xx.float() ** 2 + yy.float() ** 2) / max(c, 1.0)  # 0 at the centre, 1 at the edge midpoints
    coeff = torch.randn(out_channels, in_channels, 3, generator=generator)
    w = coeff[..., 0, None, None] + coeff[..., 1, None, None] * dist + coeff[..., 2, None, None] * dist**2
    w = w * torch.exp(-(dist**2))  # fades out, like a centre-surround filter
    return w / w.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)


def random_temporal_parameters(
    out_channels: int,
    steps: int,
    scale_range: float = 0.1,
    motion_range: float = 0.25,
    generator: torch.Generator | None = None,
) -> dict[str, Tensor]:
    """Uniform random temporal parameters, each ``(out, steps)``.

    ``scale`` in ``1 ± scale_range``; ``rotation`` (radians), ``translation_x`` and ``translation_y``
    (``affine_grid`` units) in ``± motion_range``.
    """

    def uniform(half: float) -> Tensor:
        return half * (2 * torch.rand(out_channels, steps, generator=generator) - 1)

    return {
        "scale": 1 + uniform(scale_range),
        "rotation": uniform(motion_range),
        "translation_x": uniform(motion_range),
        "translation_y": uniform(motion_range),
    }


@dataclass
class RecoveryResult:
    """Outcome of :func:`recover_temporal_parameters`.

    Attributes:
        true, recovered: parameter name -> ``(out, D-1)`` tensors.
        channel_error: ``(out,)`` largest absolute error over all of a channel's temporal parameters.
        relative_loss: mean over channels of the final squared output error divided by the teacher's mean
            squared output (per channel).
        iterations, seconds: optimiser steps taken and wall time.
        channel_loss: ``(out,)`` final relative loss of each channel's kept fit.
    """

    true: dict[str, Tensor]
    recovered: dict[str, Tensor]
    channel_error: Tensor
    relative_loss: float
    iterations: int
    seconds: float
    channel_loss: Tensor = field(default_factory=lambda: torch.empty(0))
    loss_history: list[float] = field(default_factory=list)

    @property
    def max_error(self) -> float:
        """Largest absolute parameter error over all channels and parameters."""
        return float(self.channel_error.max())

    def errors(self) -> dict[str, float]:
        """Largest absolute error per parameter name."""
        return {n: float((self.recovered[n] - self.true[n]).abs().max()) for n in PARAMETER_NAMES}

    def success_rate(self, tolerance: float = 1e-2) -> float:
        """Fraction of output channels whose parameters are all recovered within ``tolerance``."""
        return float((self.channel_error <= tolerance).float().mean())


def _layer(weight: Tensor, depth: int, params: dict[str, Tensor] | None) -> Conv3T:
    out, cin, kh, kw = weight.shape
    layer = Conv3T(cin, out, (depth, kh, kw), bias=False, dtype=weight.dtype)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if params is not None:
            for name in PARAMETER_NAMES:
                getattr(layer, name).copy_(params[name])
    layer.weight.requires_grad_(False)
    return layer


def _stages(clips: Tensor, iterations: int, coarse_to_fine: float) -> list[tuple[Tensor, int]]:
    """``[(clips, steps), ...]`` to fit on: the white-noise clips, after blurred ones when ``coarse_to_fine > 0``.

    ``clips``: ``(N, in, D, H, W)``; ``coarse_to_fine``: the blur's standard deviation in pixels.
    """
    if coarse_to_fine <= 0:
        return [(clips, iterations)]
    n, cin, depth, h, w = clips.shape
    frames = clips.transpose(1, 2).reshape(-1, 1, h, w)
    pad = max(1, int(torch.tensor(3.0 * coarse_to_fine).ceil().item()))
    blurred = _gaussian_blur(F.pad(frames, (pad,) * 4, mode="reflect"), coarse_to_fine)
    blurred = blurred.reshape(n, depth, cin, h, w).transpose(1, 2)
    return [(blurred / blurred.std(), iterations // 2), (clips, iterations - iterations // 2)]


def _fit(
    student: Conv3T,
    teacher: Conv3T,
    stages: list[tuple[Tensor, int]],
    restarts: int,
    lr: float,
    noise: float,
    generator: torch.Generator | None,
) -> tuple[Tensor, list[float]]:
    """Adam on the student's temporal parameters, stage by stage; returns the final per-channel loss
    ``(restarts * out,)`` (normalised by the teacher's output power) and the mean loss per step."""
    dims = (0, 2, 3, 4)
    out = teacher.out_channels

    def channel_loss(x: Tensor, target: Tensor, power: Tensor) -> Tensor:
        return (student(x) - target).pow(2).mean(dim=dims) / power

    trainable = [getattr(student, n) for n in PARAMETER_NAMES]
    history: list[float] = []
    for x, steps in stages:
        with torch.no_grad():
            target = teacher(x)
            if noise > 0:
                rms = target.pow(2).mean(dim=(0, 2, 3, 4), keepdim=True).sqrt()
                target = target + noise * rms * torch.randn(target.shape, generator=generator, dtype=target.dtype)
            target = target.repeat(1, restarts, 1, 1, 1)
        power = target.pow(2).mean(dim=dims).clamp_min(1e-20)  # (restarts * out,)
        optimiser = torch.optim.Adam(trainable, lr=lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
        for _ in range(steps):
            optimiser.zero_grad(set_to_none=True)
            loss = channel_loss(x, target, power).sum()
            loss.backward()
            optimiser.step()
            schedule.step()
            history.append(float(loss.detach()) / (restarts * out))
    with torch.no_grad():
        final = channel_loss(x, target, power)
    return final, history


def recover_temporal_parameters(
    weight: Tensor,
    params: dict[str, Tensor],
    *,
    num_clips: int = 8,
    margin: int = 6,
    iterations: int = 300,
    lr: float = 2e-2,
    restarts: int = 1,
    restart_scale_range: float = 0.1,
    restart_motion_range: float = 0.25,
    coarse_to_fine: float = 0.0,
    noise: float = 0.0,
    generator: torch.Generator | None = None,
) -> RecoveryResult:
    """Fit a student Conv3T's temporal parameters to a teacher's outputs on white-noise clips.

    Args:
        weight: ``(out, in, kH, kW)`` the shared 2D filter ``K_1``.
        params: the teacher's temporal parameters, name -> ``(out, D-1)`` (see :data:`PARAMETER_NAMES`).
        num_clips: number of random clips ``(num_clips, in, D, kH + margin, kW + margin)``; each output
            channel then has ``num_clips * (margin + 1)**2`` output values for its ``4 (D-1)`` parameters.
        iterations: Adam steps (cosine-annealed learning rate starting at ``lr``).
        restarts: number of fits per channel, run in parallel. The first starts at the identity
            (``s = 1``, the rest 0), as a freshly built or 2D-transferred layer starts training; the others
            start at random parameters drawn like :func:`random_temporal_parameters` with the
            ``restart_*_range`` arguments. Per channel the fit with the lowest final loss is kept.
        coarse_to_fine: if > 0, the first half of the iterations fits outputs on clips blurred by a Gaussian
            of this standard deviation (pixels), the second half on the white-noise clips. Blurred clips
            weight the filters' low spatial frequencies, whose loss landscape has wider basins.
        noise: standard deviation of Gaussian noise added to the teacher's outputs, relative to their RMS
            (measurement noise: shows how firmly the outputs pin each parameter down).
        generator: random source for the clips, the noise and the restart points.

    Returns:
        :class:`RecoveryResult`. Each channel's loss is normalised by its teacher's mean squared output, so
        losses are comparable across filters; ``relative_loss`` is their mean over channels.
    """
    if restarts < 1:
        raise ValueError(f"restarts must be >= 1, got {restarts}")
    depth = params["scale"].shape[1] + 1
    out, cin, kh, kw = weight.shape
    teacher = _layer(weight, depth, params)
    inits = [random_temporal_parameters(out, depth - 1, 0.0, 0.0)]  # identity
    inits += [
        random_temporal_parameters(out, depth - 1, restart_scale_range, restart_motion_range, generator)
        for _ in range(restarts - 1)
    ]
    student = _layer(
        weight.repeat(restarts, 1, 1, 1),
        depth,
        {n: torch.cat([i[n] for i in inits]).to(weight.dtype) for n in PARAMETER_NAMES},
    )
    clips = torch.randn(num_clips, cin, depth, kh + margin, kw + margin, generator=generator, dtype=weight.dtype)
    stages = _stages(clips, iterations, coarse_to_fine)
    start = time.perf_counter()
    final, history = _fit(student, teacher, stages, restarts, lr, noise, generator)
    final = final.reshape(restarts, out)
    seconds = time.perf_counter() - start
    best = final.argmin(dim=0)  # (out,)
    pick = best * out + torch.arange(out)
    recovered = {n: getattr(student, n).detach()[pick].clone() for n in PARAMETER_NAMES}
    true = {n: params[n].detach().clone() for n in PARAMETER_NAMES}
    diffs = torch.stack([(recovered[n] - true[n]).abs().amax(dim=1) for n in PARAMETER_NAMES], dim=1)
    return RecoveryResult(
        true=true,
        recovered=recovered,
        channel_error=diffs.amax(dim=1),
        relative_loss=float(final.gather(0, best[None]).mean()),
        iterations=iterations,
        seconds=seconds,
        channel_loss=final.gather(0, best[None])[0],
        loss_history=history,
    )


def kernel_jacobian(weight: Tensor, params: dict[str, Tensor]) -> Tensor:
    """``d kernel / d parameters`` per output channel, relative to the channel's kernel norm.

    Args:
        weight: ``(out, in, kH, kW)``.
        params: name -> ``(out, D-1)``.

    Returns:
        ``(out, in * D * kH * kW, 4 (D-1))``; column ``i * (D-1) + t`` is parameter ``PARAMETER_NAMES[i]`` of
        step ``t``. Computed in float64.
    """
    jacobians = []
    for c in range(weight.shape[0]):
        w = weight[c : c + 1].double()
        base = torch.cat([params[n][c : c + 1].double() for n in PARAMETER_NAMES], dim=0)  # (4, D-1)

        def kernel_of(flat: Tensor, w: Tensor = w, shape: torch.Size = base.shape) -> Tensor:
            p = flat.reshape(shape)
            return generate_kernel(w, p[0:1], p[1:2], p[2:3], p[3:4]).reshape(-1)

        jac = torch.autograd.functional.jacobian(kernel_of, base.reshape(-1), vectorize=True, strategy="forward-mode")
        jacobians.append(jac / kernel_of(base.reshape(-1)).norm().clamp_min(1e-20))
    return torch.stack(jacobians)


def kernel_jacobian_singular_values(weight: Tensor, params: dict[str, Tensor]) -> Tensor:
    """Local identifiability: singular values of ``d kernel / d parameters`` per output channel.

    Returns:
        ``(out, 4 (D-1))`` singular values in descending order, relative to the norm of the channel's kernel
        (relative kernel change per unit parameter change). The smallest one says how well the
        worst-determined parameter combination is pinned down; zero means it is not identifiable at all.
    """
    return torch.linalg.svdvals(kernel_jacobian(weight, params)).to(weight.dtype)


def parameter_sensitivity(weight: Tensor, params: dict[str, Tensor]) -> dict[str, Tensor]:
    """How much each parameter alone changes the filter: Jacobian column norms, name -> ``(out, D-1)``.

    A parameter with near-zero sensitivity (e.g. the first rotation of a radially symmetric filter) cannot be
    read from the layer's behaviour, whatever value training left in it.
    """
    jac = kernel_jacobian(weight, params).norm(dim=1)  # (out, 4 (D-1))
    steps = params["scale"].shape[1]
    return {n: jac[:, i * steps : (i + 1) * steps].to(weight.dtype) for i, n in enumerate(PARAMETER_NAMES)}
