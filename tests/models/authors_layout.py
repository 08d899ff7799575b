"""Checkpoints in the layout of the authors' code (redsphinx/3tconv), built for the tests from stated facts.

Nothing here is their code. Facts used (from the issue's reading of their ``models/`` files):

* their layers are numbered in the order their constructors define them: ResNet18 ``conv1`` .. ``conv20`` with
  ``bnN`` after ``convN``, each stage's 1x1 downsample numbered before the stage's 3x3 convolutions;
  GoogLeNet ``conv1`` .. ``conv59``, per inception block the branches 1, 2.0, 2.1, 3.0, 3.1, 4.1, the first
  auxiliary head (``conv28``, ``fc1``, ``fc2``) after inception 4b, the second (``conv47``, ``fc3``, ``fc4``)
  after inception 4e, the classifier ``fc5``;
* a 3T layer stores ``first_weight`` ``(out, in, 1, kH, kW)``, ``scale`` / ``rotate`` / ``translate_x`` /
  ``translate_y`` ``(D-1, out)`` and its last generated kernel ``weight`` ``(out, in, D, kH, kW)``; its kernel
  slice ``t+1`` is slice ``t`` resampled bilinearly (zero outside, ``align_corners=True`` grid) at the positions
  ``A_t [x, y, 1]`` with ``A_t = [[s cos r, -s sin r, tx s cos r - ty s sin r],
  [s sin r, s cos r, tx s sin r + ty s cos r]]`` over the normalised grid ``[-1, 1]^2``.

:func:`numpy_kernel` implements the last fact with numpy, independently of conv3t and of torch's
``grid_sample``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

RESNET_BLOCKS = [f"layer1.{b}.conv{c}" for b in (0, 1) for c in (1, 2)]


def _resnet_order() -> list[str]:
    order = ["conv1", *RESNET_BLOCKS]
    for stage in (2, 3, 4):
        order += [f"layer{stage}.0.downsample.0"] + [f"layer{stage}.{b}.conv{c}" for b in (0, 1) for c in (1, 2)]
    return order


def _resnet_bn(conv: str) -> str:
    if conv.endswith("downsample.0"):
        return conv[:-1] + "1"
    head, _, last = conv.rpartition(".")
    return f"{head}.{last.replace('conv', 'bn')}" if head else last.replace("conv", "bn")


def _googlenet_order() -> list[str]:
    branches = ("branch1", "branch2.0", "branch2.1", "branch3.0", "branch3.1", "branch4.1")
    order = ["conv1", "conv2", "conv3"]
    for block in ("3a", "3b", "4a", "4b", "aux1", "4c", "4d", "4e", "aux2", "5a", "5b"):
        order += [f"{block}.conv"] if block.startswith("aux") else [f"inception{block}.{b}" for b in branches]
    return order


def their_names(arch: str) -> dict[str, str]:
    """Our module name -> theirs, for every convolution, BatchNorm and linear layer."""
    out: dict[str, str] = {}
    if arch.startswith("resnet18"):
        for i, conv in enumerate(_resnet_order(), start=1):
            out[conv] = f"conv{i}"
            out[_resnet_bn(conv)] = f"bn{i}"
        out["fc"] = "fc"
        return out
    for i, block in enumerate(_googlenet_order(), start=1):
        out[f"{block}.conv"] = f"conv{i}"
        out[f"{block}.bn"] = f"bn{i}"
    for i, linear in enumerate(("aux1.fc1", "aux1.fc2", "aux2.fc1", "aux2.fc2", "fc"), start=1):
        out[linear] = f"fc{i}"
    return out


def _bilinear(image: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Per output channel ``o``: ``image[o]`` ``(C, H, W)`` sampled at pixel positions ``(px[o], py[o])``
    ``(H, W)``, zero outside; ``image`` ``(O, C, H, W)``, ``px``, ``py`` ``(O, H, W)``."""
    o, c, h, w = image.shape
    x0, y0 = np.floor(px).astype(int), np.floor(py).astype(int)
    out = np.zeros((o, c, *px.shape[1:]))
    channel = np.arange(o)[:, None, None]
    for dx in (0, 1):
        for dy in (0, 1):
            xi, yi = x0 + dx, y0 + dy
            weight = (1 - np.abs(px - xi)) * (1 - np.abs(py - yi))
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            values = image[channel, :, np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]  # (O, H, W, C)
            out += np.moveaxis(np.where(inside, weight, 0.0)[..., None] * values, -1, 1)
    return out


