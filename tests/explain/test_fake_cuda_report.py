"""The report's prediction stage on (fake) CUDA up to its first gradient (issue 28).

``explain_predictions`` (what ``conv3t explain`` runs per clip) is given CPU clips and a CUDA model: it computes
the class probabilities on the model's device and reads the top class as a number, then explains that class with
``explain_clip``, which finds the Grad-CAM layer with a forward pass, moves the clip and the target class to the
model's device and enters captum's layer attribution, whose forward pass runs the model with its hooks. Under
fake tensors (``fake_cuda``, tests/conftest.py) no number can be read, so each half is run up to its first
number: the prediction to its top class, the explanation (given the class) to where captum reads the target
class, just before the first ``autograd.grad``; any CPU tensor meeting a CUDA one on the way would have raised
``FakeTensorDeviceMismatchError`` instead.
"""

from __future__ import annotations

import traceback

import pytest
import torch
from torch._subclasses.fake_tensor import DataDependentOutputException

from conv3t.explain.faithfulness import explain_clip
from conv3t.explain.methods import temporal_layers
from conv3t.explain.report.analysis import explain_predictions
from conv3t.models import create_model


@pytest.mark.parametrize("name", ["resnet10_3t", pytest.param("googlenet_3t", marks=pytest.mark.slow)])
def test_prediction_stage_reaches_the_first_gradient_on_cuda(fake_cuda, name: str) -> None:  # type: ignore[no-untyped-def]
    kwargs = {"base_width": 4} if name.startswith("resnet") else {}
    model = create_model(name, num_classes=5, **kwargs).eval()
    layers = temporal_layers(model)
    with fake_cuda:
        model.to("cuda")
        clips = torch.randn(1, 3, 8, 32, 32)  # the report's clips are read on the CPU
        with pytest.raises(DataDependentOutputException) as predicted:
            explain_predictions(model, clips, ["clip"], [f"c{k}" for k in range(5)], layers)
        with pytest.raises(DataDependentOutputException) as explained:
            explain_clip(model, clips, 3, layers)
    [where] = [f for f in traceback.extract_tb(predicted.value.__traceback__) if f.name == "explain_prediction"]
    assert "argmax" in (where.line or "")  # the forward ran on CUDA; its top class is the first number read
    frames = [f.name for f in traceback.extract_tb(explained.value.__traceback__)]
    assert "_select_targets" in frames  # captum's forward with the attribution hooks ran through
