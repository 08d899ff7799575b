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
    # 1 unit = 3 px in a 7x7 kernel: 3 steps of 1 px keep most of the content inside
    layer = layer_with(size=7, translation_x=-dx / 3, translation_y=-dy / 3)
    assert describe_channel(temporal_parameters(layer, input_size=None)) == f"Drifts 1 kernel px {word} per step."


def test_identity_and_back_and_forth():
    identity = temporal_parameters(layer_with(), input_size=None)
    assert describe_channel(identity).startswith("Barely changes over time")
    wobble = layer_with(steps=4, rotation=[math.radians(5), -math.radians(5)] * 2)
    assert describe_channel(temporal_parameters(wobble, input_size=None)) == (
        "Turns back and forth by about 5° per step."
    )


def centred(layer: Conv3T) -> Conv3T:
    """Make every 2D filter one-hot at the kernel centre: small motions keep all of it inside the kernel."""
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[:, :, layer.weight.shape[2] // 2, layer.weight.shape[3] // 2] = 1.0
    return layer


def test_ranking_scores_and_order():
    layer = centred(layer_with(steps=2, channels=3))
    with torch.no_grad():
        layer.translation_x[1] = 0.3
        layer.translation_y[1] = -0.4  # |t| = 0.5 per step -> 1.0
        layer.rotation[2] = 0.2
        layer.scale[2] = 1.1  # 0.2 + 0.1 per step -> 0.6
    other = centred(layer_with(steps=2, channels=2, rotation=0.05))  # 0.1 each
    model = nn.ModuleDict({"b": layer, "a": other})
    table = temporal_parameters(model, input_size=None)
    summary = channel_summary(table)
    assert summary["layer"].tolist() == ["b", "b", "b", "a", "a"]  # table order, not alphabetical
    np.testing.assert_allclose(summary["motion_score"], [0.0, 1.0, 0.6, 0.1, 0.1], atol=1e-6)
    np.testing.assert_allclose(summary["content_inside"], 1.0)  # the centre pixel never leaves
    np.testing.assert_allclose(summary["score"], summary["motion_score"])
    assert not summary["dead"].any() and (summary["content_slices"] == 3).all()
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


def one_hot(layer: Conv3T, channel: int, row: int, col: int) -> None:
    with torch.no_grad():
        layer.weight[channel].zero_()
        layer.weight[channel, :, row, col] = 1.0


@pytest.mark.filterwarnings("error")
def test_negative_scale_reads_as_zoom_and_half_turn_without_warnings():
    layer = layer_with(steps=1, scale=-0.5)  # 5x5 kernel, 2 px per unit
    one_hot(layer, 0, 2, 3)  # one pixel right of the centre
    table = temporal_parameters(layer, input_size=(4, 8, 8))
    summary = channel_summary(table)
    assert np.isfinite(summary.select_dtypes("number").to_numpy(float)).all()
    assert summary["zoom_percent"].iloc[0] == pytest.approx(100.0)
    assert summary["scale_score"].iloc[0] == pytest.approx(0.5)  # ||s| - 1|
    assert summary["rotation_score"].iloc[0] == pytest.approx(math.pi)
    sentence = describe_channel(table)
    assert sentence == "Zooms in 100% per frame and turns 180°."
    # what the sentence says: content grows x2 and turns half way round, so 1 px right lands 2 px left
    k = layer.kernel()[0, 0, 1].detach()
    assert divmod(int(torch.argmax(k)), 5) == (2, 0)
    ranked = rank_channels(table)
    assert np.isfinite(ranked["score"]).all() and ranked["sentence"].iloc[0] == sentence


def test_dead_channel_with_big_parameters_ranks_below_a_live_moving_channel():
    layer = layer_with(steps=2, size=7, channels=4)
    with torch.no_grad():
        layer.weight[0].zero_()  # dead, with wild parameters
        layer.scale[0], layer.rotation[0], layer.translation_x[0] = 0.4, 1.5, 0.9
        layer.weight[3] *= 1e-3  # nearly dead
        layer.rotation[3] = -2.0
        layer.translation_x[1] = -0.1  # live, moderate motion: 0.3 px right per step
    table = temporal_parameters(layer, input_size=None)
    summary = channel_summary(table).set_index("channel")
    assert summary.loc[0, "motion_score"] > summary.loc[1, "motion_score"]  # the old score put it first
    assert summary["dead"].tolist() == [True, False, False, True]
    assert summary.loc[0, "filter_norm_ratio"] == 0.0
    assert 0.0 < summary.loc[3, "filter_norm_ratio"] < 0.01
    ranked = rank_channels(table)
    assert ranked["channel"].tolist() == [1, 2, 0, 3]  # live by score (identity 2 scores 0), then dead
    assert ranked["score"].tolist()[2:] == [0.0, 0.0]
    assert ranked["sentence"].iloc[2].startswith("Dead: its 2D filter is nearly zero (0% of the layer's median")
    assert ranked["sentence"].iloc[3].startswith("Dead: its 2D filter is nearly zero (0.")
    assert ranked["sentence"].iloc[0] == "Drifts 0.3 kernel px right per step."
    per_layer = rank_channels(table, per_layer=True, top=2)
    assert per_layer["channel"].tolist() == [1, 2]


def test_content_that_leaves_the_kernel_gets_a_note_and_stops_counting():
    layer = layer_with(steps=3, channels=2)  # 5x5 kernels: 2 px per unit
    one_hot(layer, 0, 2, 3)  # one pixel right of the centre, moves one pixel right per step
    one_hot(layer, 1, 2, 1)  # same motion from one pixel left of the centre: stays inside for all 3 steps
    with torch.no_grad():
        layer.translation_x[:, :2] = -0.5
        layer.translation_x[:, 2] = -0.5
        layer.rotation[0, 2] = 1.0  # after the content has gone: must not be described
    assert layer.kernel()[0, 0, 2].abs().max() == 0  # independent check: slice 2 is empty
    table = temporal_parameters(layer, input_size=None)
    np.testing.assert_allclose(table[table["channel"] == 0]["content_inside"], [1.0, 0.0, 0.0], atol=1e-12)
    summary = channel_summary(table).set_index("channel")
    assert summary.loc[0, "content_slices"] == 2 and summary.loc[1, "content_slices"] == 4
    assert summary.loc[0, "score"] == pytest.approx(0.5)  # only step 0 moves content that is still there
    assert summary.loc[0, "motion_score"] == pytest.approx(1.5 + 1.0)
    sentences = describe_channels(table)["sentence"].tolist()
    assert sentences[0] == "Drifts 1 kernel px right per step. Its content leaves the filter after 2 of 4 slices."
    assert sentences[1] == "Drifts 1 kernel px right per step."


class PoolThenConv(nn.Module):
    """early (3 -> 3 channels, sees every frame) -> temporal max pool to 1 frame -> late."""

    def __init__(self) -> None:
        super().__init__()
        self.early = centred(layer_with(steps=2, channels=3, translation_x=-0.1))
        self.late = centred(layer_with(steps=2, channels=2, translation_x=-0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.late(nn.functional.max_pool3d(self.early(x), (4, 1, 1)))


def test_steps_outside_the_clip_do_not_count():
    # after pooling 4 frames to 1, only the middle slice of the padded 3-deep kernel meets a real frame
    table = temporal_parameters(PoolThenConv(), input_size=(4, 8, 8))
    assert not table[table["layer"] == "late"]["step_in_clip"].any()
    assert table[table["layer"] == "early"]["step_in_clip"].all()
    ranked = rank_channels(table)
    assert ranked["layer"].tolist() == ["early"] * 3 + ["late"] * 2
    late = ranked[ranked["layer"] == "late"]
    assert (late["score"] == 0).all() and (late["motion_score"] > 0).all() and (late["steps_in_clip"] == 0).all()
    assert (
        late["sentence"].iloc[0] == "Has no temporal effect at this clip length: too few input frames reach its slices."
    )
    assert ranked["sentence"].iloc[0] == "Drifts 0.2 px right per frame."
