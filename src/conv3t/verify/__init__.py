"""Checks that a Conv3T's temporal parameters mean what the explanations say they mean.

* :mod:`conv3t.verify.identifiability` -- can a layer's parameters be recovered from its outputs?
"""

from conv3t.verify.identifiability import (
    PARAMETER_NAMES,
    RecoveryResult,
    kernel_jacobian,
    kernel_jacobian_singular_values,
    parameter_sensitivity,
    radial_filters,
    random_temporal_parameters,
    recover_temporal_parameters,
    smooth_filters,
)

__all__ = [
    "PARAMETER_NAMES",
    "RecoveryResult",
    "kernel_jacobian",
    "kernel_jacobian_singular_values",
    "parameter_sensitivity",
    "radial_filters",
    "random_temporal_parameters",
    "recover_temporal_parameters",
    "smooth_filters",
]
