"""Section "Faithfulness": do the prediction explanations say something true about the model?

The report's analysis (:func:`conv3t.explain.report.analysis.analyse`) runs
:class:`conv3t.explain.faithfulness.Faithfulness` on every explained clip (the credited channels, frame
importance and Grad-CAM of its prediction,
:func:`conv3t.explain.methods.explain_clip`); the prediction sections show one verdict
line each (and ``predictions.json`` the results). :func:`faithfulness_section` leads with the test of each check
over the clips (:func:`conv3t.explain.faithfulness.summarise`), faithfulness and sanity checks apart, and lists
the per-clip p-values below. The rules are those of docs/conventions.md, "Faithfulness".
"""

from __future__ import annotations

from markupsafe import Markup

from conv3t.explain.faithfulness import ALPHA, FaithfulnessResult, FaithfulnessSummary, Verdict, summarise
from conv3t.explain.report.render.context import ReportContext
from conv3t.explain.report.render.page import macros
from conv3t.explain.report.render.section import Section

__all__ = [
    "CHECKS",
    "faithfulness_section",
    "verdict_items",
    "verdict_line",
]


#: The checks in page order, with their names on the page: faithfulness first, then sanity.
CHECKS = (
    ("channel_ablation", "credited channels"),
    ("frame_deletion", "frame deletion"),
    ("frame_insertion", "frame insertion"),
    ("spatial_deletion", "Grad-CAM pixels (LeRF − MoRF)"),
    ("randomisation_gradcam", "Grad-CAM changes with the weights"),
    ("randomisation_frame_importance", "frame attribution changes with the weights"),
    ("randomisation_channels", "channel attribution changes with the weights"),
    ("random_logit_gradcam", "Grad-CAM specific to the class"),
    ("random_logit_frame_importance", "frame attribution specific to the class"),
    ("random_logit_channels", "channel attribution specific to the class"),
    ("family_filters_2d_gradcam", "3T: Grad-CAM changes with the 2D filters"),
    ("family_filters_2d_frame_importance", "3T: frame attribution changes with the 2D filters"),
    ("family_filters_2d_channels", "3T: channel attribution changes with the 2D filters"),
    ("family_temporal_gradcam", "3T: Grad-CAM changes with the learned motion"),
    ("family_temporal_frame_importance", "3T: frame attribution changes with the learned motion"),
    ("family_temporal_channels", "3T: channel attribution changes with the learned motion"),
)
_NAMES = dict(CHECKS)


def verdict_line(result: FaithfulnessResult) -> Markup:
    """The one-line verdict of a prediction section: the channel ablation's sentence (else the first check's),
    how many faithfulness checks passed at alpha and how many sanity checks."""
    first = result.verdict("channel_ablation") or (result.verdicts[0] if result.verdicts else None)
    if first is None:
        return Markup("")
    return Markup('<p class="verdict">{} {} ({})</p>').format(
        _mark(first.passed), first.sentence[:1].upper() + first.sentence[1:], _counts(result)
    )


def _counts(result: FaithfulnessResult) -> str:
    parts = []
    for kind in ("faithfulness", "sanity"):
        verdicts = [v for v in result.verdicts if v.kind == kind]
        if not verdicts:
            continue
        judged = [v for v in verdicts if v.passed is not None]
        text = f"{sum(bool(v.passed) for v in judged)} of {len(judged)} {kind} checks passed at α = {ALPHA:g}"
        if len(judged) < len(verdicts):
            text += f", {len(verdicts) - len(judged)} not testable"
        parts.append(text)
    return "; ".join(parts) + "."


def verdict_items(result: FaithfulnessResult) -> Markup:
    """The verdicts of one clip as two ``<ul class="verdicts">``: faithfulness, then sanity checks."""
    out = Markup("")
    for kind, title in (("faithfulness", "Faithfulness"), ("sanity", "Sanity (necessary, not evidence)")):
        verdicts = [v for v in result.verdicts if v.kind == kind]
        if verdicts:
            items = Markup("").join(
                Markup("<li>{} {}</li>").format(_mark(v.passed), v.sentence[:1].upper() + v.sentence[1:])
                for v in verdicts
            )
            out += Markup('<p>{}:</p><ul class="verdicts">{}</ul>').format(title, items)
    return out


def _mark(passed: bool | None) -> str:
    return "✔" if passed else ("✘" if passed is False else "–")


def _p(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.2g}"


def summary_tables(summary: FaithfulnessSummary) -> Markup:
    """The dataset summary: one table per kind of check (module notes)."""
    m = macros()
    out = Markup("")
    for kind, title in (
        ("faithfulness", "Faithfulness: does what the explanation points at matter to the model?"),
        ("sanity", "Sanity (necessary, never evidence of faithfulness): does the explanation depend on the weights?"),
    ):
        rows = [
            (
                _NAMES.get(c.check, c.check),
                f"{c.tested} of {c.clips}",
                f"{c.passed} of {c.tested}",
                _p(c.combined_p),
                _p(c.holm_p),
                _mark(c.holds),
            )
            for c in summary.checks
            if c.kind == kind
        ]
        if rows:
            header = ("check", "clips testable", "clips passing", "combined p", "Holm p", "over the clips")
            out += Markup("<h3>{}</h3>").format(title) + m.table(header, rows)
        if kind == "faithfulness" and summary.position_only:
            out += Markup(
                "<p>Baseline: one frame order that ignores the clip (frames by their mean rank over these "
                "explanations), tested on each clip the same way: {}. Where it passes as often as the "
                "explanations, frame position alone explains the frame checks.</p>"
            ).format(
                "; ".join(f"{c.check.split('_position')[0].replace('_', ' ')} {c.passed} of {c.tested} clips"
                          for c in summary.position_only)
            )  # fmt: skip
    return out


