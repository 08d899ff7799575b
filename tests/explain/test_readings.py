"""Measured readings per channel and verdicts per layer, from hand-made verification results."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from conv3t.explain.measured import agreement_sentence, measured_sentence, prediction_sentence, reading_text
from conv3t.verify.network import VerificationResult
from conv3t.verify.readings import READING_COLUMNS, binomial_tail, channel_readings, layer_verdicts

CONFIG = {"translation_threshold": 0.1, "rotation_threshold": 0.05, "zoom_threshold": 0.05}


def _channel(c: int, t: float = 0.0, r: float = 0.0, z: float = 0.0, **kw: object) -> dict[str, object]:
    row: dict[str, object] = {
        "mode": "image",
        "layer": "conv1",
        "channel": c,
        "translation_index": t,
        "measured_direction_deg": 90.0,
        "measured_speed": 2.0,
        "rotation_index": r,
        "measured_rotation_speed": 5.0,
        "zoom_index": z,
        "measured_zoom": 1.06,
        "pred_direction_deg": 80.0,
        "pred_speed": 1.5,
        "pred_rotation_cw": 3.0,
        "pred_zoom": -2.0,
        "translation_agree": False,
        "rotation_agree": False,
        "zoom_agree": False,
    }
    row.update(kw)
    return row


def _result(rows: list[dict[str, object]], summary: pd.DataFrame | None = None) -> VerificationResult:
    return VerificationResult(
        channels=pd.DataFrame(rows), summary=pd.DataFrame() if summary is None else summary, config=CONFIG
    )


def test_primary_motion_is_the_largest_index_relative_to_its_threshold():
    rows = [
        _channel(0, t=0.5, r=0.06, translation_agree=True),  # 5x vs 1.2x its threshold: translation
        _channel(1, t=0.15, r=-0.2, rotation_agree=True),  # 1.5x vs 4x: counter-clockwise rotation
        _channel(2, t=0.05, z=0.04),  # nothing reaches its threshold: untuned
        _channel(3, z=-0.3, zoom_agree=False),  # zoom out, parameters disagree
        _channel(4, t=0.3, measured_speed=0.0),  # prefers the static clip over every translation
    ]
    r = channel_readings(_result(rows)).set_index("channel")
    assert list(r.columns[1:7]) == list(READING_COLUMNS)
    assert r.loc[0, "measured_motion"] == "translation"
    assert r.loc[0, "measured_direction_deg"] == 90.0 and r.loc[0, "measured_speed_px"] == 2.0
    assert r.loc[0, "measured_rotation"] == "cw" and r.loc[0, "measured_zoom"] == ""
    assert r.loc[0, "tuning_strength"] == pytest.approx(0.5) and r.loc[0, "parameters_agree"] is True
    assert r.loc[1, "measured_motion"] == "rotation" and r.loc[1, "measured_rotation"] == "ccw"
    assert r.loc[1, "tuning_strength"] == pytest.approx(0.2) and r.loc[1, "parameters_agree"] is True
    assert not r.loc[2, "tuned"] and r.loc[2, "parameters_agree"] is None
    assert math.isnan(r.loc[2, "measured_direction_deg"]) and math.isnan(r.loc[2, "measured_speed_px"])
    assert r.loc[2, "tuning_strength"] == pytest.approx(0.04)  # zoom (0.8x its threshold) beats 0.5x
    assert r.loc[3, "measured_zoom"] == "out" and r.loc[3, "parameters_agree"] is False
    assert r.loc[4, "measured_speed_px"] == 0.0 and math.isnan(r.loc[4, "measured_direction_deg"])


def test_untuned_strength_is_the_index_of_its_nearest_to_threshold_type():
    r = channel_readings(_result([_channel(0, t=0.05, z=0.04)])).iloc[0]
    # 0.05 / 0.1 = 0.5 < 0.04 / 0.05 = 0.8: zoom is the nearest to being tuned, strength = |zoom index|
    assert r["tuning_strength"] == pytest.approx(0.04)


def test_missing_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="no 'layer' mode rows"):
        channel_readings(_result([_channel(0)]), mode="layer")


def test_binomial_tail_matches_hand_values():
    assert binomial_tail(0, 5, 0.3) == pytest.approx(1.0)
    assert binomial_tail(5, 5, 0.5) == pytest.approx(1 / 32)
    assert binomial_tail(4, 6, 0.25) == pytest.approx(15 * 0.25**4 * 0.75**2 + 6 * 0.25**5 * 0.75 + 0.25**6)


def _summary(layer: str, counts: dict[str, tuple[int, int]], mode: str = "image") -> list[dict[str, object]]:
    return [
        {"mode": mode, "layer": layer, "motion": m, "channels": 16, "agree": a, "counted": n}
        for m, (a, n) in counts.items()
    ]


def test_layer_verdicts_follow_the_fixed_rules():
    summary = pd.DataFrame(
        _summary("a", {"translation": (9, 10), "rotation": (5, 5), "zoom": (1, 2)})  # readable, zoom too few
        + _summary("b", {"translation": (2, 10), "rotation": (3, 8), "zoom": (0, 0)})  # not readable
        + _summary("c", {"translation": (8, 10), "rotation": (4, 8), "zoom": (0, 0)})  # partly
        + _summary("d", {"translation": (4, 6), "rotation": (1, 1), "zoom": (0, 3)})  # 4/6: p = 0.038, too few
    )
    v = layer_verdicts(_result([], summary)).set_index("layer")
    assert v.loc["a", "verdict"] == "readable" and v.loc["a", "zoom_verdict"] == "too few"
    assert v.loc["b", "verdict"] == "not readable"
    assert v.loc["c", "verdict"] == "partly"
    assert v.loc["c", "translation_verdict"] == "agrees" and v.loc["c", "rotation_verdict"] == "disagrees"
    assert v.loc["d", "verdict"] == "too few tuned channels"
    assert v.loc["a", "sentence"].startswith("a: its parameters can be read as image motion (translation 9/10")
    assert "cannot be read as image motion" in v.loc["b", "sentence"]
    assert v.loc["d", "sentence"] == (
        "d: too few tuned channels to tell whether its parameters can be read as image motion (translation 4/6 "
        "agree, chance 25%; rotation 1/1 agree, chance 50%; zoom 0/3 agree, chance 50%)."
    )
    assert "for translation" in v.loc["c", "sentence"] and "but not for rotation" in v.loc["c", "sentence"]


def test_measured_words_and_agreement():
    tuned = {
        "tuned": True,
        "measured_motion": "translation",
        "measured_direction_deg": 2.0,
        "measured_speed_px": 1.0,
        "measured_rotation": "",
        "measured_zoom": "in",
        "tuning_strength": 0.61,
        "parameters_agree": True,
        "pred_direction_deg": 0.0,
        "pred_speed_px": 0.98,
        "steps_in_clip": 6,
    }
    assert reading_text(tuned) == "prefers motion to the right (2°) at 1 px/frame; answers zoom in more than zoom out"
    assert measured_sentence(tuned).startswith("Measured in the image: prefers motion to the right")
    assert "0.61" in measured_sentence(tuned)
    assert agreement_sentence(tuned) == (
        "Agrees: its parameters, carried to the image, predict a drift to the right at 0.98 px/frame."
    )
    assert "do not read as image motion" in agreement_sentence(tuned, layer_readable=False)
    untuned = {"tuned": False, "tuning_strength": 0.02, "parameters_agree": None}
    assert reading_text(untuned) == "untuned"
    assert measured_sentence(untuned).startswith("Untuned:")
    assert agreement_sentence(untuned).startswith("Nothing to compare")
    no_effect = {**tuned, "parameters_agree": False, "steps_in_clip": 0}
    assert "no effect at this clip length" in agreement_sentence(no_effect)


def test_prediction_sentence_names_the_dominant_measured_motion():
    record = {
        "top": [{"class": "rotate_cw", "probability": 0.97}],
        "channels": [
            {"layer": "conv1", "channel": 2, "attribution": 3.0, "reading": "prefers clockwise rotation"},
            {"layer": "conv1", "channel": 5, "attribution": 1.0, "reading": "prefers clockwise rotation"},
            {"layer": "layer1.0.conv1", "channel": 3, "attribution": 0.5, "reading": "untuned"},
        ],
    }
    assert prediction_sentence(record) == (
        "Predicted rotate_cw (97%): mostly from channels that prefer clockwise rotation (measured): conv1 #2, "
        "conv1 #5; also layer1.0.conv1 #3 (untuned)."
    )
    split = {
        "top": [{"class": "zoom_in", "probability": 0.75}],
        "channels": [
            {"layer": "conv1", "channel": 7, "attribution": 1.0, "reading": "untuned"},
            {"layer": "conv1", "channel": 8, "attribution": 0.9, "reading": "prefers zoom in"},
            {
                "layer": "conv1",
                "channel": 2,
                "attribution": 0.8,
                "reading": "prefers zoom out; also clockwise rotation",
            },
        ],
    }
    assert prediction_sentence(split).startswith(  # 1.0 of 2.7: the largest part, not "mostly"
        "Predicted zoom_in (75%): the largest part from untuned channels (conv1 #7); also conv1 #8 (prefers zoom in)"
    )
    empty = {"top": [{"class": "a", "probability": 0.5}], "channels": []}
    assert "no channel" in prediction_sentence(empty)


def test_ranking_prefers_tuned_channels_and_words_deeper_layers_in_their_input():
    from torch import nn

    from conv3t import Conv3T
    from conv3t.explain.describe import rank_channels
    from conv3t.readout import temporal_parameters

    first = Conv3T(3, 3, (3, 5, 5), padding=(1, 2, 2))
    second = Conv3T(3, 3, (3, 5, 5), padding=(1, 2, 2))
    with torch.no_grad():
        for layer in (first, second):
            layer.translation_x.copy_(torch.tensor([[-0.5, -0.5], [-0.2, -0.2], [-0.1, -0.1]]))  # scores 2 > 1 > 0
    table = temporal_parameters(nn.Sequential(first, second), input_size=(8, 16, 16))
    rows = []
    for layer in ("0", "1"):
        for c, (tuned, strength) in enumerate([(False, 0.05), (True, 0.3), (True, 0.6)]):
            rows.append(
                {
                    "layer": layer,
                    "channel": c,
                    "measured_direction_deg": 0.0 if tuned else float("nan"),
                    "measured_speed_px": 1.0 if tuned else float("nan"),
                    "measured_rotation": "",
                    "measured_zoom": "",
                    "tuning_strength": strength,
                    "parameters_agree": True if tuned else None,
                    "tuned": tuned,
                    "measured_motion": "translation" if tuned else "",
                    "pred_direction_deg": 0.0,
                    "pred_speed_px": 1.0,
                }
            )
    ranked = rank_channels(table, per_layer=True, readings=pd.DataFrame(rows))
    assert ranked[ranked["layer"] == "0"]["channel"].tolist() == [2, 1, 0]  # tuned by strength, then untuned
    plain = rank_channels(table, per_layer=True)
    assert plain[plain["layer"] == "0"]["channel"].tolist() == [0, 1, 2]  # without readings: by score
    by = ranked.set_index(["layer", "channel"])
    assert by.loc[("0", 0), "parameter_sentence"] == "Drifts 1 px right per frame."
    assert (
        by.loc[("1", 0), "parameter_sentence"]
        == "In its input features, its parameters say: drifts 1 kernel px right per step."
    )
    assert by.loc[("0", 2), "sentence"].startswith("Measured in the image: prefers motion to the right")
    assert by.loc[("0", 0), "parameters_agree"] is None and by.loc[("0", 2), "parameters_agree"] is True
    for column in READING_COLUMNS:
        assert column in ranked.columns


def test_a_reading_within_its_sampling_error_is_named_on_the_card_and_in_the_ranking():
    """The headline must not state a reading the measurement does not decide (issue 28b's flags): the flagged
    readings are named in words; an unflagged channel's headline is unchanged; ranking.csv carries the flags."""
    rows = [
        _channel(0, t=0.5, r=0.06, undecided=True, undecided_readings="rotation; direction"),
        _channel(1, t=0.5, r=0.06),  # the same readings, decided
        _channel(2, t=0.05, z=0.04, undecided=True, undecided_readings="tuned"),
    ]
    r = channel_readings(_result(rows)).set_index("channel")
    flagged, plain, untuned = (measured_sentence(r.loc[c]) for c in (0, 1, 2))
    assert flagged.startswith(plain) and plain.endswith("of 1).")
    assert flagged.endswith("not decided by the measurement: rotation tuning, the direction.")
    assert untuned.startswith("Untuned") and untuned.endswith("not decided by the measurement: whether it is tuned.")

    from conv3t.explain.describe import rank_channels
    from conv3t.nn import Conv3T
    from conv3t.readout import temporal_parameters

    layer = Conv3T(3, 3, 3)
    table = temporal_parameters(torch.nn.Sequential(layer)).assign(layer="conv1")
    ranked = rank_channels(table, readings=r.reset_index()).set_index("channel")
    assert ranked.loc[0, "undecided"] and ranked.loc[0, "undecided_readings"] == "rotation; direction"
    assert not ranked.loc[1, "undecided"] and ranked.loc[1, "undecided_readings"] == ""
    assert ranked.loc[0, "measured_sentence"] == flagged


def test_layer_verdicts_count_the_channels_the_measurement_leaves_undecided():
    """Counted and uncounted channels whose counting or agreement is within its sampling error, per motion type
    (hand-made flags; rotation readings do not touch the translation counts, and layer mode has none)."""
    flags = [  # (counted for translation, for rotation, undecided readings)
        (True, False, "translation"),  # translation counted, its index near the threshold: could drop out
        (True, False, "agreement"),  # counted, agreement undecided
        (True, True, "rotation; primary"),  # rotation counted and undecided; translation decided
        (False, False, "translation; zoom"),  # not counted for translation, could come in; zoom too
        (False, False, ""),
    ]
    rows = [
        {
            "mode": "image",
            "layer": "a",
            "channel": c,
            "translation_counted": t,
            "rotation_counted": r,
            "zoom_counted": False,
            "undecided": bool(u),
            "undecided_readings": u,
        }
        for c, (t, r, u) in enumerate(flags)
    ]
    rows.append({**rows[0], "mode": "layer", "undecided": False, "undecided_readings": ""})
    summary = pd.DataFrame(
        _summary("a", {"translation": (2, 3), "rotation": (1, 1), "zoom": (0, 0)})
        + _summary("a", {"translation": (1, 1), "rotation": (0, 0), "zoom": (0, 0)}, mode="layer")
    )
    v = layer_verdicts(_result(rows, summary)).set_index("mode")
    assert (v.loc["image", "translation_undecided_in"], v.loc["image", "translation_undecided_out"]) == (2, 1)
    assert (v.loc["image", "rotation_undecided_in"], v.loc["image", "rotation_undecided_out"]) == (1, 0)
    assert (v.loc["image", "zoom_undecided_in"], v.loc["image", "zoom_undecided_out"]) == (0, 1)
    assert v.loc["layer", ["translation_undecided_in", "translation_undecided_out"]].tolist() == [0, 0]
    from conv3t.explain.report import verification_section

    page = verification_section(_result(rows, summary)).html
    assert "2/3 (" in page and "; undecided: 2 of these, 1 other</td>" in page  # translation, image mode
    # verifications stored before the flags: no column, nothing undecided
    old = layer_verdicts(_result([{k: x for k, x in r.items() if "undecided" not in k} for r in rows], summary))
    assert old[[c for c in old.columns if "undecided" in c]].to_numpy().sum() == 0
