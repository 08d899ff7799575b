"""Every registered model's forward on (fake) CUDA: no CPU tensor meets a CUDA one (issue 28).

:func:`fake_cuda` (tests/conftest.py) fakes CUDA tensors on this CPU-only machine; a tensor made on the CPU
inside the forward (a constant, an index, a cache) and combined with the input raises
``FakeTensorDeviceMismatchError``. Both kernel generation methods and the model-level batched generation are
run, in training (gradients enabled: generated every forward) and in inference (the cached kernel).
"""

from __future__ import annotations

import pytest
import torch

from conv3t.models import PAPER_PARAMETER_COUNTS, create_model, list_models
from conv3t.nn import batch_kernel_generation, conv3t_layers

SMALL = {"base_width": 4}  # ResNets: fewer channels, the same layers and code paths


def _model(name: str, method: str, batched: bool) -> torch.nn.Module:
    kwargs = SMALL if name in PAPER_PARAMETER_COUNTS and name.startswith("resnet") else {}
    model = create_model(name, num_classes=5, **kwargs)  # on the CPU: initialisers read values
    for _, layer in conv3t_layers(model):
        layer.kernel_method = method
    return batch_kernel_generation(model, enabled=batched)


def _logits(out: object) -> torch.Tensor:
    return out if isinstance(out, torch.Tensor) else out.logits  # type: ignore[attr-defined]


def _names() -> list[object]:
    """The paper's ResNets run in the quick suite (~2 s each here); GoogLeNet and the converted torchvision
    families are slow (fake tensors cost per operation, and they have many: ~6 s and more)."""
    quick = {n for n in PAPER_PARAMETER_COUNTS if n.startswith("resnet")}
    return [n if n in quick else pytest.param(n, marks=pytest.mark.slow) for n in list_models()]


@pytest.mark.parametrize("name", _names())
@pytest.mark.parametrize(("method", "batched"), [("matrix", True), ("matrix", False), ("grid_sample", False)])
def test_forward_on_cuda(fake_cuda, name: str, method: str, batched: bool) -> None:  # type: ignore[no-untyped-def]
    if name.endswith("_3d") and (method, batched) != ("matrix", True):
        pytest.skip("no Conv3T layer: the kernel method and batched generation do not apply")
    if name not in PAPER_PARAMETER_COUNTS and (method, batched) != ("matrix", True):
        # a converted family runs the same Conv3T code as the paper's models; what is its own is the rewritten
        # graph (time padding, functional ops), which the default generation path exercises
        pytest.skip("converted family: the kernel methods are covered by the paper's models")
    model = _model(name, method, batched)
    with fake_cuda:
        model.to("cuda").train()
        clip = torch.randn(2, 3, 8, 32, 32, device="cuda")
        out = _logits(model(clip))
        assert out.device.type == "cuda" and out.shape == (2, 5)
        model.eval()
        with torch.no_grad():
            assert _logits(model(clip)).device.type == "cuda"
