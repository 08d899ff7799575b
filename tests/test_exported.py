"""Loading an export: model.json may only describe the architecture, never make the loader read a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import conv3t.models.registry as registry
import conv3t.models.transfer as transfer
from conv3t.exported import ModelInfo, load_exported, save_exported
from conv3t.models import create_model


def _export(tmp_path: Path, name: str = "resnet10_3t", **kwargs: object) -> Path:
    torch.manual_seed(0)
    model = create_model(name, 3, **kwargs)
    info = ModelInfo(
        model=name,
        num_classes=3,
        classes=["a", "b", "c"],
        num_frames=4,
        size=(32, 32),
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        model_kwargs=dict(kwargs),
    )
    return save_exported(model, tmp_path / "run", info)


def _edit_kwargs(run: Path, **extra: object) -> None:
    meta = run / "model.json"
    obj = json.loads(meta.read_text())
    obj["model_kwargs"].update(extra)
    meta.write_text(json.dumps(obj))


@pytest.fixture
def reads(monkeypatch) -> list[str]:
    """Every 2D-weights read the model code attempts (the loader must attempt none)."""
    seen: list[str] = []

    def spy(path, *args, **kwargs):
        seen.append(str(path))
        raise AssertionError(f"load_exported tried to read {path}")

    monkeypatch.setattr(registry, "load_2d_state_dict", spy)
    monkeypatch.setattr(registry, "imagenet_state_dict", spy)
    monkeypatch.setattr(transfer.torch, "load", spy)
    return seen


@pytest.mark.parametrize("extra", [{"pretrained": "/etc/passwd"}, {"pretrained": "imagenet"}, {"inflate": "mean"}])
def test_a_file_reading_keyword_in_model_json_is_refused_unread(tmp_path, reads, extra):
    run = _export(tmp_path, base_width=8)
    _edit_kwargs(run, **extra)
    key = next(iter(extra))
    with pytest.raises(ValueError, match=rf"model\.json: model_kwargs key '{key}' is not an architecture setting"):
        load_exported(run)
    assert reads == []


def test_an_unknown_keyword_is_refused_naming_file_and_key(tmp_path, reads):
    run = _export(tmp_path, base_width=8)
    _edit_kwargs(run, evil_hook="os.system")
    with pytest.raises(ValueError, match=r"run/model\.json: model_kwargs key 'evil_hook'") as err:
        load_exported(run)
    assert "base_width" in str(err.value)  # the message lists what is allowed
    assert reads == []


def test_model_kwargs_must_be_an_object(tmp_path):
    run = _export(tmp_path, base_width=8)
    obj = json.loads((run / "model.json").read_text())
    obj["model_kwargs"] = ["pretrained", "/etc/passwd"]
    (run / "model.json").write_text(json.dumps(obj))
    with pytest.raises(ValueError, match="model_kwargs must be a JSON object"):
        load_exported(run)


def test_architecture_keywords_still_rebuild_the_same_network(tmp_path, reads):
    run = _export(tmp_path, base_width=8, stem_temporal_stride=1)
    loaded = load_exported(run)
    assert loaded.model.base_width == 8 and loaded.model.stem_temporal_stride == 1
    torch.manual_seed(0)
    reference = create_model("resnet10_3t", 3, base_width=8, stem_temporal_stride=1).eval()
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(clip), reference(clip))


def test_googlenet_export_records_its_input_transform(tmp_path):
    # aux_logits (written by the trainer) and transform_input are architecture settings; the export must say
    # which transform the network used so the loaded model computes the same thing.
    run = _export(tmp_path, "googlenet_3t", aux_logits=False, transform_input=True)
    obj = json.loads((run / "model.json").read_text())
    assert obj["model_kwargs"] == {"aux_logits": False, "transform_input": True, "style": "torchvision"}
    assert load_exported(run).model.transform_input is True


def test_saving_does_not_change_the_info_it_is_given(tmp_path):
    # the recorded build-time choices go into model.json, not into the caller's ModelInfo
    model = create_model("googlenet_3t", 2, aux_logits=False)
    info = ModelInfo("googlenet_3t", 2, ["a", "b"], 8, (112, 112), (0.5,) * 3, (0.25,) * 3, {"aux_logits": False})
    save_exported(model, tmp_path / "run", info)
    assert info.model_kwargs == {"aux_logits": False}
    saved = json.loads((tmp_path / "run" / "model.json").read_text())["model_kwargs"]
    assert saved == {"aux_logits": False, "transform_input": False, "style": "torchvision"}
    with pytest.raises(AttributeError):  # frozen: what a report or an export read stays what was loaded
        info.num_frames = 16  # type: ignore[misc]


def test_googlenet_export_records_the_authors_style(tmp_path):
    # the same weights give other logits in the other style (BatchNorm eps, pooling): model.json must say which
    run = _export(tmp_path, "googlenet_3t", style="authors", aux_logits=False)
    assert json.loads((run / "model.json").read_text())["model_kwargs"]["style"] == "authors"
    model = load_exported(run).model
    assert model.style == "authors" and model.conv1.bn.eps == 1e-5 and model.maxpool1.ceil_mode is False


def _edit(run: Path, **fields: object) -> None:
    meta = run / "model.json"
    obj = json.loads(meta.read_text())
    obj.update(fields)
    meta.write_text(json.dumps(obj))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"classes": ["a", "b"]}, r"run/model\.json: classes lists 2 names but num_classes is 3"),
        ({"classes": ["a", "b", "c", "d"]}, r"run/model\.json: classes lists 4 names but num_classes is 3"),
        ({"classes": ["a", "b", "a"]}, r"run/model\.json: classes names \['a'\] more than once"),
    ],
)
def test_a_class_list_that_does_not_name_each_logit_once_is_refused(tmp_path, fields, message):
    # class k names logit k: a short list would leave a logit unnamed, a repeated name would make the report
    # look the class up at the wrong index
    run = _export(tmp_path, base_width=8)
    _edit(run, **fields)
    with pytest.raises(ValueError, match=message):
        load_exported(run)
    with pytest.raises(ValueError, match="ModelInfo: classes"):
        ModelInfo("resnet10_3t", 3, fields["classes"], 4, (32, 32), (0.5,) * 3, (0.25,) * 3)


# ------------------------------------------------------------------------------ meta and transforms
def test_meta_and_transforms_round_trip_through_a_saved_run(tmp_path):
    from conv3t.exported import ModelMeta

    torch.manual_seed(0)
    info = ModelInfo(
        model="resnet10_3t",
        num_classes=2,
        classes=["left", "right"],
        num_frames=6,
        size=(24, 40),
        mean=(0.4, 0.5, 0.6),
        std=(0.2, 0.25, 0.3),
        model_kwargs={"base_width": 4},
        data={"dataset": "jester", "root": "/nowhere", "frame_stride": 2},
        fps=12.0,
    )
    run = save_exported(create_model("resnet10_3t", 2, base_width=4), tmp_path / "run", info)
    assert json.loads((run / "model.json").read_text())["clip"] == {"num_frames": 6, "size": [24, 40], "fps": 12.0}
    loaded = load_exported(run)
    assert loaded.meta == ModelMeta(
        model="resnet10_3t",
        classes=("left", "right"),
        num_frames=6,
        frame_stride=2,
        size=(24, 40),
        mean=(0.4, 0.5, 0.6),
        std=(0.2, 0.25, 0.3),
        fps=12.0,
        dataset="jester",
    )
    assert loaded.meta.num_classes == 2 and loaded.meta.clip_seconds == pytest.approx(1.0)  # 6 frames x 2 / 12
    with pytest.raises(AttributeError):
        loaded.meta.num_frames = 3  # frozen
    t = loaded.transforms
    assert (t.num_frames, t.frame_stride, t.size, t.mean, t.std) == (6, 2, (24, 40), (0.4, 0.5, 0.6), (0.2, 0.25, 0.3))
    clip = t(torch.full((20, 3, 48, 80), 102, dtype=torch.uint8))  # 102 / 255 = 0.4 in every channel
    assert clip.shape == (3, 6, 24, 40)
    torch.testing.assert_close(clip[:, 0, 0, 0], torch.tensor([0.0, -0.4, -2 / 3]))  # (0.4 - mean) / std


def test_an_export_written_before_meta_still_loads(tmp_path):
    """model.json as conv3t wrote it before fps and meta (format_version 1, no clip.fps, no frame_stride)."""
    run = _export(tmp_path)
    obj = json.loads((run / "model.json").read_text())
    assert "fps" not in obj["clip"]  # ModelInfo without fps writes none, as before
    old = {k: obj[k] for k in ("format", "format_version", "model", "num_classes", "classes", "clip", "normalization")}
    (run / "model.json").write_text(json.dumps(old))  # no model_kwargs, no data either
    loaded = load_exported(run)
    assert loaded.info.fps is None and loaded.meta.fps is None and loaded.meta.clip_seconds is None
    assert loaded.meta.frame_stride == 1 and loaded.meta.dataset is None
    assert (loaded.transforms.num_frames, loaded.transforms.size) == (4, (32, 32))


def test_read_meta_reads_model_json_only(tmp_path):
    from conv3t.exported import read_meta

    run = _export(tmp_path)
    (run / "model.safetensors").write_bytes(b"not weights")  # never opened
    meta = read_meta(run)
    assert (meta.classes, meta.num_frames, meta.size) == (("a", "b", "c"), 4, (32, 32))
    assert read_meta(run / "model.json") == meta
