"""conv3t: explainable video networks with temporally factorized 3D convolutions (3TConv).

The layer lives in :mod:`conv3t.nn`, the networks in :mod:`conv3t.models`.
"""

from conv3t.fold import fold
from conv3t.nn import Conv3T

__all__ = ["Conv3T", "__version__", "fold"]
__version__ = "0.1.0"
