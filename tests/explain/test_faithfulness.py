"""The faithfulness checks (conv3t.explain.faithfulness) against a planted network whose decisive channels,
frames and pixels are known (tests/explain/planted.py, FramePlantedNet): a perfect explanation passes every
faithfulness check at alpha 0.05, explanations that carry no information pass at most at the nominal rate,
exact p-values agree with a brute-force enumeration written here, and the checks run on models that are not
conv3t's (a plain nn.Conv3d network, torchvision r3d_18)."""

from __future__ import annotations

import itertools

import pytest
import torch
from planted import (
    DECISIVE_CHANNELS,
    DECISIVE_FRAMES,
    FRAME_CLASSES,
    SQUARE,
    frame_planted_clip,
    frame_planted_net,
)
from torch import nn

from conv3t.explain.faithfulness import (
    ALPHA,
    Explanation,
    Faithfulness,
    default_layer_groups,
    explain_clip,
    spearman,
)

TARGET = 0  # red_square


def _explained():  # type: ignore[no-untyped-def]
    net, clip = frame_planted_net(), frame_planted_clip()
    explanation = explain_clip(net, clip, TARGET, layers=["conv1"], cam_layer="conv1")
    return net, clip, explanation


def _perfect() -> Explanation:
    importance = torch.zeros(8)
    importance[list(DECISIVE_FRAMES)] = 1.0
    cam = torch.zeros(8, 16, 16)
    for t in DECISIVE_FRAMES:
        cam[t][SQUARE] = 1.0
    return Explanation(
        channels={"conv1": DECISIVE_CHANNELS}, frame_importance=importance, gradcam=cam, gradcam_shape=(8, 16, 16)
    )


def test_the_planted_explanation_credits_the_decisive_channels_and_frames() -> None:
    _, _, e = _explained()
    assert dict(e.channels) == {"conv1": DECISIVE_CHANNELS}
    assert set(e.frame_importance.topk(len(DECISIVE_FRAMES)).indices.tolist()) == set(DECISIVE_FRAMES)
    assert e.method == "conv3t/integrated_gradients/5" and e.gradcam_layer == "conv1"


@pytest.mark.slow
def test_a_perfect_explanation_passes_every_faithfulness_check_at_alpha() -> None:
    net, clip = frame_planted_net(), frame_planted_clip()
    r = Faithfulness(net, draws=19, seed=0, randomise=False, classes=FRAME_CLASSES).evaluate(clip, TARGET, _perfect())
    checks = ("channel_ablation", "frame_deletion", "frame_insertion", "spatial_deletion")
    assert [v.check for v in r.verdicts] == list(checks)
    for v in r.verdicts:
        assert v.kind == "faithfulness" and v.passed is True and v.p_value <= ALPHA, v.sentence
    # the frame tests are exact: 8! orders, and the perfect order is (within noise) the best possible one
    for curve in (r.frame_deletion, r.frame_insertion):
        assert curve.test.exact and curve.test.draws == 40320 and curve.effect > 0.95
    a = r.channel_ablation
    assert a.p_before > 0.99 and a.p_after_credited < 0.5 and a.p_after_random_mean > 0.8
    assert (
        "removing the 3 credited channels drops p(red_square) from 1.00 to 0.05"
        in r.verdict("channel_ablation").sentence
    )


def test_exact_frame_p_values_equal_a_brute_force_enumeration() -> None:
    net, clip = frame_planted_net(), frame_planted_clip()
    importance = torch.tensor([0.1, 0.9, 0.3, 0.8, 0.7, 0.0, 0.6, 0.2])  # no ties: one order
    r = Faithfulness(net, randomise=False).evaluate(clip, TARGET, Explanation(frame_importance=importance))
    mean = clip.mean(dim=1, keepdim=True)
    subsets = list(itertools.product([False, True], repeat=8))
    with torch.no_grad():
        clips = torch.stack([torch.where(torch.tensor(s).view(1, 8, 1, 1), mean, clip) for s in subsets])
        p = dict(zip(subsets, torch.softmax(net(clips).double(), 1)[:, TARGET].tolist()))

    def auc(order: tuple[int, ...], insertion: bool) -> float:
        values = []
        for k in range(9):
            first = set(order[:k])
            values.append(p[tuple((f not in first) if insertion else (f in first) for f in range(8))])
        return sum((a + b) / 2 for a, b in itertools.pairwise(values)) / 8

    mine = tuple(torch.argsort(importance, descending=True).tolist())
    for curve, insertion in ((r.frame_deletion, False), (r.frame_insertion, True)):
        every = [auc(o, insertion) for o in itertools.permutations(range(8))]
        own = auc(mine, insertion)
        better = sum((a >= own - 1e-6) if insertion else (a <= own + 1e-6) for a in every)
        assert abs(curve.auc - own) < 1e-6
        assert curve.test.p_value == pytest.approx(better / len(every))
        assert curve.test.best == pytest.approx(max(every) if insertion else min(every), abs=1e-6)
        assert curve.fractions == tuple(k / 8 for k in range(9))


