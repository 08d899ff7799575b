"""load_authors_checkpoint: checkpoints in the authors' layout give the logits of the network they describe."""

from __future__ import annotations

import functools
import io
import warnings
import zipfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conv3t.models import create_model, load_authors_checkpoint
from conv3t.models.authors import read_authors_state

from .authors_layout import authors_checkpoint, numpy_kernel, randomise_

CLIPS = {"resnet18": (8, 32, 32), "googlenet": (13, 61, 61)}  # googlenet: the authors' style's smallest clip


def _reference(arch: str, classes: int = 5, seed: int = 0) -> tuple[torch.nn.Module, dict, torch.Tensor]:
    """Our 3D variant (authors' style for GoogLeNet) with random weights, their checkpoint of it, a clip."""
    reference, state, clip = _cached_reference(arch, classes, seed)
    return reference, dict(state), clip


@functools.cache
def _cached_reference(arch: str, classes: int, seed: int) -> tuple[torch.nn.Module, dict, torch.Tensor]:
    family = arch.split("_")[0]
    kwargs = {"style": "authors"} if family == "googlenet" else {}
    reference = create_model(f"{family}_3d", classes, **kwargs).double()
    generator = torch.Generator().manual_seed(seed)
    randomise_(reference, generator)
    state = authors_checkpoint(reference, arch, generator)
    clip = torch.randn(2, 3, *CLIPS[family], generator=generator, dtype=torch.float64)
    return reference.eval(), state, clip


def test_numpy_kernel_is_identity_at_identity_parameters():
    rng = np.random.default_rng(0)
    first = rng.normal(size=(2, 3, 1, 3, 3))
    ones, zeros = np.ones((2, 2)), np.zeros((2, 2))
    kernel = numpy_kernel(first, ones, zeros, zeros, zeros)
    assert np.allclose(kernel, np.repeat(first, 3, axis=2), atol=1e-15)
    # a shift by one pixel (2 / (k - 1) normalised units) to the right samples the right neighbour
    shifted = numpy_kernel(first, ones[:1], zeros[:1], np.ones((1, 2)), zeros[:1])
    assert np.allclose(shifted[:, :, 1, :, :2], first[:, :, 0, :, 1:], atol=1e-15)
    assert np.allclose(shifted[:, :, 1, :, 2], 0.0)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18_3t", "resnet18_3d", "googlenet_3t", "googlenet_3d"])
