"""Which input frames the prediction rests on, measured against the clip's own mean frame.

The frame checks of :mod:`conv3t.explain.faithfulness` delete a frame by replacing it with the clip's temporal
mean frame ``x̄ = mean_t x_t``. An attribution that such a check can confirm must therefore answer "how much
does the target's logit change when frame ``t`` becomes ``x̄``?", with a sign: a frame that argues against the
class must not rank as important. Two estimates of that, both signed and in logit units (pre-softmax score of
the target class), both ``(N, C, T, H, W) -> (N, T)``:

* :func:`first_order_frame_attribution` -- ``a_t = sum_{c,y,x} (x_t - x̄) * d logit / d x_t`` at the clip
  (one backward pass). Exact for a model linear in its input; the first-order Taylor estimate of deleting
  frame ``t`` otherwise.
* :func:`integrated_frame_attribution` -- captum's ``IntegratedGradients`` on the straight path from the
  mean-frame clip (``x̄`` repeated over time) to the clip, summed per frame. Its frames add up to
  ``logit(x) - logit(x̄ clip)`` (completeness) up to the quadrature error, which is reported.

The mean-frame clip carries no temporal information (every frame is the same), so both compare the clip with
"the same pixels, no motion", and neither rewards a frame for where it sits in the clip: moving content in
time moves its attribution with it. :func:`conv3t.explain.methods.attribution.frame_importance`
(``|x * d logit / d x|`` against a zero baseline, unsigned) answers a different question; it is kept for
comparison as ``"input_x_gradient"`` in :func:`frame_attribution`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from conv3t.explain.methods.attribution import _check_clips, _targets, frame_importance, logits_of
from conv3t.explain.methods.saliency import frozen_parameters
from conv3t.runtime import model_device

__all__ = [
    "DEFAULT_FRAME_ATTRIBUTION",
    "FRAME_ATTRIBUTIONS",
    "FrameAttribution",
    "first_order_frame_attribution",
    "frame_attribution",
    "integrated_frame_attribution",
    "mean_frame_clip",
]

#: The frame attribution conv3t's explainer and report show (the one that passes its checks on the demo models,
#: RESULTS.md section 5); input x gradient is kept beside it as a labelled comparison.
DEFAULT_FRAME_ATTRIBUTION = "integrated_gradients"

#: The frame attributions :func:`frame_attribution` computes, with the label a table or a page shows.
FRAME_ATTRIBUTIONS: dict[str, str] = {
    "input_x_gradient": "|x · ∂logit/∂x| per frame, zero baseline, unsigned (shares summing to 1)",
    "first_order": "Σ (x_t − x̄) · ∂logit/∂x_t per frame, mean-frame baseline, signed (logit units)",
    "integrated_gradients": "integrated gradients from the mean-frame clip, per frame, signed (logit units)",
}


@dataclass(frozen=True)
class FrameAttribution:
    """A signed frame attribution against the mean-frame baseline, with how far it is from complete.

    Attributes:
        method: ``"first_order"`` or ``"integrated_gradients"`` (keys of :data:`FRAME_ATTRIBUTIONS`).
        frames: ``(N, T)`` per-frame attribution, logit units; positive = the frame, as opposed to the mean
            frame, pushes the target's logit up.
        logit_gap: ``(N,)`` ``logit(x) - logit(x̄ clip)``, what a complete attribution adds up to.
        completeness_error: ``(N,)`` ``frames.sum(1) - logit_gap`` (logit units): the quadrature error of
            integrated gradients, the non-linearity of the model along the path for the first-order estimate.
        steps: integration steps (1 for the first-order estimate).
    """

    method: str
    frames: Tensor
    logit_gap: Tensor
    completeness_error: Tensor
    steps: int

    @property
    def relative_error(self) -> Tensor:
        """``(N,)`` ``|completeness_error| / |logit_gap|`` (inf when the gap is 0 and the error is not)."""
        return self.completeness_error.abs() / self.logit_gap.abs()


def mean_frame_clip(clips: Tensor) -> Tensor:
    """``(N, C, T, H, W)`` -> the same shape: each clip's temporal mean frame repeated over time."""
    _check_clips(clips)
    return clips.mean(dim=2, keepdim=True).expand_as(clips).contiguous()


def _target_logits(model: nn.Module, clips: Tensor, target: Tensor) -> Tensor:
    with torch.no_grad():
        logits = logits_of(model)(clips)
    return logits.gather(1, target.view(-1, 1))[:, 0].double()


def _result(method: str, frames: Tensor, gap: Tensor, steps: int, device: torch.device) -> FrameAttribution:
    frames = frames.detach().double()
    return FrameAttribution(
        method=method,
        frames=frames.to(device),
        logit_gap=gap.to(device),
        completeness_error=(frames.sum(1) - gap).to(device),
        steps=steps,
    )


