"""A :class:`~conv3t.verify.network.VerificationResult` as data: a plain-text table and JSON / CSV files.

The HTML section, the standalone page and the scatter plots are rendered by
:mod:`conv3t.explain.report.sections.verification` (verify returns data; explain renders it).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from conv3t.files import atomic_write
from conv3t.verify.network import VerificationResult
from conv3t.verify.readings import wilson_interval

__all__ = ["format_summary", "write_outputs"]


def format_summary(result: VerificationResult) -> str:
    """The summary as a plain-text table (what ``conv3t verify`` prints), with the 95 % Wilson interval of each
    agreement rate."""
    df = result.summary.copy()
    df["agreement"] = [("-" if not math.isfinite(v) else f"{v:.0%}") for v in df["agreement"]]
    intervals = [wilson_interval(int(a), int(n)) for a, n in zip(df["agree"], df["counted"], strict=True)]
    df.insert(
        df.columns.get_loc("agreement") + 1,
        "95% CI",
        [f"{lo:.0%}-{hi:.0%}" if n > 0 else "-" for (lo, hi), n in zip(intervals, df["counted"], strict=True)],
    )
    df["chance"] = [f"{v:.0%}" for v in df["chance"]]
    for col in ("median_angle_error_deg", "speed_spearman"):
        df[col] = ["-" if not math.isfinite(v) else f"{v:.2f}" for v in df[col]]
    df["dominant"] = [
        "-" if n < 0 else f"{a}/{n}" for a, n in zip(df.pop("dominant_agree"), df.pop("dominant_counted"), strict=True)
    ]
    df = df.rename(columns={"median_angle_error_deg": "median angle err", "speed_spearman": "speed rho"})
    return df.to_markdown(index=False, tablefmt="simple")


def write_outputs(result: VerificationResult, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``verification.json`` (config, summary, channels), ``verification_summary.csv`` and
    ``verification_channels.csv`` into ``out_dir`` (atomically); returns the paths by kind."""
    out = Path(out_dir)
    paths = {
        "json": out / "verification.json",
        "summary": out / "verification_summary.csv",
        "channels": out / "verification_channels.csv",
    }
    text = json.dumps(result.to_json(), indent=1, default=_json_default) + "\n"
    atomic_write(paths["json"], text.encode())
    atomic_write(paths["summary"], result.summary.to_csv(index=False).encode())
    atomic_write(paths["channels"], result.channels.to_csv(index=False).encode())
    return paths


def _json_default(obj: object) -> object:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple | set):
        return list(obj)
    return str(obj)
