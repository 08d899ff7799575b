"""Where a model runs and what identifies it: device choice, memory sizes, a hash of the weights.

Small helpers that several packages need (training's evaluation, verification, the explanation report, the
commands). They sit at the bottom of the import order, beside :mod:`conv3t.files`, and import nothing else of
the package, so that no package has to reach into another's internals for them.
"""

from __future__ import annotations

import hashlib
import re

import torch
from torch import nn

__all__ = ["hash_weights", "model_device", "parse_memory", "resolve_device"]

_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "M": 1e6, "MB": 1e6, "G": 1e9, "GB": 1e9, "T": 1e12, "TB": 1e12}
_UNITS.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})


def resolve_device(spec: str | torch.device | None = "auto", argument: str = "device") -> torch.device:
    """``"auto"`` (CUDA when available, else the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` -> a device.

    Raises ValueError naming ``argument`` for an unknown name, CUDA asked for on a machine without it, or a
    GPU index the machine does not have.
    """
    text = "auto" if spec is None else str(spec).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", text):
        raise ValueError(f"{argument}: expected auto, cpu, cuda or cuda:N, got {spec!r}")
    device = torch.device(text)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{argument}: {spec!r} asked for, but CUDA is not available on this machine "
                "(torch.cuda.is_available() is False); use cpu or auto"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"{argument}: {spec!r} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
    return device


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (or buffer); the CPU for a model without either.

    Callers take inputs on any device, compute on the model's and return results on the input's."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def parse_memory(text: str | int | float, argument: str = "max_memory") -> int:
    """``"4GB"``, ``"512MB"``, ``"1.5GiB"``, ``"4G"`` or a number of bytes -> bytes.

    Decimal units (``GB = 10^9``) and binary ones (``GiB = 2^30``). Errors name ``argument``.
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([A-Za-z]*)\s*", str(text))
        if not match or match.group(2).upper() not in _UNITS:
            raise ValueError(f"{argument}: expected a size such as 4GB, 512MB or 1.5GiB, got {text!r}")
        value, unit = float(match.group(1)), match.group(2).upper()
    size = int(value * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"{argument}: must be more than 0 bytes, got {text!r}")
    return size


def hash_weights(model: nn.Module, digest: hashlib._Hash) -> None:
    """Feed every tensor of ``model.state_dict()`` (name, dtype, shape, bytes; by name) into ``digest``.

    Sorting by name makes the hash independent of registration order; the dtype and shape go in beside the
    bytes, so a float64 copy or a reshaped tensor with the same bytes hashes differently.
    """
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
