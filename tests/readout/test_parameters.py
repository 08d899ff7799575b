"""temporal_parameters: exact raw values, sign conventions against the generated kernel, strides, trajectory."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from conv3t import Conv3T
from conv3t.readout import DERIVED_COLUMNS, PARAMETER_COLUMNS, layer_geometry, temporal_parameters


def one_hot_layer(size: tuple[int, int, int], hot: tuple[int, int], **params: float | list[float]) -> Conv3T:
    """A 1 -> 1 channel Conv3T whose 2D filter is one-hot at (row, col), with the given per-step parameters."""
    layer = Conv3T(1, 1, size, bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0, hot[0], hot[1]] = 1.0
        for name, value in params.items():
            getattr(layer, name).copy_(torch.as_tensor(value, dtype=torch.float32).expand(1, size[0] - 1))
    return layer


def peak(layer: Conv3T, slice_index: int) -> tuple[int, int]:
    """(row, col) of the largest value of a kernel slice."""
    k = layer.kernel()[0, 0, slice_index].detach()
    row, col = divmod(int(torch.argmax(k)), k.shape[1])
    return row, col


def test_one_hot_moved_one_pixel_right_per_step_reads_plus_one():
    # content moves by -t; one affine unit is (3-1)/2 = 1 pixel, so t_x = -1 moves it one pixel right
    layer = one_hot_layer((3, 3, 3), (1, 0), translation_x=-1.0)
    k = layer.kernel()[0, 0].detach()
    for s in range(3):
        expected = torch.zeros(3, 3)
        expected[1, s] = 1.0
        torch.testing.assert_close(k[s], expected)
    table = temporal_parameters(layer, input_size=None)
    assert table["dx_kernel_px"].tolist() == [1.0, 1.0]
    assert table["dy_kernel_px"].tolist() == [0.0, 0.0]
    assert table["traj_x_kernel_px"].tolist() == [1.0, 2.0]
    assert table["traj_y_kernel_px"].tolist() == [0.0, 0.0]


def test_one_hot_moved_down_reads_positive_y():
    layer = one_hot_layer((3, 3, 3), (0, 1), translation_y=-1.0)
    assert [peak(layer, s) for s in range(3)] == [(0, 1), (1, 1), (2, 1)]
    table = temporal_parameters(layer, input_size=None)
    assert table["dy_kernel_px"].tolist() == [1.0, 1.0]
    assert table["dx_kernel_px"].tolist() == [0.0, 0.0]


def test_five_pixel_kernel_unit_is_two_pixels_and_positive_t_moves_left():
    layer = one_hot_layer((2, 5, 5), (2, 2), translation_x=0.5)  # 0.5 units = 1 px, content moves by -t: left
    assert peak(layer, 1) == (2, 1)
    row = temporal_parameters(layer, input_size=None).iloc[0]
    assert row["dx_kernel_px"] == -1.0
    assert row["paper_px"] == pytest.approx(0.5 * 5)  # the paper's p_x = t_x W keeps the raw sign


def test_positive_rotation_turns_content_counter_clockwise():
    layer = one_hot_layer((2, 3, 3), (0, 1), rotation=math.pi / 2)  # top-middle pixel
    assert peak(layer, 1) == (1, 0)  # goes to middle-left: counter-clockwise on screen (y down)
    row = temporal_parameters(layer, input_size=None).iloc[0]
    assert row["rotation_cw_deg"] == pytest.approx(-90.0)
    assert row["rotation_deg"] == pytest.approx(90.0)
    assert row["paper_rotation"] == pytest.approx(-math.pi / 2)


def test_scale_below_one_grows_content_and_reads_zoom_in():
    layer = one_hot_layer((3, 5, 5), (2, 3), scale=0.5)  # one pixel right of centre
    assert peak(layer, 1) == (2, 4)  # content scaled by 1/s = 2 about the centre
    table = temporal_parameters(layer, input_size=None)
    assert table["zoom_percent"].tolist() == pytest.approx([100.0, 100.0])
    assert table["cum_zoom"].tolist() == pytest.approx([2.0, 4.0])


def test_centre_content_moves_by_minus_t_whatever_scale_and_rotation():
    # map p = (1/s) R(-r) q - t with s = 0.5, r = 90 deg, t_x = -0.5 (1 px)
    params = {"scale": 0.5, "rotation": math.pi / 2, "translation_x": -0.5}
    centre = one_hot_layer((2, 5, 5), (2, 2), **params)
    assert peak(centre, 1) == (2, 3)  # centre content: one pixel right, exactly -t
    # q = (1 px right) = (0.5, 0) units -> 2 R(-90 deg) (0.5, 0) = (0, -1) units -> + (0.5, 0) = (0.5, -1) units
    #   = (+1 px, -2 px) from the centre = row 0, col 3
    right = one_hot_layer((2, 5, 5), (2, 3), **params)
    assert peak(right, 1) == (0, 3)
    row = temporal_parameters(centre, input_size=None).iloc[0]
    assert (row["dx_kernel_px"], row["dy_kernel_px"]) == (1.0, 0.0)


def test_trajectory_composes_steps_exactly():
    # step 0: 1 px right; step 1: turn content 90 deg counter-clockwise about the centre, no shift.
    layer = one_hot_layer((3, 5, 5), (2, 2))
    with torch.no_grad():
        layer.translation_x[0, 0] = -0.5
        layer.rotation[0, 1] = math.pi / 2
    assert [peak(layer, s) for s in range(3)] == [(2, 2), (2, 3), (1, 2)]  # right, then up (turned about centre)
    table = temporal_parameters(layer, input_size=None)
    # float32 pi/2 leaves cos(r) ~ -4e-8
    np.testing.assert_allclose(table["traj_x_kernel_px"], [1.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(table["traj_y_kernel_px"], [0.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(table["cum_rotation_cw_deg"], [0.0, -90.0], atol=1e-5)
    # per-step centre motion stays -t (a plain cumulative sum would miss the turn)
    np.testing.assert_allclose(table["dx_kernel_px"], [1.0, 0.0])


def test_non_square_kernel_converts_each_axis_by_its_own_size():
    layer = one_hot_layer((2, 3, 5), (1, 1), translation_x=-0.5, translation_y=-1.0)  # 1 px right, 1 px down
    assert peak(layer, 1) == (2, 2)
    row = temporal_parameters(layer, input_size=None).iloc[0]
    assert (row["dx_kernel_px"], row["dy_kernel_px"]) == (1.0, 1.0)
    assert (row["paper_px"], row["paper_py"]) == (pytest.approx(-2.5), pytest.approx(-3.0))


class Nested(nn.Module):
    """Conv3T layers in sub-modules, registered in a different order than they run, plus non-3T layers."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Identity(), Conv3T(8, 2, (3, 3, 3), padding=2, dilation=(1, 2, 2)))
        self.stem = Conv3T(3, 4, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3))
        self.pointwise = Conv3T(4, 8, (1, 1, 1))  # D = 1: no steps
        self.plain = nn.Conv3d(8, 8, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pointwise(self.stem(x))
        x = nn.functional.max_pool3d(x, (2, 2, 2))
        return self.head[1](self.plain(x))


def test_hand_set_parameters_come_back_exactly_with_qualified_names():
    torch.manual_seed(0)
    model = Nested()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p))
    table = temporal_parameters(model)
    assert list(table.columns) == list(PARAMETER_COLUMNS + DERIVED_COLUMNS)
    assert list(dict.fromkeys(table["layer"])) == ["head.1", "stem"]  # registration order; D = 1 layer absent
    for name, layer in (("head.1", model.head[1]), ("stem", model.stem)):
        rows = table[table["layer"] == name]
        steps = layer.temporal_depth - 1
        assert len(rows) == layer.out_channels * steps
        assert rows["channel"].tolist() == np.repeat(np.arange(layer.out_channels), steps).tolist()
        assert rows["step"].tolist() == np.tile(np.arange(steps), layer.out_channels).tolist()
        for column, param in (
            ("scale", layer.scale),
            ("rotation", layer.rotation),
            ("translation_x", layer.translation_x),
            ("translation_y", layer.translation_y),
        ):
            expected = param.detach().double().numpy().reshape(-1)
            assert np.array_equal(rows[column].to_numpy(), expected)


