"""Registry names for torchvision families converted by :func:`~conv3t.models.convert`.

``<family>_3t`` and ``<family>_3d`` for each of :data:`CONVERTED_FAMILIES` (``resnet50_3t``,
``mobilenet_v3_small_3d``, ``efficientnet_b0_3t``, ...): torchvision's 2D model with ``num_classes`` outputs,
optionally with weights, converted. ``create_model(name, num_classes, pretrained=..., inflate=...,
time_kernel=3, temporal_padding="zeros")``:

* ``pretrained=None``: torchvision's 2D initialisation, converted (Conv3T temporal parameters at identity);
* ``pretrained="imagenet"``: torchvision's default ImageNet weights of the family (``get_model_weights``),
  read from the torch hub cache and downloaded there (hash checked) when missing, unless ``CONV3T_OFFLINE=1``
  (then :class:`FileNotFoundError` says where to put the file);
* ``pretrained=PATH``: a 2D torchvision state dict file of the family (``weights_only=True`` or safetensors).

Any other torchvision classification model or timm model converts by name too: ``torchvision:<arch>_3t``
(``create_model("torchvision:resnet34_3d", 27)``, weights as above) and ``timm:<name>_3t`` (timm installed;
``pretrained=None`` or a 2D timm state dict file), so a config may name ``model: {name: timm:efficientnet_b0_3t}``.

The classifier layer (the last ``Linear``, or SqueezeNet's last ``Conv2d``) is freshly initialised when its
shape differs (another class count); any other key that is missing or does not fit is an error naming it.
``model.transfer_report`` says what was copied, inflated, set to identity and initialised.

``resnet18`` and ``googlenet`` are not here: ``resnet18_3t`` etc. are the paper's hand-written models, whose
stems stride in time and whose GoogLeNet auxiliary heads have 768 inputs (Table 1 counts), which a
same-length conversion does not reproduce. The registry builds skip the per-build equivalence check (each
family passes it in the test suite, ``tests/models/test_convert_families.py``); call
:func:`~conv3t.models.verify_conversion` on a ``convert(..., inflate="mean", temporal_padding="replicate")``
model to run it yourself.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn

from conv3t.models.conversion import ConversionReport, ConvertedModel, convert
from conv3t.models.registry import ModelSpec, register_model, register_resolver
from conv3t.models.transfer import OFFLINE_VARIABLES, TransferReport, load_2d_state_dict, offline

__all__ = ["CONVERTED_FAMILIES", "converted_imagenet_state_dict", "load_2d_weights", "torchvision_2d"]

CONVERTED_FAMILIES: tuple[str, ...] = (
    "resnet50", "resnext50_32x4d", "wide_resnet50_2", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "efficientnet_b0", "efficientnet_v2_s", "regnet_y_400mf", "densenet121", "vgg11_bn", "shufflenet_v2_x1_0",
    "squeezenet1_1", "mnasnet0_5", "convnext_tiny",
)  # fmt: skip
_KWARGS = ("time_kernel", "temporal_padding")


def _weights(arch: str):  # -> a torchvision WeightsEnum member
    from torchvision.models import get_model_weights

    return get_model_weights(arch).DEFAULT


def converted_imagenet_state_dict(arch: str) -> dict[str, Tensor]:
    """torchvision's default ImageNet weights of ``arch``, from the torch hub cache (downloaded when missing
    and allowed; hash checked). Offline and not cached: :class:`FileNotFoundError` naming the file and URL."""
    weights = _weights(arch)
    path = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)
    if not path.is_file():
        if offline():
            raise FileNotFoundError(
                f"pretrained='imagenet' needs torchvision's {arch} ImageNet weights ({weights}) in the torch hub "
                f"cache, but {path} does not exist and downloads are off ({' / '.join(OFFLINE_VARIABLES)} is "
                f"set). Download {weights.url} on a machine with network access and put it at {path} (TORCH_HOME "
                f"moves the cache), or pass pretrained=PATH with a 2D torchvision {arch} state dict file."
            )
        match = re.search(r"-([a-f0-9]{6,})\.", path.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(weights.url, str(path), hash_prefix=match.group(1) if match else None)
    return dict(weights.get_state_dict(progress=False, check_hash=False, weights_only=True, map_location="cpu"))


def torchvision_2d(arch: str, num_classes: int, **kwargs: object) -> nn.Module:
    """torchvision's 2D ``arch`` (random weights) on the current default device, the meta device included:
    RegNet computes its stage widths with tensors, which the meta device cannot read, so it is built on the CPU
    and moved."""
    import torchvision

    try:
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    except NotImplementedError:
        with torch.device("cpu"):
            model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
        return model.to(torch.get_default_device())


def _classifier(model: nn.Module) -> str:
    """Path of the classifier layer: the last ``Linear`` or ``Conv2d`` in registration order."""
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]


def load_2d_weights(model_2d: nn.Module, state: Mapping[str, Tensor], source: str) -> dict[str, str]:
    """Load ``state`` into a 2D torchvision model; classifier keys that do not fit keep their fresh init.

    Returns:
        ``{key: reason}`` of the freshly initialised keys.

    Raises:
        ValueError: a key outside the classifier is missing, unexpected or of another shape (names them).
    """
    own = model_2d.state_dict()
    head = _classifier(model_2d) + "."
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [k for k in own if k in state and state[k].shape != own[k].shape]
    bad = [k for k in missing + mismatched if not k.startswith(head)] + unexpected
    if bad:
        shown = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise ValueError(
            f"{source} does not fit torchvision's {type(model_2d).__name__}: {len(bad)} keys missing, unexpected "
            f"or of another shape outside the classifier ({shown})"
        )
    model_2d.load_state_dict({k: v for k, v in state.items() if k not in mismatched}, strict=False)
    reasons = {k: "not in the 2D state dict" for k in missing}
    reasons |= {k: f"2D shape {tuple(state[k].shape)}, model {tuple(own[k].shape)}" for k in mismatched}
    return reasons


def _transfer_report(report: ConversionReport, source: str, initialised: dict[str, str]) -> TransferReport:
    """The conversion report in the terms of :class:`~conv3t.models.transfer.TransferReport` (``create_model``'s
    ``model.transfer_report``)."""
    out = TransferReport(source=source, inflate=report.inflate, initialised=dict(initialised))
    for fate in report.parameters:
        if fate.key in initialised:
            continue
        grows = fate.how == "inflated" or (fate.how == "2d filter" and report.inflate == "mean")
        (out.inflated if grows else out.copied).append(fate.key)
    out.identity = list(report.new_parameters)
    return out


def _timm_2d(name: str, num_classes: int) -> nn.Module:
    try:
        import timm
    except ImportError as err:
        raise ImportError(f"the model 'timm:{name}' needs timm: pip install 'conv3t[timm]'") from err
    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def _builder(arch: str, kind: str, source_2d: str = "torchvision") -> Callable[..., ConvertedModel]:
    def build(
        num_classes: int,
        pretrained: str | os.PathLike[str] | None = None,
        inflate: str = "repeat",
        time_kernel: int = 3,
        temporal_padding: str = "zeros",
    ) -> ConvertedModel:
        model_2d = torchvision_2d(arch, num_classes) if source_2d == "torchvision" else _timm_2d(arch, num_classes)
        initialised: dict[str, str] = {}
        source = ""
        if pretrained is not None:
            imagenet = isinstance(pretrained, str) and pretrained == "imagenet"
            if imagenet and source_2d != "torchvision":
                raise ValueError(
                    f"{source_2d}:{arch}: pretrained='imagenet' is for torchvision models; pass a 2D "
                    f"state dict file (e.g. timm's weights saved with torch.save(model.state_dict()))"
                )
            source = f"imagenet:{arch}" if imagenet else str(pretrained)
            state = converted_imagenet_state_dict(arch) if imagenet else load_2d_state_dict(pretrained)
            initialised = load_2d_weights(model_2d, state, source)
        video = convert(
            model_2d, kind, inflate=inflate, time_kernel=time_kernel, temporal_padding=temporal_padding, check=False
        )
        video.transfer_report = (  # type: ignore[assignment]
            None if pretrained is None else _transfer_report(video.conversion_report, source, initialised)
        )
        return video

    build.__name__ = f"{arch}_{kind}"
    build.__doc__ = f"torchvision's {arch} converted to a {kind.upper()} video network (see conv3t.models.zoo)."
    return build


def _register() -> None:
    for arch in CONVERTED_FAMILIES:
        for kind in ("3t", "3d"):
            layer = "3TConv" if kind == "3t" else "3D"
            register_model(
                ModelSpec(
                    f"{arch}_{kind}",
                    _builder(arch, kind),
                    kind,
                    arch,
                    f"torchvision {arch}, converted ({layer})",
                    kwargs=_KWARGS,
                    builds_weights=True,
                )
            )


def _resolve(name: str) -> ModelSpec | None:
    """``torchvision:<arch>_3t`` / ``timm:<name>_3d`` -> a spec (registered on first use)."""
    prefix, _, rest = name.partition(":")
    if prefix not in ("torchvision", "timm") or not rest.endswith(("_3t", "_3d")):
        return None
    arch, kind = rest[:-3], rest[-2:]
    if prefix == "torchvision":
        import torchvision

        if arch not in torchvision.models.list_models(module=torchvision.models):
            raise ValueError(f"unknown model {name!r}: torchvision has no classification model {arch!r}")
    layer = "3TConv" if kind == "3t" else "3D"
    spec = ModelSpec(name, _builder(arch, kind, prefix), kind, arch, f"{prefix} {arch}, converted ({layer})",
                     kwargs=_KWARGS, builds_weights=True)  # fmt: skip
    return spec  # not added to list_models(): that lists the registered names only


_register()
register_resolver(_resolve)
