"""The perturbations of the faithfulness checks, batched: channels set to zero, frames deleted, pixels removed.

Every function here returns the target class's softmax probability for a batch of perturbed versions of one
clip and builds the perturbed clips ``batch_size`` at a time from compact masks, so memory stays that of one
batch of clips whatever the number of draws and steps.

Rules (docs/conventions.md, "Faithfulness"):

* a *deleted frame* is the clip's temporal mean frame (per pixel and colour, over the clip's ``T`` frames): what
  the clip shows when nothing moves, in the clip's own colours, so deleting a frame removes what happens in it
  without putting a black or grey frame (unlike anything in training) into the clip;
* a *removed pixel* (within a frame, all colours) is imputed as in ROAD (Rong et al., 2022, "noisy linear
  imputation"): it takes the weighted mean of its 8 neighbours in the same frame (weights 1/6 for the 4 edge
  neighbours, 1/12 for the diagonal ones, renormalised at the border), solved for all removed pixels at once,
  plus Gaussian noise of 0.01 x the clip's standard deviation. Only neighbours within the frame are used: a
  neighbouring frame would hand the removed content back (it shows the same object one step earlier). The
  linear system is solved approximately: a pull-push fill (coarse-to-fine means of the known pixels) as the
  start, then ``sweeps`` Jacobi sweeps of ROAD's equation. A frame with no pixel left takes the clip's mean
  colour.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conv3t.explain.attribution import logits_of

__all__ = [
    "FRAME_RULE",
    "SPATIAL_RULE",
    "ablated_probabilities",
    "curve_auc",
    "frame_probabilities",
    "road_impute",
    "spatial_probabilities",
    "target_probabilities",
]

FRAME_RULE = "a deleted frame is replaced by the clip's temporal mean frame"
SPATIAL_RULE = (
    "removed pixels are imputed from their neighbours in the same frame (ROAD noisy linear imputation, "
    "noise 0.01 x the clip's std)"
)
NOISE = 0.01  # ROAD's noise, relative to the clip's standard deviation
# ROAD's neighbour weights: 1/6 for the edge neighbours, 1/12 for the diagonal ones (they sum to 1)
_ROAD_KERNEL = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]])


def target_probabilities(model: nn.Module, clips: Tensor, target: int) -> Tensor:
    """``(N,)`` softmax probability of class ``target`` for ``clips (N, C, T, H, W)`` (no gradients)."""
    with torch.no_grad():
        return torch.softmax(logits_of(model)(clips).float(), dim=1)[:, target].cpu()


def curve_auc(curve: Tensor) -> Tensor:
    """Trapezoidal area under ``curve (..., S + 1)`` over the fraction 0..1 in ``S`` equal steps: ``(...)``."""
    steps = curve.shape[-1] - 1
    return (curve.sum(-1) - (curve[..., 0] + curve[..., -1]) / 2) / steps


def _zero_hook(keep: Tensor, layer: str) -> Callable[[nn.Module, object, Tensor], Tensor]:
    def hook(_m: nn.Module, _i: object, out: Tensor) -> Tensor:
        if not isinstance(out, Tensor) or out.ndim < 2 or out.shape[1] != keep.shape[1]:
            raise ValueError(f"layer {layer!r}: expected an output (N, {keep.shape[1]}, ...), got {type(out).__name__}")
        mask = keep.to(out.device).view(*keep.shape, *([1] * (out.ndim - 2)))
        return torch.where(mask, out, torch.zeros((), dtype=out.dtype, device=out.device))

    return hook


def ablated_probabilities(
    model: nn.Module, clip: Tensor, target: int, keep: Mapping[str, Tensor], batch_size: int
) -> Tensor:
    """The target's probability with channels set to zero, one row of masks at a time.

    Args:
        clip: ``(1, C, T, H, W)``.
        keep: layer name -> ``(D, channels)`` bool: row ``d`` keeps (True) or zeroes (False) each channel of
            that layer's output during forward pass ``d``.

    Returns:
        ``(D,)`` probabilities.
    """
    modules = dict(model.named_modules())
    rows = next(iter(keep.values())).shape[0]
    out = []
    for start in range(0, rows, batch_size):
        chunk = {name: k[start : start + batch_size] for name, k in keep.items()}
        n = next(iter(chunk.values())).shape[0]
        handles = [modules[name].register_forward_hook(_zero_hook(k, name)) for name, k in chunk.items()]
        try:
            out.append(target_probabilities(model, clip.expand(n, *clip.shape[1:]), target))
        finally:
            for h in handles:
                h.remove()
    return torch.cat(out)


def frame_probabilities(model: nn.Module, clip: Tensor, target: int, deleted: Tensor, batch_size: int) -> Tensor:
    """``(D,)`` target probabilities for ``clip (1, C, T, H, W)`` with the frames of each row of ``deleted
    (D, T)`` (bool) replaced by the temporal mean frame."""
    mean = clip.mean(dim=2, keepdim=True)
    out = []
    for start in range(0, deleted.shape[0], batch_size):
        rows = deleted[start : start + batch_size].to(clip.device).view(-1, 1, clip.shape[2], 1, 1)
        out.append(target_probabilities(model, torch.where(rows, mean, clip), target))
    return torch.cat(out)


def _pull_push(x: Tensor, known: Tensor, fill: Tensor) -> Tensor:
    """Fill the unknown pixels of ``x (N, C, H, W)`` (``known (N, 1, H, W)`` float 0/1) with means of the known
    pixels at the finest scale where there are any; ``fill (N, C, 1, 1)`` where none is left at 1 x 1."""
    h, w = x.shape[-2:]
    if h == 1 and w == 1:
        return torch.where(known > 0, x, fill)
    coarse_w = F.avg_pool2d(known, 2, ceil_mode=True)
    coarse_x = F.avg_pool2d(x * known, 2, ceil_mode=True) / coarse_w.clamp_min(1e-12)
    coarse = _pull_push(coarse_x, (coarse_w > 0).to(x.dtype), fill)
    up = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return torch.where(known > 0, x, up)


def road_impute(
    frames: Tensor,
    removed: Tensor,
    fill: Tensor,
    noise_std: float | Tensor,
    generator: torch.Generator,
    sweeps: int = 20,
) -> Tensor:
    """ROAD-style noisy linear imputation of ``removed`` pixels (module notes).

    Args:
        frames: ``(N, C, H, W)`` images (frames of clips).
        removed: ``(N, H, W)`` bool, the pixels to impute.
        fill: ``(N, C)`` value of a frame with no pixel left.
        noise_std: standard deviation of the noise added to the imputed pixels (input units; a number or a
            0-dim tensor on the frames' device).
        generator: a CPU generator for the noise.
        sweeps: Jacobi sweeps after the pull-push start.

    Returns:
        ``(N, C, H, W)``: ``frames`` with the removed pixels imputed.
    """
    n, c = frames.shape[:2]
    mask = removed[:, None].to(frames.device)
    known = (~mask).to(frames.dtype)
    x = _pull_push(frames, known, fill.view(n, c, 1, 1).to(frames.dtype))
    kernel = _ROAD_KERNEL.to(frames).expand(c, 1, 3, 3)
    norm = F.conv2d(torch.ones_like(frames[:1, :1]), kernel[:1], padding=1)
    for _ in range(sweeps):
        x = torch.where(mask, F.conv2d(x, kernel, padding=1, groups=c) / norm, x)
    noise = torch.randn(frames.shape, generator=generator).to(frames) * noise_std
    return torch.where(mask, x + noise, x)


def spatial_probabilities(
    model: nn.Module,
    clip: Tensor,
    target: int,
    orders: Tensor,
    counts: list[int],
    batch_size: int,
    generator: torch.Generator,
    sweeps: int = 20,
) -> Tensor:
    """Target probabilities with the first ``counts[j]`` positions of each pixel order removed (ROAD imputation).

    Args:
        clip: ``(1, C, T, H, W)``.
        orders: ``(D, T * H * W)`` pixel positions (flat ``(t, y, x)`` indices), most relevant first.
        counts: how many positions to remove at each step.

    Returns:
        ``(D, len(counts))``.
    """
    _, c, t, h, w = clip.shape
    fill = clip.mean(dim=(2, 3, 4)).expand(t, c)
    noise_std = NOISE * clip.std()  # stays on the clip's device: no host read per clip
    jobs = [(d, j) for d in range(orders.shape[0]) for j in range(len(counts))]
    out = torch.empty(orders.shape[0], len(counts))
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        removed = torch.zeros(len(chunk), t * h * w, dtype=torch.bool)
        for row, (d, j) in enumerate(chunk):
            removed[row, orders[d, : counts[j]]] = True
        removed = removed.view(len(chunk) * t, h, w)
        frames = clip[0].transpose(0, 1).repeat(len(chunk), 1, 1, 1)  # (chunk * T, C, H, W)
        imputed = road_impute(frames, removed, fill.repeat(len(chunk), 1), noise_std, generator, sweeps)
        clips = imputed.view(len(chunk), t, c, h, w).transpose(1, 2)
        p = target_probabilities(model, clips, target)
        for row, (d, j) in enumerate(chunk):
            out[d, j] = p[row]
    return out
