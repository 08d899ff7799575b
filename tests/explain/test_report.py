"""The explanation report and the ``conv3t explain`` / ``conv3t compare`` commands, end to end on tiny runs."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conv3t.cli import main
from conv3t.data.preprocessing import ClipPreprocessing
from conv3t.explain import temporal_parameters
from conv3t.explain.report import build_report, load_video_clip, select_layers
from conv3t.exported import ModelInfo, save_exported
from conv3t.models import create_model

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def make_run(path: Path, name: str = "resnet10_3t", seed: int = 0, task: str = "motion") -> Path:
    """A tiny exported run on synthetic data, with a trained-looking spread of temporal parameters."""
    torch.manual_seed(seed)
    model = create_model(name, 9, base_width=4)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith(("rotation", "translation_x", "translation_y")):
                p.uniform_(-0.2, 0.2)
            elif pname.endswith("scale"):
                p.uniform_(0.85, 1.15)
    info = ModelInfo(
        model=name,
        num_classes=9,
        classes=[f"class{i}" for i in range(9)],
        num_frames=6,
        size=(32, 32),
        mean=MEAN,
        std=STD,
        model_kwargs={"base_width": 4},
        data={"dataset": "synthetic", "num_frames": 6, "size": 32, "task": task, "num_val": 9, "seed": seed},
    )
    return save_exported(model, path, info)


class Page(HTMLParser):
    """Collects image sources, links, section ids and the text of the page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.ids: list[str] = []
        self.scripts = 0
        self.chunks: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a["src"])
        if tag in ("a", "link") and "href" in a:
            self.links.append(a["href"])
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join(" ".join(self.chunks).split())


def check_complete(index: Path) -> Page:
    """Every referenced file exists beside the page, every image decodes, nothing is remote, no scripts."""
    page = Page(index.read_text(encoding="utf-8"))
    assert page.scripts == 0
    for ref in page.images + page.links:
        if ref.startswith("#"):
            continue
        assert not ref.startswith(("http:", "https:", "//", "/")), ref
        target = index.parent / ref
        assert target.is_file(), f"{ref} is referenced but missing"
    for src in page.images:
        with Image.open(index.parent / src) as im:
            im.verify()
    return page


