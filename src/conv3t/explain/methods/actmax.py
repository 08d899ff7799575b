"""Activation maximisation for one channel (feature visualisation in the manner of Olah et al., 2017).

The input that most excites a channel is found by gradient ascent, not on raw pixels (which gives
high-frequency noise) but on a parameterisation that favours natural-looking images:

* **Fourier basis.** The free parameters are the coefficients of a real FFT of the image (3T: one frame,
  ``rfft2`` over ``(H, W)``) or of the whole video (3D: ``rfftn`` over ``(T, H, W)``). Each coefficient is
  multiplied by ``1 / f ** decay`` (``f`` = frequency in cycles per pixel/frame, floored at one cycle per
  image), normalised to unit RMS, so equal steps change low frequencies more — like the 1/f spectrum of
  natural images.
* **Colour decorrelation.** The three channels the FFT produces are mixed by the square root of an RGB
  covariance (:func:`color_covariance`; by default a generic prior where every pair of RGB channels
  correlates with 0.85, or one estimated from data), so independent parameters become correlated colours.
* **Pixels** are ``sigmoid`` of that, in [0, 1], then normalised with the model's ``mean``/``std``.
* **Robustness.** Every step draws one random affine transformation per example — translation (jitter) up
  to ``jitter`` pixels, scale in ``scale_range``, rotation up to ``degrees`` — and applies it to all
  frames alike (reflection padding), so the result must excite the channel wherever it lands.

The objective (:func:`channel_objective`) is the channel's mean rectified activation over all its positions at
the layer's output (plus a small leak); the network is only run up to that layer. Adam optimises the
coefficients for ``steps`` steps.

For 3T models the paper (sec. 4.3) optimises a single image and repeats it over time (``single_frame=True``,
the default when the model contains :class:`~conv3t.Conv3T` layers); for 3D models the whole video.
Everything random comes from one seeded :class:`torch.Generator`, so a seed gives the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conv3t.explain.methods.saliency import frozen_parameters, resolve_layer, run_to_layer
from conv3t.nn import Conv3T
from conv3t.runtime import model_device

__all__ = [
    "ActMaxResult",
    "ActivationMaximization",
    "channel_objective",
    "color_covariance",
    "default_color_covariance",
]

#: Correlation between any two RGB channels in the default colour prior.
DEFAULT_RGB_CORRELATION = 0.85


def default_color_covariance() -> Tensor:
    """``(3, 3)`` unit-variance RGB covariance with every pair correlated by ``DEFAULT_RGB_CORRELATION``."""
    rho = DEFAULT_RGB_CORRELATION
    return torch.full((3, 3), rho) + (1 - rho) * torch.eye(3)


def color_covariance(pixels: Tensor) -> Tensor:
    """RGB covariance ``(3, 3)`` of pixels shaped ``(..., 3, T, H, W)`` or ``(3, H, W)`` (channel dim -4 or -3).

    Pass pixels in [0, 1] (not normalised); the result can go to ``ActivationMaximization(color_cov=...)``.
    """
    dim = -4 if pixels.ndim >= 4 else -3
    if pixels.shape[dim] != 3:
        raise ValueError(f"expected RGB pixels with 3 channels at dim {dim}, got shape {tuple(pixels.shape)}")
    flat = pixels.movedim(dim, 0).reshape(3, -1).to(torch.float64)
    return torch.cov(flat).to(torch.float32)


def _color_mixing(cov: Tensor) -> Tensor:
    """Symmetric square root of ``cov``, scaled so its largest column has unit norm."""
    evals, evecs = torch.linalg.eigh(cov.to(torch.float64))
    root = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    root = root / root.norm(dim=0).max()
    return root.to(torch.float32)


def _frequency_scale(shape: Sequence[int], decay: float) -> Tensor:
    """``1 / f**decay`` for an ``rfftn`` spectrum of a signal of ``shape`` (last axis halved), unit RMS."""
    freqs = [torch.fft.fftfreq(n) for n in shape[:-1]] + [torch.fft.rfftfreq(shape[-1])]
    grids = torch.meshgrid(*freqs, indexing="ij")
    f = torch.sqrt(sum(g**2 for g in grids))
    scale = f.clamp_min(1.0 / max(shape)) ** (-decay)
    return scale / scale.pow(2).mean().sqrt()


#: Weight of the raw mean in :func:`channel_objective`: enough to wake a channel that starts silent.
LEAK = 0.01


def channel_objective(activation: Tensor) -> Tensor:
    """The quantity maximised: ``mean(max(A, 0)) + LEAK * mean(A)`` over positions, ``(K, ...) -> (K,)``.

    The positive part is what the following ReLU passes on; maximising a plain mean would, for a linear first
    layer, only push every pixel to the extreme the filter's sum prefers. The small raw term keeps a gradient
    where the channel is silent everywhere.
    """
    flat = activation.flatten(1)
    return flat.clamp_min(0).mean(1) + LEAK * flat.mean(1)


@dataclass
class ActMaxResult:
    """Optimised inputs for one or more channels of one layer.

    Attributes:
        channels: the channels, in the order of the batch dimension below.
        pixels: ``(K, 3, T, H, W)`` in [0, 1]; with ``single_frame`` all ``T`` frames are equal.
        activation: ``(K,)`` each channel's :func:`channel_objective` for its own (untransformed) result.
        history: ``(steps, K)`` the objective under that step's random transformation.
        single_frame: whether one image was optimised and repeated over time.
    """

    channels: list[int]
    pixels: Tensor
    activation: Tensor
    history: Tensor
    single_frame: bool


class ActivationMaximization:
    """Find inputs that maximise channels of one layer.

    Args:
        model: the network, taking normalised clips ``(N, 3, T, H, W)``; used in eval mode, not modified.
        layer: qualified layer name or module.
        num_frames, size: the clip shape ``T`` and ``(H, W)`` to optimise.
        mean, std: the model's per-channel input normalisation (pixels in [0, 1] -> model input).
        single_frame: optimise one image repeated over time (3T view) or a whole video (3D view);
            ``None`` picks the former when the model contains a Conv3T layer.
        color_cov: ``(3, 3)`` RGB covariance for the colour decorrelation (default
            :func:`default_color_covariance`).

    Example::

        am = ActivationMaximization(model, "layer1.0.conv1", num_frames=16, size=(64, 64),
                                    mean=info.mean, std=info.std)
        result = am.optimize([3, 7], steps=128, seed=0)   # result.pixels: (2, 3, 16, 64, 64)
    """

    def __init__(
        self,
        model: nn.Module,
        layer: str | nn.Module,
        *,
        num_frames: int,
        size: tuple[int, int],
        mean: Sequence[float],
        std: Sequence[float],
        single_frame: bool | None = None,
        color_cov: Tensor | None = None,
    ) -> None:
        self.model = model
        self.layer_name, self.layer = resolve_layer(model, layer)
        if num_frames < 1 or len(size) != 2 or min(size) < 1:
            raise ValueError(f"num_frames must be >= 1 and size (H, W) positive, got {num_frames}, {size}")
        self.num_frames, self.size = int(num_frames), (int(size[0]), int(size[1]))
        if single_frame is None:
            single_frame = any(isinstance(m, Conv3T) for m in model.modules())
        self.single_frame = bool(single_frame)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1)
        cov = default_color_covariance() if color_cov is None else torch.as_tensor(color_cov, dtype=torch.float32)
        if cov.shape != (3, 3):
            raise ValueError(f"color_cov must be (3, 3), got {tuple(cov.shape)}")
        self.mixing = _color_mixing(cov)

    # -- the network up to the layer ---------------------------------------------------------------
    def layer_output(self, clip: Tensor) -> Tensor:
        """The target layer's output ``(N, C, T', H', W')`` for a normalised clip; runs only up to it."""
        return run_to_layer(self.model, self.layer, clip)

    # -- parameterisation --------------------------------------------------------------------------
    def _signal_shape(self) -> tuple[int, ...]:
        return self.size if self.single_frame else (self.num_frames, *self.size)

    def _pixels(self, coeffs: Tensor, freq_scale: Tensor) -> Tensor:
        """Fourier coefficients ``(K, 3, *spectrum, 2)`` -> pixels ``(K, 3, T, H, W)`` in [0, 1]."""
        shape = self._signal_shape()
        spectrum = torch.view_as_complex(coeffs) * freq_scale
        dims = tuple(range(-len(shape), 0))
        signal = torch.fft.irfftn(spectrum, s=shape, dim=dims, norm="ortho")
        signal = torch.einsum("ij,kj...->ki...", self.mixing.to(signal.device), signal)
        pixels = torch.sigmoid(signal)
        if self.single_frame:
            pixels = pixels.unsqueeze(2).expand(-1, -1, self.num_frames, -1, -1)
        return pixels

    def _random_affine(
        self, pixels: Tensor, gen: torch.Generator, jitter: float, scale_range: tuple[float, float], degrees: float
    ) -> Tensor:
        """One random similarity transform per example, the same for all its frames; reflection padding."""
        k, c, t, h, w = pixels.shape
        u = torch.rand(k, 4, generator=gen).to(pixels.device)  # drawn on the CPU: the same on every device
        angle = torch.deg2rad((2 * u[:, 0] - 1) * degrees)
        zoom = scale_range[0] + (scale_range[1] - scale_range[0]) * u[:, 1]
        # translation in affine_grid units: 2 / (size - 1) per pixel (align_corners=True)
        tx = (2 * u[:, 2] - 1) * jitter * 2 / max(w - 1, 1)
        ty = (2 * u[:, 3] - 1) * jitter * 2 / max(h - 1, 1)
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
        flat = pixels.reshape(k, c * t, h, w)
        grid = F.affine_grid(theta, [k, c * t, h, w], align_corners=True)
        out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
        return out.reshape(k, c, t, h, w)

    def _normalise(self, pixels: Tensor) -> Tensor:
        return (pixels - self.mean.to(pixels.device)) / self.std.to(pixels.device)

    def _objective(self, clip: Tensor, channels: Tensor) -> Tensor:
        """Per example ``k``: :func:`channel_objective` of channel ``channels[k]`` of the layer output -> ``(K,)``."""
        out = self.layer_output(clip)
        if out.ndim != 5:
            raise ValueError(f"layer {self.layer_name} output is {tuple(out.shape)}, expected (N, C, T, H, W)")
        if int(channels.max()) >= out.shape[1]:
            raise ValueError(
                f"channel {int(channels.max())} out of range: layer {self.layer_name} has {out.shape[1]} channels"
            )
        return channel_objective(out[torch.arange(len(channels)), channels])

    # -- the optimisation --------------------------------------------------------------------------
    def optimize(
        self,
        channels: int | Sequence[int],
        *,
        steps: int = 256,
        lr: float = 0.05,
        seed: int = 0,
        decay: float = 1.0,
        jitter: float = 4.0,
        scale_range: tuple[float, float] = (0.9, 1.1),
        degrees: float = 8.0,
        init_std: float = 0.01,
    ) -> ActMaxResult:
        """Optimise one input per channel (all channels in one batch) and return them.

        Args:
            channels: channel index or indices of the layer.
            steps: Adam steps (a few hundred for a clean picture; fewer for a quick look).
            lr: Adam learning rate on the Fourier coefficients.
            seed: seeds the initial coefficients and every random transformation.
            decay: exponent of the ``1/f`` frequency weighting (0 = white, plain pixel-like basis).
            jitter: maximal random shift in pixels; ``scale_range``: random zoom range; ``degrees``: maximal
                random rotation. Set ``jitter=0, scale_range=(1, 1), degrees=0`` to switch robustness off.
            init_std: standard deviation of the initial coefficients.
        """
        chans = [int(channels)] if isinstance(channels, int) else [int(c) for c in channels]
        if not chans or min(chans) < 0:
            raise ValueError(f"channels must be non-negative channel indices, got {channels!r}")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        gen = torch.Generator().manual_seed(int(seed))
        shape = self._signal_shape()
        spec_shape = (*shape[:-1], shape[-1] // 2 + 1)
        device = model_device(self.model)
        freq_scale = _frequency_scale(shape, decay).to(device)
        coeffs = torch.randn(len(chans), 3, *spec_shape, 2, generator=gen) * init_std  # CPU draw: any device
        coeffs = coeffs.to(device).requires_grad_(True)
        index = torch.tensor(chans, device=device)
        opt = torch.optim.Adam([coeffs], lr=lr)

        was_training = self.model.training
        self.model.eval()
        history = torch.zeros(steps, len(chans), device=device)
        try:
            # frozen weights: no weight gradients, and Conv3T reuses its generated kernel at every step
            with frozen_parameters(self.model), torch.enable_grad():
                for i in range(steps):
                    pixels = self._pixels(coeffs, freq_scale)
                    moved = self._random_affine(pixels, gen, jitter, scale_range, degrees)
                    value = self._objective(self._normalise(moved), index)
                    opt.zero_grad(set_to_none=True)
                    (-value.sum()).backward()
                    opt.step()
                    history[i] = value.detach()
            with torch.no_grad():
                pixels = self._pixels(coeffs, freq_scale)
                final = self._objective(self._normalise(pixels), index)
        finally:
            self.model.train(was_training)
        if not torch.isfinite(final).all():
            raise FloatingPointError(f"activation maximisation diverged for layer {self.layer_name}: {final}")
        return ActMaxResult(
            chans, pixels.detach().cpu().contiguous(), final.detach().cpu(), history.cpu(), self.single_frame
        )

    def random_baseline(self, channels: int | Sequence[int], n: int = 8, seed: int = 0) -> Tensor:
        """:func:`channel_objective` ``(n, K)`` of the channels for ``n`` clips of uniform random pixels."""
        chans = [int(channels)] if isinstance(channels, int) else [int(c) for c in channels]
        gen = torch.Generator().manual_seed(int(seed))
        pixels = torch.rand(n, 3, self.num_frames, *self.size, generator=gen).to(model_device(self.model))
        with torch.no_grad():
            out = self.layer_output(self._normalise(pixels))
        return torch.stack([channel_objective(out[:, c]) for c in chans], dim=1).cpu()
