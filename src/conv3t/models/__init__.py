"""Video networks built from 3TConv (or plain 3D) convolutions, and 2D -> video weight transfer.

Entry points: :func:`create_model` and :func:`list_models`; the classes and factory functions are exported for
direct use. See :mod:`conv3t.models.registry` for the registered names. :func:`convert` turns any 2D CNN
classifier into a 3T or 3D video network and :func:`verify_conversion` checks it (:mod:`conv3t.models.conversion`);
:mod:`conv3t.models.zoo` registers converted torchvision families (``resnet50_3t``, ``mobilenet_v3_small_3d``, ...).
"""

from conv3t.models.authors import AuthorsImport, load_authors_checkpoint
from conv3t.models.conversion import ConversionError, ConversionReport, ConvertedModel, convert, verify_conversion
from conv3t.models.googlenet import (
    GoogLeNet,
    GoogLeNetOutputs,
    googlenet_3d,
    googlenet_3t,
    minimum_clip_size,
)
from conv3t.models.outputs import logits
from conv3t.models.registry import (
    PAPER_PARAMETER_COUNTS,
    ModelSpec,
    architecture_kwargs,
    count_parameters,
    create_model,
    list_models,
    model_spec,
    register_model,
)
from conv3t.models.resnet import BasicBlock, ResNet, resnet10_3d, resnet10_3t, resnet18_3d, resnet18_3t
from conv3t.models.transfer import (
    TransferReport,
    imagenet_checkpoint_path,
    imagenet_state_dict,
    load_2d_state_dict,
    transfer_2d_weights,
)
from conv3t.models.zoo import CONVERTED_FAMILIES

__all__ = [
    "CONVERTED_FAMILIES",
    "PAPER_PARAMETER_COUNTS",
    "AuthorsImport",
    "BasicBlock",
    "ConversionError",
    "ConversionReport",
    "ConvertedModel",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "ModelSpec",
    "ResNet",
    "TransferReport",
    "architecture_kwargs",
    "convert",
    "count_parameters",
    "create_model",
    "googlenet_3d",
    "googlenet_3t",
    "imagenet_checkpoint_path",
    "imagenet_state_dict",
    "list_models",
    "load_2d_state_dict",
    "load_authors_checkpoint",
    "logits",
    "minimum_clip_size",
    "model_spec",
    "register_model",
    "resnet10_3d",
    "resnet10_3t",
    "resnet18_3d",
    "resnet18_3t",
    "transfer_2d_weights",
    "verify_conversion",
]
