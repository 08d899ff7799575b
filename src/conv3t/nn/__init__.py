"""The 3TConv layer. Imports nothing else of the package."""

from conv3t.nn import functional
from conv3t.nn.conv3t import Conv3T

__all__ = ["Conv3T", "functional"]