@pytest.mark.slow
def test_random_frame_orders_pass_at_most_at_the_nominal_rate() -> None:
    net, clip = frame_planted_net(), frame_planted_clip()
    check = Faithfulness(net, seed=1, randomise=False)
    gen = torch.Generator().manual_seed(5)
    p = [
        check.evaluate(clip, TARGET, Explanation(frame_importance=torch.rand(8, generator=gen))).verdicts[0].p_value
        for _ in range(20)
    ]
    # an exact p-value of a uniformly random order is super-uniform: P(p <= a) <= a
    assert sum(v <= ALPHA for v in p) <= 3  # 20 draws at rate 0.05: 1 expected, P(> 3) = 0.016
    assert 0.3 < sum(p) / len(p) < 0.8


def test_a_constant_frame_importance_is_a_random_order_not_a_pass() -> None:
    net, clip = frame_planted_net(), frame_planted_clip()
    passes = [
        Faithfulness(net, seed=s, randomise=False)
        .evaluate(clip, TARGET, Explanation(frame_importance=torch.ones(8)))
        .verdict("frame_deletion")
        .passed
        for s in range(8)
    ]
    assert passes.count(True) <= 1  # ties broken at random: a random order each time


def test_three_frames_are_not_testable() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv3d(3, 4, (3, 1, 1)), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(4, 2))
    clip = torch.randn(3, 3, 8, 8)
    r = Faithfulness(net, randomise=False).evaluate(clip, 0, Explanation(frame_importance=torch.tensor([3.0, 2, 1])))
    v = r.verdict("frame_deletion")
    assert v.passed is None and v.p_value is None and "not testable" in v.sentence
    assert r.frame_deletion.test.min_p >= 1 / 6  # 3! orders: no order can reach p <= 0.05


def test_one_channel_of_sixteen_is_not_testable_and_three_random_channels_do_not_pass() -> None:
    net, clip, _ = _explained()
    check = Faithfulness(net, draws=19, seed=0, randomise=False)
    one = check.evaluate(clip, TARGET, Explanation(channels={"conv1": (0,)})).verdict("channel_ablation")
    assert one.passed is None and "not testable" in one.sentence  # 16 possible sets: p >= 1/16 > 0.05
    gen = torch.Generator().manual_seed(3)
    passed = []
    for _ in range(10):
        picks = tuple(torch.randperm(16, generator=gen)[:3].sort().values.tolist())
        v = check.evaluate(clip, TARGET, Explanation(channels={"conv1": picks})).verdict("channel_ablation")
        passed.append(v.passed)
    assert passed.count(True) <= 1


def test_p_after_credited_equals_a_direct_computation_with_own_hooks() -> None:
    net, clip, _ = _explained()
    channels = (0, 7)
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
            logits = net(clip[None])
    finally:
        for h in handles:
            h.remove()
    assert r.channel_ablation.k == 3
    assert abs(r.channel_ablation.p_after_credited - torch.softmax(logits, 1)[0, TARGET].item()) < 1e-5
    assert abs(r.channel_ablation.logit_after_credited - logits[0, TARGET].item()) < 1e-4


@pytest.mark.slow
def test_spatial_deletion_uses_morf_and_lerf_and_log_spaced_fractions() -> None:
    net, clip, e = _explained()
    r = Faithfulness(net, draws=19, seed=0, randomise=False).evaluate(clip, TARGET, e)
    s = r.spatial_deletion
    assert s.statistic == "AUC(LeRF) - AUC(MoRF)" and len(s.lerf_curve) == len(s.curve) == len(s.fractions)
    assert s.fractions[0] == 0 and s.fractions[-1] == 1 and s.fractions[1] <= 0.011
    assert s.curve[0] == s.lerf_curve[0] and s.curve[-1] == s.lerf_curve[-1]
    assert s.road_residual < 1e-4
    assert r.verdict("spatial_deletion").passed is True
    no_resolution = Explanation(gradcam=e.gradcam)
    v = Faithfulness(net, draws=19, randomise=False).evaluate(clip, TARGET, no_resolution).verdict("spatial_deletion")
    assert v.passed is None and "resolution" in v.sentence


