"""Signed frame attribution against the mean-frame baseline: exact on a hand-computed linear model, complete
(integrated gradients), and on the planted networks it ranks the decisive frames first and moves with them,
where the unsigned zero-baseline frame importance does not."""

from __future__ import annotations

import itertools

import pytest
import torch
from planted import (
    CLASSES,
    DECISIVE_FRAMES,
    SIZE,
    frame_planted_clip,
    frame_planted_net,
    planted_net,
)
from torch import Tensor, nn

from conv3t.explain.methods.frame_attribution import (
    FRAME_ATTRIBUTIONS,
    first_order_frame_attribution,
    frame_attribution,
    integrated_frame_attribution,
    mean_frame_clip,
)
from conv3t.verify.stimuli import Motion, motion_clips, noise_texture


class FrameWeights(nn.Module):
    """``logit_0 = sum_t a_t * sum_{c,y,x} x_t`` (linear, no bias); ``logit_1 = -logit_0``."""

    def __init__(self, a: list[float]) -> None:
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a))

    def forward(self, x: Tensor) -> Tensor:
        s = (x.sum(dim=(1, 3, 4)) * self.a).sum(1)
        return torch.stack([s, -s], 1)


def test_mean_frame_clip_repeats_the_temporal_mean() -> None:
    x = torch.arange(2 * 1 * 3 * 1 * 2, dtype=torch.float32).view(2, 1, 3, 1, 2)
    base = mean_frame_clip(x)
    assert base.shape == x.shape
    torch.testing.assert_close(base[0, 0, :, 0, 0], torch.tensor([2.0, 2.0, 2.0]))  # mean of 0, 2, 4
    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\)"):
        mean_frame_clip(x[0])


def test_both_are_exact_for_a_linear_model() -> None:
    # frames constant 1, 2, 3, 6 on 2 x 2 pixels: frame sums 4 v_t, mean frame value 3;
    # a_t * 4 * (v_t - 3) with a = (1, -1, 2, 0.5): (-8, 4, 0, 6), adding up to logit(x) - logit(mean clip)
    x = torch.tensor([1.0, 2.0, 3.0, 6.0]).view(1, 1, 4, 1, 1).expand(1, 1, 4, 2, 2).contiguous()
    model = FrameWeights([1.0, -1.0, 2.0, 0.5])
    expected = torch.tensor([[-8.0, 4.0, 0.0, 6.0]], dtype=torch.float64)
    for attribution in (
        first_order_frame_attribution(model, x, 0),
        integrated_frame_attribution(model, x, 0, steps=4),
    ):
        torch.testing.assert_close(attribution.frames, expected)
        torch.testing.assert_close(attribution.logit_gap, torch.tensor([2.0], dtype=torch.float64))
        assert abs(float(attribution.completeness_error[0])) < 1e-9
    # the other class: every sign flips (a signed attribution, unlike |x * gradient|)
    torch.testing.assert_close(first_order_frame_attribution(model, x, 1).frames, -expected)
    assert model.a.requires_grad  # parameters are frozen only while attributing


