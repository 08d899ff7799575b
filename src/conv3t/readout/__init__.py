"""Reading a model's temporal parameters: the per-channel table with its units, the layers' strides and the
model-level statistics (Tables 2 and 4 of the paper).

It sits below both :mod:`conv3t.verify` (which measures whether the readings hold) and :mod:`conv3t.explain`
(which shows them), and imports only :mod:`conv3t.nn`.

* :mod:`conv3t.readout.parameters` -- :func:`temporal_parameters`, one row per layer x channel x step;
* :mod:`conv3t.readout.geometry` -- :func:`layer_geometry`, input sizes and cumulative strides per layer;
* :mod:`conv3t.readout.stats` -- :func:`summary_statistics` and its Markdown / LaTeX forms.
"""

from conv3t.readout.geometry import GEOMETRY_COLUMNS, layer_geometry, slices_meeting_frames
from conv3t.readout.parameters import (
    DERIVED_COLUMNS,
    PARAMETER_COLUMNS,
    canonical_scale_rotation,
    temporal_parameters,
)
from conv3t.readout.stats import (
    STATISTIC_PARAMETERS,
    format_statistics,
    statistics_latex,
    statistics_markdown,
    summary_statistics,
)

__all__ = [
    "DERIVED_COLUMNS",
    "GEOMETRY_COLUMNS",
    "PARAMETER_COLUMNS",
    "STATISTIC_PARAMETERS",
    "canonical_scale_rotation",
    "format_statistics",
    "layer_geometry",
    "slices_meeting_frames",
    "statistics_latex",
    "statistics_markdown",
    "summary_statistics",
    "temporal_parameters",
]
