"""Video networks built from 3TConv (or plain 3D) convolutions, and 2D -> video weight transfer.

Entry points: :func:`create_model` and :func:`list_models`; the classes and factory functions are exported for
direct use. See :mod:`conv3t.models.registry` for the registered names.
"""

from conv3t.models.authors import AuthorsImport, load_authors_checkpoint
from conv3t.models.googlenet import (
    GoogLeNet,
    GoogLeNetOutputs,
    googlenet_3d,
    googlenet_3t,
    minimum_clip_size,
)
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

__all__ = [
    "PAPER_PARAMETER_COUNTS",
    "AuthorsImport",
    "BasicBlock",
    "GoogLeNet",
    "GoogLeNetOutputs",
    "ModelSpec",
    "ResNet",
    "TransferReport",
    "architecture_kwargs",
    "count_parameters",
    "create_model",
    "googlenet_3d",
    "googlenet_3t",
    "imagenet_checkpoint_path",
    "imagenet_state_dict",
    "list_models",
    "load_2d_state_dict",
    "load_authors_checkpoint",
    "minimum_clip_size",
    "model_spec",
    "register_model",
    "resnet10_3d",
    "resnet10_3t",
    "resnet18_3d",
    "resnet18_3t",
    "transfer_2d_weights",
]