@pytest.mark.slow
def test_cli_writes_a_complete_report_for_a_tiny_synthetic_run(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    out = tmp_path / "report"
    start = time.process_time()  # CPU time: other jobs on a shared machine stretch the wall clock, not the work
    status = main(["explain", str(run), "--out", str(out), "--actmax-steps", "8", "--no-progress"])
    elapsed = time.process_time() - start
    assert status == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    assert elapsed < 120, f"report took {elapsed:.0f} s of CPU time"
    page = check_complete(out / "index.html")

    model = create_model("resnet10_3t", 9, base_width=4)
    layers = select_layers(model, None)
    temporal = [n for n, m in model.named_modules() if type(m).__name__ == "Conv3T" and m.kernel_size[0] > 1]
    assert layers == [temporal[0], temporal[len(temporal) // 2], temporal[-1]]
    assert {name.replace(".", "_") for name in layers} <= set(page.ids)
    for section in ("model", "statistics", "distributions", "verification"):
        assert section in page.ids
    assert "Can the parameters be read as motion?" in page.text
    assert (out / "images" / "verification.png").is_file()

    # the channels shown are the 3 first of each layer in the ranking with measured readings (ranking.csv),
    # leaving out dead ones and ones with no temporal effect at this clip length; each card shows the
    # measured headline, the parameter reading and the agreement
    ranking = pd.read_csv(out / "ranking.csv", keep_default_na=False, na_values=[""])
    shown = 0
    for layer in layers:
        live = ranking[(ranking["layer"] == layer) & ~ranking["dead"] & (ranking["steps_in_clip"] > 0)]
        for _, row in live.head(3).iterrows():
            assert f"{layer} — channel {row['channel']}" in page.text
            for column in ("measured_sentence", "parameter_sentence", "agreement_sentence"):
                assert row[column] in page.text, column
            shown += 1
        if live.empty:  # e.g. 3-deep kernels on the 1-frame input of the last stage
            assert "No channel of this layer is shown" in page.text
    assert shown >= 3
    # every channel has its parameter plot, saliency (sequence + peak frame) and activation maximisation
    for kind in ("parameters", "saliency_seq", "saliency_peak", "actmax"):
        assert sum(kind + "_" in src for src in page.images) == shown, kind
    # filter slices and the animation for the first layer only
    filters = [src for src in page.images if "/filter_" in src]
    assert len(filters) == 6 and all(f"filter_{layers[0]}_" in f for f in filters)
    with Image.open(out / filters[1 if filters[1].endswith(".gif") else 0]) as gif:
        assert gif.format == "GIF" and getattr(gif, "n_frames", 1) == 7  # conv1 has D = 7 slices
    # Table 2 numbers are the stats module's, and the export files exist
    assert "|s − 1|" in page.text and (out / "statistics.md").read_text().count("|") > 8
    assert (out / "statistics.tex").is_file() and (out / "ranking.csv").is_file()
    # the three synthetic validation clips with their labels and the model's predictions
    assert page.text.count("; predicted ") == 3 and "label: translate_left" in page.text


@pytest.mark.slow
def test_3d_model_report_and_chosen_layers_and_channels(tmp_path):
    run = make_run(tmp_path / "run3d", name="resnet10_3d")
    extra = '<section id="extra"><h2>Extra</h2><p>appended section</p></section>'
    build_report(
        run,
        tmp_path / "rep",
        layers=["layer1.0.conv1"],
        channels=[0, 2],
        progress=False,
        actmax_steps=4,
        extra_sections=[extra],
    )
    index = Path(tmp_path / "rep") / "index.html"
    page = check_complete(index)
    assert extra in index.read_text() and "extra" in page.ids
    assert "no explicit temporal parameters" in page.text
    assert {s.split("/")[-1] for s in page.images if "actmax_" in s} == {
        "actmax_layer1_0_conv1_0.png",
        "actmax_layer1_0_conv1_2.png",
    }
    # a 3D model gets the optimised video (a strip of 6 frames), not one image
    with Image.open(index.parent / "images" / "actmax_layer1_0_conv1_0.png") as im:
        assert im.width > 5 * im.height
    assert not any("saliency_peak" in s for s in page.images)
    assert sum("saliency_seq" in s for s in page.images) == 2


def test_3d_channels_ranked_by_kernel_change():
    conv = torch.nn.Conv3d(2, 3, 3, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0] = 1.0  # constant over time: no change
        conv.weight[1, :, 1] = 1.0  # a pulse in the middle slice: changes twice
        conv.weight[2, :, 2] = 1.0  # appears in the last slice: changes once
    from conv3t.explain.report.analysis.layers import kernel_variation

    # ||K_{t+1} - K_t|| / ||K|| summed over t: 0, 2, 1 (each slice holds 2 x 3 x 3 ones)
    np.testing.assert_allclose(kernel_variation(conv), [0.0, 2.0, 1.0])


def write_avi(path: Path, frames: np.ndarray, fps: int = 10) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuvj420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def moving_square(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i, 16:32, 4 + 3 * i : 20 + 3 * i] = (250, 40, 40)
    return frames


def test_load_video_clip_from_avi_and_frame_folder(tmp_path):
    frames = moving_square(10)
    write_avi(tmp_path / "v.avi", frames)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    transforms = ClipPreprocessing(6, (24, 24), MEAN, STD)
    from_folder = load_video_clip(folder, transforms)
    from_video = load_video_clip(tmp_path / "v.avi", transforms)
    assert from_folder.shape == from_video.shape == (3, 6, 24, 24)
    # centre window of 6 of 10 frames = frames 2..7; centre crop 48x48 of 48x64, resized to 24x24
    pixels = from_folder * torch.tensor(STD).view(3, 1, 1, 1) + torch.tensor(MEAN).view(3, 1, 1, 1)
    red = pixels[0, 0] > 0.5
    ys, xs = torch.nonzero(red, as_tuple=True)
    # frame 2: square at x 10..25 in the 64-wide frame -> 2..17 in the crop (x0 = 8) -> 1..8.5 at half size
    assert 7 <= int(ys.min()) <= 8 and 15 <= int(ys.max()) <= 16
    assert 0 <= int(xs.min()) <= 2 and 7 <= int(xs.max()) <= 9
    # the square moves right by 3 px per frame = 1.5 px at half size
    red_last = pixels[0, 5] > 0.5
    shift = torch.nonzero(red_last, as_tuple=True)[1].float().mean() - xs.float().mean()
    assert shift == pytest.approx(7.5, abs=1.0)
    # lossy video vs lossless frames: same picture up to JPEG error
    assert (from_video - from_folder).abs().mean() < 0.15


@pytest.mark.slow
def test_report_with_video_inputs(tmp_path):
    run = make_run(tmp_path / "run")
    write_avi(tmp_path / "square.avi", moving_square(12))
    build_report(
        run,
        tmp_path / "rep",
        videos=[tmp_path / "square.avi"],
        layers=["conv1"],
        channels=[1],
        progress=False,
        actmax_steps=2,
    )
    index = Path(tmp_path / "rep") / "index.html"
    page = check_complete(index)
    assert "square.avi" in page.text and "the videos given with --video" in page.text


def test_errors_name_the_argument(tmp_path, capsys):
    """The library names its arguments (``layers``, ``channels``, ``videos[i]``); the command names its flags."""
    run = make_run(tmp_path / "run")
    with pytest.raises(ValueError, match=r"^layers nope: not a convolution .*layer1\.0\.conv1"):
        build_report(run, tmp_path / "r", layers=["nope"], progress=False)
    with pytest.raises(ValueError, match=r"^channels \[99\]: layer conv1 has channels 0\.\.3"):
        build_report(run, tmp_path / "r", layers=["conv1"], channels=[99], progress=False)
    missing, frames = tmp_path / "nothing.avi", tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(moving_square(2)):
        Image.fromarray(f).save(frames / f"{i}.png")
    with pytest.raises(FileNotFoundError, match=r"^videos\[1\] .*nothing\.avi: no such file"):
        build_report(run, tmp_path / "r", videos=[frames, missing], progress=False, layers=["conv1"])
    with pytest.raises(FileNotFoundError, match=r"^path .*nothing\.avi"):
        load_video_clip(missing, ClipPreprocessing(4, (16, 16), MEAN, STD))

    assert main(["explain", str(run), "--out", str(tmp_path / "r"), "--layers", "nope", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--layers nope" in err and "layer1.0.conv1" in err
    assert main(["explain", str(run), "--out", str(tmp_path / "r"), "--channels", "99", "--no-progress"]) == 2
    assert "--channels [99]" in capsys.readouterr().err
    assert main(["explain", str(run), "--out", str(tmp_path / "r"), "--video", str(missing), "--no-progress"]) == 2
    assert f"--video[0] {missing}: no such file or folder" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    assert "model.safetensors" in capsys.readouterr().err


@pytest.mark.slow
def test_compare_two_runs(tmp_path, capsys):
    a = make_run(tmp_path / "a", seed=1)
    b = make_run(tmp_path / "b", seed=2, task="appearance")
    out = tmp_path / "cmp"
    assert main(["compare", str(a), str(b), "--out", str(out), "--names", "first", "second"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "index.html")
    page = check_complete(out / "index.html")
    assert len(page.images) == 2
    stats = pd.read_csv(out / "statistics.csv")
    assert list(dict.fromkeys(stats["model"])) == ["first", "second"]
    # the statistics are those of each run's parameters (Table 2 definition: mean |s - 1|)
    table = temporal_parameters(create_model("resnet10_3t", 9, base_width=4).requires_grad_(False))
    assert len(table)  # shape sanity; values below come from the saved runs
    from conv3t.exported import load_exported

    scale = temporal_parameters(load_exported(a).model)["scale"].to_numpy()
    row = stats[(stats["model"] == "first") & (stats["parameter"] == "s")].iloc[0]
    assert row["mean"] == pytest.approx(np.abs(scale - 1).mean())
    assert "first" in page.text and "synthetic appearance" in page.text
    assert main(["compare", str(a), str(b), "--out", str(out), "--names", "x"]) == 2
    assert "--names" in capsys.readouterr().err
