"""The report saves its analysis as ``analysis.json``: read back typed, the same numbers as the files the sections
write (ranking.csv, parameters.csv, predictions.json, verification_summary.csv), keyed by the weights and the
settings, and a damaged or foreign file is refused with a message naming it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_report import make_run

from conv3t.explain.report import build_report
from conv3t.explain.report.build import report_analysis
from conv3t.explain.report.options import ReportOptions
from conv3t.explain.report.saved import ANALYSIS_NAME, load_analysis

CHEAP = {"num_clips": 1, "num_channels": 2, "actmax_steps": 1, "verify_textures": 2, "faithfulness_draws": 2}


@pytest.mark.slow
def test_saved_analysis_holds_what_the_report_files_hold(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    out = tmp_path / "report"
    build_report(run, out, progress=False, device="cpu", **CHEAP)
    saved = load_analysis(out)
    # the tables round-trip with their types: written as CSV they are the sections' files byte for byte
    assert saved.ranking.to_csv(index=False) == (out / "ranking.csv").read_text()
    assert saved.table.to_csv(index=False) == (out / "parameters.csv").read_text()
    assert saved.verification["summary"].to_csv(index=False) == (out / "verification_summary.csv").read_text()
    assert list(saved.predictions) == json.loads((out / "predictions.json").read_text())["predictions"]
    assert "faithfulness" in saved.predictions[0]
    page = (out / "index.html").read_text()
    assert saved.channels and {c.layer for c in saved.channels} <= set(saved.layers)
    for chosen in saved.channels:
        assert f"{chosen.layer} — channel {chosen.channel}" in page
    assert saved.options["verify_textures"] == 2 and "device" not in saved.options
    assert saved.device == "cpu" and saved.model["model"] == "resnet10_3t"
    assert saved.clips[0]["prediction"] == saved.predictions[0]["top"][0]["class"]
    assert load_analysis(out, key=saved.key).key == saved.key


def _key(run: Path, out: Path, **options: object) -> str:
    report_analysis(run, out, ReportOptions(**{"num_clips": 1, "device": "cpu", **options}), entries=[])
    return load_analysis(out).key


def test_key_follows_the_weights_and_the_settings_not_the_device(tmp_path: Path) -> None:
    run, other = make_run(tmp_path / "run"), make_run(tmp_path / "other", seed=1)
    out = tmp_path / "report"
    key = _key(run, out)
    assert len(key) == 64
    assert _key(run, out) == key  # the same computation, the same key
    assert _key(run, out, max_memory="1GB") == key  # how it runs does not change what it holds
    assert _key(run, out, seed=1) != key
    assert _key(run, out, num_clips=2) != key
    assert _key(other, out) != key


def test_damaged_or_foreign_saved_analysis_is_refused_naming_the_file(tmp_path: Path) -> None:
    run = make_run(tmp_path / "run")
    out = tmp_path / "report"
    with pytest.raises(FileNotFoundError, match="no saved analysis"):
        load_analysis(out)
    key = _key(run, out)
    with pytest.raises(ValueError, match="another model or other settings"):
        load_analysis(out, key="0" * 64)
    path = out / ANALYSIS_NAME
    path.write_text(path.read_text()[:200])
    with pytest.raises(ValueError, match=f"{ANALYSIS_NAME}: damaged saved analysis"):
        load_analysis(out, key=key)
    path.write_text(json.dumps({"version": 99}))
    with pytest.raises(ValueError, match="this conv3t reads version 1"):
        load_analysis(out)