def test_integrated_gradients_add_up_to_the_logit_change() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(3, 6, 3, padding=1),
        nn.Tanh(),
        nn.Conv3d(6, 6, (3, 1, 1)),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(6, 4),
    ).eval()
    x = torch.randn(2, 3, 6, 8, 8)
    target = torch.tensor([1, 3])
    with torch.no_grad():
        logits = model(x)[torch.arange(2), target] - model(mean_frame_clip(x))[torch.arange(2), target]
    coarse = integrated_frame_attribution(model, x, target, steps=2, internal_batch_size=3)
    fine = integrated_frame_attribution(model, x, target, steps=64)
    assert fine.frames.shape == (2, 6)
    torch.testing.assert_close(fine.logit_gap, logits.double(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fine.completeness_error, fine.frames.sum(1) - logits.double(), rtol=1e-4, atol=1e-5)
    assert bool((fine.relative_error < 1e-2).all())  # float32 sums of a logit change of ~0.03
    assert float(fine.completeness_error.abs().sum()) < float(coarse.completeness_error.abs().sum())
    with pytest.raises(ValueError, match="steps"):
        integrated_frame_attribution(model, x, target, steps=0)


def test_adaptive_integrated_gradients_double_the_steps_until_complete() -> None:
    from conv3t.explain.methods.frame_attribution import IG_MAX_STEPS, IG_STEPS, IG_TOLERANCE

    # linear in the input: every quadrature is exact, so the first (IG_STEPS points) is kept
    linear = nn.Sequential(nn.Conv3d(3, 2, 3, padding=1), nn.AdaptiveAvgPool3d(1), nn.Flatten()).eval()
    x = torch.randn(2, 3, 6, 8, 8, generator=torch.Generator().manual_seed(0))
    assert integrated_frame_attribution(linear, x, 0).steps == IG_STEPS

    # sharply curved along the path: more points until the completeness error is within the tolerance
    class Curved(nn.Module):
        def forward(self, v: torch.Tensor) -> torch.Tensor:
            s = (v[:, :, 0].mean((1, 2, 3)) + 0.5) * 80  # a steep step halfway from the mean frame to frame 0
            return torch.stack([torch.sigmoid(s) * 10, s * 0], 1)

    r = integrated_frame_attribution(Curved(), x + torch.linspace(-1, 1, 6).view(1, 1, 6, 1, 1), 0)
    fixed = integrated_frame_attribution(Curved(), x + torch.linspace(-1, 1, 6).view(1, 1, 6, 1, 1), 0, steps=r.steps)
    assert r.steps == 64 <= IG_MAX_STEPS  # 16 and 32 points leave 18 % and 9 % of the gap (measured), 64: 0.1 %
    torch.testing.assert_close(r.frames, fixed.frames)
    scale = torch.maximum(r.logit_gap.abs(), r.frames.abs().sum(1))
    assert r.steps == IG_MAX_STEPS or bool((r.completeness_error.abs() <= IG_TOLERANCE * scale).all())
    half = integrated_frame_attribution(
        Curved(), x + torch.linspace(-1, 1, 6).view(1, 1, 6, 1, 1), 0, steps=r.steps // 2
    )
    assert not bool((half.completeness_error.abs() <= IG_TOLERANCE * scale).all())  # the previous doubling was not


def test_frame_attribution_dispatch() -> None:
    model = FrameWeights([1.0, -1.0, 2.0, 0.5])
    x = torch.rand(2, 1, 4, 3, 3)
    assert set(FRAME_ATTRIBUTIONS) == {"input_x_gradient", "first_order", "integrated_gradients"}
    for method in FRAME_ATTRIBUTIONS:
        assert frame_attribution(model, x, [0, 1], method).shape == (2, 4)
    torch.testing.assert_close(frame_attribution(model, x, 0, "input_x_gradient").sum(1), torch.ones(2))
    with pytest.raises(ValueError, match="method must be one of"):
        frame_attribution(model, x, 0, "saliency")


def _shifted_frame_planted(shift: int) -> tuple[nn.Module, Tensor, tuple[int, ...]]:
    """FramePlantedNet with its decisive frames moved ``shift`` frames later, and its clip rolled with them."""
    net = frame_planted_net()
    with torch.no_grad():
        net.time.weight.copy_(net.time.weight.roll(shift, dims=2))
    decisive = tuple(sorted((t + shift) % 8 for t in DECISIVE_FRAMES))
    return net, frame_planted_clip().roll(shift, dims=1)[None], decisive


@pytest.mark.parametrize("shift", [0, 1, 3])
@pytest.mark.parametrize("method", ["first_order", "integrated_gradients"])
def test_frame_planted_net_decisive_frames_first_wherever_they_are(method: str, shift: int) -> None:
    net, clip, decisive = _shifted_frame_planted(shift)
    a = frame_attribution(net, clip, 0, method)[0]
    assert tuple(sorted(a.argsort(descending=True)[:4].tolist())) == decisive
    others = [t for t in range(8) if t not in decisive]
    assert bool((a[list(decisive)] > 1.0).all())  # logit units: each decisive frame carries ~2.7 of the 10.8
    assert float(a[others].abs().max()) < 1e-6  # the model never reads them


# --- the 3T PlantedNet: the texture moves in half of the clip and stands still in the other half ------------


def half_moving_clip(moves_first: bool, seed: int, vx: float) -> Tensor:
    """``(1, 3, 8, 32, 32)`` model input: a texture translating ``vx`` px/frame in frames 0..4 and holding
    still in frames 5..7 (``moves_first``), or holding in frames 0..2 and moving in 3..7."""
    texture = noise_texture(3, size=256, generator=torch.Generator().manual_seed(seed))
    offset = tuple(float(v) for v in torch.rand(2, generator=torch.Generator().manual_seed(seed)) * 256)
    moving = motion_clips(texture, [Motion("translation", vx=vx)], 5, SIZE, offset=offset)[0]
    held = (moving[:, -1:] if moves_first else moving[:, :1]).expand(-1, 3, -1, -1)
    clip = torch.cat([moving, held] if moves_first else [held, moving], dim=1)
    return ((0.5 + 0.18 * clip).clamp(0, 1) - 0.5)[None] / 0.18  # planted.MEAN / STD normalisation


def _late_minus_early(a: Tensor) -> float:
    """Mean attribution of frames 5..7 minus that of frames 0..2, in units of the mean |attribution|."""
    return float(a[5:].mean() - a[:3].mean()) / float(a.abs().mean())


CASES = [(seed, vx) for seed in (2, 3, 4) for vx in (1.0, -1.0)]


def test_planted_3t_attribution_moves_with_the_motion_and_the_old_one_does_not() -> None:
    net = planted_net()
    shifts: dict[str, list[tuple[float, float]]] = {m: [] for m in FRAME_ATTRIBUTIONS}
    for seed, vx in CASES:
        target = CLASSES.index("translate_right" if vx > 0 else "translate_left")
        for method in FRAME_ATTRIBUTIONS:
            early, late = (
                _late_minus_early(frame_attribution(net, half_moving_clip(first, seed, vx), target, method)[0])
                for first in (True, False)
            )
            shifts[method].append((early, late))
    for method in ("first_order", "integrated_gradients"):
        # the moving half outweighs the still half, whichever half it is
        assert all(early < -0.3 and late > 0.3 for early, late in shifts[method]), (method, shifts[method])
    # |x * gradient| ranks the middle frames first whatever the clip: it barely follows the motion
    assert all(late - early < 0.3 for early, late in shifts["input_x_gradient"]), shifts["input_x_gradient"]


def _deletion_logits(net: nn.Module, clip: Tensor, target: int) -> Tensor:
    """``(2^T,)`` the target's logit with each subset of frames (bit t = frame t) replaced by the mean frame."""
    frames = clip.shape[2]
    masks = torch.tensor([[s >> t & 1 for t in range(frames)] for s in range(2**frames)], dtype=torch.bool)
    mean = clip.mean(2, keepdim=True)
    batch = torch.where(masks.view(-1, 1, frames, 1, 1), mean, clip)
    with torch.no_grad():
        return net(batch)[:, target]


def _share_of_orders_as_good(logits: Tensor, order: Tensor) -> float:
    """The share of all T! deletion orders whose deletion curve (sum of the logit after each deletion) is at
    most that of ``order``: an exact rank, 1 / T! for the best order."""
    frames = order.numel()
    perms = torch.tensor(list(itertools.permutations(range(frames))))
    areas = logits[torch.cumsum(2**perms, 1)].sum(1)
    area = logits[torch.cumsum(2 ** order.view(1, -1), 1)].sum()
    return float((areas <= area).double().mean())


@pytest.mark.slow
def test_planted_3t_attribution_orders_frames_as_well_as_the_best_few_percent() -> None:
    """The ground truth is exhaustive: every one of the 2^8 frame subsets deleted (replaced by the mean frame,
    as the faithfulness check does) and every one of the 8! deletion orders ranked."""
    net = planted_net()
    shares: dict[str, list[float]] = {m: [] for m in FRAME_ATTRIBUTIONS}
    for seed, vx in CASES[:4]:
        target = CLASSES.index("translate_right" if vx > 0 else "translate_left")
        for first in (True, False):
            clip = half_moving_clip(first, seed, vx)
            logits = _deletion_logits(net, clip, target)
            for method in FRAME_ATTRIBUTIONS:
                order = frame_attribution(net, clip, target, method)[0].argsort(descending=True)
                shares[method].append(_share_of_orders_as_good(logits, order))
    assert max(shares["first_order"]) < 0.05, shares
    assert max(shares["integrated_gradients"]) < 0.05, shares
    assert min(shares["input_x_gradient"]) > 0.05, shares  # worse than 1 in 20 random orders on every clip
