"""The verification's progress line: stage, count and the time left from the stage's own rate."""

from __future__ import annotations

from conv3t.verify.progress import StageETA, format_duration


def test_eta_from_the_rate_after_the_first_clip() -> None:
    now = [0.0]
    shown: list[str] = []
    eta = StageETA(shown.append, clock=lambda: now[0])
    eta("image mode", 1, 101)  # the first clip (memory probe): no rate yet
    now[0] = 10.0
    eta("image mode", 11, 101)  # 10 clips in 10 s -> 90 clips left = 90 s
    now[0] = 12.0
    eta("layer mode 1/3 (conv1)", 1, 50)  # a new stage starts its own clock
    now[0] = 13.0
    eta("layer mode 1/3 (conv1)", 50, 50)
    assert shown == [
        "image mode 1/101 clips",
        "image mode 11/101 clips, 1 min 30 s left",
        "layer mode 1/3 (conv1) 1/50 clips",
        "layer mode 1/3 (conv1) 50/50 clips",
    ]


def test_format_duration() -> None:
    assert [format_duration(s) for s in (8, 75, 3725, -3)] == ["8 s", "1 min 15 s", "1 h 2 min", "0 s"]
