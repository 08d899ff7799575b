"""Transfer 2D torchvision weights (ResNet18, GoogLeNet) into the 3T / 3D video models.

The video models use torchvision's submodule names, so every 2D key has one 3D counterpart. Per module:

* :class:`~conv3t.Conv3T`: the temporal parameters are set to the identity, so the generated kernel repeats
  ``weight`` (``K_1``) ``D`` times over time. ``inflate="repeat"`` (the authors' code for 3T) copies the 2D filter
  unchanged into ``K_1``, so a static clip gives ``D`` times the 2D response at interior time steps;
  ``inflate="mean"`` divides it by ``D``, so a static clip gives exactly the 2D response.
* :class:`torch.nn.Conv3d` with temporal depth ``D > 1``: *inflated*, i.e. the 2D filter repeated ``D`` times
  over time, ``inflate="repeat"`` (no division; the same as a 3T layer at identity) or ``inflate="mean"``
  (divided by ``D`` as I3D, and as the authors' code inflates its 3D baselines: ``utilities/setup.py`` of
  ``redsphinx/3tconv``). ``D = 1`` (1x1x1) convolutions are copied with a unit time axis added.

Why ``"mean"`` matters: BatchNorm keeps the 2D running statistics, which fit the 2D response. Under
``"repeat"`` every ``D > 1`` layer sees inputs ``D`` times too large on a static clip, so straight after the
transfer an eval-mode network is far from its 2D original (near chance on our small tasks, RESULTS.md) until
training re-adapts the statistics. Under ``"mean"`` every block of a ResNet gives the 2D block's output at
interior frames of a static clip (``tests/models/test_transfer_fidelity.py``).
* BatchNorm: affine parameters and running statistics copied.
* ``transfer="conv_only"`` (the authors' ``utilities/setup.py``): only the convolution kernels of the backbone
  are copied (inflated as above); BatchNorm, the auxiliary heads (their convolutions too) and ``fc`` keep the
  model's initialisation (PyTorch's defaults with ``create_model(..., init="authors")``), and the report lists
  them as initialised.
* ``nn.Linear`` (classifiers, auxiliary heads): copied when the shapes agree; otherwise (another class count,
  or the auxiliary ``fc1``, which has 2048 inputs in torchvision and 768 here) the model keeps its fresh
  initialisation and the report says why.

2D keys the model has no place for (e.g. torchvision's auxiliary heads when ``aux_logits=False``, or the
second block of each stage for the reduced ResNet10) are reported as skipped. A backbone key missing from the
2D state dict, or a backbone shape mismatch, is an error naming the key.

Weights come from a file (``torch.load(weights_only=True)`` or ``.safetensors``) or from torchvision's ImageNet
weights (:func:`imagenet_state_dict`): read from the torch hub cache, and downloaded into it (hash checked, with a
progress bar) when missing, unless ``CONV3T_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` is set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from conv3t.nn import Conv3T

__all__ = [
    "INFLATE_MODES",
    "OFFLINE_VARIABLES",
    "TRANSFER_MODES",
    "TransferReport",
    "WeightsDownloadError",
    "imagenet_checkpoint_path",
    "imagenet_state_dict",
    "imagenet_weights_url",
    "load_2d_state_dict",
    "offline",
    "transfer_2d_weights",
]

#: Environment variables that forbid downloads (the second is the one users of the Hugging Face Hub set).
OFFLINE_VARIABLES: tuple[str, ...] = ("CONV3T_OFFLINE", "HF_HUB_OFFLINE")


class WeightsDownloadError(FileNotFoundError):
    """The ImageNet weights are not cached and could not be downloaded; the message says what to do."""


def offline() -> bool:
    """True when ``CONV3T_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to 1 / true / yes / on."""
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on") for v in OFFLINE_VARIABLES)


Inflate = Literal["repeat", "mean"]
INFLATE_MODES: tuple[str, ...] = ("repeat", "mean")
#: ``"all"``: every tensor that fits; ``"conv_only"``: the backbone's convolution kernels only (the authors').
TRANSFER_MODES: tuple[str, ...] = ("all", "conv_only")
ARCHITECTURES_2D: tuple[str, ...] = ("resnet18", "googlenet")
# Top-level submodules that are heads: their keys may be missing from the source or change shape.
_HEAD_MODULES = ("fc", "aux1", "aux2")


@dataclass
class TransferReport:
    """What :func:`transfer_2d_weights` did with every parameter and buffer of the video model.

    Attributes:
        source: where the 2D weights came from (``"imagenet:resnet18"`` or a file path).
        inflate: the inflation mode used for Conv3d kernels.
        copied: keys whose 2D value was copied as is (Conv3T 2D filters, BatchNorm, 1x1x1 kernels, heads).
        inflated: Conv3d kernel keys built by repeating the 2D filter over time, and (``inflate="mean"``) Conv3T
            filters divided by their depth ``D > 1``.
        identity: Conv3T temporal parameter keys set to the identity transformation.
        initialised: keys that keep the model's fresh initialisation -> reason.
        skipped: 2D keys that were not used -> reason.
    """

    source: str
    inflate: str
    copied: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    identity: list[str] = field(default_factory=list)
    initialised: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [
            f"weight transfer from {self.source} (inflate={self.inflate!r}): {len(self.copied)} copied, "
            f"{len(self.inflated)} inflated, {len(self.identity)} temporal parameters at identity, "
            f"{len(self.initialised)} freshly initialised, {len(self.skipped)} 2D keys skipped"
        ]
        if self.initialised:
            lines.append("freshly initialised:")
            lines += [f"  {key}: {why}" for key, why in self.initialised.items()]
        if self.skipped:
            lines.append("skipped 2D keys (no counterpart in the video model):")
            groups: dict[str, int] = {}
            for key in self.skipped:
                groups[_block_of(key)] = groups.get(_block_of(key), 0) + 1
            lines += [f"  {block}.* ({n} keys)" for block, n in groups.items()]
        return "\n".join(lines)


def _block_of(key: str) -> str:
    """``layer1.1.conv1.weight -> layer1.1``, ``aux1.fc1.weight -> aux1``: the block a key belongs to."""
    parts = key.split(".")
    if len(parts) > 2 and parts[1].isdigit():
        return ".".join(parts[:2])
    return parts[0] if len(parts) > 1 else key


def imagenet_checkpoint_path(arch: str) -> Path:
    """Where torchvision's ImageNet weights for ``arch`` (``"resnet18"`` or ``"googlenet"``) are cached.

    ``torch.hub.get_dir()/checkpoints/<file name of the weights URL>``; ``TORCH_HOME`` moves it.
    """
    weights = _imagenet_weights(arch)
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def imagenet_weights_url(arch: str) -> str:
    """The download URL of torchvision's ImageNet weights for ``arch`` (``"resnet18"`` or ``"googlenet"``)."""
    return str(_imagenet_weights(arch).url)


