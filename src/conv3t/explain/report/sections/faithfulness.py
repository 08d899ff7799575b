"""Section "Faithfulness": do the prediction explanations say something true about the model?

The report's analysis (:func:`conv3t.explain.report.analysis.analyse`) runs
:class:`conv3t.explain.faithfulness.Faithfulness` on every explained clip (the credited channels, frame
importance and Grad-CAM of its prediction, :func:`explanation_of`); the prediction sections show one verdict
line each (and ``predictions.json`` the results), and :func:`faithfulness_section` summarises them over the
clips. The rules are those of
docs/conventions.md, "Faithfulness".
"""

from __future__ import annotations

import torch
from markupsafe import Markup

from conv3t.explain.attribution import PredictionExplanation
from conv3t.explain.faithfulness import MAX_RANDOMISED_CORR, Explanation, FaithfulnessResult, Z
from conv3t.explain.report.context import ReportContext
from conv3t.explain.report.page import macros
from conv3t.explain.report.section import Section

__all__ = [
    "CHECKS",
    "explanation_of",
    "faithfulness_section",
    "verdict_items",
    "verdict_line",
]


#: The checks in page order, with their names on the page.
CHECKS = (
    ("channel_ablation", "credited channels"),
    ("frame_deletion", "frame deletion"),
    ("frame_insertion", "frame insertion"),
    ("spatial_deletion", "Grad-CAM pixels"),
    ("randomisation_gradcam", "Grad-CAM changes with the weights"),
    ("randomisation_frame_importance", "frame importance changes with the weights"),
    ("randomisation_channels", "channel attribution changes with the weights"),
)


def explanation_of(record: PredictionExplanation) -> Explanation:
    """The prediction section's explanation of one clip as the checks take it."""
    channels: dict[str, tuple[int, ...]] = {}
    for c in record.channels:
        channels[str(c["layer"])] = (*channels.get(str(c["layer"]), ()), int(c["channel"]))
    return Explanation(
        channels=channels,
        frame_importance=torch.tensor(record.frame_importance),
        gradcam=None if record.cam is None else record.cam.detach().cpu(),
    )


def verdict_line(result: FaithfulnessResult) -> Markup:
    """The one-line verdict of a prediction section: the channel ablation's sentence (else the first check's)
    and how many checks passed."""
    first = result.verdict("channel_ablation") or (result.verdicts[0] if result.verdicts else None)
    judged = [v for v in result.verdicts if v.passed is not None]
    if first is None:
        return Markup("")
    return Markup('<p class="verdict">{} {} ({} of {} faithfulness checks passed.)</p>').format(
        _mark(first.passed),
        first.sentence[:1].upper() + first.sentence[1:],
        sum(bool(v.passed) for v in judged),
        len(judged),
    )


def verdict_items(result: FaithfulnessResult) -> Markup:
    """The verdicts of one clip as a ``<ul class="verdicts">``, the channel ablation's first."""
    items = Markup("").join(
        Markup("<li>{} {}</li>").format(_mark(v.passed), v.sentence[:1].upper() + v.sentence[1:])
        for v in result.verdicts
    )
    return Markup('<ul class="verdicts">{}</ul>').format(items)


def _mark(passed: bool | None) -> str:
    return "✔" if passed else ("✘" if passed is False else "–")


def faithfulness_section(ctx: ReportContext) -> Section | None:
    """The summary over clips: how often each check passed, a table of the numbers, and a plain statement for
    any explanation that does not change when the model's weights are randomised."""
    results = ctx.analysis.faithfulness
    if not ctx.options.faithfulness or not ctx.clips:
        return None
    m = macros()
    if not results:
        return Section("faithfulness", "Faithfulness", Markup("<p>No clip was explained.</p>"))
    counts = []
    for check, name in CHECKS:
        verdicts = [v for r in results if (v := r.verdict(check)) is not None and v.passed is not None]
        if verdicts:
            counts.append((name, f"{sum(bool(v.passed) for v in verdicts)} of {len(verdicts)} clips"))
    html = Markup(
        "<p>Each explanation of a prediction is put to the test: are the credited channels, the important frames "
        "and the Grad-CAM's pixels more decisive for the model than random ones ({} draws; a check passes when "
        "its effect beats the random draws' mean by more than {:g} of their standard deviations), and does the "
        "explanation change when the model's weights are randomised layer group by layer group from the top "
        "(it must keep a rank correlation below {:g} once all are)? Rules and definitions: "
        "docs/conventions.md, “Faithfulness”.</p>"
    ).format(ctx.options.faithfulness_draws, Z, MAX_RANDOMISED_CORR)
    html += Markup("<p>Checks passed:</p>") + m.table(("check", "passed"), counts)
    html += _unchanged(results)
    html += Markup(
        "<p>The numbers per clip. <em>channels</em>: the class probability before → with the credited channels "
        "zeroed / with random channels zeroed (mean±std); <em>frames</em>, <em>CAM pixels</em>: the area under the "
        "class probability as frames or Grad-CAM pixels are deleted or inserted, the explanation's order / random "
        "orders (mean±std); <em>randomised ρ</em>: the rank correlations of the Grad-CAM / frame importance / "
        "channel attribution with the trained model's once every layer group is randomised.</p>"
    ) + _numbers(ctx, results)
    return Section("faithfulness", "Faithfulness of the prediction explanations", html, nav="Faithfulness")


def _unchanged(results: list[FaithfulnessResult]) -> Markup:
    """Plain sentences for explanations that survive the randomisation of the whole model."""
    out = Markup("")
    for check, name in CHECKS[4:]:
        failed = [v for r in results if (v := r.verdict(check)) is not None and v.passed is False]
        if failed:
            what = name.split(" changes")[0]
            out += Markup(
                '<p class="sentence">The {} stays the same when every layer\'s weights are randomised '
                "(on {} of {} clips): it explains nothing about what the model learned.</p>"
            ).format(what, len(failed), len(results))
    return out


def _fmt(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.2f}"


def _numbers(ctx: ReportContext, results: list[FaithfulnessResult]) -> Markup:
    rows = []
    for clip, r in zip(ctx.clips, results):
        a, last = r.channel_ablation, (r.randomisation[-1] if r.randomisation else None)
        curves = [
            f"{_fmt(c.auc)} / {_fmt(c.random_auc_mean)}±{_fmt(c.random_auc_std)}" if c else "–"
            for c in (r.frame_deletion, r.frame_insertion, r.spatial_deletion)
        ]
        ablation = (
            f"{_fmt(a.p_before)} → {_fmt(a.p_after_credited)} / {_fmt(a.p_after_random_mean)}±"
            f"{_fmt(a.p_after_random_std)}"
            if a
            else "–"
        )
        corr = (
            " / ".join(
                _fmt(x) for x in (last.gradcam_rank_corr, last.frame_importance_rank_corr, last.channel_rank_corr)
            )
            if last
            else "–"
        )
        rows.append((clip.name, ctx.info.classes[r.target], ablation, *curves, corr))
    header = ("clip", "class", "channels", "frames deleted", "frames inserted", "CAM pixels", "randomised ρ")
    return macros().table(header, rows)