def test_image_pixels_follow_measured_cumulative_stride_and_dilation():
    model = Nested()
    with torch.no_grad():
        model.head[1].translation_x.fill_(-0.25)  # (3-1)/2 * 0.25 = 0.25 kernel px right
        model.stem.translation_y.fill_(1 / 3)  # (7-1)/2 / 3 = 1 kernel px up
    geometry = layer_geometry(model, input_size=(16, 64, 64)).set_index("layer")
    # stem sees the image; head.1 sees it after stride 2 (stem), 2 (pool), 2 (plain conv) with dilation 2
    assert geometry.loc["stem", "image_stride_x"] == 1.0
    assert geometry.loc["head.1", "image_stride_x"] == 16.0
    assert geometry.loc["head.1", "image_stride_y"] == 16.0
    assert geometry.loc["head.1", "frames_per_step"] == 4.0  # temporal stride 2 x 2, temporal dilation 1
    assert tuple(geometry.loc["head.1", ["input_t", "input_h", "input_w"]]) == (4, 8, 8)
    table = temporal_parameters(model, input_size=(16, 64, 64))
    head = table[table["layer"] == "head.1"]
    np.testing.assert_allclose(head["dx_image_px"], 0.25 * 16)
    np.testing.assert_allclose(head["traj_x_image_px"], np.tile([4.0, 8.0], 2))
    stem = table[table["layer"] == "stem"]
    np.testing.assert_allclose(stem["dy_image_px"], -1.0)
    no_geometry = temporal_parameters(model, input_size=None)
    assert no_geometry["dx_image_px"].isna().all() and no_geometry["frames_per_step"].isna().all()
    np.testing.assert_allclose(no_geometry["dx_kernel_px"], table["dx_kernel_px"])


