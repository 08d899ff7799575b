"""The equivalence check: a clip that is constant in time must give the 2D network's logits on its frame.

This is the "boring video" property of I3D made exact. With ``inflate="mean"`` every video kernel of temporal
depth ``D`` sums over time to the 2D kernel; with ``temporal_padding="replicate"`` the padded frames equal the
real ones; Conv3T at identity repeats its 2D filter. So on a constant clip every video layer computes, at every
frame, the 2D layer's output on that frame, every pooling over time averages equal values, and the logits
are the 2D logits. A wrong weight, a misplaced time axis, a pooling over the wrong dimension or a
dropped layer breaks it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from conv3t.models.conversion.ops import pair
from conv3t.models.conversion.report import ConversionError
from conv3t.nn import conv3t_layers

__all__ = ["Equivalence", "EquivalenceError", "verify_conversion"]


class EquivalenceError(ConversionError):
    """The converted model does not reproduce the 2D model on a constant clip."""


@dataclass(frozen=True)
class Equivalence:
    """Result of :func:`verify_conversion`.

    Attributes:
        max_abs_error: largest absolute difference between video and 2D logits.
        scale: largest absolute 2D logit (the errors are relative to it).
        tolerance: the largest allowed ``max_abs_error / scale``.
        frames, image_size, batch: the constant clips checked, ``(batch, C, frames, *image_size)``.
    """

    max_abs_error: float
    scale: float
    tolerance: float
    frames: int
    image_size: tuple[int, int]
    batch: int

    @property
    def relative_error(self) -> float:
        return self.max_abs_error / self.scale if self.scale > 0 else self.max_abs_error

    @property
    def passed(self) -> bool:
        return math.isfinite(self.relative_error) and self.relative_error <= self.tolerance

    def sentence(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        h, w = self.image_size
        return (
            f"{verdict}: {self.batch} constant clips of {self.frames} x {h} x {w} give the 2D logits to "
            f"{self.relative_error:.1e} of their scale {self.scale:.3g} (tolerance {self.tolerance:.0e})"
        )


def _in_channels(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module.in_channels
    raise ConversionError(f"{type(model).__name__} has no Conv2d layer: it is not a 2D CNN")


def _check_state(video_model: nn.Module) -> None:
    report = getattr(video_model, "conversion_report", None)
    if report is not None and (report.inflate != "mean" or report.temporal_padding != "replicate"):
        raise ValueError(
            f"verify_conversion needs a model converted with inflate='mean' and temporal_padding='replicate' "
            f"(the settings under which a constant clip reproduces the 2D logits), got inflate="
            f"{report.inflate!r}, temporal_padding={report.temporal_padding!r}; convert(..., check=True) checks "
            f"other settings through a twin converted with these"
        )
    for name, layer in conv3t_layers(video_model, min_depth=2):
        params = layer.temporal_parameters()
        if not (
            bool((params["scale"] == 1).all()) and all(bool((params[k] == 0).all()) for k in params if k != "scale")
        ):
            raise ValueError(
                f"verify_conversion needs Conv3T temporal parameters at identity; {name} has moved (trained?): "
                f"a constant clip is then not expected to reproduce the 2D logits"
            )


def _logits(out: object, who: str) -> Tensor:
    if not isinstance(out, Tensor) or out.dim() != 2:
        raise ConversionError(f"the {who} model's eval-mode output is not (N, K) logits: {type(out).__name__}")
    return out


@torch.no_grad()
def verify_conversion(
    model_2d: nn.Module,
    video_model: nn.Module,
    *,
    frames: int = 2,
    image_size: int | tuple[int, int] = 64,
    batch: int = 2,
    tolerance: float = 1e-4,
    seed: int = 0,
    dtype: torch.dtype | None = torch.float64,
) -> Equivalence:
    """Check that constant clips give the 2D model's logits (both models in eval mode; modes are restored).

    Args:
        model_2d: the 2D classifier, ``(N, C, H, W) -> (N, K)``.
        video_model: its conversion (``inflate="mean"``, ``temporal_padding="replicate"``, temporal parameters
            at identity), ``(N, C, T, H, W) -> (N, K)``.
        frames, image_size, batch: the clips, ``(batch, C, frames, H, W)`` of standard normal images repeated
            over time (drawn with ``seed``).
        tolerance: the largest allowed error relative to the largest 2D logit.
        dtype: compute in this dtype, on copies of both models (default float64: a conversion bug shows as
            an error of order one, float64 rounding as 1e-12, so the verdict does not depend on how much a
            deep network amplifies float32 rounding); ``None``: as the models are.

    Returns:
        The :class:`Equivalence` (passed).

    Raises:
        EquivalenceError: the logits differ by more than the tolerance (the message gives the error).
        ValueError: the video model is not in a state where the property holds (settings, trained Conv3T).
    """
    _check_state(video_model)
    if dtype is not None and next(model_2d.parameters()).dtype != dtype:
        model_2d = copy.deepcopy(model_2d).to(dtype)
        video_model = copy.deepcopy(video_model).to(dtype)
    h, w = pair(image_size)  # type: ignore[misc]
    generator = torch.Generator().manual_seed(seed)
    param = next(model_2d.parameters())
    images = torch.randn(batch, _in_channels(model_2d), h, w, generator=generator).to(param.device, param.dtype)
    clip = images.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()
    modes = [(m, m.training) for m in (*model_2d.modules(), *video_model.modules())]
    try:
        model_2d.eval()
        video_model.eval()
        expected = _logits(model_2d(images), "2D")
        got = _logits(video_model(clip), "video")
    finally:
        for module, mode in modes:
            module.training = mode
    if got.shape != expected.shape:
        raise EquivalenceError(
            f"the video model gives logits of shape {tuple(got.shape)}, the 2D model {tuple(expected.shape)}"
        )
    result = Equivalence(
        max_abs_error=float((got - expected).abs().max()),
        scale=float(expected.abs().max()),
        tolerance=tolerance,
        frames=frames,
        image_size=(h, w),
        batch=batch,
    )
    if not result.passed:
        raise EquivalenceError(f"equivalence check {result.sentence()}")
    return result
