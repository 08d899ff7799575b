"""Sentences and ranking from hand-set temporal parameters."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from conv3t import Conv3T
from conv3t.explain import channel_summary, describe_channel, describe_channels, rank_channels, temporal_parameters


def layer_with(steps: int = 3, size: int = 5, channels: int = 1, **params: list[float] | float) -> Conv3T:
    layer = Conv3T(3, channels, (steps + 1, size, size), padding=(steps // 2, size // 2, size // 2))
    with torch.no_grad():
        for name, value in params.items():
            getattr(layer, name).copy_(torch.as_tensor(value, dtype=torch.float32).expand(channels, steps))
    return layer


def test_sentence_reads_zoom_turn_and_drift_per_frame():
    d = 0.6 / math.sqrt(2) / 2  # 0.6 px up-left in a 5x5 kernel (2 px per unit); content moves by -t
    layer = layer_with(scale=1 / 0.96, rotation=-math.radians(3), translation_x=d, translation_y=d)
    table = temporal_parameters(layer, input_size=(8, 16, 16))  # first layer: 1 image px per kernel px
    sentence = describe_channel(table)
    assert sentence == "Zooms out 4% per frame, turns 3° clockwise and drifts 0.6 px up-left."


def test_sentence_units_without_geometry_and_with_strided_input():
    layer = layer_with(scale=0.9)
    table = temporal_parameters(layer, input_size=None)
    assert describe_channel(table) == "Zooms in 11% per step."
    model = nn.Sequential(nn.MaxPool3d((2, 2, 2)), layer_with(translation_x=-0.5))  # 1 kernel px = 2 image px
    table = temporal_parameters(model, input_size=(8, 16, 16))
    assert describe_channel(table) == "Drifts 2 px right per 2 frames."
    assert describe_channel(temporal_parameters(model, input_size=None)) == "Drifts 1 kernel px right per step."


@pytest.mark.parametrize(
    ("angle", "word"),
    [
        (0, "right"),
        (45, "down-right"),
        (90, "down"),
        (135, "down-left"),
        (180, "left"),
        (-135, "up-left"),
        (-90, "up"),
        (-45, "up-right"),
    ],
)
def test_directions_with_y_down(angle: int, word: str):
    dx, dy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    layer = layer_with(size=3, translation_x=-dx, translation_y=-dy)  # 1 unit = 1 px in a 3x3 kernel
    assert describe_channel(temporal_parameters(layer, input_size=None)) == f"Drifts 1 kernel px {word} per step."


def test_identity_and_back_and_forth():
    identity = temporal_parameters(layer_with(), input_size=None)
    assert describe_channel(identity).startswith("Barely changes over time")
    wobble = layer_with(steps=4, rotation=[math.radians(5), -math.radians(5)] * 2)
    assert describe_channel(temporal_parameters(wobble, input_size=None)) == (
        "Turns back and forth by about 5° per step."
    )


def test_ranking_scores_and_order():
    layer = layer_with(steps=2, channels=3)
    with torch.no_grad():
        layer.translation_x[1] = 0.3
        layer.translation_y[1] = -0.4  # |t| = 0.5 per step -> 1.0
        layer.rotation[2] = 0.2
        layer.scale[2] = 1.1  # 0.2 + 0.1 per step -> 0.6
    other = layer_with(steps=2, channels=2, rotation=0.05)  # 0.1 each
    model = nn.ModuleDict({"b": layer, "a": other})
    table = temporal_parameters(model, input_size=None)
    summary = channel_summary(table)
    assert summary["layer"].tolist() == ["b", "b", "b", "a", "a"]  # table order, not alphabetical
    np.testing.assert_allclose(summary["score"], [0.0, 1.0, 0.6, 0.1, 0.1], atol=1e-6)
    np.testing.assert_allclose(summary["translation_score"], [0.0, 1.0, 0.0, 0.0, 0.0], atol=1e-6)
    ranked = rank_channels(table)
    assert list(zip(ranked["layer"], ranked["channel"])) == [("b", 1), ("b", 2), ("a", 0), ("a", 1), ("b", 0)]
    assert ranked["rank"].tolist() == [1, 2, 3, 4, 5]
    assert ranked["sentence"].iloc[0] == describe_channel(table[(table["layer"] == "b") & (table["channel"] == 1)])
    top = rank_channels(table, top=1, per_layer=True)
    assert list(zip(top["layer"], top["channel"], top["rank"])) == [("b", 1, 1), ("a", 0, 1)]
    sentences = describe_channels(table)
    assert len(sentences) == 5 and sentences["sentence"].str.endswith(".").all()


def test_bad_input():
    with pytest.raises(ValueError, match="single layer and channel"):
        describe_channel(temporal_parameters(layer_with(channels=2), input_size=None))
    with pytest.raises(ValueError, match="lacks columns"):
        rank_channels(temporal_parameters(layer_with(), input_size=None).drop(columns="scale"))
    with pytest.raises(ValueError, match="top"):
        rank_channels(temporal_parameters(layer_with(), input_size=None), top=0)