class NeedsRealTensors(nn.Module):
    """``.item()`` has no meta implementation: geometry must fall back to a real forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = Conv3T(3, 2, 3, stride=(1, 2, 2), padding=1)
        self.later = Conv3T(2, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return self.later(y * (1.0 + 0.0 * float(y.sum().item())))


def test_geometry_falls_back_to_a_real_forward_pass():
    geometry = layer_geometry(NeedsRealTensors(), input_size=(4, 8, 8)).set_index("layer")
    assert geometry.loc["later", "image_stride_x"] == 2.0
    assert geometry.loc["conv", "image_stride_x"] == 1.0


def test_empty_model_and_bad_arguments():
    empty = temporal_parameters(nn.Sequential(nn.Conv3d(3, 3, 3)))
    assert empty.empty and list(empty.columns) == list(PARAMETER_COLUMNS + DERIVED_COLUMNS)
    with pytest.raises(ValueError, match="input_size"):
        layer_geometry(Nested(), input_size=(16, 64))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_size"):
        layer_geometry(Nested(), input_size=(1, 2, 2))  # too small for the kernels
    with pytest.raises(TypeError, match=r"nn\.Module"):
        temporal_parameters("resnet18_3t")  # type: ignore[arg-type]


def test_measuring_leaves_the_model_untouched():
    model = nn.Sequential(Conv3T(3, 4, 3, padding=1), nn.BatchNorm3d(4), Conv3T(4, 4, 3, stride=2))
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    layer_geometry(model, input_size=(8, 16, 16))
    assert model.training and all(m.training for m in model.modules())
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), key
    assert not model[0]._forward_pre_hooks


def test_resnet_layer_names_and_strides():
    from conv3t.models import create_model

    model = create_model("resnet10_3t", num_classes=5, base_width=8)
    table = temporal_parameters(model, input_size=(16, 64, 64))
    strides = table.groupby("layer", sort=False)["image_stride_x"].first()
    # torchvision ResNet: stem /4 (conv1 + max pool), then /2 in the first conv of layers 2, 3 and 4
    assert strides.to_dict() == {
        "conv1": 1.0,
        "layer1.0.conv1": 4.0,
        "layer1.0.conv2": 4.0,
        "layer2.0.conv1": 4.0,
        "layer2.0.conv2": 8.0,
        "layer3.0.conv1": 8.0,
        "layer3.0.conv2": 16.0,
        "layer4.0.conv1": 16.0,
        "layer4.0.conv2": 32.0,
    }
    assert table[table["layer"] == "conv1"]["kernel_w"].iloc[0] == 7


def predicted_pixel(row, hot: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """Where the human columns say the content at kernel pixel ``hot`` (row, col) goes in one step."""
    cy, cx = (size[0] - 1) / 2, (size[1] - 1) / 2
    x, y = hot[1] - cx, hot[0] - cy
    factor = 1.0 + row["zoom_percent"] / 100.0
    a = math.radians(row["rotation_cw_deg"])  # with y down, [[cos, -sin], [sin, cos]] turns clockwise on screen
    px = factor * (math.cos(a) * x - math.sin(a) * y) + row["dx_kernel_px"]
    py = factor * (math.sin(a) * x + math.cos(a) * y) + row["dy_kernel_px"]
    return round(py + cy), round(px + cx)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(
    ("params", "hot", "zoom", "cw"),
    [
        ({"scale": -1.0}, (2, 3), 0.0, -180.0),  # point reflection: half turn, same size
        ({"scale": -0.5}, (2, 3), 100.0, -180.0),  # 1/|s| = 2 and a half turn: 1 px right -> 2 px left
        ({"scale": -1.0, "rotation": math.pi / 2}, (1, 2), 0.0, 90.0),  # r' = -pi/2: a quarter turn clockwise
        ({"scale": -1.0, "rotation": math.pi, "translation_x": -0.5}, (2, 3), 0.0, 0.0),  # two half turns cancel
        ({"scale": -2.0, "translation_y": 0.5}, (0, 2), -50.0, -180.0),  # zoom out by 2, then 1 px up
    ],
)
def test_negative_scale_reads_as_zoom_by_inverse_magnitude_plus_half_turn(params, hot, zoom, cw):
    layer = one_hot_layer((2, 5, 5), hot, **params)
    row = temporal_parameters(layer, input_size=None).iloc[0]
    assert row["scale"] == params["scale"]  # raw columns stay as stored
    assert row["rotation"] == pytest.approx(params.get("rotation", 0.0))
    assert row["zoom_percent"] == pytest.approx(zoom)
    assert row["rotation_cw_deg"] == pytest.approx(cw, abs=1e-4)
    assert -180.0 <= row["rotation_cw_deg"] <= 180.0
    assert peak(layer, 1) == predicted_pixel(row, hot, (5, 5))


@pytest.mark.filterwarnings("error")
def test_negative_scale_trajectory_and_cumulative_columns_follow_the_kernel():
    # s = -1 and 1 px right per step: the centre content goes right, then the half turn brings it back
    layer = one_hot_layer((3, 5, 5), (2, 2), scale=-1.0, translation_x=-0.5)
    assert [peak(layer, s) for s in range(3)] == [(2, 2), (2, 3), (2, 2)]
    table = temporal_parameters(layer, input_size=None)
    np.testing.assert_allclose(table["traj_x_kernel_px"], [1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(table["traj_y_kernel_px"], [0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(table["cum_zoom"], [1.0, 1.0])
    np.testing.assert_allclose(table["cum_rotation_cw_deg"], [-180.0, -360.0])
    assert table["paper_rotation"].tolist() == [0.0, 0.0]  # the paper's columns read the raw r


def test_canonical_form_is_the_same_map():
    from conv3t.readout import canonical_scale_rotation

    scale = np.array([-0.7, 1.3, -2.0, 0.9])
    rotation = np.array([0.4, 4.0, -3.0, math.pi])
    s2, r2 = canonical_scale_rotation(scale, rotation)
    assert (s2 > 0).all() and ((r2 > -math.pi) & (r2 <= math.pi)).all()
    for a, b, c, d in zip(scale, rotation, s2, r2, strict=True):
        raw = a * np.array([[math.cos(b), -math.sin(b)], [math.sin(b), math.cos(b)]])
        canon = c * np.array([[math.cos(d), -math.sin(d)], [math.sin(d), math.cos(d)]])
        np.testing.assert_allclose(raw, canon, atol=1e-12)
    assert r2[3] == pytest.approx(math.pi)  # +pi stays +pi


def test_slice_energy_and_filter_norm_come_from_the_generated_kernel():
    layer = Conv3T(1, 3, (3, 3, 3), bias=False)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0, 1, 1] = 2.0  # stays in the kernel
        layer.weight[1, 0, 1, 2] = 1.0  # moves one pixel right per step: gone after slice 0
        layer.translation_x[1] = -1.0
        layer.translation_x[2] = -0.5  # channel 2 is zero
    table = temporal_parameters(layer, input_size=None)
    np.testing.assert_allclose(table["filter_norm"], [2.0, 2.0, 1.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(table["filter_norm_ratio"], [2.0, 2.0, 1.0, 1.0, 0.0, 0.0])  # median 1
    np.testing.assert_allclose(table["slice_energy"], [1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(table["content_inside"], [1.0, 1.0, 0.0, 0.0, 0.0, 0.0])
    half = one_hot_layer((2, 3, 3), (1, 1), translation_x=-0.5)  # half a pixel: bilinear 0.5 / 0.5 split
    row = temporal_parameters(half, input_size=None).iloc[0]
    assert row["slice_energy"] == pytest.approx(0.5)  # blur lowers the energy ...
    assert row["content_inside"] == pytest.approx(1.0)  # ... but nothing has left the kernel
    # zooming out by 1.5 shrinks a smooth blob to 1/2.25 of its area; the area factor s^2 undoes that (to the
    # accuracy of sampling a 9x9 grid)
    blob = Conv3T(1, 1, (2, 9, 9), bias=False)
    y, x = torch.meshgrid(torch.arange(9.0) - 4, torch.arange(9.0) - 4, indexing="ij")
    with torch.no_grad():
        blob.weight[0, 0] = torch.exp(-(x**2 + y**2) / (2 * 1.2**2))
        blob.scale.fill_(1.5)
    row = temporal_parameters(blob, input_size=None).iloc[0]
    assert row["slice_energy"] < 0.6
    assert row["content_inside"] == pytest.approx(1.0, abs=0.1)
    edge = one_hot_layer((2, 5, 5), (2, 4), translation_x=-0.25)  # right edge pixel, half a pixel further out
    assert temporal_parameters(edge, input_size=None)["content_inside"].iloc[0] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("frames", "depth", "padding", "stride"),
    [(1, 3, 1, 1), (2, 3, 1, 1), (1, 5, 2, 1), (2, 5, 2, 2), (3, 3, 0, 1), (1, 3, "same", 1)],
)
def test_step_in_clip_marks_steps_whose_slices_both_meet_real_frames(frames, depth, padding, stride):
    layer = Conv3T(1, 1, (depth, 3, 3), padding=padding if padding == "same" else (padding, 1, 1), stride=stride)
    table = temporal_parameters(layer, input_size=(frames, 6, 6), in_channels=1)
    # independent: a slice meets real frames iff changing it changes the output of the layer on this input
    x = torch.randn(1, 1, frames, 6, 6)
    kernel = layer.kernel().detach()
    pad = (padding, 1, 1) if padding != "same" else "same"
    base = nn.functional.conv3d(x, kernel, stride=(stride, 1, 1), padding=pad)
    used = []
    for j in range(depth):
        changed = kernel.clone()
        changed[:, :, j] += 1.0
        out = nn.functional.conv3d(x, changed, stride=(stride, 1, 1), padding=pad)
        used.append(not torch.allclose(out, base))
    expected = [used[t] and used[t + 1] for t in range(depth - 1)]
    assert table["step_in_clip"].tolist() == expected
    assert temporal_parameters(layer, input_size=None)["step_in_clip"].all()
