"""The faithfulness checks (conv3t.explain.faithfulness) against a planted network whose decisive channel and
frames are known (tests/explain/planted.py, FramePlantedNet), against explanations that are wrong on purpose,
against hooks written here, and on models that are not conv3t's (a plain nn.Conv3d network, torchvision r3d_18)."""

from __future__ import annotations

import pytest
import torch
from planted import (
    DECISIVE_CHANNEL,
    DECISIVE_FRAMES,
    FRAME_CLASSES,
    frame_planted_clip,
    frame_planted_net,
)
from torch import nn

from conv3t.explain.faithfulness import (
    Explanation,
    Faithfulness,
    default_layer_groups,
    explain_clip,
    road_impute,
    spearman,
)

TARGET = 0  # red_square


def _explained():  # type: ignore[no-untyped-def]
    net, clip = frame_planted_net(), frame_planted_clip()
    explanation = explain_clip(net, clip, TARGET, layers=["conv1"], cam_layer="conv1")
    return net, clip, explanation


def test_the_planted_explanation_credits_the_decisive_channel_and_frames() -> None:
    _, _, e = _explained()
    assert dict(e.channels) == {"conv1": (DECISIVE_CHANNEL,)}
    assert set(e.frame_importance.topk(len(DECISIVE_FRAMES)).indices.tolist()) == set(DECISIVE_FRAMES)


def test_ablating_the_credited_channel_removes_the_class_and_beats_random_channels() -> None:
    net, clip, e = _explained()
    r = Faithfulness(net, draws=20, seed=0, randomise=False, classes=FRAME_CLASSES).evaluate(clip, TARGET, e)
    a = r.channel_ablation
    assert a.k == 1 and a.draws == 20 and a.p_before > 0.99
    assert a.p_after_credited < 0.5  # the other class wins: logit 0 against the bias 3
    # 1 of 16 channels is decisive: the random mean is near p_before
    assert a.p_after_random_mean > 0.8
    assert r.verdict("channel_ablation").passed is True
    assert (
        "removing the 1 credited channel drops p(red_square) from 1.00 to 0.05"
        in r.verdict("channel_ablation").sentence
    )


def test_p_after_credited_equals_a_direct_computation_with_own_hooks() -> None:
    net, clip, _ = _explained()
    channels = (DECISIVE_CHANNEL, 7)
    e = Explanation(channels={"conv1": channels, "time": (3,)})
    r = Faithfulness(net, draws=3, seed=0, randomise=False).evaluate(clip, TARGET, e)

    def zero(idx: tuple[int, ...]):  # type: ignore[no-untyped-def]
        def hook(_m, _i, out):  # type: ignore[no-untyped-def]
            out = out.clone()
            out[:, list(idx)] = 0
            return out

        return hook

    handles = [net.conv1.register_forward_hook(zero(channels)), net.time.register_forward_hook(zero((3,)))]
    try:
        with torch.no_grad():
            expected = torch.softmax(net(clip[None]), 1)[0, TARGET].item()
    finally:
        for h in handles:
            h.remove()
    assert r.channel_ablation.k == 3
    assert abs(r.channel_ablation.p_after_credited - expected) < 1e-5


def test_frame_deletion_auc_is_below_random_orders_and_insertion_above() -> None:
    net, clip, e = _explained()
    r = Faithfulness(net, draws=20, seed=0, randomise=False).evaluate(clip, TARGET, e)
    d, i = r.frame_deletion, r.frame_insertion
    assert d.auc < d.random_auc_mean and i.auc > i.random_auc_mean
    # curves start at the whole clip (deletion) / the all-deleted clip (insertion) and meet at the other end
    assert d.curve[0] == i.curve[-1] and d.curve[-1] == i.curve[0]
    # after the 4 decisive frames are deleted nothing of the square is left (its temporal mean is grey)
    assert max(d.curve[len(DECISIVE_FRAMES) :]) < 0.1
    assert "temporal mean" in d.rule


def test_spatial_deletion_from_gradcam_beats_random_pixel_orders() -> None:
    net, clip, e = _explained()
    r = Faithfulness(net, draws=20, steps=10, seed=0, randomise=False).evaluate(clip, TARGET, e)
    s = r.spatial_deletion
    assert s.auc < s.random_auc_mean - 2 * s.random_auc_std
    assert s.curve[1] < 0.5  # the square (4 x 36 of 2048 positions) is gone within the first 10 %
    assert r.verdict("spatial_deletion").passed is True