def test_imported_model_gives_the_logits_of_their_network(tmp_path, arch, one_thread):
    reference, state, clip = _reference(arch)
    path = tmp_path / "epoch_13"
    torch.save(state, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a one-step-stale kernel must not warn
        model = load_authors_checkpoint(path, arch, num_classes=5)
    assert not model.training and next(model.parameters()).dtype == torch.float64
    with torch.no_grad():
        expected, got = reference(clip), model(clip)
    assert 1.0 < float(expected.abs().max()) < 100.0  # logits of order 1-10: an absolute tolerance means something
    assert torch.allclose(got, expected, rtol=0, atol=1e-9), (got - expected).abs().max()
    report = model.import_report
    assert report.mapped == len(state)
    if arch.endswith("_3t"):
        # the stored kernels were made 1e-3 stale (of their maximum) on purpose: the report measures that
        assert 0.5e-3 < report.max_stale < 1.5e-3 and not report.beyond_tolerance
        assert "one optimiser step" in str(report)
    if arch.startswith("googlenet"):
        assert model.style == "authors"


def test_kernel_convention_matches_grid_sample_of_their_layer():
    """The numpy kernel is what affine_grid + grid_sample (align_corners=True, zeros) give, their calls."""
    g = torch.Generator().manual_seed(3)
    first = torch.randn(4, 2, 1, 3, 3, generator=g, dtype=torch.float64)
    params = [0.8 + 0.4 * torch.rand(2, 4, generator=g, dtype=torch.float64)] + [
        torch.rand(2, 4, generator=g, dtype=torch.float64) - 0.5 for _ in range(3)
    ]
    s, r, tx, ty = params
    slices = [first[:, :, 0]]
    for t in range(2):
        c, n = torch.cos(r[t]) * s[t], torch.sin(r[t]) * s[t]
        theta = torch.stack(
            [torch.stack([c, -n, tx[t] * c - ty[t] * n], -1), torch.stack([n, c, tx[t] * n + ty[t] * c], -1)], 1
        )
        grid = F.affine_grid(theta, [4, 2, 3, 3], align_corners=True)
        slices.append(F.grid_sample(slices[-1], grid, mode="bilinear", padding_mode="zeros", align_corners=True))
    expected = torch.stack(slices, 2).numpy()
    assert np.allclose(numpy_kernel(first.numpy(), *(p.numpy() for p in params)), expected, atol=1e-12)


@pytest.mark.slow
def test_stale_kernel_beyond_one_step_warns(tmp_path):
    _, state, _ = _reference("resnet18_3t")
    state["conv7.weight"] = torch.randn_like(state["conv7.weight"])  # e.g. never regenerated
    torch.save(state, tmp_path / "epoch_1")
    with pytest.warns(UserWarning, match="layer2.0.conv1"):
        model = load_authors_checkpoint(tmp_path / "epoch_1", "resnet18_3t")
    assert list(model.import_report.beyond_tolerance) == ["layer2.0.conv1"]


@pytest.mark.slow
def test_every_unplaced_key_is_listed(tmp_path):
    _, state, _ = _reference("resnet18_3t")
    state["conv21.first_weight"] = torch.zeros(1)
    state["fc.extra"] = torch.zeros(1)
    del state["bn5.running_var"]
    torch.save(state, tmp_path / "f")
    with pytest.raises(ValueError) as err:
        load_authors_checkpoint(tmp_path / "f", "resnet18_3t")
    text = str(err.value)
    for part in ("conv21.first_weight", "fc.extra", "layer1.1.bn2.running_var: missing", "3 problems"):
        assert part in text


def test_3d_file_as_3t_arch_and_wrong_class_count_are_clear(tmp_path):
    _, state, _ = _reference("resnet18_3d")
    torch.save(state, tmp_path / "f")
    with pytest.raises(ValueError, match="resnet18_3d"):
        load_authors_checkpoint(tmp_path / "f", "resnet18_3t")
    with pytest.raises(ValueError, match="5 classes, num_classes=27"):
        load_authors_checkpoint(tmp_path / "f", "resnet18_3d", num_classes=27)
    with pytest.raises(ValueError, match="arch must be one of"):
        load_authors_checkpoint(tmp_path / "f", "resnet50_3t")


def _retag_locations(raw: bytes, new: bytes) -> bytes:
    """The zip checkpoint ``raw`` with every storage's location string 'cpu' replaced by ``new`` (e.g. cuda:1)."""
    source, target = zipfile.ZipFile(io.BytesIO(raw)), io.BytesIO()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename.endswith("data.pkl"):
                # pickle protocol 2 writes strings as BINUNICODE: opcode X, 4-byte little-endian length, text
                data = data.replace(b"X\x03\x00\x00\x00cpu", b"X" + len(new).to_bytes(4, "little") + new)
            out.writestr(info, data)
    return target.getvalue()


@pytest.mark.slow
def test_gpu_tagged_wrapped_and_legacy_files_load(tmp_path):
    _, small, _ = _reference("resnet18_3d")
    buffer = io.BytesIO()
    torch.save({"module." + k: v for k, v in small.items()}, buffer)
    tagged = _retag_locations(buffer.getvalue(), b"cuda:1")
    assert b"cuda:1" in tagged
    (tmp_path / "gpu").write_bytes(tagged)
    loaded = read_authors_state(tmp_path / "gpu")
    assert set(loaded) == set(small) and all(v.device.type == "cpu" for v in loaded.values())
    torch.save({"state_dict": small, "epoch": 3}, tmp_path / "wrapped")
    assert set(read_authors_state(tmp_path / "wrapped")) == set(small)
    torch.save(small, tmp_path / "legacy", _use_new_zipfile_serialization=False)
    legacy = read_authors_state(tmp_path / "legacy")
    assert all(torch.equal(legacy[k], small[k]) for k in small)


def test_pickled_objects_are_refused(tmp_path):
    torch.save({"model": torch.nn.Linear(2, 2)}, tmp_path / "whole", _use_new_zipfile_serialization=True)
    with pytest.raises(ValueError, match="weights_only=True"):
        read_authors_state(tmp_path / "whole")
