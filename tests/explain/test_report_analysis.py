"""Compute once, render after: the report's analysis is computed once (one ranking, one verification), it is
frozen, and every section is a pure function of it (rendering twice, or into another folder, gives the same
page content)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_report import make_run

from conv3t.explain.report import SECTIONS, ReportContext, ReportOptions, build_report, report_analysis
from conv3t.explain.report.analysis import core as analysis_module
from conv3t.explain.report.analysis import verification as verification_module


def _counting(monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(module, name)

    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.slow
def test_the_ranking_and_the_verification_are_computed_once_per_report(tmp_path: Path, monkeypatch) -> None:
    run = make_run(tmp_path / "run")
    rankings = _counting(monkeypatch, analysis_module, "rank_channels")
    measurements = _counting(monkeypatch, verification_module, "verify_model")
    out = tmp_path / "report"
    build_report(
        run,
        out,
        layers=["conv1"],
        num_channels=1,
        num_clips=1,
        actmax_steps=1,
        verify_textures=2,
        faithfulness=False,
        progress=False,
        device="cpu",
    )
    assert rankings == [1] and measurements == [1]
    # that one ranking is the measured one: ranking.csv and the channel cards both come from it
    ranking = pd.read_csv(out / "ranking.csv", keep_default_na=False, na_values=[""])
    assert "measured_sentence" in ranking.columns
    live = ranking[(ranking["layer"] == "conv1") & ~ranking["dead"] & (ranking["steps_in_clip"] > 0)]
    html = (out / "index.html").read_text(encoding="utf-8")
    assert f"filter_conv1_{int(live['channel'].iloc[0])}.png" in html


@pytest.mark.slow
def test_sections_are_pure_functions_of_the_analysis(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    options = ReportOptions(
        num_channels=1,
        num_clips=1,
        actmax_steps=1,
        verify=False,
        faithfulness=False,
        layers=("conv1", "layer1.0.conv1"),
    )
    ctx = report_analysis(run, tmp_path / "a", options)
    analysis = ctx.analysis
    assert analysis.predictions is not None and len(analysis.predictions) == 1  # computed before any section
    with pytest.raises(dataclasses.FrozenInstanceError):
        analysis.ranking = None  # type: ignore[misc]
    assert not hasattr(ctx, "shared")  # no dict for sections to hand results to each other
    channels = analysis.channels
    (tmp_path / "b" / "images").mkdir(parents=True)
    elsewhere = ReportContext(analysis, tmp_path / "b")
    for entry in SECTIONS:
        with torch.inference_mode():  # rendering needs no autograd: any gradient here would raise
            moved = entry.render(elsewhere)
        first, again = entry.render(ctx), entry.render(ctx)
        assert first == again == moved, entry.name  # same html and figures (relative paths) every time
        for section in first if isinstance(first, list) else [first] if first is not None else []:
            for figure in section.figures:
                assert (tmp_path / "b" / figure.src).read_bytes() == (tmp_path / "a" / figure.src).read_bytes()
    assert analysis.channels == channels  # rendering added its figures to its own cards, not to the analysis
    assert all(not card.figures for card in ctx.cards)
    # rendering writes images only: every data file is the artifacts' (written beside the first page)
    drawn = {p.relative_to(tmp_path / "b").as_posix() for p in (tmp_path / "b").rglob("*") if p.is_file()}
    assert drawn and all(name.startswith("images/") for name in drawn), drawn
    assert {"ranking.csv", "parameters.csv", "predictions.json", "analysis.json"} <= {
        p.name for p in (tmp_path / "a").iterdir()
    }


def test_the_analysis_computes_only_what_the_sections_need(tmp_path: Path, monkeypatch) -> None:
    run = make_run(tmp_path / "run")
    measurements = _counting(monkeypatch, verification_module, "verify_model")
    options = ReportOptions(num_channels=1, num_clips=1, actmax_steps=1, verify=True, layers=("conv1",))
    model_only = [entry for entry in SECTIONS if entry.name == "model"]
    ctx = report_analysis(run, tmp_path / "a", options, entries=model_only)
    assert ctx.analysis.verification is None and ctx.analysis.predictions is None and measurements == []
    assert ctx.analysis.views is None  # no activation maximisation or saliency either
    assert len(ctx.analysis.clips) == 1 and ctx.analysis.ranking is not None  # the cheap parts are there
    by_name = {entry.name: entry for entry in SECTIONS}
    assert by_name["verification"].render(ctx) is None and by_name["predictions"].render(ctx) == []


def test_the_faithfulness_checks_explain_the_recorded_top_class_index() -> None:
    """The checks take the class index the prediction record carries, never a lookup of its name (which fell
    back to class 0 when the name was not in the class list)."""
    import types

    import torch
    from torch import nn

    from conv3t.explain.report.analysis import ReportClip, explain_predictions
    from conv3t.explain.report.progress import StepCounter

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv3d(1, 2, (3, 1, 1), padding=(1, 0, 0)), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(2, 3)
    ).eval()
    with torch.no_grad():
        model[0].weight.fill_(0.5)
        model[4].weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 3.0]]))
    clip = torch.rand(1, 4, 8, 8) + 0.5
    records = explain_predictions(model, clip[None], ["a"], ["x", "y"], ["0"])  # as the report: 5 channels
    assert records[0].target == 2 and records[0].top[0]["class"] == "2"  # logit 2 has no name of its own
    info = types.SimpleNamespace(classes=["x", "y"], std=(1.0,))  # a model.json before classes were checked
    from conv3t.explain.report.analysis.predictions import check_explanations

    options = ReportOptions(faithfulness_draws=2, device="cpu")
    results = check_explanations(model, [ReportClip("a", clip)], records, info, options, StepCounter(1, False))
    assert results[0].target == 2
