"""Response energies of a network's layers to a stimulus set, streamed: bounded memory at any size.

The stimulus set (``V`` texture views of ``M`` motions, :class:`StimulusSet`) is rendered a batch at a time,
and each hooked layer's output is reduced at once, inside its forward hook, to the per-channel numbers the
tuning needs (:class:`EnergyAccumulator`): a running sum of whole-map energies and running moments of the
responses in a window about the map centre. No activation of the whole set is kept, so the memory a run
holds depends on the batch size, not on the number of views, motions or layers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from conv3t.runtime import model_device
from conv3t.verify.budget import run_in_batches
from conv3t.verify.stimuli import Motion, motion_clips
from conv3t.verify.tuning import response_energy

__all__ = ["EnergyAccumulator", "StimulusSet", "ViewStats", "centre_window", "stream_energies"]

#: ``progress(done, total)``: items (clips) measured so far.
ProgressFn = Callable[[int, int], None]


def centre_window(size: int, radius: int) -> slice:
    """A window symmetric about the middle of a dimension: ``2 r + 1`` indices (odd sizes) or ``2 r + 2``."""
    lo, hi = (size - 1) // 2 - radius, size // 2 + 1 + radius
    return slice(max(lo, 0), min(hi, size))


@dataclass(frozen=True)
class StimulusSet:
    """``V`` views (texture windows at ``offsets``) of the clips of ``motions``, item ``i`` = view ``i // M``,
    motion ``i % M`` (view-major), rendered on demand.

    Attributes:
        texture: ``(C, S, S)`` periodic texture, on the device where the clips are rendered (the model's).
        offsets: ``(V, 2)`` texture positions (pixels) at the frame centre in frame 0, one per view.
        motions: the ``M`` motions.
        frames, size: clip length ``T`` and frame side ``H = W`` or ``(H, W)``.
        mean, std: when given (``C`` values each), clips are shown as pixels ``0.5 + 0.18 * texture`` clamped
            to ``[0, 1]`` and normalised ``(pixels - mean) / std``; otherwise the texture values as they are.
    """

    texture: Tensor
    offsets: Tensor
    motions: tuple[Motion, ...]
    frames: int
    size: int | tuple[int, int]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    @property
    def views(self) -> int:
        return int(self.offsets.shape[0])

    def __len__(self) -> int:
        return self.views * len(self.motions)

    def render(self, start: int, stop: int) -> Tensor:
        """Items ``start .. stop - 1``: ``(stop - start, C, T, H, W)`` float32 on the texture's device."""
        m = len(self.motions)
        parts = []
        offsets = self.offsets.tolist()  # host numbers: the offsets choose the sampling grid, never a device tensor
        for view in range(start // m, (stop - 1) // m + 1):
            lo, hi = max(start, view * m) - view * m, min(stop, (view + 1) * m) - view * m
            x, y = offsets[view]
            parts.append(motion_clips(self.texture, self.motions[lo:hi], self.frames, self.size, offset=(x, y)))
        clips = torch.cat(parts) if len(parts) > 1 else parts[0]
        if self.mean is None or self.std is None:
            return clips
        mean = torch.tensor(self.mean, dtype=torch.float32, device=clips.device).view(1, -1, 1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=clips.device).view(1, -1, 1, 1, 1)
        # in place, the same operations as ((0.5 + 0.18 * clips).clamp(0, 1) - mean) / std: no temporaries
        return clips.mul_(0.18).add_(0.5).clamp_(0.0, 1.0).sub_(mean).div_(std)


@dataclass(frozen=True)
class ViewStats:
    """A layer's reductions per texture view, what the sampling uncertainty of its readings is estimated from.

    Attributes:
        full: ``(V, M, C)`` whole-map energy of each view's clip of each motion.
        mean, m2: ``(V, M, C)`` mean and sum of squared deviations of the clip's centre-window responses.
        count: ``(V, M)`` centre values per clip (0 where a view's clip of a motion was not measured).
    All float64 tensors on the CPU.
    """

    full: Tensor
    mean: Tensor
    m2: Tensor
    count: Tensor

    @property
    def views(self) -> int:
        return int(self.full.shape[0])

    def energies(self, keep: Sequence[bool] | None = None, views: int | None = None) -> Tensor:
        """``(M, C, 2)`` of the views in ``keep`` (a ``(V,)`` bool mask; default all): index 0 the whole-map
        energy summed over them and divided by ``views`` (default their number), index 1 the variance of the
        centre window's responses pooled over them (over views, border-cropped time and window positions)."""
        sel = [True] * self.views if keep is None else [bool(k) for k in keep]
        index = torch.tensor([v for v, k in enumerate(sel) if k], dtype=torch.long)
        n = self.count[index][..., None]  # (v, M, 1)
        total = n.sum(dim=0).clamp_min(1)
        mean = self.mean[index]
        grand = (n * mean).sum(dim=0) / total
        m2 = self.m2[index].sum(dim=0) + (n * (mean - grand).square()).sum(dim=0)
        full = self.full[index].sum(dim=0) / (len(index) if views is None else views)
        return torch.stack((full, m2 / total), dim=-1)


class EnergyAccumulator:
    """Per view, motion and channel: the whole-map energy and the centre window's mean and sum of squared
    deviations (float64), kept per view so that the readings' sampling error over views can be estimated
    (:mod:`conv3t.verify.sequential`); ``(V, M, C)`` numbers per layer, never an activation."""

    def __init__(self, motions: int, radius: int) -> None:
        self.motions = motions
        self.radius = radius
        self._views: dict[int, tuple[Tensor, Tensor, Tensor, Tensor]] = {}  # view -> full, mean, m2, count

    @staticmethod
    def reduce(output: Tensor, radius: int) -> tuple[Tensor, Tensor, Tensor, int]:
        """``output (B, C, T, H, W)`` -> whole-map energies ``(B, C)``, centre means ``(B, C)`` and sums of
        squared deviations ``(B, C)`` (float64, on the CPU) and the number of centre values per clip."""
        _, _, t, h, w = output.shape
        energy = response_energy(output, 0.25)
        keep = slice(int(t * 0.25), t - int(t * 0.25)) if t >= 4 else slice(None)
        window = output[:, :, keep, centre_window(h, radius), centre_window(w, radius)].double().flatten(2)
        mean = window.mean(dim=2)
        m2 = (window - mean[..., None]).square().sum(dim=2)
        return energy.cpu(), mean.cpu(), m2.cpu(), int(window.shape[2])

    def add(self, items: Sequence[tuple[int, int]], energy: Tensor, mean: Tensor, m2: Tensor, n: int) -> None:
        """Record one batch: row ``i`` is the clip of view ``items[i][0]``, motion ``items[i][1]``."""
        for row, (view, k) in enumerate(items):
            if view not in self._views:
                shape = (self.motions, energy.shape[1])
                zeros = [torch.zeros(shape, dtype=torch.float64) for _ in range(3)]
                self._views[view] = (*zeros, torch.zeros(self.motions, dtype=torch.float64))
            full, mu, dev, count = self._views[view]
            full[k], mu[k], dev[k], count[k] = energy[row], mean[row], m2[row], n

    def view_stats(self) -> ViewStats:
        """The views recorded so far, in view order."""
        if not self._views:
            raise RuntimeError("no output was measured")
        parts = [self._views[v] for v in sorted(self._views)]
        full, mean, m2, count = (torch.stack([p[i] for p in parts]) for i in range(4))
        return ViewStats(full, mean, m2, count)

    def result(self, views: int) -> Tensor:
        """``(M, C, 2)``: index 0 the whole-map energy summed over the views and divided by ``views``; index 1
        the variance of the centre window's responses over views, (border-cropped) time and window positions."""
        return self.view_stats().energies(views=views)


def stream_energies(
    model: nn.Module,
    layers: Sequence[str],
    stimuli: StimulusSet,
    batch_size: int,
    centre_radius: int = 2,
    start: int = 0,
    stop: int | None = None,
    progress: ProgressFn | None = None,
    accumulators: dict[str, EnergyAccumulator] | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> tuple[dict[str, EnergyAccumulator], int]:
    """Feed items ``start .. stop - 1`` (default: to the end) of ``stimuli`` to ``model`` in batches and
    reduce the named layers' outputs.

    Args:
        model: in eval mode; ``""`` in ``layers`` names the model itself.
        layers: qualified module names whose outputs ``(N, C, T, H, W)`` are measured.
        batch_size: clips per forward pass (halved and retried on a CUDA out-of-memory error).
        accumulators: continue these (from an earlier call); default new ones.

    Returns:
        ``(accumulators, batch size used last)``; ``accumulators[name].result(stimuli.views)`` gives the
        layer's ``(M, C, 2)`` energies (see :meth:`EnergyAccumulator.result`).
    """
    motions = len(stimuli.motions)
    acc = accumulators if accumulators is not None else {n: EnergyAccumulator(motions, centre_radius) for n in layers}
    device = model_device(model)
    modules = dict(model.named_modules())
    pending: dict[str, tuple[Tensor, Tensor, Tensor, int]] = {}
    handles = []
    for name in layers:

        def hook(_m: nn.Module, _args: tuple, output: Tensor, _name: str = name) -> None:
            pending[_name] = EnergyAccumulator.reduce(output, centre_radius)

        handles.append(modules[name].register_forward_hook(hook))

    def work(lo: int, hi: int) -> None:
        pending.clear()
        with torch.no_grad():
            model(stimuli.render(lo, hi).to(device))
        index = [divmod(i, motions) for i in range(lo, hi)]
        for name in layers:  # merged only once the whole batch went through (a retried batch counts once)
            acc[name].add(index, *pending[name])
        pending.clear()
        if progress is not None:
            progress(hi, len(stimuli))

    try:
        end = len(stimuli) if stop is None else stop
        used = run_in_batches(end - start, batch_size, lambda a, b: work(start + a, start + b), on_retry)
    finally:
        for h in handles:
            h.remove()
    return acc, used
