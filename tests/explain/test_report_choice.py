"""Which channels get cards: never a dead one or one whose slices never meet the clip, also without readings."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from test_report import make_run

from conv3t.explain.report import build_report


@pytest.mark.slow
def test_without_verification_no_effect_channels_get_no_cards(tmp_path):
    run = make_run(tmp_path / "run")  # 6 frames: the last stage's 3-deep kernels see a 1-frame input
    build_report(run, tmp_path / "report", verify=False, num_channels=2, actmax_steps=2, progress=False)
    index = Path(tmp_path / "report") / "index.html"
    page = index.read_text()
    ranking = pd.read_csv(tmp_path / "report" / "ranking.csv")
    assert "measured_sentence" not in ranking.columns  # no measurement, plain ranking
    shown = re.findall(r"([\w.]+) — channel (\d+)", page)
    assert shown
    by = ranking.set_index(["layer", "channel"])
    for layer, channel in shown:
        assert not by.loc[(layer, int(channel)), "dead"] and by.loc[(layer, int(channel)), "steps_in_clip"] > 0
    last = ranking["layer"].iloc[-1]
    assert (ranking[ranking["layer"] == last]["steps_in_clip"] == 0).all()
    assert all(layer != last for layer, _ in shown) and "No channel of this layer is shown" in page
