"""End to end on a planted network (tests/explain/planted.py): conv1 channels with set motions are measured to
prefer exactly those motions, marked as agreeing with their parameters, ranked first, and the translation head's
predictions are attributed to them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
import torch
from planted import CLASSES, MEAN, STD, exported_planted, planted_clips, planted_net, write_frame_folders

from conv3t.explain.describe import rank_channels
from conv3t.explain.measured import prediction_sentence, reading_text
from conv3t.explain.report.analysis import explain_predictions
from conv3t.readout import temporal_parameters
from conv3t.verify.network import VerifyConfig, verify_model
from conv3t.verify.readings import channel_readings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def planted():  # type: ignore[no-untyped-def]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = planted_net()
        config = VerifyConfig(modes=("image",), textures=16)  # the report's thresholds (VerifyConfig defaults)
        result = verify_model(net, num_frames=8, size=32, mean=MEAN, std=STD, config=config)
        return net, channel_readings(result).set_index("channel")
    finally:
        torch.set_num_threads(threads)


def test_measures_exactly_the_planted_motions(planted) -> None:  # type: ignore[no-untyped-def]
    _, r = planted
    assert r.loc[0, "measured_motion"] == "translation" and r.loc[1, "measured_motion"] == "translation"
    assert abs((r.loc[0, "measured_direction_deg"] + 180) % 360 - 180) < 5  # right
    assert abs(r.loc[1, "measured_direction_deg"] - 180) < 5  # left
    assert r.loc[0, "measured_speed_px"] == 1.0 and r.loc[1, "measured_speed_px"] == 1.0
    assert (r.loc[2, "measured_motion"], r.loc[2, "measured_rotation"]) == ("rotation", "cw")
    assert (r.loc[3, "measured_motion"], r.loc[3, "measured_rotation"]) == ("rotation", "ccw")
    assert (r.loc[4, "measured_motion"], r.loc[4, "measured_zoom"]) == ("zoom", "in")
    assert (r.loc[5, "measured_motion"], r.loc[5, "measured_zoom"]) == ("zoom", "out")
    assert all(r.loc[c, "parameters_agree"] is True for c in range(6))
    for c in (6, 7, 8):  # no motion set; 8 is dead
        assert not r.loc[c, "tuned"] and r.loc[c, "parameters_agree"] is None
        assert r.loc[c, "tuning_strength"] < 0.01


def test_ranks_the_planted_channels_first_and_the_dead_one_last(planted) -> None:  # type: ignore[no-untyped-def]
    net, r = planted
    table = temporal_parameters(net, input_size=(8, 32, 32))
    ranked = rank_channels(table, readings=r.reset_index())
    assert set(ranked["channel"].head(6)) == set(range(6))
    assert ranked["channel"].iloc[-1] == 8
    first = ranked.iloc[0]
    assert first["measured_sentence"].startswith("Measured in the image: prefers motion to")
    assert first["agreement_sentence"].startswith("Agrees:")


def test_predictions_are_attributed_to_the_planted_translation_channels(planted) -> None:  # type: ignore[no-untyped-def]
    net, r = planted
    clips, names = planted_clips(seed=1, views=4)  # another texture than the head's calibration
    keep = [i for i, n in enumerate(names) if n in CLASSES]
    records = explain_predictions(
        net,
        clips[keep],
        [names[i] for i in keep],
        CLASSES,
        ["conv1"],
        readings=r.reset_index(),
        reading_text=reading_text,
    )
    for rec in records:
        expected = {"translate_right": 0, "translate_left": 1}[rec.video]
        assert rec.top[0]["class"] == rec.video
        assert rec.channels[0]["layer"] == "conv1" and rec.channels[0]["channel"] == expected
        assert rec.channels[0]["reading"].startswith(f"prefers motion to the {rec.video.split('_')[1]}")
        assert prediction_sentence(rec.to_json()).startswith(f"Predicted {rec.video} (")
        assert "(measured): conv1 #" in prediction_sentence(rec.to_json())


def test_the_report_ranks_measures_and_explains_the_planted_network(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """build_report end to end (its loader returns the planted network; it is not in the model registry)."""
    import conv3t.explain.report.build as build

    videos = write_frame_folders(tmp_path / "videos")
    torch.set_num_threads(1)
    build.build_report(
        exported_planted(), tmp_path / "report", videos=videos, num_channels=9, actmax_steps=2, progress=False
    )
    index = Path(tmp_path / "report") / "index.html"
    ranking = pd.read_csv(tmp_path / "report" / "ranking.csv", keep_default_na=False, na_values=[""])
    assert set(ranking["channel"].head(6)) == set(range(6))
    top = ranking.head(6).set_index("channel")
    assert (top["parameters_agree"] == True).all()  # noqa: E712 (read back from CSV as bool)
    assert top.loc[0, "measured_speed_px"] == 1.0 and abs(top.loc[1, "measured_direction_deg"] - 180) < 5
    assert (top.loc[2, "measured_rotation"], top.loc[3, "measured_rotation"]) == ("cw", "ccw")
    assert (top.loc[4, "measured_zoom"], top.loc[5, "measured_zoom"]) == ("in", "out")
    assert pd.isna(ranking.set_index("channel").loc[8, "parameters_agree"])  # untuned (dead): empty
    records = json.loads((tmp_path / "report" / "predictions.json").read_text())["predictions"]
    assert [r["video"] for r in records] == ["translate_right", "translate_left"]
    for record, channel in zip(records, (0, 1)):
        assert record["top"][0]["class"] == record["video"]
        assert (record["channels"][0]["layer"], record["channels"][0]["channel"]) == ("conv1", channel)
        # the frame attribution shown: integrated gradients (logit units); input x gradient shares beside it
        assert record["frame_method"] == "integrated_gradients" and len(record["frame_importance"]) == 8
        assert abs(sum(record["frame_importance_input_x_gradient"]) - 1) < 1e-5
    page = index.read_text()
    for cid in ("prediction_0", "prediction_1", "verification", "conv1"):
        assert f'id="{cid}"' in page
    # all 9 asked for: the 8 live channels get cards, the dead one is left out
    shown = {int(c) for c in re.findall(r"conv1 — channel (\d+)\b", page)}
    assert shown == set(range(8))
    assert "Measured in the image: prefers motion to the right" in page