def _imagenet_weights(arch: str):  # -> torchvision.models.WeightsEnum member
    from torchvision.models import GoogLeNet_Weights, ResNet18_Weights

    if arch == "resnet18":
        return ResNet18_Weights.IMAGENET1K_V1
    if arch == "googlenet":
        return GoogLeNet_Weights.IMAGENET1K_V1
    raise ValueError(f"no ImageNet weights for 2D architecture {arch!r}; available: {ARCHITECTURES_2D}")


def _download_weights(url: str, path: Path) -> None:
    """Download ``url`` to ``path`` as torch hub does: through a temporary file, with a progress bar, checking
    the SHA-256 prefix that torchvision puts in the file name (``resnet18-f37072fd.pth``)."""
    match = re.search(r"-([a-f0-9]+)\.", path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.hub.download_url_to_file(url, str(path), hash_prefix=match.group(1) if match else None, progress=True)


def imagenet_state_dict(arch: str) -> dict[str, Tensor]:
    """torchvision's ImageNet state dict for ``arch``, downloaded into the torch hub cache if not there yet.

    Loads through torchvision's weights API (``ResNet18_Weights.IMAGENET1K_V1`` /
    ``GoogLeNet_Weights.IMAGENET1K_V1``) with ``weights_only=True`` and checks it by loading it into the 2D
    torchvision model. When the file is not cached it is downloaded (hash checked, progress bar on stderr),
    except offline (:func:`offline`): then :class:`FileNotFoundError` names the file and where to put it. A
    failed download raises :class:`WeightsDownloadError` naming the URL, the path and the offline switch.
    """
    import torchvision

    weights = _imagenet_weights(arch)
    path = imagenet_checkpoint_path(arch)
    if not path.is_file() and offline():
        raise FileNotFoundError(
            f"pretrained='imagenet' needs torchvision's {arch} ImageNet weights ({weights}) in the torch hub "
            f"cache, but {path} does not exist and downloads are off ({' / '.join(OFFLINE_VARIABLES)} is set). "
            f"Download {weights.url} on a machine with network access and put it at {path} (set TORCH_HOME to "
            f"use another cache directory), or pass pretrained=PATH with a 2D torchvision state dict file."
        )
    if not path.is_file():
        try:
            _download_weights(weights.url, path)
        except (OSError, RuntimeError, ValueError) as err:  # no network, HTTP error, hash mismatch, disk full
            raise WeightsDownloadError(
                f"pretrained='imagenet': could not download torchvision's {arch} ImageNet weights from "
                f"{weights.url} to {path} ({type(err).__name__}: {err}). Without network access, download the "
                f"file on another machine, put it at {path} and set CONV3T_OFFLINE=1 (or HF_HUB_OFFLINE=1) so "
                f"that conv3t does not try to download."
            ) from err
    state = weights.get_state_dict(progress=False, check_hash=False, weights_only=True, map_location="cpu")
    if arch == "resnet18":
        model_2d: nn.Module = torchvision.models.resnet18(weights=None)
    else:
        model_2d = torchvision.models.GoogLeNet(aux_logits=True, init_weights=False, transform_input=False)
    try:
        model_2d.load_state_dict(state)
    except RuntimeError as err:
        raise RuntimeError(f"{path} is not a valid torchvision {arch} state dict: {err}") from err
    return model_2d.state_dict()


def load_2d_state_dict(path: str | os.PathLike[str]) -> dict[str, Tensor]:
    """Read a 2D state dict file: ``.safetensors``, or anything ``torch.load(weights_only=True)`` reads.

    A checkpoint that wraps the weights under a ``"state_dict"`` or ``"model"`` key is unwrapped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights file {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state: object = load_file(str(path), device="cpu")
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # unpickling errors come in many types
            raise ValueError(f"cannot read {path} as a state dict with torch.load(weights_only=True): {err}") from err
    if isinstance(state, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), Mapping):
                state = state[wrapper]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, Tensor) for v in state.values()):
        raise ValueError(f"{path} does not contain a state dict (a mapping of parameter names to tensors)")
    return dict(state)


def _is_head(key: str) -> bool:
    return key.split(".", 1)[0] in _HEAD_MODULES


def _mismatch(key: str, source: str, src: Tensor, dst: Tensor, expected: tuple[int, ...]) -> ValueError:
    return ValueError(
        f"cannot transfer {key!r} from {source}: 2D shape {tuple(src.shape)}, the video model needs "
        f"{tuple(expected)} (3D shape {tuple(dst.shape)}); is the 2D model the same architecture and width?"
    )


def _load_tensor(
    module: nn.Module, local: str, key: str, src: Tensor, dst: Tensor, inflate: Inflate, report: TransferReport
) -> None:
    """Copy one 2D tensor ``src`` into the video model's ``dst`` (``module.<local>``), inflating kernels."""
    if isinstance(module, nn.Conv3d) and local == "weight":
        depth = dst.shape[2]
        if src.dim() != 4 or src.shape[:2] + src.shape[2:] != dst.shape[:2] + dst.shape[3:]:
            raise _mismatch(key, report.source, src, dst, (*dst.shape[:2], *dst.shape[3:]))
        kernel = src.unsqueeze(2).expand_as(dst)
        if depth > 1 and inflate == "mean":
            kernel = kernel / depth
        dst.copy_(kernel)
        (report.inflated if depth > 1 else report.copied).append(key)
        return
    if src.shape != dst.shape:
        raise _mismatch(key, report.source, src, dst, tuple(dst.shape))
    depth = module.temporal_depth if isinstance(module, Conv3T) and local == "weight" else 1
    if depth > 1 and inflate == "mean":
        dst.copy_(src / depth)  # D identical slices at identity: the sum is the 2D filter
        report.inflated.append(key)
        return
    dst.copy_(src)
    report.copied.append(key)


def transfer_2d_weights(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    inflate: Inflate = "repeat",
    source: str = "state dict",
    transfer: str = "all",
) -> TransferReport:
    """Load a 2D torchvision state dict into a video model built by :mod:`conv3t.models` (in place).

    Args:
        model: a 3T or 3D ResNet / GoogLeNet with torchvision's submodule names.
        state_dict: the 2D model's state dict (``(out, in, kH, kW)`` conv kernels).
        inflate: ``"repeat"`` or ``"mean"``, how kernels of temporal depth ``D > 1`` are built from the 2D
            filter (see the module docstring): repeated unchanged, or divided by ``D`` (Conv3d and Conv3T).
        source: a label for the report.
        transfer: ``"all"`` or ``"conv_only"`` (see the module docstring).

    Returns:
        A :class:`TransferReport`.

    Raises:
        ValueError: a backbone shape mismatch or a backbone key missing from ``state_dict`` (names the key).
    """
    if inflate not in INFLATE_MODES:
        raise ValueError(f"inflate must be one of {INFLATE_MODES}, got {inflate!r}")
    if transfer not in TRANSFER_MODES:
        raise ValueError(f"transfer must be one of {TRANSFER_MODES}, got {transfer!r}")
    report = TransferReport(source=source, inflate=inflate)
    used: set[str] = set()
    missing: list[str] = []

    def fetch(key: str) -> Tensor | None:
        if key not in state_dict:
            if _is_head(key):
                report.initialised[key] = "not in the 2D state dict"
            else:
                missing.append(key)
            return None
        used.add(key)
        return state_dict[key]

    with torch.no_grad():
        for name, module in model.named_modules():
            prefix = f"{name}." if name else ""
            own = dict(module.named_parameters(recurse=False)) | dict(module.named_buffers(recurse=False))
            if isinstance(module, nn.Linear) and _is_head(prefix) and _head_differs(prefix, own, state_dict):
                # Another class count, or the auxiliary fc1 (2048 inputs in torchvision, 768 here): the whole
                # layer keeps its fresh initialisation.
                for local, dst in own.items():
                    key = prefix + local
                    src = fetch(key)
                    if src is not None:
                        report.initialised[key] = f"2D shape {tuple(src.shape)}, video model {tuple(dst.shape)}"
                continue
            if transfer == "conv_only" and not _is_backbone_conv(module, prefix):
                for local in own:
                    if prefix + local in state_dict:
                        used.add(prefix + local)
                    report.initialised[prefix + local] = "transfer='conv_only': keeps its initialisation"
                continue
            for local, dst in own.items():
                key = prefix + local
                if isinstance(module, Conv3T) and local in Conv3T.temporal_parameter_names:
                    dst.fill_(1.0 if local == "scale" else 0.0)  # identity, even if the model was trained
                    report.identity.append(key)
                    continue
                src = fetch(key)
                if src is not None:
                    _load_tensor(module, local, key, src, dst, inflate, report)
    if missing:
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(
            f"{source} lacks {len(missing)} weights the video model needs ({shown}); it does not look like a "
            f"torchvision state dict of the matching 2D architecture"
        )
    for key in state_dict:
        if key not in used:
            report.skipped[key] = "no counterpart in the video model"
    return report


def _is_backbone_conv(module: nn.Module, prefix: str) -> bool:
    """A convolution outside the heads: what ``transfer="conv_only"`` copies."""
    return isinstance(module, nn.Conv3d | Conv3T) and not _is_head(prefix)


def _head_differs(prefix: str, own: Mapping[str, Tensor], state_dict: Mapping[str, Tensor]) -> bool:
    """Whether any tensor of this head layer has another shape in the 2D state dict."""
    return any(prefix + k in state_dict and state_dict[prefix + k].shape != v.shape for k, v in own.items())