def test_randomisation_correlations_fall_and_the_model_is_not_changed() -> None:
    net, clip, e = _explained()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = Faithfulness(net, draws=2, seed=0).evaluate(clip, TARGET, e)
    assert [s.layers_randomised for s in r.randomisation] == [("fc",), ("fc", "time"), ("fc", "time", "conv1")]
    first, last = r.randomisation[0], r.randomisation[-1]
    # with only the head randomised the temporal layer still reads the decisive frames alone
    assert first.frame_importance_rank_corr > 0.9
    for name in ("gradcam_rank_corr", "frame_importance_rank_corr", "channel_rank_corr"):
        assert getattr(last, name) < getattr(first, name)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training and all(m.training for m in net.modules())


def test_eval_mode_is_used_and_each_module_mode_restored() -> None:
    net, clip, e = _explained()
    net.train()
    net.time.eval()
    seen: list[bool] = []
    net.conv1.register_forward_hook(lambda m, i, o: seen.append(m.training))
    Faithfulness(net, draws=2, seed=0, randomise=False).evaluate(clip, TARGET, e)
    assert seen and not any(seen)
    assert net.training and net.conv1.training and not net.time.training


def test_random_channels_as_explanation_pass_only_when_they_hit_the_decisive_one() -> None:
    net, clip, _ = _explained()
    picks = torch.randint(0, 16, (12,), generator=torch.Generator().manual_seed(3)).tolist()
    check = Faithfulness(net, draws=20, seed=0, randomise=False)
    passed = [
        check.evaluate(clip, TARGET, Explanation(channels={"conv1": (c,)})).verdict("channel_ablation").passed
        for c in picks
    ]
    assert passed == [c == DECISIVE_CHANNEL for c in picks]


def test_random_frame_importance_scores_at_chance() -> None:
    net, clip, _ = _explained()
    check = Faithfulness(net, draws=20, seed=1, randomise=False)
    gen = torch.Generator().manual_seed(5)
    results = [
        check.evaluate(clip, TARGET, Explanation(frame_importance=torch.rand(8, generator=gen))).frame_deletion
        for _ in range(10)
    ]
    z = torch.tensor([(r.random_auc_mean - r.auc) / r.random_auc_std for r in results])
    # a random order is one more draw from the random orders' distribution: mean z near 0, rarely beyond 2
    assert abs(float(z.mean())) < 2 / 10**0.5
    assert int((z > 2).sum()) <= 1


