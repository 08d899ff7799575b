"""``conv3t eval``'s view loop on (fake) CUDA (issue 28): CPU batches of one view ``(B, 3, T, H, W)`` or several
``(B, V, 3, T, H, W)`` are moved to the model's device, every view goes through the model and the views'
probabilities are averaged there. Under fake tensors (``fake_cuda``, tests/conftest.py) the loop stops at its
first read of a number (which labels are present), after the forward pass; a CPU tensor meeting a CUDA one on
the way would have raised ``FakeTensorDeviceMismatchError``.

Kept in its own file: the evaluation code is being reworked (issue 27); point this test at its view loop when
it lands."""

from __future__ import annotations

import traceback

import pytest
import torch
from torch._subclasses.fake_tensor import DataDependentOutputException

from conv3t.models import create_model
from conv3t.train.evaluate import evaluate_model


@pytest.mark.parametrize("views", [None, 3])
def test_view_loop_on_cuda(fake_cuda, views: int | None) -> None:  # type: ignore[no-untyped-def]
    model = create_model("resnet10_3t", num_classes=4, base_width=4)
    shape = (2, 3, 8, 32, 32) if views is None else (2, views, 3, 8, 32, 32)
    batch = (torch.randn(shape), torch.tensor([1, -1]))  # what the loader yields: CPU tensors
    with fake_cuda, pytest.raises(DataDependentOutputException) as stop:
        evaluate_model(model, [batch], num_classes=4, device="cuda")
    last = [f for f in traceback.extract_tb(stop.value.__traceback__) if f.filename.endswith("evaluate.py")][-1]
    assert "keep" in (last.line or "")  # stopped at the label mask, after the views' probabilities
