"""The faithfulness checks in the report: predictions.json carries the ``faithfulness`` object of every entry,
each prediction section its verdict line, the Faithfulness section the summary; ``conv3t explain
--no-faithfulness`` / ``--faithfulness-draws`` reach the report, and ``conv3t demo`` prints the verdicts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from planted import exported_planted, write_frame_folders
from rich.console import Console

KEYS = {
    "channel_ablation",
    "frame_deletion",
    "frame_insertion",
    "spatial_deletion",
    "randomisation",
    "randomisation_tests",
    "verdicts",
}
FAST = {"num_channels": 1, "actmax_steps": 1, "progress": False, "verify": False}


def _report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> tuple[list[dict], str]:
    import conv3t.explain.report.build as build

    videos = write_frame_folders(tmp_path / "videos")
    torch.set_num_threads(1)
    build.build_report(exported_planted(), tmp_path / "report", videos=videos, **FAST, **kwargs)
    index = Path(tmp_path / "report") / "index.html"
    data = json.loads((tmp_path / "report" / "predictions.json").read_text())
    return data, index.read_text()


@pytest.mark.slow
def test_predictions_json_and_page_carry_the_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, page = _report(tmp_path, monkeypatch, faithfulness_draws=5)
    records = data["predictions"]
    assert len(records) == 2
    summary = data["faithfulness_summary"]
    assert summary["alpha"] == 0.05
    assert [c["kind"] for c in summary["checks"]][:4] == ["faithfulness"] * 4
    assert {c["check"] for c in summary["checks"]} >= {"channel_ablation", "frame_deletion", "randomisation_channels"}
    for c in summary["checks"]:
        assert c["clips"] == 2 and 0 <= c["passed"] <= c["tested"] <= 2
    for record in records:
        f = record["faithfulness"]
        assert set(f) >= KEYS
        a = f["channel_ablation"]
        assert {"k", "p_before", "p_after_credited", "p_after_random_mean", "test", "logit_before"} <= set(a)
        assert a["draws"] <= 5 and a["k"] == len(record["channels"])
        assert a["test"]["min_p"] == pytest.approx(1 / 6)  # at most 5 draws: p >= 1/6, not testable
        assert f["frame_deletion"]["test"]["method"] == "exact"  # 8 frames: all 40320 orders
        assert abs(a["p_before"] - record["top"][0]["probability"]) < 1e-5
        for key in ("frame_deletion", "frame_insertion", "spatial_deletion"):
            assert {"auc", "random_auc_mean", "random_auc_std", "rule", "fractions", "test", "logit_curve"} <= set(
                f[key]
            )
        # the planted network's groups, top first: fc, then conv1
        assert [s["layers_randomised"] for s in f["randomisation"]] == [["fc"], ["fc", "conv1"]]
        assert set(f["randomisation"][0]) == {
            "layers_randomised",
            "gradcam_rank_corr",
            "frame_importance_rank_corr",
            "channel_rank_corr",
        }
        assert {v["check"] for v in f["verdicts"]} >= {"channel_ablation", "frame_deletion", "spatial_deletion"}
        kinds = {v["check"]: v["kind"] for v in f["verdicts"]}
        assert kinds["channel_ablation"] == "faithfulness" and kinds["randomisation_channels"] == "sanity"
        assert next(v for v in f["verdicts"] if v["check"] == "channel_ablation")["passed"] is None
    right = records[0]
    assert f"credited channels drops p({right['top'][0]['class']}) from" in page or "credited channel drops" in page
    assert page.count('<p class="verdict">') == 2
    assert 'id="faithfulness"' in page and "Holm p" in page
    assert page.index("Faithfulness: does what") < page.index("Sanity (necessary, never evidence")


@pytest.mark.slow
def test_no_faithfulness_leaves_the_checks_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data, page = _report(tmp_path, monkeypatch, faithfulness=False)
    records = data["predictions"]
    assert records and all("faithfulness" not in r for r in records) and data["faithfulness_summary"] is None
    assert 'id="faithfulness"' not in page and '<p class="verdict">' not in page


def test_the_command_line_flags_reach_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import conv3t.explain.report as report
    from conv3t.cli import main as cli_main

    seen: dict = {}

    def fake(run: object, out: object, options: object, **kwargs: object) -> None:
        seen.update(vars(options))  # the options the flags made

    monkeypatch.setattr(report, "build_report", fake)
    assert cli_main(["explain", "run", "--out", str(tmp_path), "--no-faithfulness", "--faithfulness-draws", "7"]) == 0
    assert seen["faithfulness"] is False and seen["faithfulness_draws"] == 7
    assert cli_main(["explain", "run", "--out", str(tmp_path)]) == 0
    assert seen["faithfulness"] is True and seen["faithfulness_draws"] == 19


def test_too_few_draws_is_refused_naming_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from conv3t.cli import main as cli_main

    assert cli_main(["explain", "nowhere", "--out", str(tmp_path), "--faithfulness-draws", "1"]) == 2
    assert "--faithfulness-draws must be >= 2, got 1" in capsys.readouterr().err


def test_the_demo_prints_the_verdicts(tmp_path: Path) -> None:
    from conv3t.commands.demo import _print_faithfulness

    verdicts = [
        {"check": "channel_ablation", "kind": "faithfulness", "passed": True, "sentence": "removing the 5 credited"},
        {"check": "frame_deletion", "kind": "faithfulness", "passed": False, "sentence": "deleting frames most ..."},
        {"check": "randomisation_gradcam", "kind": "sanity", "passed": True, "sentence": "with every layer ..."},
        {"check": "random_logit_gradcam", "kind": "sanity", "passed": None, "sentence": "constant: undefined"},
    ]
    entry = {"video": "clip 0", "top": [{"class": "x", "probability": 0.9}], "faithfulness": {"verdicts": verdicts}}
    summary = {
        "checks": [
            {
                "kind": "faithfulness",
                "check": "channel_ablation",
                "passed": 1,
                "tested": 1,
                "holm_p": 0.03,
                "holds": True,
            },
            {
                "kind": "sanity",
                "check": "randomisation_gradcam",
                "passed": 0,
                "tested": 1,
                "holm_p": 0.01,
                "holds": False,
            },
        ]
    }
    (tmp_path / "predictions.json").write_text(json.dumps({"predictions": [entry], "faithfulness_summary": summary}))
    out = io.StringIO()
    _print_faithfulness(Console(file=out, width=200), tmp_path / "predictions.json")
    text = out.getvalue()
    # sanity checks are never added to the faithfulness count, untestable ones are named, not counted as failed
    assert "clip 0 -> x: faithfulness 1 of 2 pass, sanity 1 of 1 pass (1 not testable)" in text
    assert "holds     faithfulness channel_ablation: 1 of 1 testable clips pass; Holm p = 0.03" in text
    # the verdict over the clips is stated in words: a small p fails a sanity check, passes a faithfulness one
    assert "fails     sanity       randomisation_gradcam: 0 of 1 testable clips pass; Holm p = 0.01" in text
    assert "pass  removing the 5 credited" in text and "fail  deleting frames" in text and "n/a   constant" in text


@pytest.mark.slow
def test_the_readme_example_runs_as_printed() -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    part = readme[readme.index("## Are the explanations faithful?") :]
    part = part[: part.index("\n## ", 1)]
    code = re.findall(r"```python\n(.*?)```", part, flags=re.S)[0]
    torch.manual_seed(0)
    namespace: dict = {}
    exec(compile(code, "README.md (faithfulness example)", "exec"), namespace)
    result = namespace["result"]
    assert result.channel_ablation.draws <= 20 and len(result.verdicts) == 10  # 4 faithfulness, 6 sanity
    assert {v.kind for v in result.verdicts} == {"faithfulness", "sanity"}
    assert result.randomisation[0].layers_randomised == ("fc",)


def test_the_summary_leads_the_section_and_says_plainly_what_survives_randomisation() -> None:
    from types import SimpleNamespace

    from conv3t.explain.faithfulness import ChannelAblation, FaithfulnessResult, RandomisationTest, RankTest
    from conv3t.explain.faithfulness.verdicts import ablation_verdict, randomisation_verdicts
    from conv3t.explain.report.render.sections.faithfulness import faithfulness_section

    def result(p_value: float, survives: float) -> FaithfulnessResult:
        test = RankTest(0.21, 0.95, 0.02, 99, p_value, 0.01, False)
        ablation = ChannelAblation(5, 0.97, 0.21, 0.95, 0.02, 99, test)
        tests = (RandomisationTest("frame_importance", 0.9, 0.9, survives, 5, 0),)
        verdicts = (ablation_verdict(ablation, "rotate_cw"), *randomisation_verdicts(tests))
        return FaithfulnessResult(0, ablation, None, None, None, (), verdicts, tests)

    results = [result(0.01, 0.001), result(0.3, 0.4)]
    assert results[0].verdict("channel_ablation").sentence == (
        "removing the 5 credited channels drops p(rotate_cw) from 0.97 to 0.21; 5 random channels of the same "
        "layers: 0.95 ± 0.02, p = 0.01 (99 random draws): the credited channels matter."
    )
    assert results[1].verdict("channel_ablation").passed is False
    assert results[0].verdict("randomisation_frame_importance").passed is False
    ctx = SimpleNamespace(
        options=SimpleNamespace(faithfulness=True, faithfulness_draws=99),
        clips=[SimpleNamespace(name="a"), SimpleNamespace(name="b")],
        info=SimpleNamespace(classes=["rotate_cw"]),
        analysis=SimpleNamespace(faithfulness=tuple(results)),
    )
    text = str(faithfulness_section(ctx).html)  # type: ignore[arg-type]
    # credited channels: 1 of 2 clips pass; Fisher over p = 0.01, 0.3: x = 9.21 on 4 df, e^(-x/2)(1 + x/2) = 0.0204;
    # Holm over the 2 checks: the sanity check's 0.0035 is first (x 2 = 0.0071), then max(0.0071, 0.0204)
    assert "<td>credited channels</td><td>2 of 2</td><td>1 of 2</td><td>0.02</td><td>0.02</td><td>✔</td>" in text
    assert text.index("Faithfulness: does what") < text.index("Sanity (necessary") < text.index("Per clip")
    # the sanity check fails over the clips (Fisher over 0.001, 0.4 = 0.0035, Holm x 2 = 0.0071)
    assert (
        "Over the clips, the frame attribution survives the randomisation of every layer's weights "
        "(Holm-corrected p = 0.0071; on its own on 1 of 2 testable clips)"
    ) in text
    # one clip fails (p = 0.03) but over the clips the check holds (Fisher over 0.03, 0.9, 0.9 = 0.25): the table
    # says ✔, so no sentence may say the explanation survives
    held = [result(0.01, 0.03), result(0.01, 0.9), result(0.01, 0.9)]
    assert held[0].verdict("randomisation_frame_importance").passed is False
    ctx.clips = [SimpleNamespace(name=n) for n in "abc"]
    ctx.analysis = SimpleNamespace(faithfulness=tuple(held))
    assert "survives the randomisation of every layer" not in str(faithfulness_section(ctx).html)  # type: ignore[arg-type]


def test_a_check_untestable_on_a_clip_says_why_on_the_page() -> None:
    """The check "Grad-CAM changes with the weights" on a clip whose randomised Grad-CAMs were constant: the summary
    counted "1 of 2" testable and the per-clip cell read "– –"; the page now gives the verdict's reason beside the count
    and names the cell "not testable"."""
    from types import SimpleNamespace

    from conv3t.explain.faithfulness import FaithfulnessResult, RandomisationTest
    from conv3t.explain.faithfulness.verdicts import randomisation_verdicts
    from conv3t.explain.report.render.sections.faithfulness import faithfulness_section

    def result(test: RandomisationTest) -> FaithfulnessResult:
        return FaithfulnessResult(0, None, None, None, None, (), tuple(randomisation_verdicts((test,))), (test,))

    constant = RandomisationTest("gradcam", float("nan"), 0.1, None, 5, 3)  # 3 of 5 randomised maps constant
    fine = RandomisationTest("gradcam", 0.1, 0.1, 0.5, 5, 0)
    ctx = SimpleNamespace(
        options=SimpleNamespace(faithfulness=True, faithfulness_draws=19),
        clips=[SimpleNamespace(name="val clip 0"), SimpleNamespace(name="val clip 3")],
        info=SimpleNamespace(classes=["a"]),
        analysis=SimpleNamespace(faithfulness=(result(fine), result(constant))),
    )
    text = str(faithfulness_section(ctx).html)  # type: ignore[arg-type]
    assert "<td>Grad-CAM changes with the weights</td><td>1 of 2</td>" in text  # the count, as before
    reason = (
        "<li>Grad-CAM changes with the weights on val clip 3: The Grad-CAM is constant on the trained model or on 3 "
        "of the 5 randomised ones: undefined"
    )
    assert reason in text and text.index("1 of 2") < text.index(reason) < text.index("Per clip")
    assert "<td>Grad-CAM changes with the weights</td><td>✔ 0.5</td><td>not testable</td>" in text
    assert "val clip 0: The" not in text  # a testable clip gets no reason
