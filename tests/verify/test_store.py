"""The stored verification: read back exactly, keyed by weights and the settings that change it, and a damaged
file is reported, never trusted."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from conv3t import Conv3T
from conv3t.verify.network import VerifyConfig, verify_model
from conv3t.verify.store import STORE_NAME, load_verification, save_verification, verification_key

CLIP = {"num_frames": 6, "size": 16, "mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25)}
SMALL = VerifyConfig(textures=2, directions=4, speeds=(1.0,), rotations=(5.0,), zooms=(1.1,))


def _net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = nn.Sequential(Conv3T(3, 4, 3, padding=1), nn.ReLU(), Conv3T(4, 4, 3, padding=1))
    with torch.no_grad():
        net[0].rotation.normal_(0, 0.3)
    return net


def test_a_stored_verification_reads_back_exactly(tmp_path: Path) -> None:
    net = _net()
    result = verify_model(net, **CLIP, config=SMALL, device="cpu", batch_size=8)
    key = verification_key(net, **CLIP, config=SMALL)
    save_verification(tmp_path, key, result)
    loaded, why = load_verification(tmp_path, key)
    assert why == "" and loaded is not None
    assert result.summary.isna().any().any()  # NaN survives the trip (JSON null)
    pd.testing.assert_frame_equal(loaded.channels, result.channels, check_exact=True)
    pd.testing.assert_frame_equal(loaded.summary, result.summary, check_exact=True)
    assert loaded.config["textures"] == 2 and loaded.seconds == pytest.approx(result.seconds)


def test_the_key_follows_weights_and_readings_settings_only() -> None:
    net = _net()
    key = verification_key(net, **CLIP, config=SMALL)
    assert key == verification_key(_net(), **CLIP, config=SMALL)  # same weights, rebuilt
    other = _net()
    with torch.no_grad():
        other[2].weight[0, 0, 0, 0] += 1e-6
    assert verification_key(other, **CLIP, config=SMALL) != key
    more = VerifyConfig(**{**SMALL.__dict__, "textures": 3})
    assert verification_key(net, **CLIP, config=more) != key
    assert verification_key(net, **{**CLIP, "size": 24}, config=SMALL) != key
    batch = VerifyConfig(**{**SMALL.__dict__, "batch_size": 5})  # how it runs, not what it measures
    assert verification_key(net, **CLIP, config=batch) == key


def test_other_settings_or_damage_are_not_reused(tmp_path: Path) -> None:
    net = _net()
    image = VerifyConfig(**{**SMALL.__dict__, "modes": ("image",)})
    result = verify_model(net, **CLIP, config=image, device="cpu", batch_size=8)
    save_verification(tmp_path, "a" * 64, result)
    assert load_verification(tmp_path, "b" * 64) == (None, "other")
    assert load_verification(tmp_path / "none", "a" * 64) == (None, "missing")
    path = tmp_path / STORE_NAME
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # cut short
    loaded, why = load_verification(tmp_path, "a" * 64)
    assert loaded is None and why.startswith("damaged: JSONDecodeError")
    payload = json.loads(text)
    del payload["result"]["channels"]
    path.write_text(json.dumps(payload))
    loaded, why = load_verification(tmp_path, "a" * 64)
    assert loaded is None and why.startswith("damaged: KeyError")


def test_a_store_written_before_rectangular_stimuli_is_measured_again(tmp_path: Path) -> None:
    # version 1 measured a (H, W) = (16, 24) model on 24 x 24 stimuli, with the same key settings as now
    net = _net()
    clip = {**CLIP, "size": (16, 24)}
    key = verification_key(net, **clip, config=SMALL)
    result = verify_model(net, **clip, config=SMALL, device="cpu", batch_size=8)
    save_verification(tmp_path, key, result)
    path = tmp_path / STORE_NAME
    payload = json.loads(path.read_text())
    assert payload["version"] >= 2 and result.config["stimulus_size"] == [16, 24]
    payload["version"] = 1
    path.write_text(json.dumps(payload))
    assert load_verification(tmp_path, key) == (None, "other")
