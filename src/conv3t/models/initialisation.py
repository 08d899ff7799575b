"""Initialisation as the authors' code (redsphinx/3tconv) does it, beside torchvision's (the models' default).

The authors build their networks from PyTorch's layers and keep every layer's own default initialisation
(``reset_parameters``: Kaiming-uniform with ``a = sqrt(5)`` for convolution and linear weights, BatchNorm
weight 1 and bias 0), except the 2D filter of each 3T layer, which ``ConvTTN3d`` (``models/conv3t.py``) draws
from N(0, 1) with ``init.normal_`` -- about 100 times the scale of a He-normal filter of a 3x3 layer. The
temporal parameters start at the identity in both.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from conv3t.nn import Conv3T

__all__ = ["INIT_MODES", "authors_init_"]

#: ``create_model(..., init=...)`` values: torchvision's initialisation or the authors'.
INIT_MODES: tuple[str, ...] = ("default", "authors")


def authors_init_(model: nn.Module) -> nn.Module:
    """Re-initialise ``model`` in place as the authors' code does; returns it.

    Every submodule with ``reset_parameters`` gets PyTorch's default initialisation; each
    :class:`~conv3t.Conv3T` then has its 2D filter ``weight`` ``(out, in/groups, kH, kW)`` drawn from N(0, 1),
    its temporal parameters set to the identity (scale 1, rotation and translations 0) and its bias (if any) at
    PyTorch's default for a convolution of its 3D kernel's fan-in.
    """
    for module in model.modules():
        if isinstance(module, Conv3T):
            _conv3t_authors_init_(module)
        elif hasattr(module, "reset_parameters") and callable(module.reset_parameters):
            module.reset_parameters()
    return model


def _conv3t_authors_init_(layer: Conv3T) -> None:
    with torch.no_grad():
        nn.init.normal_(layer.weight, 0.0, 1.0)
        for name in Conv3T.temporal_parameter_names:
            getattr(layer, name).fill_(1.0 if name == "scale" else 0.0)
        if layer.bias is not None:
            # _ConvNd.reset_parameters: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in of the 3D kernel
            fan_in = layer.weight.shape[1] * math.prod(layer.kernel_size)
            bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            nn.init.uniform_(layer.bias, -bound, bound)