@pytest.mark.slow
def test_randomisation_is_a_sanity_check_with_a_cascade_in_execution_order() -> None:
    net, clip, e = _explained()
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    r = Faithfulness(net, draws=2, seed=0).evaluate(clip, TARGET, e)
    assert [s.layers_randomised for s in r.randomisation] == [("fc",), ("fc", "time"), ("fc", "time", "conv1")]
    assert r.randomisation[0].frame_importance_rank_corr > 0.8  # the head alone: the time layer still decides
    assert not any(v.check.startswith("family_") for v in r.verdicts)  # no Conv3T layer: no family checks
    sanity = [v for v in r.verdicts if v.kind == "sanity" and v.check.startswith("randomisation_")]
    assert {v.check for v in sanity} == {
        "randomisation_gradcam",
        "randomisation_frame_importance",
        "randomisation_channels",
    }
    assert r.verdict("randomisation_frame_importance").passed is True  # the decisive frames are learned
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert net.training and all(m.training for m in net.modules())


@pytest.mark.slow
def test_the_randomisation_verdict_agrees_across_seeds() -> None:
    net, clip, e = _explained()
    checks = ("randomisation_frame_importance", "randomisation_channels", "randomisation_gradcam")
    verdicts = set()
    for s in range(5):
        r = Faithfulness(net, draws=2, seed=s).evaluate(clip, TARGET, e)
        verdicts |= {(c, r.verdict(c).passed) for c in checks}
    # the trained net reads frames 1, 3, 4, 6 of channels 0-2 only: every explanation depends on what it learned.
    # (Before the sign-flip test the integrated-gradients frame verdict flipped between seeds: random models'
    # attributions share the clip's two-group frame pattern up to a random sign.)
    assert verdicts == {(c, True) for c in checks}


@pytest.mark.slow
def test_an_explanation_that_ignores_the_weights_fails_randomisation_and_constant_is_undefined() -> None:
    net, clip, _ = _explained()
    ramp = torch.linspace(1, 0, 8)

    def fixed(model: nn.Module, x: torch.Tensor, target: int) -> Explanation:  # ranks frames by position only
        return Explanation(frame_importance=ramp.clone())

    r = Faithfulness(net, draws=2, explainer=fixed).evaluate(clip, TARGET, Explanation(frame_importance=ramp))
    v = r.verdict("randomisation_frame_importance")
    assert v.passed is False and v.kind == "sanity" and "survives the randomisation" in v.sentence
    # two classes: one other class to compare with, p cannot go below 1/2, so random logit is not testable
    # (ClassPlantedNet's eight classes test it: tests/explain/test_faithfulness_sanity.py)
    v = r.verdict("random_logit_frame_importance")
    assert r.random_logit_classes == (1,) and v.passed is None and "not testable with 1 other class" in v.sentence

    def flat(model: nn.Module, x: torch.Tensor, target: int) -> Explanation:
        return Explanation(frame_importance=torch.ones(8))

    r = Faithfulness(net, draws=2, explainer=flat).evaluate(clip, TARGET, Explanation(frame_importance=torch.ones(8)))
    assert r.verdict("randomisation_frame_importance").passed is None


def test_the_explainer_must_reproduce_the_explanation() -> None:
    net, clip, e = _explained()
    with pytest.raises(ValueError, match=r"^explainer: the randomisation check recomputes"):
        Faithfulness(net, draws=2).evaluate(clip, TARGET, Explanation(frame_importance=e.frame_importance))
    other = explain_clip(net, clip, TARGET, layers=["conv1", "time"], cam_layer="time")
    with pytest.raises(ValueError, match=r"^explainer: on the trained model it does not reproduce explanation.gradcam"):
        claimed = Explanation(gradcam=other.gradcam, gradcam_layer="conv1", method="conv3t", channels=e.channels)
        Faithfulness(net, draws=2).evaluate(clip, TARGET, claimed)  # made at "time", claims conv1


