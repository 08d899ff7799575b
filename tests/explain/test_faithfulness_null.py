"""The spatial check on the 3T planted network (tests/explain/planted.py, PlantedNet): maps as smooth as a
Grad-CAM but carrying no information pass at most at the nominal rate, while the real Grad-CAM passes. (Before
issue 24 random pixel orders were the baseline and such smooth maps passed 17 of 20; the >= 50-draw measurement
is experiments/faithfulness_null.py, RESULTS.md section 5.)"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from planted import planted_clips, planted_net

from conv3t.explain.faithfulness import ALPHA, Explanation, Faithfulness, explain_clip
from conv3t.explain.faithfulness.randomise import KINDS


def _setup():  # type: ignore[no-untyped-def]
    net = planted_net()
    clips, names = planted_clips(seed=1)
    return net, clips[names.index("translate_right")]


@pytest.mark.slow
def test_smooth_noise_maps_pass_spatial_deletion_at_most_at_the_nominal_rate() -> None:
    net, clip = _setup()
    g = torch.Generator().manual_seed(7)
    passed = []
    for i in range(4):
        # uniform noise at conv1's output resolution (8 x 16 x 16), upsampled like a Grad-CAM: another process
        # than the check's own random maps (Gaussian, rectified), same smoothness
        cam = F.interpolate(torch.rand(1, 1, 8, 16, 16, generator=g), size=(8, 32, 32), mode="trilinear")[0, 0]
        r = Faithfulness(net, draws=19, seed=i, randomise=False).evaluate(
            clip, 0, Explanation(gradcam=cam, gradcam_layer="conv1")
        )
        v = r.verdict("spatial_deletion")
        assert v.passed is not None
        passed.append(v.passed)
    assert passed.count(True) <= 1  # 4 draws at rate 0.05: P(>= 2) = 0.014


@pytest.mark.slow
def test_the_real_gradcam_of_the_planted_network_passes_spatial_deletion() -> None:
    net, clip = _setup()
    e = explain_clip(net, clip, 0, layers=["conv1"], cam_layer="conv1")
    r = Faithfulness(net, draws=19, seed=0, randomise=False).evaluate(clip, 0, e)
    v = r.verdict("spatial_deletion")
    assert v.passed is True and v.p_value <= ALPHA, v.sentence


@pytest.mark.slow
def test_on_a_3t_network_the_frame_attribution_depends_on_the_learned_motion() -> None:
    net, clip = _setup()
    e = explain_clip(net, clip, 0, layers=["conv1"], cam_layer="conv1")
    r = Faithfulness(net, draws=2, seed=0).evaluate(clip, 0, e)  # 5 draws per family: 2 would be untestable
    families = {v.check: v for v in r.verdicts if v.check.startswith("family_")}
    assert set(families) == {f"family_{f}_{k}" for f in ("filters_2d", "temporal") for k in KINDS}
    assert all(v.kind == "sanity" for v in families.values())
    # the head reads channel 0 minus channel 1 whatever their motions: with only the temporal parameters
    # randomised, gradient x activation still credits channel 0 and debits channel 1 (rank correlation 1)
    assert families["family_temporal_channels"].passed is False
    # (the integrated-gradients frame attribution here ranks the end frames first, where a translating texture is
    # furthest from the mean frame, for the trained and the motion-randomised conv1 alike: its correlation is
    # positive on most draws of the motion but not all, so its verdict is no planted truth and is not asserted.
    # Before issue 24's second round this test asserted a pass, which held for one draw only.)
