"""Import checkpoints of the authors' research code (github.com/redsphinx/3tconv) into conv3t's models.

Their training code saves ``model.state_dict()`` as ``epoch_N`` files (``utilities/saving.py``), often from a
GPU (tensors tagged ``cuda:N``) and, for the older runs, in PyTorch's pre-1.6 file format. Their networks name
every layer by a running number (``models/resnet18.py``: ``conv1`` .. ``conv20``, ``bn1`` .. ``bn20``, ``fc``;
``models/googlenet.py``: ``conv1`` .. ``conv59``, ``bn1`` .. ``bn59``, ``fc1`` .. ``fc5``); :data:`ARCHITECTURES`
maps them onto torchvision's names used here. Their 3T layer (``ConvTTN3d``) stores per layer

* ``first_weight`` ``(out, in, 1, kH, kW)``: the 2D filter, here ``weight`` ``(out, in, kH, kW)``;
* ``scale``, ``rotate``, ``translate_x``, ``translate_y``, each ``(D-1, out)``: here ``scale``, ``rotation``,
  ``translation_x``, ``translation_y``, each ``(out, D-1)`` (transposed; the same affine convention, so the
  generated kernels agree to float64 rounding);
* ``weight`` ``(out, in, D, kH, kW)``: the 3D kernel it generated in its last forward. It is not a parameter of
  ours; the import rebuilds the kernel from the parameters and compares. Their code saves after the epoch's
  last optimiser step, so the stored kernel is one step stale: about 1e-3 of its largest entry is expected, and
  only a difference beyond ``stale_tolerance`` (1e-2 of the largest entry) warns.

GoogLeNets are built with ``style="authors"`` (their BatchNorm eps, max-pool rounding and auxiliary pooling,
see :mod:`conv3t.models.googlenet`): with our default style the imported weights would give other logits.
Loading is safe: ``torch.load(weights_only=True, map_location="cpu")``, never a full unpickling.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from conv3t.models.registry import create_model
from conv3t.nn import Conv3T

__all__ = ["ARCHITECTURES", "AuthorsImport", "authors_module_names", "load_authors_checkpoint", "read_authors_state"]

#: Their ConvTTN3d parameter -> ours, and whether it is transposed (``(D-1, out)`` -> ``(out, D-1)``).
_TEMPORAL = {"scale": "scale", "rotate": "rotation", "translate_x": "translation_x", "translate_y": "translation_y"}
#: Keys a wrapped checkpoint may keep the state dict under.
_WRAPPERS = ("state_dict", "model_state_dict", "model")
DEFAULT_STALE_TOLERANCE = 1e-2


def _resnet18_names() -> dict[str, str]:
    names = {"conv1": "conv1", "bn1": "bn1", "fc": "fc"}
    for block, (a, b) in enumerate(((2, 3), (4, 5))):
        names |= {f"conv{a}": f"layer1.{block}.conv1", f"conv{b}": f"layer1.{block}.conv2"}
        names |= {f"bn{a}": f"layer1.{block}.bn1", f"bn{b}": f"layer1.{block}.bn2"}
    for stage, first in ((2, 6), (3, 11), (4, 16)):
        # per stage: the 1x1 downsample, then two blocks of two 3x3 convolutions
        names |= {f"conv{first}": f"layer{stage}.0.downsample.0", f"bn{first}": f"layer{stage}.0.downsample.1"}
        for i, ours in enumerate(("0.conv1", "0.conv2", "1.conv1", "1.conv2"), start=first + 1):
            names |= {f"conv{i}": f"layer{stage}.{ours}", f"bn{i}": f"layer{stage}.{ours.replace('conv', 'bn')}"}
    return names


def _googlenet_names() -> dict[str, str]:
    names = {"fc5": "fc"}
    for i, ours in ((1, "conv1"), (2, "conv2"), (3, "conv3")):
        names |= {f"conv{i}": f"{ours}.conv", f"bn{i}": f"{ours}.bn"}
    branches = ("branch1", "branch2.0", "branch2.1", "branch3.0", "branch3.1", "branch4.1")
    blocks = {"3a": 4, "3b": 10, "4a": 16, "4b": 22, "4c": 29, "4d": 35, "4e": 41, "5a": 48, "5b": 54}
    for block, first in blocks.items():
        for i, branch in enumerate(branches, start=first):
            names |= {f"conv{i}": f"inception{block}.{branch}.conv", f"bn{i}": f"inception{block}.{branch}.bn"}
    for aux, conv, fc1, fc2 in (("aux1", 28, "fc1", "fc2"), ("aux2", 47, "fc3", "fc4")):
        names |= {f"conv{conv}": f"{aux}.conv.conv", f"bn{conv}": f"{aux}.conv.bn"}
        names |= {fc1: f"{aux}.fc1", fc2: f"{aux}.fc2"}
    return names


#: Supported ``arch`` -> (their module name -> ours). Their 3T and 3D networks use the same names.
ARCHITECTURES: dict[str, dict[str, str]] = {
    "resnet18_3t": _resnet18_names(),
    "resnet18_3d": _resnet18_names(),
    "googlenet_3t": _googlenet_names(),
    "googlenet_3d": _googlenet_names(),
}


def authors_module_names(arch: str) -> dict[str, str]:
    """Their module name -> ours for ``arch`` (``"resnet18_3t"``, ``"resnet18_3d"``, ``"googlenet_3t"``, ...)."""
    try:
        return dict(ARCHITECTURES[arch])
    except KeyError:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}") from None


@dataclass
class AuthorsImport:
    """What :func:`load_authors_checkpoint` did.

    Attributes:
        source: the checkpoint file.
        arch: the conv3t model name it was imported as.
        mapped: number of their tensors copied into the model.
        stale: per 3T layer (our name), ``max |stored weight - rebuilt kernel| / max |rebuilt kernel|``.
        tolerance: the relative difference beyond which the stored kernel is reported as not matching.
        defaults: our tensors the checkpoint lacks that keep their value (BatchNorm ``num_batches_tracked`` of
            files written by PyTorch < 1.1).
    """

    source: str
    arch: str
    mapped: int = 0
    stale: dict[str, float] = field(default_factory=dict)
    tolerance: float = DEFAULT_STALE_TOLERANCE
    defaults: list[str] = field(default_factory=list)

    @property
    def max_stale(self) -> float:
        """The largest relative difference over the 3T layers (0.0 for 3D networks)."""
        return max(self.stale.values(), default=0.0)

    @property
    def beyond_tolerance(self) -> dict[str, float]:
        """The 3T layers whose stored kernel differs from the rebuilt one by more than :attr:`tolerance`."""
        return {k: v for k, v in self.stale.items() if not v <= self.tolerance}

    def __str__(self) -> str:
        lines = [f"imported {self.source} as {self.arch}: {self.mapped} tensors mapped"]
        if self.stale:
            lines.append(
                f"stored 3D kernels vs kernels rebuilt from the 3T parameters: at most {self.max_stale:.2e} of the "
                f"kernel's largest entry over {len(self.stale)} layers (expected: their code saves the kernel of "
                f"the epoch's last forward, one optimiser step before the saved parameters; about 1e-3)"
            )
        for name, diff in self.beyond_tolerance.items():
            lines.append(f"  {name}: {diff:.2e} > {self.tolerance:.0e}: more than one optimiser step apart")
        if self.defaults:
            lines.append(f"not in the file, kept at their initial value: {', '.join(self.defaults)}")
        return "\n".join(lines)


def read_authors_state(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read an authors' checkpoint safely: ``{key: tensor}`` on the CPU.

    ``torch.load(weights_only=True, map_location="cpu")`` reads the current zip format and the pre-1.6 format
    alike, with tensors saved on any GPU. A dict wrapping the weights under ``state_dict`` /
    ``model_state_dict`` / ``model`` is unwrapped, as is the ``module.`` prefix of ``nn.DataParallel``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file cannot be read without unpickling arbitrary objects, or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"authors' checkpoint {path} does not exist")
    try:
        state: object = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # unpickling errors come in many types
        raise ValueError(
            f"cannot read {path} with torch.load(weights_only=True): {err}. conv3t reads only state dicts "
            f"(torch.save(model.state_dict(), ...), as their utilities/saving.py writes them). A whole pickled "
            f"model or another format has to be re-saved as a state dict in an environment you trust, e.g. "
            f"torch.save(torch.load(old, map_location='cpu').state_dict(), new)"
        ) from err
    if isinstance(state, Mapping):
        for wrapper in _WRAPPERS:
            if isinstance(state.get(wrapper), Mapping):
                state = state[wrapper]
                break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of parameter names to tensors)")
    out = {str(k): v for k, v in state.items()}
    if all(k.startswith("module.") for k in out):
        out = {k[len("module.") :]: v for k, v in out.items()}
    return out


def _classes_in(state: Mapping[str, Tensor], arch: str, source: str) -> int:
    key = "fc5.weight" if arch.startswith("googlenet") else "fc.weight"
    if key not in state or state[key].dim() != 2:
        raise ValueError(f"{source}: no classifier {key!r} of shape (classes, features); is it a {arch} checkpoint?")
    return int(state[key].shape[0])


@dataclass
class _Translation:
    ours: dict[str, Tensor] = field(default_factory=dict)
    stored_kernels: dict[str, Tensor] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _translate_3t(key: str, param: str, tensor: Tensor, layer: str, out: _Translation) -> None:
    """One tensor of their ConvTTN3d into our Conv3T ``layer``."""
    if param == "first_weight" and tensor.dim() == 5 and tensor.shape[2] == 1:
        out.ours[f"{layer}.weight"] = tensor[:, :, 0]
    elif param in _TEMPORAL and tensor.dim() == 2:
        out.ours[f"{layer}.{_TEMPORAL[param]}"] = tensor.t()
    elif param == "weight" and tensor.dim() == 5:
        out.stored_kernels[layer] = tensor
    elif param == "bias":
        out.ours[f"{layer}.bias"] = tensor
    else:
        out.problems.append(f"{key} {tuple(tensor.shape)}: not a tensor of their 3T layer (ConvTTN3d)")


def _translate(state: Mapping[str, Tensor], arch: str, model: nn.Module) -> _Translation:
    """Their keys -> ours; every key of theirs either lands somewhere or is listed in ``problems``."""
    names = ARCHITECTURES[arch]
    modules = dict(model.named_modules())
    out = _Translation()
    for key, tensor in state.items():
        theirs, _, param = key.rpartition(".")
        if theirs not in names:
            out.problems.append(f"{key} {tuple(tensor.shape)}: no layer {theirs!r} in their {arch}")
            continue
        layer = names[theirs]
        if isinstance(modules[layer], Conv3T):
            _translate_3t(key, param, tensor, layer, out)
        elif param == "first_weight" or param in _TEMPORAL:
            out.problems.append(f"{key}: a 3T layer's tensor, but {layer} of {arch} is a 3D convolution")
        else:
            out.ours[f"{layer}.{param}"] = tensor
    for layer, module in modules.items():
        if isinstance(module, Conv3T) and f"{layer}.weight" not in out.ours and layer in out.stored_kernels:
            kind = arch.replace("_3t", "_3d")
            out.problems.append(f"{layer}: only a 3D 'weight', no 'first_weight': a 3D network? try arch={kind!r}")
    return out


def _check_shapes(translation: _Translation, model: nn.Module, report: AuthorsImport) -> None:
    expected = model.state_dict()
    for key, tensor in translation.ours.items():
        if key not in expected:
            translation.problems.append(f"{key}: conv3t's {report.arch} has no such tensor")
        elif tensor.shape != expected[key].shape:
            translation.problems.append(
                f"{key}: shape {tuple(tensor.shape)} in the file, {tuple(expected[key].shape)} in conv3t's "
                f"{report.arch}"
            )
    for key in expected:
        if key in translation.ours:
            continue
        if key.endswith("num_batches_tracked"):
            report.defaults.append(key)
        else:
            translation.problems.append(f"{key}: missing from the file")


def _stale_differences(model: nn.Module, stored: Mapping[str, Tensor]) -> dict[str, float]:
    """Per Conv3T layer with a stored kernel: max |stored - rebuilt| / max |rebuilt| (inf if shapes differ)."""
    out: dict[str, float] = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            if not isinstance(module, Conv3T) or name not in stored:
                continue
            rebuilt = module.kernel()
            kernel = stored[name].to(rebuilt.dtype)
            if kernel.shape != rebuilt.shape:
                out[name] = float("inf")
                continue
            scale = float(rebuilt.abs().max())
            out[name] = float((kernel - rebuilt).abs().max()) / scale if scale > 0 else float((kernel != 0).any())
    return out


def load_authors_checkpoint(
    path: str | os.PathLike[str],
    arch: str,
    num_classes: int | None = None,
    stale_tolerance: float = DEFAULT_STALE_TOLERANCE,
) -> nn.Module:
    """Build conv3t's ``arch`` from a state dict written by the authors' code; returns it in eval mode.

    Args:
        path: their ``epoch_N`` file (any PyTorch format ``torch.load(weights_only=True)`` reads).
        arch: ``"resnet18_3t"``, ``"resnet18_3d"``, ``"googlenet_3t"`` or ``"googlenet_3d"``.
        num_classes: the classifier size; ``None`` takes it from the file, a different number is an error.
        stale_tolerance: relative difference between their stored 3D kernel and the one rebuilt from the 3T
            parameters beyond which a :class:`UserWarning` is issued (one optimiser step is about 1e-3).

    Returns:
        The model, in the checkpoint's floating dtype, with ``model.import_report`` the :class:`AuthorsImport`.
        GoogLeNets are built with ``style="authors"`` and both auxiliary heads.

    Raises:
        ValueError: an unreadable file, or keys that do not fit: the message lists every key of the file
            that has no place in the model, every tensor of the model the file lacks and every shape mismatch.
    """
    authors_module_names(arch)  # an unknown arch fails before the file is read
    state = read_authors_state(path)
    source = str(path)
    found = _classes_in(state, arch, source)
    if num_classes is not None and num_classes != found:
        raise ValueError(f"{source}: the classifier has {found} classes, num_classes={num_classes} was asked for")
    kwargs: dict[str, object] = {"style": "authors"} if arch.startswith("googlenet") else {}
    model = create_model(arch, found, pretrained=None, init="authors", **kwargs)
    dtypes = [t.dtype for t in state.values() if t.is_floating_point()]
    model.to(dtypes[0] if dtypes else torch.float32)
    report = AuthorsImport(source=source, arch=arch, tolerance=stale_tolerance)
    translation = _translate(state, arch, model)
    _check_shapes(translation, model, report)
    if translation.problems:
        listed = "\n  ".join(translation.problems)
        raise ValueError(
            f"{source} does not fit conv3t's {arch} ({len(translation.problems)} problems; their keys follow "
            f"models/resnet18.py and models/googlenet.py of redsphinx/3tconv):\n  {listed}"
        )
    model.load_state_dict(translation.ours, strict=False)
    report.mapped = len(translation.ours) + len(translation.stored_kernels)
    report.stale = _stale_differences(model, translation.stored_kernels)
    if report.beyond_tolerance:
        warnings.warn(
            f"{source}: the stored 3D kernels of {len(report.beyond_tolerance)} 3T layers differ from the kernels "
            f"rebuilt from their parameters by more than {stale_tolerance:.0e} of their largest entry (one "
            f"optimiser step gives about 1e-3): {report.beyond_tolerance}. conv3t uses the parameters; was the "
            f"file written before any forward, or edited?",
            UserWarning,
            stacklevel=2,
        )
    model.import_report = report  # type: ignore[assignment]
    return model.eval()
