"""Any 2D CNN becomes a 3T or 3D video network: :func:`convert`, :func:`verify_conversion`.

Modules, one concept each: :mod:`.layers` (module replacement and weight transfer), :mod:`.trace` (torch.fx
tracing in train and eval mode, 2D shapes), :mod:`.rewrite` and :mod:`.rules` (functional operations rewritten
for clips), :mod:`.ops` (the per-frame functional forms the rewritten graphs call), :mod:`.report` (the
conversion report), :mod:`.verify` (the constant-clip equivalence check), :mod:`.model` (the returned module).
"""

from conv3t.models.conversion.convert import INFLATE_MODES, convert
from conv3t.models.conversion.layers import Frames, TimePaddedConv3d, TimePaddedConv3T
from conv3t.models.conversion.model import ConvertedModel
from conv3t.models.conversion.report import ConversionError, ConversionReport, ModuleChange, OpRewrite, ParameterFate
from conv3t.models.conversion.verify import Equivalence, EquivalenceError, verify_conversion

__all__ = [
    "INFLATE_MODES",
    "ConversionError",
    "ConversionReport",
    "ConvertedModel",
    "Equivalence",
    "EquivalenceError",
    "Frames",
    "ModuleChange",
    "OpRewrite",
    "ParameterFate",
    "TimePaddedConv3T",
    "TimePaddedConv3d",
    "convert",
    "verify_conversion",
]
