"""Every data file of a report, written from its :class:`~conv3t.explain.report.analysis.ReportAnalysis` alone.

Which files exist follows from what the analysis holds, never from which sections are rendered:

* ``parameters.csv`` (the full :func:`~conv3t.readout.temporal_parameters` table; 3T models) and ``ranking.csv``
  (the channel ranking);
* ``statistics.md`` and ``statistics.tex``: Table 2 for this model (3T models with temporal layers);
* ``predictions.json``: ``{"predictions": [each clip's record, with its ``faithfulness`` object when the checks
  ran], "faithfulness_summary": the checks over the clips (None when they did not run)}``, the records of
  :func:`~conv3t.explain.report.saved.prediction_records`;
* ``verification_summary.csv``, ``verification_channels.csv`` and ``verification.json``
  (:func:`conv3t.verify.write_outputs`) and the store a later report reuses (:mod:`conv3t.verify.store`), when
  the model was measured;
* ``analysis.json``: the analysis itself, keyed (:mod:`conv3t.explain.report.saved`, which reads it back).
"""

from __future__ import annotations

import os
from pathlib import Path

from conv3t.explain.faithfulness import summarise
from conv3t.explain.report.analysis import ReportAnalysis
from conv3t.explain.report.saved import prediction_records, save_analysis
from conv3t.files import atomic_write, write_json
from conv3t.readout import statistics_latex, statistics_markdown, summary_statistics
from conv3t.verify import write_outputs
from conv3t.verify.store import save_verification

__all__ = ["write_artifacts"]


def write_artifacts(analysis: ReportAnalysis, folder: str | os.PathLike[str]) -> list[Path]:
    """Write every data file of ``analysis`` into ``folder`` (created), atomically; returns their paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = _tables(analysis, out)
    records = prediction_records(analysis) or []
    checks = list(analysis.faithfulness or ())
    summary = summarise(checks).to_json() if checks else None
    written.append(write_json({"predictions": records, "faithfulness_summary": summary}, out / "predictions.json"))
    if analysis.verification is not None:
        written += write_outputs(analysis.verification, out).values()
        if analysis.verification_key is not None:
            written.append(save_verification(out, analysis.verification_key, analysis.verification))
    written.append(save_analysis(analysis, out))
    return written


def _tables(analysis: ReportAnalysis, out: Path) -> list[Path]:
    """The ranking, the parameter table and Table 2 (Markdown and LaTeX)."""
    written = []
    if analysis.ranking is not None:
        written.append(atomic_write(out / "ranking.csv", analysis.ranking.to_csv(index=False).encode()))
    table = analysis.table
    if table is None:
        return written
    written.append(atomic_write(out / "parameters.csv", table.to_csv(index=False).encode()))
    if len(table):
        stats = summary_statistics({analysis.info.model: table})
        written.append(atomic_write(out / "statistics.md", statistics_markdown(stats).encode()))
        written.append(atomic_write(out / "statistics.tex", statistics_latex(stats).encode()))
    return written
