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
  plus Gaussian noise of 0.01 in [0, 1] pixel units (ROAD's), i.e. ``0.01 / std_c`` in the model's normalised
  input for colour ``c``. Only neighbours within the frame are used: a neighbouring frame would hand the
  removed content back (it shows the same object one step earlier). The linear system (symmetric positive
  definite once each row is multiplied by its weight sum) is solved by batched conjugate gradients with a
  Jacobi preconditioner from a pull-push start, to a relative residual of ``tol`` (1e-4) per frame and
  colour; the largest residual reached is returned. On a CPU the frames are solved one at a time (a few, when
  small): the solve is memory-bound, so a frame's working set must stay in the cache (BENCHMARKS.md, "ROAD
  fill in cache-sized chunks"). A frame with no pixel left takes the clip's mean colour.

The functions return the target's softmax probability and its logit, ``(N, 2)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conv3t.explain.methods.attribution import logits_of

__all__ = [
    "FRAME_RULE",
    "SPATIAL_RULE",
    "ablated_probabilities",
    "curve_auc",
    "frame_probabilities",
    "road_impute",
    "road_solve",
    "spatial_probabilities",
    "target_probabilities",
]

FRAME_RULE = "a deleted frame is replaced by the clip's temporal mean frame"
SPATIAL_RULE = (
    "removed pixels are imputed from their neighbours in the same frame (ROAD noisy linear imputation solved to "
    "a residual of 1e-4, noise 0.01 in [0, 1] pixel units)"
)
NOISE = 0.01  # ROAD's noise, in [0, 1] pixel units
TOL = 1e-4  # relative residual the ROAD system is solved to (max error ~2e-4 image std, measured)
_DTYPE = torch.float32
_CHUNK_VALUES = 2**17  # values per CG chunk on a CPU (one 3 x 150 x 224 frame: ~10 tensors of 0.4 MB each)
# ROAD's neighbour weights: 1/6 for the edge neighbours, 1/12 for the diagonal ones (they sum to 1)
_ROAD_KERNEL = torch.tensor([[1 / 12, 1 / 6, 1 / 12], [1 / 6, 0.0, 1 / 6], [1 / 12, 1 / 6, 1 / 12]])


def target_probabilities(model: nn.Module, clips: Tensor, target: int) -> Tensor:
    """``(N, 2)``: softmax probability and logit of class ``target`` for ``clips (N, C, T, H, W)`` (no
    gradients)."""
    with torch.no_grad():
        logits = logits_of(model)(clips).float()
        return torch.stack([torch.softmax(logits, dim=1)[:, target], logits[:, target]], 1).cpu()


def curve_auc(curve: Tensor, fractions: Tensor | None = None) -> Tensor:
    """Trapezoidal area under ``curve (..., S + 1)`` over ``fractions (S + 1,)`` (the fractions actually removed,
    0..1; default ``S`` equal steps): ``(...)``."""
    if fractions is None:
        fractions = torch.linspace(0, 1, curve.shape[-1], dtype=curve.dtype)
    widths = (fractions[1:] - fractions[:-1]).to(curve)
    return ((curve[..., 1:] + curve[..., :-1]) / 2 * widths).sum(-1)


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
        ``(D, 2)`` probabilities and logits.
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
    """``(D, 2)`` target probabilities and logits for ``clip (1, C, T, H, W)`` with the frames of each row of
    ``deleted (D, T)`` (bool) replaced by the temporal mean frame."""
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


def _stencil(v: Tensor) -> Tensor:
    """``sum_j w_ij v_j`` over the 8 neighbours with ROAD's weights, zero outside the frame (shifted adds: several
    times faster than a depthwise ``conv2d`` on a CPU)."""
    p = F.pad(v, (1, 1, 1, 1))
    vertical = p[..., :-2, :] + p[..., 2:, :]  # (.., H, W + 2): the pixels above and below
    horizontal = p[..., 1:-1, :-2] + p[..., 1:-1, 2:]
    corners = vertical[..., :-2] + vertical[..., 2:]
    return (vertical[..., 1:-1] + horizontal) / 6 + corners / 12


def _road_operator(v: Tensor, unknown: Tensor, norm: Tensor) -> Tensor:
    """``A v`` of ROAD's system scaled by the weight sums: ``norm * v - sum_j w_ij v_j`` on the unknown pixels."""
    return unknown * (norm * v - _stencil(v * unknown))


def road_solve(
    frames: Tensor, removed: Tensor, fill: Tensor, tol: float = TOL, max_iter: int = 1000
) -> tuple[Tensor, float]:
    """ROAD's linear imputation without noise, solved by preconditioned conjugate gradients (module notes).

    Args:
        frames: ``(N, C, H, W)``; removed: ``(N, H, W)`` bool; fill: ``(N, C)`` for frames with nothing left.
        tol: relative residual ``|b - A x| / |b|`` to reach in every frame and colour.

    Returns:
        The imputed frames and the largest relative residual reached.
    """
    n, c = frames.shape[:2]
    removed = removed.to(frames.device)
    count = removed.flatten(1).sum(1)
    empty = count == removed[0].numel()  # frames with no pixel left
    rows = ((count > 0) & ~empty).nonzero().flatten()  # only frames with a hole are solved
    out = torch.where(empty.view(n, 1, 1, 1), fill.view(n, c, 1, 1).to(frames), frames)
    if not len(rows):
        return out, 0.0
    # on a CPU, a few frames at a time: CG is memory-bound, and a chunk whose ~10 working tensors stay in the
    # cache runs 10x faster than a batch of 8 clips (240 frames at 150 x 224, BENCHMARKS.md); on a GPU, one batch
    step = max(1, _CHUNK_VALUES // (c * removed[0].numel())) if frames.device.type == "cpu" else len(rows)
    worst = 0.0
    for start in range(0, len(rows), step):
        part = rows[start : start + step]
        solved, res = _cg(frames[part].to(_DTYPE), removed[part], fill[part].to(_DTYPE), tol, max_iter)
        out[part] = solved.to(frames.dtype)
        worst = max(worst, res)
    return out, worst


def _cg(x0: Tensor, removed: Tensor, fill: Tensor, tol: float, max_iter: int) -> tuple[Tensor, float]:
    """Jacobi-preconditioned CG on frames that each have known and unknown pixels; frames that have converged
    leave the batch (the systems are independent), so a batch costs what its slowest frames need."""
    n, c = x0.shape[:2]
    unknown = removed[:, None].to(x0.dtype).expand(n, c, *x0.shape[-2:]).contiguous()
    x = _pull_push(x0, 1 - unknown[:, :1], fill.view(n, c, 1, 1))
    norm = _stencil(torch.ones_like(x[:1, :1]))
    b = unknown * _stencil(x0 * (1 - unknown))
    b_norm = b.flatten(2).norm(dim=2).clamp_min(1e-30)
    r = b - _road_operator(x, unknown, norm)
    z = r / norm
    d = z.clone()
    rz = (r * z).flatten(2).sum(2)
    residual = r.flatten(2).norm(dim=2) / b_norm
    # on the frames' device: the masks below are computed there (CPU index tensors would not take them on CUDA)
    out, worst = x.clone(), torch.zeros(n, dtype=x0.dtype, device=x0.device)
    live = torch.arange(n, device=x0.device)
    for _ in range(max_iter):
        going = (residual > tol).any(1)
        if not bool(going.all()):
            done = live[~going]
            out[done], worst[done] = x[~going], residual[~going].amax(1)
            live, x, r, d, z, rz = live[going], x[going], r[going], d[going], z[going], rz[going]
            unknown, b_norm, residual = unknown[going], b_norm[going], residual[going]
        if not len(live):
            break
        ad = _road_operator(d, unknown, norm)
        alpha = rz / (d * ad).flatten(2).sum(2).clamp_min(1e-30)
        x = x + alpha[..., None, None] * d
        r = r - alpha[..., None, None] * ad
        z = r / norm
        rz_new = (r * z).flatten(2).sum(2)
        d = z + (rz_new / rz.clamp_min(1e-30))[..., None, None] * d
        rz = rz_new
        residual = r.flatten(2).norm(dim=2) / b_norm
    if len(live):
        out[live], worst[live] = x, residual.amax(1)
    keep = removed[:, None].expand_as(x0)
    return torch.where(keep, out, x0), float(worst.max())


def road_impute(
    frames: Tensor,
    removed: Tensor,
    fill: Tensor,
    noise_std: float | Tensor,
    generator: torch.Generator,
    tol: float = TOL,
) -> Tensor:
    """ROAD-style noisy linear imputation of ``removed`` pixels (module notes).

    Args:
        frames: ``(N, C, H, W)`` images (frames of clips).
        removed: ``(N, H, W)`` bool, the pixels to impute.
        fill: ``(N, C)`` value of a frame with no pixel left.
        noise_std: standard deviation of the noise added to the imputed pixels, in the units of ``frames``
            (a number, or ``(C,)`` per colour).
        generator: a CPU generator for the noise.
        tol: the relative residual the linear system is solved to.

    Returns:
        ``(N, C, H, W)``: ``frames`` with the removed pixels imputed.
    """
    x, _ = road_solve(frames, removed, fill, tol)
    std = torch.as_tensor(noise_std, dtype=frames.dtype).reshape(1, -1, 1, 1)
    noise = torch.randn(frames.shape, generator=generator).to(frames) * std.to(frames.device)
    return torch.where(removed[:, None].to(frames.device), x + noise, x)


def spatial_probabilities(
    model: nn.Module,
    clip: Tensor,
    target: int,
    orders: Tensor,
    counts: list[int],
    batch_size: int,
    generator: torch.Generator,
    noise_std: Tensor,
) -> tuple[Tensor, float]:
    """Target probabilities and logits with the first ``counts[j]`` positions of each pixel order removed (ROAD
    imputation).

    Args:
        clip: ``(1, C, T, H, W)``.
        orders: ``(D, T * H * W)`` pixel positions (flat ``(t, y, x)`` indices), most relevant first.
        counts: how many positions to remove at each step.
        noise_std: ``(C,)`` imputation noise in the clip's units.

    Returns:
        ``(D, len(counts), 2)`` and the largest relative residual of the ROAD systems solved.
    """
    _, c, t, h, w = clip.shape
    fill = clip.mean(dim=(2, 3, 4)).expand(t, c)
    jobs = [(d, j) for d in range(orders.shape[0]) for j in range(len(counts))]
    out = torch.empty(orders.shape[0], len(counts), 2)
    worst = 0.0
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        removed = torch.zeros(len(chunk), t * h * w, dtype=torch.bool)
        for row, (d, j) in enumerate(chunk):
            removed[row, orders[d, : counts[j]]] = True
        removed = removed.view(len(chunk) * t, h, w)
        frames = clip[0].transpose(0, 1).repeat(len(chunk), 1, 1, 1)  # (chunk * T, C, H, W)
        x, residual = road_solve(frames, removed, fill.repeat(len(chunk), 1))
        worst = max(worst, residual)
        noise = torch.randn(frames.shape, generator=generator).to(frames) * noise_std.to(frames).view(1, c, 1, 1)
        imputed = torch.where(removed[:, None].to(frames.device), x + noise, x)
        clips = imputed.view(len(chunk), t, c, h, w).transpose(1, 2)
        p = target_probabilities(model, clips, target)
        for row, (d, j) in enumerate(chunk):
            out[d, j] = p[row]
    return out, worst
