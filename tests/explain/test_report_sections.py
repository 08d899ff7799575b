"""The report's section machinery: the registry drives page order, navigation and the progress total; the
template escapes; and the worked example of docs/extending.md runs as printed there."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from markupsafe import Markup
from test_report import Page, check_complete, make_run

from conv3t.explain.report import SECTIONS, Figure, Section, SectionEntry, build_report
from conv3t.explain.report import build as build_module
from conv3t.explain.report.render import no_steps, stage_times
from conv3t.explain.report.render.page import navigation, render_page
from conv3t.exported import load_exported, save_exported

DOC = Path(__file__).resolve().parents[2] / "docs" / "extending.md"
FAST = {"progress": False, "num_channels": 1, "num_clips": 1, "actmax_steps": 1, "verify": False}


def _report_part() -> str:
    text = DOC.read_text(encoding="utf-8")
    return text[text.index("## Report sections") : text.index("\n## ", text.index("## Report sections") + 1)]


def example_entry() -> SectionEntry:
    """The doc's section module and registry entry, executed as printed."""
    blocks = re.findall(r"```python\n(.*?)```", _report_part(), flags=re.S)
    module, entry = blocks
    namespace: dict = {}
    exec(compile(module, "docs/extending.md (section example)", "exec"), namespace)
    namespace.update(SectionEntry=SectionEntry, no_steps=no_steps)
    return eval(entry.strip().rstrip(","), namespace)


@pytest.mark.slow
def test_the_worked_example_adds_one_section_with_its_navigation_entry(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    exported = load_exported(run)
    with torch.no_grad():  # a planted fastest rotation: -0.5 rad in affine_grid sense = 28.6° clockwise content
        exported.model.layer1[0].conv1.rotation[2, 1] = -0.5
    run = save_exported(exported.model, tmp_path / "planted", exported.info)
    entry = example_entry()
    assert entry.name == "rotations" and entry.steps is no_steps
    registry = list(SECTIONS)
    registry.insert([e.name for e in registry].index("distributions") + 1, entry)
    build_report(run, tmp_path / "rep", layers=["conv1"], sections=registry, **FAST)
    index = Path(tmp_path / "rep") / "index.html"
    html = index.read_text(encoding="utf-8")
    page = check_complete(index)
    assert '<section id="rotations"><h2>Fastest rotations</h2>' in html
    assert re.search(r'<li><span class="number">\d+\.</span> <a href="#rotations">Rotations</a></li>', html)
    # after the distributions, before the layers, as the registry says
    assert html.index('id="distributions"') < html.index('id="rotations"') < html.index('id="conv1"')
    assert f"layer1.0.conv1 2 1 +{math.degrees(0.5):.1f}°" in page.text
    # without the entry the page has no such section (the registry is the only place that lists it)
    build_report(run, tmp_path / "plain", layers=["conv1"], **FAST)
    plain = (Path(tmp_path / "plain") / "index.html").read_text(encoding="utf-8")
    assert 'id="rotations"' not in plain and "#rotations" not in plain


@pytest.mark.slow
def test_progress_total_is_the_sum_of_the_sections_steps(tmp_path: Path, monkeypatch) -> None:
    counters = []

    class Recorder(build_module.StepCounter):
        def __init__(self, total: int, enabled: bool) -> None:
            super().__init__(total, enabled)
            counters.append(self)

    monkeypatch.setattr(build_module, "StepCounter", Recorder)
    run = make_run(tmp_path / "run")
    names = ("model", "statistics", "distributions", "conventions", "channels", "verification")
    entries = [e for e in SECTIONS if e.name in names]
    options = {**FAST, "verify": True}
    build_report(
        run, tmp_path / "rep", layers=["conv1", "layer1.0.conv1"], channels=[0, 1], sections=entries, **options
    )
    [counter] = counters
    # clips + verification + (2 layers: actmax) + (4 cards: saliency, then figures) + distributions + page; the
    # parameter table and statistics are read off the model in the analysis without a step of their own
    assert counter.total == 1 + 1 + 2 + 2 * 4 + 1 + 1
    assert counter.done == counter.total


def test_a_section_that_miscounts_its_steps_is_caught(tmp_path: Path, monkeypatch) -> None:
    def two_steps(ctx):  # type: ignore[no-untyped-def]
        with ctx.step("one"):
            pass
        with ctx.step("two"):
            pass
        return Section("x", "X")

    run = make_run(tmp_path / "run")
    with pytest.raises(RuntimeError, match=r"section 'x' took 2 progress steps but declares 1"):
        build_report(run, tmp_path / "rep", sections=[SectionEntry("x", two_steps)], **FAST)


def test_template_escapes_text_and_builds_navigation_from_sections() -> None:
    sections = [
        Section("a", "A <b>", Markup("<p>kept</p>"), [Figure("images/x.png", 'say "<hi>"', "wide")]),
        Section(None, "No id", Markup("")),
        Section("b", "B", nav="Bee"),
        Section("c", "C", in_nav=False),
        Section(None, "", Markup('<section id="raw">raw</section>'), wrap=False),
    ]
    assert navigation(sections) == [("a", "A <b>"), ("b", "Bee")]
    html = render_page(title="<t>", heading="h & h", sections=sections, footer="f <i>")
    assert "<title>&lt;t&gt;</title>" in html and "<h1>h &amp; h</h1>" in html
    assert '<section id="a"><h2>A &lt;b&gt;</h2><p>kept</p>\n<figure class="wide">' in html
    assert 'alt="say &#34;&lt;hi&gt;&#34;"' in html and "<footer>f &lt;i&gt;</footer>" in html
    assert "<section><h2>No id</h2></section>" in html and '<section id="raw">raw</section>' in html
    assert '<a href="#c">' not in html and 'rel="stylesheet" href="report.css"' in html
    assert Page(html).scripts == 0


def test_importing_explain_stays_light_until_a_page_is_asked_for() -> None:
    """``from conv3t.explain import temporal_parameters`` (README) must not load the data package's Lightning."""
    code = (
        "import sys\n"
        "from conv3t.explain import rank_channels, summary_statistics, temporal_parameters\n"
        "assert 'lightning' not in sys.modules and 'conv3t.explain.report' not in sys.modules\n"
        "from conv3t.explain import build_report\n"
        "assert build_report.__module__ == 'conv3t.explain.report.build'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_stage_times_sum_the_steps_of_one_stage_in_order() -> None:
    seconds = {
        "reading clips": 0.6,
        "verification against motion stimuli": 352.2,
        "faithfulness: clip 1 of 3": 171.0,
        "faithfulness: clip 2 of 3": 180.4,
        "saliency: conv1 #6": 0.3,
        "faithfulness: clip 3 of 3": 193.0,
        "saliency: conv1 #39": 0.4,
    }
    assert stage_times(seconds) == [
        "reading clips 1 s",
        "verification against motion stimuli 352 s",
        "faithfulness 544 s in 3 parts",
        "saliency 1 s in 2 parts",
    ]
