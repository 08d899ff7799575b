"""The verification's chance levels and tuning thresholds are defined once (verify/network.py) and read from
there by the readings; a second copy could drift (the chance levels were written three times, the thresholds
twice)."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

from conv3t.verify import network, readings
from conv3t.verify.network import AGREE_ANGLE_DEG, CHANCE, VerifyConfig

SRC = Path(__file__).resolve().parents[2] / "src" / "conv3t"


def test_chance_levels_follow_from_the_agreement_rules() -> None:
    # a direction within ±45° of a uniformly random one: 90° of 360°; a sense (cw/ccw, in/out): 1 of 2
    assert AGREE_ANGLE_DEG == 45.0
    assert CHANCE == {"translation": 0.25, "rotation": 0.5, "zoom": 0.5}


def test_readings_use_the_one_definition() -> None:
    assert readings.CHANCE is network.CHANCE
    defaults = {f.name: f.default for f in fields(VerifyConfig) if f.name.endswith("_threshold")}
    assert defaults == {"translation_threshold": 0.1, "rotation_threshold": 0.05, "zoom_threshold": 0.05}
    # a result without recorded thresholds is read with VerifyConfig's; recorded ones win
    assert readings._thresholds({}) == {"translation": 0.1, "rotation": 0.05, "zoom": 0.05}
    assert readings._thresholds({"rotation_threshold": 0.2})["rotation"] == 0.2


def test_no_other_copy_of_the_numbers() -> None:
    # the report's verification section once kept its own chance levels (issue 25); it reads CHANCE now
    copies = []
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        if '"translation": 0.25' in text or '"translation": 0.1,' in text:
            copies.append(str(path.relative_to(SRC)))
    assert not copies, copies
    assert math.isclose(2 * AGREE_ANGLE_DEG / 360.0, CHANCE["translation"])
