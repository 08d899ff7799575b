"""The report's prediction stage on (fake) CUDA up to its first gradient (issue 28).

``explain_predictions`` (what ``conv3t explain`` runs per clip) is given CPU clips and a CUDA model: it finds the
Grad-CAM layer with a forward pass, computes the class probabilities, moves the clip and the target class to the
model's device and enters captum's layer attribution, whose forward pass runs the model with its hooks. Under
fake tensors (``fake_cuda``, tests/conftest.py) the run stops where captum reads the target class as a number,
just before the first ``autograd.grad``; any CPU tensor meeting a CUDA one on the way would have raised
``FakeTensorDeviceMismatchError`` instead.
"""

from __future__ import annotations

import traceback

import pytest
import torch
from torch._subclasses.fake_tensor import DataDependentOutputException

from conv3t.explain.attribution import explain_predictions
from conv3t.explain.report.analysis import attributed_layers
from conv3t.models import create_model


@pytest.mark.parametrize("name", ["resnet10_3t", pytest.param("googlenet_3t", marks=pytest.mark.slow)])
def test_prediction_stage_reaches_the_first_gradient_on_cuda(fake_cuda, name: str) -> None:  # type: ignore[no-untyped-def]
    kwargs = {"base_width": 4} if name.startswith("resnet") else {}
    model = create_model(name, num_classes=5, **kwargs).eval()
    layers = attributed_layers(model)
    with fake_cuda:
        model.to("cuda")
        clips = torch.randn(1, 3, 8, 32, 32)  # the report's clips are read on the CPU
        with pytest.raises(DataDependentOutputException) as stop:
            explain_predictions(model, clips, ["clip"], [f"c{k}" for k in range(5)], layers)
    frames = [f.name for f in traceback.extract_tb(stop.value.__traceback__)]
    assert "_select_targets" in frames  # captum's forward with the attribution hooks ran through
