"""Model-level statistics of the temporal parameters: Tables 2 and 4 of the paper.

Public API::

    summary_statistics(models: Mapping[str, nn.Module | pandas.DataFrame], ddof: int = 0) -> pandas.DataFrame
    format_statistics(stats: pandas.DataFrame, scale: float = 1e-3, digits: int = 2) -> pandas.DataFrame
    statistics_markdown(stats: pandas.DataFrame, scale: float = 1e-3, digits: int = 2) -> str
    statistics_latex(stats: pandas.DataFrame, scale: float = 1e-3, digits: int = 2) -> str
    STATISTIC_PARAMETERS: tuple[str, ...] = ("s", "r", "t_x", "t_y")

Per model, the mean and standard deviation over all Conv3T output channels and steps of ``|s - 1|``, ``|r|``
(radians), ``|t_x|`` and ``|t_y|`` (``affine_grid`` units), i.e. raw units, as the paper tabulates them
(displayed x 10^-3). The paper labels the translation rows ``p_x``, ``p_y``; its values are of the size of the
raw ``|t|`` and we report those. ``ddof=0`` is the population standard deviation, as ``numpy.std``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from torch import nn

from conv3t.readout.parameters import temporal_parameters

__all__ = [
    "STATISTIC_PARAMETERS",
    "format_statistics",
    "statistics_latex",
    "statistics_markdown",
    "summary_statistics",
]

STATISTIC_PARAMETERS: tuple[str, ...] = ("s", "r", "t_x", "t_y")
_LABELS = {"s": "|s − 1|", "r": "|r|", "t_x": "|t_x|", "t_y": "|t_y|"}
_LATEX_LABELS = {"s": r"$|s-1|$", "r": r"$|r|$", "t_x": r"$|t_x|$", "t_y": r"$|t_y|$"}


def _deviations(table: pd.DataFrame) -> dict[str, np.ndarray]:
    missing = {"scale", "rotation", "translation_x", "translation_y"} - set(table.columns)
    if missing:
        raise ValueError(f"parameter table lacks columns {sorted(missing)}; pass a model or temporal_parameters()")
    return {
        "s": np.abs(table["scale"].to_numpy(np.float64) - 1.0),
        "r": np.abs(table["rotation"].to_numpy(np.float64)),
        "t_x": np.abs(table["translation_x"].to_numpy(np.float64)),
        "t_y": np.abs(table["translation_y"].to_numpy(np.float64)),
    }


def summary_statistics(models: Mapping[str, nn.Module | pd.DataFrame], ddof: int = 0) -> pd.DataFrame:
    """Mean and standard deviation of the absolute deviations from identity, per model.

    Args:
        models: ``{name: model}``; a value may also be a :func:`temporal_parameters` table (saves the pass).
        ddof: delta degrees of freedom of the standard deviation (0 = ``numpy.std`` default).

    Returns:
        Long table, one row per model and parameter, in the order given: columns ``model``, ``parameter``
        (one of ``"s", "r", "t_x", "t_y"``), ``mean``, ``std`` (raw units: 1, radians, affine_grid units),
        ``count`` (channels x steps). A model without Conv3T steps gets NaN mean/std and count 0.
    """
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping {name: model or temporal_parameters table}")
    rows = []
    for name, model in models.items():
        if isinstance(model, pd.DataFrame):
            table = model
        elif isinstance(model, nn.Module):
            table = temporal_parameters(model, input_size=None)
        else:
            raise TypeError(f"models[{name!r}] must be an nn.Module or a DataFrame, got {type(model).__name__}")
        for parameter, values in _deviations(table).items():
            count = int(values.size)
            mean = float(values.mean()) if count else float("nan")
            std = float(values.std(ddof=ddof)) if count > ddof else float("nan")
            rows.append({"model": str(name), "parameter": parameter, "mean": mean, "std": std, "count": count})
    return pd.DataFrame(rows, columns=["model", "parameter", "mean", "std", "count"])


def _number(value: float, digits: int) -> str:
    return "–" if not np.isfinite(value) else f"{value:.{digits}f}"


def format_statistics(stats: pd.DataFrame, scale: float = 1e-3, digits: int = 2) -> pd.DataFrame:
    """The paper's layout: one row per parameter, one column per model, cells ``"μ / σ"`` in units of ``scale``.

    Args:
        stats: output of :func:`summary_statistics`.
        scale: display unit; the default shows values x 10^-3 as Tables 2 and 4 (0.028 -> ``"28.00"``).
        digits: decimals.

    Returns:
        DataFrame of strings, index = parameter labels (``|s − 1|``, ...), columns = model names.
    """
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    models = list(dict.fromkeys(stats["model"]))
    cells = {
        model: [
            f"{_number(row['mean'] / scale, digits)} / {_number(row['std'] / scale, digits)}"
            for _, row in stats[stats["model"] == model]
            .set_index("parameter")
            .loc[list(STATISTIC_PARAMETERS)]
            .iterrows()
        ]
        for model in models
    }
    index = pd.Index([_LABELS[p] for p in STATISTIC_PARAMETERS], name="parameter")
    return pd.DataFrame(cells, index=index)


def _unit_caption(scale: float) -> str:
    exponent = np.log10(scale)
    if np.isclose(exponent, round(exponent)) and round(exponent) != 0:
        return f"×10^{round(exponent)}"
    return f"×{scale:g}" if scale != 1 else ""


def statistics_markdown(stats: pd.DataFrame, scale: float = 1e-3, digits: int = 2) -> str:
    """GitHub Markdown table of :func:`format_statistics`, headed ``parameter (μ / σ ×10^-3)``.

    Pipes inside labels and model names are escaped (``\\|``) so the table keeps its columns.
    """
    table = format_statistics(stats, scale, digits)
    table.index = pd.Index([label.replace("|", "\\|") for label in table.index])
    table.columns = [str(c).replace("|", "\\|") for c in table.columns]
    table.index.name = f"parameter (μ / σ {_unit_caption(scale)})".replace(" )", ")")
    return table.to_markdown()


_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"} | {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}"}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def statistics_latex(stats: pd.DataFrame, scale: float = 1e-3, digits: int = 2) -> str:
    """LaTeX ``tabular`` (booktabs rules) of :func:`format_statistics`, math-mode parameter labels.

    Written by hand (no jinja2 needed); model names are escaped for LaTeX.
    """
    table = format_statistics(stats, scale, digits)
    exponent = np.log10(scale)
    exact = bool(np.isclose(exponent, round(exponent)))
    unit = (
        f" ($\\times 10^{{{round(exponent)}}}$)" if exact and scale != 1 else ("" if scale == 1 else f" (x{scale:g})")
    )
    lines = [
        f"% means / standard deviations{unit}",
        "\\begin{tabular}{l" + "c" * len(table.columns) + "}",
        "\\toprule",
        " & ".join(["parameter", *(_latex_escape(str(c)) for c in table.columns)]) + r" \\",
        "\\midrule",
    ]
    for parameter, (_, row) in zip(STATISTIC_PARAMETERS, table.iterrows()):
        lines.append(" & ".join([_LATEX_LABELS[parameter], *row.tolist()]) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)