def faithfulness_section(ctx: ReportContext) -> Section | None:
    """The summary over clips first (a test per check, Holm-corrected), then plain sentences for explanations
    that survive the randomisation of the weights, then the per-clip numbers."""
    results = ctx.analysis.faithfulness
    if not ctx.options.faithfulness or not ctx.clips:
        return None
    if not results:
        return Section("faithfulness", "Faithfulness", Markup("<p>No clip was explained.</p>"))
    summary = summarise(list(results))
    html = Markup(
        "<p>Each explanation of a prediction is put to the test against random explanations of the same kind: "
        "credited channels against random channel sets of the same layers, the frame order against every frame "
        "order (exact for clips of up to 10 frames), the Grad-CAM against random maps drawn at its own "
        "resolution (removing its most and its least relevant pixels first). A check passes on a clip when its "
        "rank p-value is at most α = {:g} (at most {} random draws; a check that cannot reach α on a clip is "
        "not testable). Over the clips, Fisher's combination of the per-clip p-values, Holm-corrected across "
        "checks. The randomisation checks are sanity checks: an explanation that survives the randomisation of "
        "the weights explains little, one that changes is not thereby faithful. Rules and definitions: "
        "docs/conventions.md, “Faithfulness”.</p>"
    ).format(ALPHA, ctx.options.faithfulness_draws)
    html += summary_tables(summary)
    html += _untestable(ctx, list(results))
    html += _unchanged(summary)
    html += Markup(
        "<p>Per clip: the p-value of each check (– not run; <em>not testable</em>: why is listed above); "
        "<em>channels</em>: the class probability before → with the credited channels zeroed / random sets "
        "(mean).</p>"
    ) + _numbers(ctx, list(results))
    return Section("faithfulness", "Faithfulness of the prediction explanations", html, nav="Faithfulness")


def _untestable(ctx: ReportContext, results: list[FaithfulnessResult]) -> Markup:
    """Why a check was not testable on a clip, in its verdict's words (e.g. "the Grad-CAM is constant on ... :
    undefined"), under the summary whose "clips testable" column counts those clips; nothing when all were."""
    items = [
        Markup("<li>{} on {}: {}</li>").format(name, clip.name, v.sentence[:1].upper() + v.sentence[1:])
        for check, name in CHECKS
        for clip, r in zip(ctx.clips, results)
        if (v := r.verdict(check)) is not None and v.passed is None
    ]
    if not items:
        return Markup("")
    return Markup('<p>Not testable on some clips, and why:</p><ul class="verdicts">{}</ul>').format(
        Markup("").join(items)
    )


def _unchanged(summary: FaithfulnessSummary) -> Markup:
    """Plain sentences for explanations that survive the randomisation of the whole model *over the clips*
    (the check's Holm-corrected combined test, the verdict the summary table shows): a single clip's failure is
    in the per-clip table, not a headline that could contradict the table above it."""
    out = Markup("")
    for check, name in CHECKS[4:7]:
        row = summary.check(check)
        if row is None or row.holds is not False:
            continue
        out += Markup(
            '<p class="sentence">Over the clips, the {} survives the randomisation of every layer\'s weights '
            "(Holm-corrected p = {}; on its own on {} of {} testable clips): it explains little about what the "
            "model learned.</p>"
        ).format(name.split(" changes")[0], f"{row.holm_p:.2g}", row.tested - row.passed, row.tested)
    return out


def _cell(verdict: Verdict | None) -> str:
    if verdict is None:
        return "–"
    return "not testable" if verdict.passed is None else f"{_mark(verdict.passed)} {_p(verdict.p_value)}"


def _fmt(value: float | None) -> str:
    return "–" if value is None or value != value else f"{value:.2f}"


def _numbers(ctx: ReportContext, results: list[FaithfulnessResult]) -> Markup:
    """The per-clip p-values, a row per check and a column per clip: 16 checks side by side made the table
    three times wider than the page; a clip adds a narrow column (the container scrolls beyond a dozen)."""
    classes = ctx.info.classes
    header = ["check"]
    for clip, r in zip(ctx.clips, results):
        header.append(f"{clip.name}: {classes[r.target] if 0 <= r.target < len(classes) else r.target}")
    rows = [["channels (class probability)"]]
    for r in results:
        a = r.channel_ablation
        rows[0].append(f"{_fmt(a.p_before)} → {_fmt(a.p_after_credited)} / {_fmt(a.p_after_random_mean)}" if a else "–")
    for check, name in CHECKS:
        verdicts = [r.verdict(check) for r in results]
        rows.append([name, *(_cell(v) for v in verdicts)])
    return Markup('<div class="scroll">{}</div>').format(macros().table(header, rows))
