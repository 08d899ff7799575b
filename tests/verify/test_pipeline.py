"""End to end: a hand-built one-layer Conv3T with set motions is measured to prefer exactly those motions."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from conv3t import Conv3T
from conv3t.verify.identifiability import smooth_filters
from conv3t.verify.network import VerifyConfig, verify_model
from conv3t.verify.report import format_summary, write_outputs

HALF = 3.0  # (k - 1) / 2 kernel pixels per affine_grid unit for k = 7
# content motion per step set in each channel, in the project's convention (x right, y down, clockwise +)
TRANSLATIONS = {0: (1.0, 0.0), 1: (0.0, 2.0), 2: (-1.5 / math.sqrt(2), -1.5 / math.sqrt(2))}
ROTATIONS = {3: 15.0, 4: -15.0}
ZOOMS = {5: 1.2, 6: 1 / 1.2}


def _model() -> nn.Module:
    layer = Conv3T(3, 7, (3, 7, 7), padding=(1, 3, 3), bias=False)
    with torch.no_grad():
        layer.weight.copy_(smooth_filters(7, 3, 7, 1.0, generator=torch.Generator().manual_seed(0)))
        for c, (dx, dy) in TRANSLATIONS.items():  # content moves by -t per step
            layer.translation_x[c] = -dx / HALF
            layer.translation_y[c] = -dy / HALF
        for c, cw in ROTATIONS.items():  # content turns by -r: clockwise degrees = -degrees(r)
            layer.rotation[c] = -math.radians(cw)
        for c, z in ZOOMS.items():  # content is scaled by 1/s per step
            layer.scale[c] = 1.0 / z
    return nn.Sequential(layer)


@pytest.fixture(scope="module")
def result():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    config = VerifyConfig(modes=("image",), textures=16, seed=0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures start before conftest's per-test single-thread fixture
    try:
        return verify_model(_model(), num_frames=8, size=32, config=config)
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
def test_set_translations_are_measured(result) -> None:  # type: ignore[no-untyped-def]
    ch = result.channels.set_index("channel")
    for c, (dx, dy) in TRANSLATIONS.items():
        expected = math.degrees(math.atan2(dy, dx)) % 360
        err = abs((ch.loc[c, "measured_direction_deg"] - expected + 180) % 360 - 180)
        assert err < 25, (c, ch.loc[c, "measured_direction_deg"], expected)
        assert ch.loc[c, "measured_speed"] == pytest.approx(math.hypot(dx, dy), rel=0.6)
        assert ch.loc[c, "translation_index"] > 0.1
        # the prediction read through conv3t.explain agrees with what was set
        assert ch.loc[c, "pred_vx"] == pytest.approx(dx, abs=1e-6)
        assert ch.loc[c, "pred_vy"] == pytest.approx(dy, abs=1e-6)
    for c in (*ROTATIONS, *ZOOMS):  # no translation set: no direction preference
        assert abs(ch.loc[c, "translation_index"]) < 0.05


@pytest.mark.slow
def test_set_rotation_and_zoom_senses_are_measured(result) -> None:  # type: ignore[no-untyped-def]
    ch = result.channels.set_index("channel")
    for c, cw in ROTATIONS.items():
        assert ch.loc[c, "pred_rotation_cw_deg"] == pytest.approx(cw)
        assert math.copysign(1, ch.loc[c, "rotation_index"]) == math.copysign(1, cw), ch.loc[c, "rotation_index"]
    for c, z in ZOOMS.items():
        assert ch.loc[c, "pred_zoom_percent"] == pytest.approx((z - 1) * 100)
        assert math.copysign(1, ch.loc[c, "zoom_index"]) == math.copysign(1, z - 1), ch.loc[c, "zoom_index"]


@pytest.mark.slow
def test_summary_outputs_and_html(result, tmp_path) -> None:  # type: ignore[no-untyped-def]
    summary = result.summary.set_index("motion")
    assert summary.loc["translation", "counted"] == 3
    assert summary.loc["translation", "agreement"] == 1.0
    text = format_summary(result)
    assert "translation" in text and "rotation" in text
    paths = write_outputs(result, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert len(data["channels"]) == 7 and data["config"]["textures"] == 16
    # verify returns data; explain renders it, the report's section and the standalone page with the same code
    from conv3t.explain.report import verification_page, verification_section
    from conv3t.explain.report.render.page import render_page

    section = verification_section(result, tmp_path / "report")
    assert section.id == "verification" and section.nav_label == "Verification"
    assert (tmp_path / "report" / "images" / "verification.png").is_file()
    assert not (tmp_path / "report" / "verification_summary.csv").exists()  # rendering writes no data file
    html = render_page(title="t", heading="h", sections=[section], footer="f")
    assert '<section id="verification"><h2>Can the parameters be read as motion?</h2>' in html
    assert "<script" not in html and 'src="images/verification.png"' in html
    assert 'href="verification_summary.csv"' in html
    page = verification_page(result, tmp_path / "page").read_text()
    assert str(section.html) in page and (tmp_path / "page" / "report.css").is_file()


@pytest.mark.slow
def test_verify_command_on_an_exported_model(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from conv3t.cli import main
    from conv3t.exported import ModelInfo, save_exported
    from conv3t.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet10_3t", num_classes=3, base_width=4, stem_temporal_stride=1)
    with torch.no_grad():
        model.conv1.weight.copy_(smooth_filters(4, 3, 7, 1.0, generator=torch.Generator().manual_seed(1)))
        model.conv1.translation_y[0] = -1.0 / HALF  # channel 0's content moves down 1 px per step
    info = ModelInfo("resnet10_3t", 3, ["a", "b", "c"], 4, (16, 16), (0.5,) * 3, (0.25,) * 3, {"base_width": 4})
    info.model_kwargs["stem_temporal_stride"] = 1
    run_dir = save_exported(model, tmp_path / "run", info)
    out = tmp_path / "verify"
    assert main(["verify", str(run_dir), "--out", str(out), "--mode", "layer", "--textures", "8"]) == 0
    printed = capsys.readouterr().out
    assert "conv1" in printed and "translation" in printed
    data = json.loads((out / "verification.json").read_text())
    conv1 = next(c for c in data["channels"] if c["layer"] == "conv1" and c["channel"] == 0)
    assert conv1["pred_vy_layer"] == pytest.approx(1.0, abs=1e-6)
    assert abs((conv1["measured_direction_deg"] - 90 + 180) % 360 - 180) < 30
    assert (out / "verification.html").is_file() and (out / "verification_summary.csv").is_file()
    assert main(["verify", str(tmp_path / "missing")]) == 1
    assert "missing" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("energies", ["exact", "sampled"])
def test_layer_mode_measures_the_set_motions(energies: str) -> None:
    """Layer mode, closed form and sampled: the hand-built layer's set motions are what is measured."""
    config = VerifyConfig(modes=("layer",), textures=16, seed=0, layer_energies=energies)
    result = verify_model(_model(), num_frames=8, size=32, config=config)
    assert result.config["layer_energies"] == energies
    assert ("layer" in result.config["batch_sizes"]) == (energies == "sampled")  # nothing rendered in closed form
    ch = result.channels.set_index("channel")
    for c, (dx, dy) in TRANSLATIONS.items():
        expected = math.degrees(math.atan2(dy, dx)) % 360
        assert abs((ch.loc[c, "measured_direction_deg"] - expected + 180) % 360 - 180) < 25
        assert ch.loc[c, "translation_index"] > 0.1
    for c, cw in ROTATIONS.items():
        assert math.copysign(1, ch.loc[c, "rotation_index"]) == math.copysign(1, cw)
    for c, z in ZOOMS.items():
        assert math.copysign(1, ch.loc[c, "zoom_index"]) == math.copysign(1, z - 1)
