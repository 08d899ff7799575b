"""The report stores its verification and a second report of the same model reuses it (and says so); other
weights never do; a damaged store is measured again with a warning. Also the report's device option."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_report import make_run

from conv3t.cli import main
from conv3t.explain.report import build_report
from conv3t.explain.report.analysis import verification as verification_module
from conv3t.explain.report.registry import SECTIONS
from conv3t.verify.store import STORE_NAME

ONLY_VERIFICATION = [entry for entry in SECTIONS if entry.name in ("readings", "verification")]


def _build(run: Path, out: Path, **kw: object) -> Path:
    """The page's path (``build_report`` returns the analysis; the page is ``out/index.html``)."""
    args = {"num_clips": 1, "actmax_steps": 0, "progress": False, "verify_textures": 2, "device": "cpu"}
    build_report(run, out, sections=ONLY_VERIFICATION, **{**args, **kw})
    return out / "index.html"


@pytest.mark.slow
def test_a_second_report_reuses_the_stored_verification(tmp_path, monkeypatch, capsys):
    run = make_run(tmp_path / "run")
    out = tmp_path / "report"
    index = _build(run, out)
    assert (out / STORE_NAME).is_file()
    assert "measured in" in index.read_text()  # the run summary names what the verification took
    summary = (out / "verification_summary.csv").read_text()
    capsys.readouterr()

    calls: list[int] = []
    original = verification_module.verify_model

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(verification_module, "verify_model", counting)
    index = _build(run, out, num_channels=1, layers=["conv1"])  # other choices: the same measurement
    assert calls == []
    assert "reusing the verification stored in" in capsys.readouterr().err
    assert "verification reused from" in index.read_text()
    assert (out / "verification_summary.csv").read_text() == summary

    _build(run, out, verify_textures=3)  # another setting that changes the readings: measured again
    assert calls == [1]
    other = make_run(tmp_path / "other", seed=1)  # other weights into the same folder: measured again
    _build(other, out, verify_textures=3)
    assert calls == [1, 1]

    store = out / STORE_NAME
    store.write_text(store.read_text()[:100])
    with pytest.warns(UserWarning, match="is damaged"):
        _build(other, out, verify_textures=3)
    assert calls == [1, 1, 1]
    assert "warning: the stored verification" in capsys.readouterr().err
    json.loads(store.read_text())  # rewritten whole


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_explain_device_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    code = main(["explain", str(run), "--out", str(tmp_path / "r"), "--device", "cuda", "--no-progress"])
    assert code == 2
    assert "--device: 'cuda' asked for, but CUDA is not available" in capsys.readouterr().err


def test_explain_bad_memory_size_names_the_option(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    code = main(["explain", str(run), "--out", str(tmp_path / "r"), "--max-memory", "lots", "--no-progress"])
    assert code == 2
    assert "--max-memory: expected a size such as 4GB" in capsys.readouterr().err