@pytest.mark.slow
def test_works_on_torchvision_r3d_18_and_leaves_its_weights() -> None:
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    model = r3d_18(weights=None, num_classes=4).eval()
    clip = torch.randn(3, 4, 32, 32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    e = explain_clip(model, clip, 1, layers=["layer1.0.conv1.0", "layer2.0.conv1.0"], top_channels=3)
    assert e.gradcam.shape == (4, 32, 32) and e.frame_importance.shape == (4,) and e.credited >= 1
    r = Faithfulness(model, draws=3, steps=2, seed=0).evaluate(clip, 1, e)
    assert r.channel_ablation.k == e.credited and r.frame_deletion is not None and r.spatial_deletion is not None
    assert [s.layers_randomised[-1] for s in r.randomisation] == ["fc", "layer4", "layer3", "layer2", "layer1", "stem"]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_input_names_the_argument() -> None:
    net, clip, e = _explained()
    check = Faithfulness(net, draws=2, randomise=False)
    with pytest.raises(ValueError, match=r"^clip: the model cannot run on a clip of shape \(3, 4, 16, 16\)"):
        check.evaluate(clip[:, :4], TARGET, Explanation(channels={"conv1": (0,)}))
    with pytest.raises(ValueError, match=r"^clip has 1 frames; the checks need at least 2"):
        check.evaluate(clip[:, :1], TARGET, Explanation())
    with pytest.raises(ValueError, match=r"^target must be a class index in \[0, 2\)"):
        check.evaluate(clip, 2, e)
    with pytest.raises(ValueError, match=r"^target must be a class index \(an integer\), got 0.0"):
        check.evaluate(clip, 0.0, e)  # type: ignore[arg-type]
    assert check.evaluate(clip, torch.tensor(TARGET), e).target == TARGET
    with pytest.raises(ValueError, match=r"^explanation.channels: layer 'conv9' is not a module of FramePlantedNet"):
        check.evaluate(clip, TARGET, Explanation(channels={"conv9": (0,)}))
    with pytest.raises(ValueError, match=r"^explanation.channels\['conv1'\]: channels \[16\] out of range"):
        check.evaluate(clip, TARGET, Explanation(channels={"conv1": (16,)}))
    with pytest.raises(ValueError, match=r"^explanation.frame_importance must be \(8,\)"):
        check.evaluate(clip, TARGET, Explanation(frame_importance=torch.ones(7)))
    with pytest.raises(ValueError, match=r"^explanation.gradcam must be \(8, 16, 16\)"):
        check.evaluate(clip, TARGET, Explanation(gradcam=torch.ones(8, 16, 15)))
    net.unused = nn.Conv3d(3, 3, 1)  # a module that never runs
    with pytest.raises(ValueError, match=r"^explanation.channels: layer 'unused' gave no \(N, C, ...\) tensor output"):
        check.evaluate(clip, TARGET, Explanation(channels={"unused": (0,)}))
    with pytest.raises(ValueError, match=r"^draws must be an integer >= 2"):
        Faithfulness(net, draws=1)
    with pytest.raises(ValueError, match=r"^layer_groups: 'head' is not a module"):
        Faithfulness(net, layer_groups=["head"])


def test_road_imputation_fills_a_hole_in_a_linear_ramp_exactly() -> None:
    # a linear function is its own neighbour mean (ROAD's weights are symmetric): the hole is filled exactly
    ys, xs = torch.meshgrid(torch.arange(12.0), torch.arange(12.0), indexing="ij")
    frame = (0.5 * xs - 0.25 * ys)[None, None]
    removed = torch.zeros(1, 12, 12, dtype=torch.bool)
    removed[0, 3:8, 4:9] = True
    out = road_impute(frame, removed, torch.zeros(1, 1), 0.0, torch.Generator(), sweeps=400)
    assert torch.allclose(out, frame, atol=1e-3)
    noisy = road_impute(frame, removed, torch.zeros(1, 1), 0.1, torch.Generator().manual_seed(0), sweeps=400)
    assert torch.equal(noisy[0, 0][~removed[0]], frame[0, 0][~removed[0]])  # known pixels are never touched
    assert 0.05 < float((noisy - frame)[0, 0][removed[0]].std()) < 0.15


def test_spearman_and_layer_groups() -> None:
    assert spearman(torch.tensor([1.0, 2, 3, 4]), torch.tensor([10.0, 20, 25, 100])) == 1.0
    assert spearman(torch.tensor([1.0, 2, 3]), torch.tensor([3.0, 2, 1])) == -1.0
    assert spearman(torch.ones(3), torch.tensor([1.0, 2, 3])) != spearman(torch.ones(3), torch.tensor([1.0, 2, 3]))
    wrapped = nn.Sequential(nn.Sequential(nn.Conv3d(3, 4, 1), nn.ReLU(), nn.Conv3d(4, 2, 1)))
    assert default_layer_groups(wrapped) == ["0.2", "0.0"]


def test_frame_curves_of_a_clip_longer_than_steps_take_equal_shares_of_frames() -> None:
    from conv3t.explain.faithfulness.evaluate import frame_counts

    assert frame_counts(8, 10).tolist() == list(range(1, 8))  # one frame a step: the demo's 8-frame clips
    assert frame_counts(30, 10).tolist() == [3, 6, 9, 12, 15, 18, 21, 24, 27]  # the paper's 30-frame clips
    net, clip, e = _explained()
    r = Faithfulness(net, draws=3, steps=4, seed=0, randomise=False).evaluate(clip, TARGET, e)
    d, i = r.frame_deletion, r.frame_insertion
    assert len(d.curve) == len(i.curve) == 5  # 8 frames in 4 shares of 2, plus the whole clip
    order = torch.argsort(e.frame_importance.double(), descending=True, stable=True).tolist()
    mean = clip.mean(dim=1, keepdim=True).expand_as(clip)
    for step, deleted in enumerate((2, 4, 6), start=1):
        gone = order[:deleted]
        deleted_clip, inserted_clip = clip.clone(), mean.clone()
        deleted_clip[:, gone] = mean[:, gone]
        inserted_clip[:, gone] = clip[:, gone]
        with torch.no_grad():
            p = torch.softmax(net(torch.stack([deleted_clip, inserted_clip])), 1)[:, TARGET]
        assert abs(d.curve[step] - float(p[0])) < 1e-6 and abs(i.curve[step] - float(p[1])) < 1e-6