def first_order_frame_attribution(
    model: nn.Module, clips: Tensor, target: int | Sequence[int] | Tensor
) -> FrameAttribution:
    """``sum_{c,y,x} (x_t - x̄) * d logit / d x_t`` per frame, the gradient taken at the clip.

    Args:
        model: ``(N, C, T, H, W) -> (N, classes)`` logits (eval mode is the caller's choice).
        clips: ``(N, C, T, H, W)`` the model's inputs.
        target: one class for all clips or one per clip (logit index).

    Returns:
        A :class:`FrameAttribution`, ``frames`` ``(N, T)`` in logit units, on ``clips``' device.
    """
    _check_clips(clips)
    device = model_device(model)
    x = clips.detach().to(device, copy=True).requires_grad_(True)
    target_ = _targets(target, clips.shape[0]).to(device)
    with frozen_parameters(model):
        logits = logits_of(model)(x)
        (grad,) = torch.autograd.grad(logits.gather(1, target_.view(-1, 1)).sum(), x)
        base = mean_frame_clip(x.detach())
        gap = logits.detach().gather(1, target_.view(-1, 1))[:, 0].double() - _target_logits(model, base, target_)
    frames = ((x.detach() - base) * grad).sum(dim=(1, 3, 4))
    return _result("first_order", frames, gap, 1, clips.device)


#: Integrated gradients' quadrature: start with this many Gauss-Legendre points and double (up to
#: ``IG_MAX_STEPS``) until every clip's completeness error is at most ``IG_TOLERANCE`` of its scale
#: ``max(|logit gap|, sum_t |a_t|)``. Measured on the demo model (9 clips; BENCHMARKS.md): 16 points leave at most
#: 3 % of the gap (8 points: 11 %) and rank the frames as 128 points do (Spearman >= 0.976, one swap of
#: neighbours, the same as 32 points), at half the cost of the former fixed 32.
IG_STEPS, IG_MAX_STEPS, IG_TOLERANCE = 16, 64, 0.05


def integrated_frame_attribution(
    model: nn.Module,
    clips: Tensor,
    target: int | Sequence[int] | Tensor,
    steps: int | None = None,
    internal_batch_size: int | None = 8,
) -> FrameAttribution:
    """Integrated gradients from the mean-frame clip to the clip, summed per frame.

    Args:
        model: ``(N, C, T, H, W) -> (N, classes)`` logits (eval mode is the caller's choice).
        clips: ``(N, C, T, H, W)`` the model's inputs.
        target: one class for all clips or one per clip (logit index).
        steps: points of captum's Gauss-Legendre quadrature along the path (>= 1); None: adaptive
            (:data:`IG_STEPS` doubled until the completeness error is within :data:`IG_TOLERANCE`).
        internal_batch_size: path points per forward pass (memory: that many clips and their activations);
            None = all ``N * steps`` at once.

    Returns:
        A :class:`FrameAttribution`, ``frames`` ``(N, T)`` in logit units, on ``clips``' device;
        ``completeness_error`` is the quadrature error (more ``steps`` shrink it); ``steps`` the points used.
    """
    _check_clips(clips)
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be an integer >= 1 or None, got {steps!r}")
    if internal_batch_size is not None and internal_batch_size < 1:
        raise ValueError(f"internal_batch_size must be >= 1 or None, got {internal_batch_size!r}")
    device = model_device(model)
    x = clips.detach().to(device)
    base = mean_frame_clip(x)
    target_ = _targets(target, clips.shape[0]).to(device)
    with frozen_parameters(model):
        gap = _target_logits(model, x, target_) - _target_logits(model, base, target_)
        n = steps or IG_STEPS
        while True:
            frames = _integrate(model, x, base, target_, n, internal_batch_size)
            scale = torch.maximum(gap.abs(), frames.abs().sum(1))
            if (
                steps is not None
                or n >= IG_MAX_STEPS
                or bool(((frames.sum(1) - gap).abs() <= IG_TOLERANCE * scale).all())
            ):
                break
            n *= 2
    return _result("integrated_gradients", frames, gap, n, clips.device)


def _integrate(
    model: nn.Module, x: Tensor, base: Tensor, target: Tensor, steps: int, internal_batch_size: int | None
) -> Tensor:
    """``(N, T)`` float64: captum's integrated gradients from ``base`` to ``x``, summed per frame."""
    from captum.attr import IntegratedGradients

    attr = IntegratedGradients(logits_of(model)).attribute(
        x, baselines=base, target=target, n_steps=steps, internal_batch_size=internal_batch_size
    )
    return attr.sum(dim=(1, 3, 4)).detach().double()


def frame_attribution(
    model: nn.Module, clips: Tensor, target: int | Sequence[int] | Tensor, method: str = "integrated_gradients"
) -> Tensor:
    """``(N, T)`` frame attribution by ``method`` (a key of :data:`FRAME_ATTRIBUTIONS`; larger = more important).

    ``"input_x_gradient"`` is :func:`conv3t.explain.methods.attribution.frame_importance` (shares summing to 1); the
    other two are the ``frames`` of :func:`first_order_frame_attribution` and
    :func:`integrated_frame_attribution` (logit units, signed).
    """
    if method == "input_x_gradient":
        return frame_importance(model, clips, target)
    if method == "first_order":
        return first_order_frame_attribution(model, clips, target).frames.float()
    if method == "integrated_gradients":
        return integrated_frame_attribution(model, clips, target).frames.float()
    raise ValueError(f"method must be one of {sorted(FRAME_ATTRIBUTIONS)}, got {method!r}")