def numpy_kernel(first: np.ndarray, s: np.ndarray, r: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """Their 3D kernel ``(out, in, D, kH, kW)`` from ``first`` ``(out, in, 1, kH, kW)`` and ``(D-1, out)`` params."""
    _, _, _, kh, kw = first.shape
    ys, xs = np.meshgrid(np.linspace(-1, 1, kh), np.linspace(-1, 1, kw), indexing="ij")
    slices = [first[:, :, 0]]
    for t in range(s.shape[0]):
        c, n, k = (v[:, None, None] for v in (np.cos(r[t]), np.sin(r[t]), s[t]))
        x0, y0 = tx[t][:, None, None], ty[t][:, None, None]
        gx = k * c * xs - k * n * ys + x0 * k * c - y0 * k * n
        gy = k * n * xs + k * c * ys + x0 * k * n + y0 * k * c
        slices.append(_bilinear(slices[-1], (gx + 1) / 2 * (kw - 1), (gy + 1) / 2 * (kh - 1)))
    return np.stack(slices, axis=2)


def randomise_(model: nn.Module, generator: torch.Generator) -> None:
    """Random weights, BatchNorm statistics and affine parameters (float64), so every tensor matters."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm3d):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator, dtype=torch.float64) + 0.5)
                module.bias.normal_(0.0, 0.1, generator=generator)
                module.running_mean.normal_(0.0, 0.1, generator=generator)
                module.running_var.copy_(torch.rand(module.running_var.shape, generator=generator).double() + 0.5)
            elif isinstance(module, nn.Conv3d | nn.Linear):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.1, generator=generator)


def authors_checkpoint(
    reference: nn.Module, arch: str, generator: torch.Generator, stale: float = 1e-3
) -> dict[str, torch.Tensor]:
    """Their state dict for ``arch`` whose network computes what ``reference`` (our 3D variant) computes.

    For a 3T ``arch`` every convolution of depth > 1 gets random 3T parameters in their layout; its kernel
    (:func:`numpy_kernel`) is written into ``reference`` and, perturbed by ``stale`` of its largest entry (one
    optimiser step), stored as their ``weight``.
    """
    names = their_names(arch)
    state: dict[str, torch.Tensor] = {}
    modules = dict(reference.named_modules())
    for ours, theirs in names.items():
        module = modules[ours]
        tensors = dict(module.state_dict())
        if arch.endswith("_3t") and isinstance(module, nn.Conv3d) and module.kernel_size[0] > 1:
            tensors = _three_t(module, generator, stale)
        state |= {f"{theirs}.{k}": v.clone() for k, v in tensors.items()}
    return state


def _three_t(conv: nn.Conv3d, generator: torch.Generator, stale: float) -> dict[str, torch.Tensor]:
    out_ch, in_ch, depth, kh, kw = conv.weight.shape
    # He-normal scale of the 3D kernel, so that the logits of a deep random network stay of order 1
    std = (2.0 / (in_ch * depth * kh * kw)) ** 0.5
    first = torch.randn(out_ch, in_ch, 1, kh, kw, generator=generator, dtype=torch.float64) * std
    shape = (depth - 1, out_ch)
    params = {
        "scale": 0.8 + 0.4 * torch.rand(shape, generator=generator, dtype=torch.float64),
        "rotate": torch.rand(shape, generator=generator, dtype=torch.float64) - 0.5,
        "translate_x": 0.6 * torch.rand(shape, generator=generator, dtype=torch.float64) - 0.3,
        "translate_y": 0.6 * torch.rand(shape, generator=generator, dtype=torch.float64) - 0.3,
    }
    kernel = torch.from_numpy(numpy_kernel(first.numpy(), *(p.numpy() for p in params.values())))
    with torch.no_grad():
        conv.weight.copy_(kernel)
    noise = torch.randn(kernel.shape, generator=generator, dtype=torch.float64)
    stored = kernel + stale * float(kernel.abs().max()) * noise / float(noise.abs().max())
    return {"first_weight": first, **params, "weight": stored}
