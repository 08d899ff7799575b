"""conv3t's explainer computes only the kinds of explanation asked for (the randomisation checks ask for fewer once
a kind's verdict is settled): the same values as the whole explanation, and no frame attribution pass when the
frames are not asked for."""

from __future__ import annotations

import pytest
import torch
from planted import frame_planted_clip, frame_planted_net

from conv3t.explain.methods import explanation as explanation_module
from conv3t.explain.methods.explanation import conv3t_explainer, takes_kinds


def test_partial_explanations_equal_the_whole_one_and_skip_the_frame_attribution(monkeypatch) -> None:
    net, clip = frame_planted_net(), frame_planted_clip()[None]
    explainer = conv3t_explainer(["conv1"], "conv1")
    with torch.enable_grad():
        whole = explainer(net, clip, 0)

    def refuse(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the frame attribution ran although the frames were not asked for")

    monkeypatch.setattr(explanation_module, "frame_attribution", refuse)
    with torch.enable_grad():
        part = explainer(net, clip, 0, kinds=("gradcam", "channels"))
    assert part.frame_importance is None
    assert torch.equal(part.gradcam, whole.gradcam)
    assert dict(part.channels) == dict(whole.channels)
    assert torch.equal(part.channel_scores["conv1"], whole.channel_scores["conv1"])
    with torch.enable_grad():
        cam_only = explainer(net, clip, 0, kinds=("gradcam",))
    assert cam_only.channel_scores is None and not cam_only.channels and cam_only.gradcam_layer == "conv1"
    with pytest.raises(ValueError, match="kinds must be among"):
        explainer(net, clip, 0, kinds=("saliency",))


def test_takes_kinds_tells_partial_explainers_from_plain_callables() -> None:
    assert takes_kinds(conv3t_explainer())
    assert not takes_kinds(lambda model, clip, target: None)
    assert not takes_kinds(print)


def test_the_sanity_tests_ask_only_for_the_kinds_still_open_and_reach_the_same_verdicts(monkeypatch) -> None:
    """A draw taken after the frame attribution's verdict is settled skips the frame attribution (integrated
    gradients: most of an explanation's cost), and every sanity result equals that of an explainer that always
    computes everything."""
    from conv3t.explain.faithfulness import Faithfulness, explain_clip

    net, clip = frame_planted_net(), frame_planted_clip()
    explanation = explain_clip(net, clip, 0, layers=["conv1"], cam_layer="conv1")
    calls = {"frames": 0}
    real = explanation_module.frame_attribution

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["frames"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(explanation_module, "frame_attribution", counting)
    partial = conv3t_explainer(["conv1"], "conv1")
    results, frame_calls = {}, {}
    for name, explainer in (("partial", partial), ("whole", lambda m, x, t: partial(m, x, t))):
        calls["frames"] = 0
        results[name] = Faithfulness(net, draws=19, seed=1, explainer=explainer).evaluate(clip, 0, explanation)
        frame_calls[name] = calls["frames"]
    assert not takes_kinds(lambda m, x, t: partial(m, x, t))

    def sanity(r):  # type: ignore[no-untyped-def]
        return [(v.check, v.passed, v.p_value) for v in r.verdicts if v.kind == "sanity"]

    assert sanity(results["partial"]) == sanity(results["whole"])
    tests = {name: r.randomisation_tests for name, r in results.items()}
    assert [(t.kind, t.seed_corrs, t.draws_used) for t in tests["partial"]] == [
        (t.kind, t.seed_corrs, t.draws_used) for t in tests["whole"]
    ]
    assert frame_calls["partial"] < frame_calls["whole"], frame_calls
