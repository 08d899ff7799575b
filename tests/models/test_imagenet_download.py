"""``pretrained="imagenet"``: downloaded into the torch hub cache (hash checked, progress bar) when missing,
never offline, and a failed download says what to do. No test touches the network: the download function is
replaced, or torch hub's ``urlopen`` reads a local file."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
import torch
import torchvision

import conv3t.models.transfer as transfer
from conv3t.models import create_model, imagenet_checkpoint_path
from conv3t.models.transfer import WeightsDownloadError, offline

URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"


@pytest.fixture
def calls(monkeypatch) -> list[tuple]:
    """Every download attempt, at our function and at torch hub's, recorded instead of done."""
    seen: list[tuple] = []
    monkeypatch.setattr(transfer, "_download_weights", lambda url, path: seen.append(("conv3t", url, path)))
    monkeypatch.setattr(torch.hub, "download_url_to_file", lambda *a, **k: seen.append(("hub", a, k)))
    return seen


def test_the_suite_runs_offline():
    assert offline()  # tests/conftest.py sets CONV3T_OFFLINE=1 for the whole session


@pytest.mark.parametrize("switch", ["CONV3T_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_switch_prevents_any_download(switch, tmp_path, monkeypatch, calls):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("CONV3T_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv(switch, "1")
    with pytest.raises(FileNotFoundError) as info:
        create_model("resnet18_3t", 27, pretrained="imagenet")
    message = str(info.value)
    assert str(imagenet_checkpoint_path("resnet18")) in message and URL in message
    assert "downloads are off" in message and "pretrained=PATH" in message
    assert calls == []


def test_online_downloads_into_the_hub_cache_with_hash_check_and_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("CONV3T_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    state = torchvision.models.resnet18(weights=None).state_dict()
    seen = []

    def fake_hub_download(url, dst, hash_prefix=None, progress=True):
        seen.append((url, dst, hash_prefix, progress))
        torch.save(state, dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_hub_download)
    path = imagenet_checkpoint_path("resnet18")
    model = create_model("resnet18_3t", 27, pretrained="imagenet")
    assert seen == [(URL, str(path), "f37072fd", True)]  # the hash prefix from torchvision's file name
    assert path.is_file() and torch.equal(model.conv1.weight, state["conv1.weight"])
    create_model("resnet18_3t", 27, pretrained="imagenet")
    assert len(seen) == 1  # cached now: no second download


def test_a_failed_download_names_url_path_and_offline_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("CONV3T_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(WeightsDownloadError) as info:
        create_model("resnet18_3d", 27, pretrained="imagenet")
    message = str(info.value)
    assert URL in message and str(imagenet_checkpoint_path("resnet18")) in message
    assert "CONV3T_OFFLINE=1" in message and "name resolution" in message
    assert isinstance(info.value, FileNotFoundError)  # callers that handle a missing file handle this too


def test_a_file_with_the_wrong_hash_is_rejected_and_not_cached(tmp_path, monkeypatch):
    """torch hub's real download code, fed a local file whose SHA-256 does not start with f37072fd."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CONV3T_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    impostor = tmp_path / "impostor.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), impostor)
    local = urllib.request.urlopen
    monkeypatch.setattr(torch.hub, "urlopen", lambda request, *a, **k: local(impostor.as_uri()))
    with pytest.raises(WeightsDownloadError, match="invalid hash value"):
        create_model("resnet18_3t", 27, pretrained="imagenet")
    assert not imagenet_checkpoint_path("resnet18").exists()
