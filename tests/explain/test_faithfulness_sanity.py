"""The sanity tests (randomisation cascade, parameter families, random logit) under one rule: up to K draws, the
item null and the sequential sign test, draws stopped once the verdict is settled
(conv3t.explain.faithfulness.sanity_stats). Planted networks (tests/explain/planted.py) give the answers:
ClassPlantedNet's class k reads frame k only; PlantedNet's head reads conv1's channel 0 minus channel 1 whatever
the 2D filters or the motions of conv1 are."""

from __future__ import annotations

import pytest
import torch
from planted import FRAME_CLASS_COUNT, class_planted_net, planted_clips, planted_net
from torch import nn

from conv3t.explain.faithfulness import Explanation, Faithfulness, explain_clip

TARGET = 2


def _clip() -> torch.Tensor:
    return 1.0 + 0.5 * torch.rand(1, FRAME_CLASS_COUNT, 4, 4, generator=torch.Generator().manual_seed(0))


def class_specific(model: nn.Module, x: torch.Tensor, target: int) -> Explanation:
    """Gradient x input per frame: for ClassPlantedNet it credits frame ``target`` alone."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(model(x if x.ndim == 5 else x[None])[0, target], x)
    return Explanation(frame_importance=(grad * x).detach().reshape(-1, *x.shape[-4:]).sum((0, 1, 3, 4)))


def input_only(model: nn.Module, x: torch.Tensor, target: int) -> Explanation:
    """The frames' mean brightness: depends on neither the model nor the class."""
    return Explanation(frame_importance=x.detach().reshape(-1, *x.shape[-4:]).mean((0, 1, 3, 4)))


def test_an_explanation_that_is_the_same_for_every_class_fails_random_logit_and_a_class_specific_one_passes() -> None:
    net, clip = class_planted_net(), _clip()
    same = Faithfulness(net, draws=2, explainer=input_only).evaluate(clip, TARGET, input_only(net, clip, TARGET))
    v = same.verdict("random_logit_frame_importance")
    assert v.passed is False and "whatever class is explained" in v.sentence
    # five distinct other classes, drawn among the seven others, each named in the sentence
    classes = same.random_logit_classes
    assert len(classes) == len(set(classes)) == 5 and TARGET not in classes and same.random_logit_class == classes[0]
    assert all(f"class {c}" in v.sentence for c in classes)
    specific = Faithfulness(net, draws=2, explainer=class_specific).evaluate(
        clip, TARGET, class_specific(net, clip, TARGET)
    )
    v = specific.verdict("random_logit_frame_importance")
    assert v.passed is True and "specific to the class" in v.sentence
    (test,) = specific.random_logit_tests
    assert test.draws_used == 1  # frame k against frame j: a negative correlation settles it at once


@pytest.mark.slow
def test_family_and_random_logit_verdicts_of_a_fixed_explanation_agree_across_check_seeds() -> None:
    net = planted_net()
    clips, names = planted_clips(seed=1)
    clip = clips[names.index("translate_right")]
    e = explain_clip(net, clip, 0, layers=["conv1"], cam_layer="conv1")
    cnet, cclip = class_planted_net(), _clip()
    ce = {f: f(cnet, cclip, TARGET) for f in (class_specific, input_only)}
    seen: dict[str, set[bool | None]] = {}
    for s in range(5):
        r = Faithfulness(net, draws=2, seed=s).evaluate(clip, 0, e)
        # planted: the head sets conv1's channel ranking (channel 0 credited, 1 debited) whatever the 2D filters
        # or the motions are, so the channel attribution keeps its ranking under either family
        for family in ("filters_2d", "temporal"):
            seen.setdefault(family, set()).add(r.verdict(f"family_{family}_channels").passed)
        for f, explanation in ce.items():
            v = Faithfulness(cnet, draws=2, seed=s, explainer=f).evaluate(cclip, TARGET, explanation)
            seen.setdefault(f.__name__, set()).add(v.verdict("random_logit_frame_importance").passed)
    assert seen == {"filters_2d": {False}, "temporal": {False}, "class_specific": {True}, "input_only": {False}}


def test_early_stopping_takes_fewer_explanations_and_gives_the_verdicts_of_every_draw() -> None:
    net, clip = class_planted_net(), _clip()
    calls = {True: 0, False: 0}
    results = {}
    for stop in (True, False):

        def counted(model: nn.Module, x: torch.Tensor, target: int, _stop: bool = stop) -> Explanation:
            calls[_stop] += 1
            return class_specific(model, x, target)

        check = Faithfulness(net, draws=2, seed=3, explainer=counted, stop_early=stop)
        results[stop] = check.evaluate(clip, TARGET, class_specific(net, clip, TARGET))
    # without stopping: the reference, one cascade step (fc), 4 more copies, 5 other classes
    assert calls[False] == 1 + 1 + 4 + 5
    assert calls[True] < calls[False]
    sanity = {stop: [(v.check, v.passed) for v in r.verdicts if v.kind == "sanity"] for stop, r in results.items()}
    assert sanity[True] == sanity[False] and len(sanity[True]) == 2
    assert all(v.passed is True for v in results[True].verdicts if v.kind == "sanity")
    for stopped, full in zip(results[True].randomisation_tests, results[False].randomisation_tests, strict=True):
        assert full.draws_used == 5 and stopped.draws_used < 5
        assert stopped.seed_corrs == pytest.approx(full.seed_corrs[: stopped.draws_used])  # the same draws
