"""The 3TConv layer. Imports nothing else of the package."""

from conv3t.nn import functional
from conv3t.nn.batched import batch_kernel_generation, shares_kernel_generation
from conv3t.nn.conv3t import TEMPORAL_PARAMETER_NAMES, Conv3T
from conv3t.nn.utils import conv3t_layers, randomize_temporal_parameters

__all__ = [
    "TEMPORAL_PARAMETER_NAMES",
    "Conv3T",
    "batch_kernel_generation",
    "conv3t_layers",
    "functional",
    "randomize_temporal_parameters",
    "shares_kernel_generation",
]
