"""At whole-pixel sampling positions every kernel form gives the source pixel exactly (issue 28, item 1).

Why it matters: at the identity start a 7x7x7 stem over a clip of at most 4 frames (temporal padding 3) sees
every frame from every output frame, so its output frames are equal and max pooling over time meets exact
ties, which the last bit of the kernel breaks. ``F.grid_sample`` (the four-tap form) computed a whole
position as ``0.9999999999999999`` and returned a kernel off by 1e-16 from the dense forms' one; the plain
and the compiled training run (dense forms only) then sent the stem's gradient to different frames, and
bn1.bias differed by 9 % after one epoch (tests/train/test_compile_train.py).

Expectations: whole-pixel warps computed by integer indexing in numpy (positions from the paper's formula,
rounded, gathered, zero outside); gradients of the forms equal to rounding at the identity start.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

import conv3t.nn.functional as functional
from conv3t import Conv3T
from conv3t.nn import fused
from conv3t.nn.functional import generate_kernel, resolve_method

from . import reference


def _gather_warp(k: np.ndarray, th: np.ndarray) -> np.ndarray:
    """The warp of one slice when every position is a whole pixel: an exact gather, zero outside."""
    kh, kw = k.shape
    out = np.zeros_like(k)
    for i in range(kh):
        for j in range(kw):
            gx, gy = th @ np.array([-1 + 2 * j / (kw - 1), -1 + 2 * i / (kh - 1), 1.0])
            px, py = (gx + 1) * (kw - 1) / 2, (gy + 1) * (kh - 1) / 2
            sx, sy = round(px), round(py)
            assert abs(px - sx) < 1e-9 and abs(py - sy) < 1e-9  # the setting's positions are whole pixels
            if 0 <= sx < kw and 0 <= sy < kh:
                out[i, j] = k[sy, sx]
    return out


def _settings(k: int) -> dict[str, list[tuple[float, float, float, float]]]:
    """Per setting, the (s, r, tx, ty) of three steps; one kernel pixel is 2 / (k - 1) affine_grid units."""
    pixel = 2 / (k - 1)
    return {
        "identity": [(1.0, 0.0, 0.0, 0.0)] * 3,
        "shift": [(1.0, 0.0, pixel, 0.0), (1.0, 0.0, -pixel, 2 * pixel), (1.0, 0.0, 0.0, -pixel)],
        "turn": [(1.0, math.pi / 2, 0.0, 0.0), (1.0, math.pi, pixel, 0.0), (1.0, -math.pi / 2, 0.0, pixel)],
    }


FORMS = {  # (k, in/groups, method) -> the algorithm it runs
    "cumulative": (3, 9, "matrix"),
    "stepwise": (3, 2, "matrix"),
    "sparse": (7, 3, "matrix"),
    "grid_sample": (7, 3, "grid_sample"),
}


@pytest.mark.parametrize("composed", [False, True], ids=["fused", "composed"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("setting", ["identity", "shift", "turn"])
@pytest.mark.parametrize("form", list(FORMS))
def test_whole_pixel_warps_are_exact_copies(form, setting, dtype, composed, monkeypatch):
    """Bit for bit, in both dtypes, in the fused Functions and in the composed form (compile, forward AD)."""
    k, cin, method = FORMS[form]
    if composed and form == "grid_sample":
        pytest.skip("composed, the reference method is torch's own F.grid_sample (conv3t.nn.functional's notes)")
    assert resolve_method(method, cin, k, k) == form
    monkeypatch.setattr(fused, "composed_only", lambda: composed)
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((2, cin, k, k)).astype(np.float32 if dtype == torch.float32 else np.float64)
    steps = _settings(k)[setting]
    params = [torch.tensor([[p[i] for p in steps]] * 2, dtype=dtype) for i in range(4)]
    got = generate_kernel(torch.from_numpy(weight), *params, method=method).numpy()
    want = np.empty_like(got)
    for o in range(2):
        for c in range(cin):
            current = weight[o, c]
            want[o, c, 0] = current
            for t, step in enumerate(steps):
                current = _gather_warp(current, reference.theta(*step))
                want[o, c, t + 1] = current
    np.testing.assert_array_equal(got, want)


def _stem_gradients(form: str, monkeypatch) -> torch.Tensor:
    """Temporal gradients of an identity-initialised 7x7x7 stem + max pooling on 4-frame clips, float64."""
    torch.manual_seed(0)
    stem = Conv3T(3, 4, 7, stride=(1, 2, 2), padding=3, bias=False).double()
    pool = nn.MaxPool3d(3, stride=(1, 2, 2), padding=1)
    x = torch.randn(2, 3, 4, 20, 20, dtype=torch.float64)
    layer = copy.deepcopy(stem)
    if form == "grid_sample":
        layer.kernel_method = "grid_sample"
    monkeypatch.setattr(functional, "SPARSE_MIN_PIXELS", 49 if form == "sparse" else 10**9)
    assert resolve_method(layer.kernel_method, 3, 7, 7) == form
    pool(layer(x)).sin().sum().backward()
    return torch.stack([p.grad for p in layer.temporal_parameters().values()])


def test_forms_agree_through_max_pooling_at_the_identity_start(monkeypatch):
    """The stem of the training test: its output frames tie exactly, and every form breaks the ties alike."""
    want = _stem_gradients("stepwise", monkeypatch)
    assert want.abs().max() > 0.1
    for form in ("sparse", "grid_sample"):
        got = _stem_gradients(form, monkeypatch)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12 * want.abs().max().item(), msg=form)
