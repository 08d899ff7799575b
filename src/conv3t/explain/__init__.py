"""Explaining 3TConv networks: temporal parameters, statistics, plots, filters, sentences, rankings.

Reads models (``conv3t.models``) and exported weights; never imports the trainer.
"""

from conv3t.explain.parameters import (
    DERIVED_COLUMNS,
    PARAMETER_COLUMNS,
    conv3t_layers,
    layer_geometry,
    temporal_parameters,
)

__all__ = [
    "DERIVED_COLUMNS",
    "PARAMETER_COLUMNS",
    "conv3t_layers",
    "layer_geometry",
    "temporal_parameters",
]