def test_groups_follow_execution_order_and_every_parameter_changes() -> None:
    from conv3t.explain.faithfulness.randomise import randomise_

    class Backwards(nn.Module):  # defined head first, runs stem first
        def __init__(self) -> None:
            super().__init__()
            self.head = nn.Linear(4, 2)
            self.stem = nn.Conv3d(3, 4, 1)
            self.gain = nn.Parameter(torch.ones(1))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.stem(x).mean((2, 3, 4))) * self.gain

    model = Backwards()
    assert default_layer_groups(model, ["stem", "head"]) == ["head", "stem"]
    bn = nn.BatchNorm3d(4)
    bn.running_mean.fill_(3.0)
    holder = nn.Sequential(bn, nn.Linear(1, 1))
    holder[1].weight.data.fill_(2.0)
    randomise_(holder, torch.Generator().manual_seed(0), batchnorm="reset")
    assert not torch.equal(bn.weight, torch.ones(4)) and float(holder[1].weight) != 2.0
    assert torch.equal(bn.running_mean, torch.zeros(4))


def test_eval_mode_is_used_and_each_module_mode_restored() -> None:
    net, clip, e = _explained()
    net.train()
    net.time.eval()
    seen: list[bool] = []
    net.conv1.register_forward_hook(lambda m, i, o: seen.append(m.training))
    Faithfulness(net, draws=2, seed=0, randomise=False).evaluate(clip, TARGET, e)
    assert seen and not any(seen)
    assert net.training and net.conv1.training and not net.time.training


@pytest.mark.slow
def test_works_on_torchvision_r3d_18_and_leaves_its_weights() -> None:
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    model = r3d_18(weights=None, num_classes=4).eval()
    clip = torch.randn(3, 4, 32, 32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    e = explain_clip(model, clip, 1, layers=["layer1.0.conv1.0", "layer2.0.conv1.0"], top_channels=3)
    assert e.gradcam.shape == (4, 32, 32) and e.frame_importance.shape == (4,) and e.credited >= 1
    r = Faithfulness(model, draws=3, seed=0, randomisation_seeds=2).evaluate(clip, 1, e)
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
    assert check.evaluate(clip, torch.tensor(TARGET), Explanation()).target == TARGET
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
    with pytest.raises(ValueError, match=r"^batchnorm must be 'keep' or 'reset'"):
        Faithfulness(net, batchnorm="drop")


def test_spearman_and_layer_groups() -> None:
    assert spearman(torch.tensor([1.0, 2, 3, 4]), torch.tensor([10.0, 20, 25, 100])) == 1.0
    assert spearman(torch.tensor([1.0, 2, 3]), torch.tensor([3.0, 2, 1])) == -1.0
    assert spearman(torch.ones(3), torch.tensor([1.0, 2, 3])) != spearman(torch.ones(3), torch.tensor([1.0, 2, 3]))
    wrapped = nn.Sequential(nn.Sequential(nn.Conv3d(3, 4, 1), nn.ReLU(), nn.Conv3d(4, 2, 1)))
    assert default_layer_groups(wrapped) == ["0.2", "0.0"]


def test_frame_curves_of_a_clip_longer_than_exact_frames_are_monte_carlo_on_equal_shares() -> None:
    from conv3t.explain.faithfulness.evaluate import frame_counts

    assert frame_counts(8, 10).tolist() == list(range(1, 8))
    assert frame_counts(30, 10).tolist() == [3, 6, 9, 12, 15, 18, 21, 24, 27]
    net, clip, e = _explained()
    r = Faithfulness(net, draws=19, steps=4, seed=0, randomise=False, exact_frames=7).evaluate(clip, TARGET, e)
    d, i = r.frame_deletion, r.frame_insertion
    assert not d.test.exact and d.fractions == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert r.verdict("frame_deletion").passed is True and d.test.draws == 19  # a good order takes every draw
    mean = clip.mean(dim=1, keepdim=True).expand_as(clip)
    assert len(d.curve) == len(i.curve) == 5 and d.curve[0] == i.curve[-1] and d.curve[-1] == i.curve[0]
    with torch.no_grad():
        p_all = torch.softmax(net(mean[None]), 1)[0, TARGET].item()
    assert abs(d.curve[-1] - p_all) < 1e-6
