"""The report's per-clip stages hold one clip's activations at a time: their peak memory does not grow with the
number of clips (the prediction explanations attribute to every Conv3T layer, so a batch of clips would hold
every layer's activations and gradients for all of them)."""

from __future__ import annotations

import torch

from conv3t.explain.report.analysis import ReportClip, explain_predictions, predict
from conv3t.models import create_model
from conv3t.nn import conv3t_layers
from conv3t.verify.budget import peak_bytes

CPU = torch.device("cpu")


def _model_and_clips(n: int) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = create_model("resnet10_3t", 9, base_width=4).eval()
    return model, torch.randn(n, 3, 6, 32, 32, generator=torch.Generator().manual_seed(1))


def test_prediction_explanations_peak_does_not_grow_with_clips() -> None:
    model, clips = _model_and_clips(3)
    layers = [name for name, _ in conv3t_layers(model, min_depth=2)]
    classes = [f"c{i}" for i in range(9)]

    def peak(n: int) -> int:
        names = [f"clip {i}" for i in range(n)]
        return peak_bytes(lambda: explain_predictions(model, clips[:n], names, classes, layers), CPU)

    explain_predictions(model, clips[:1], ["warm-up"], classes, layers)  # first-call caches out of the way
    one, three = peak(1), peak(3)
    cam = 6 * 32 * 32 * 4  # each clip's result keeps its (T, H, W) float32 Grad-CAM
    assert three - one <= 2 * cam + 0.05 * one, (one, three)


def test_predictions_peak_does_not_grow_with_clips() -> None:
    model, clips = _model_and_clips(6)

    def peak(n: int) -> int:
        report = [ReportClip(f"clip {i}", clips[i]) for i in range(n)]
        return peak_bytes(lambda: predict(model, report, [f"c{i}" for i in range(9)]), CPU)

    peak(1)
    two, six = peak(2), peak(6)
    assert six <= 1.1 * two, (two, six)
