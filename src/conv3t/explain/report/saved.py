"""The report's analysis saved beside the page: ``analysis.json``, keyed, plain JSON, read back typed.

:func:`save_analysis` writes everything :class:`~conv3t.explain.report.analysis.ReportAnalysis` computed except
the model and the clip tensors: the parameter table, the readings and verdicts, the ranking, the layers and
channels shown, each clip's prediction, attribution and faithfulness checks, and the verification's summary and
settings (its per-channel table is in :data:`conv3t.verify.store.STORE_NAME`, which is reused). Tables keep their
column types (:func:`conv3t.verify.store.frame_to_json`). :func:`load_analysis` reads it back as a
:class:`SavedAnalysis` for a script that wants the numbers without rendering or recomputing anything.

The key (:func:`analysis_key`) is a SHA-256 of the weights, of every report option that changes what is computed
(not ``device`` / ``max_memory``, which only decide where and in how many pieces), of the layers and channels shown,
and of the clips' names and pixels. A saved analysis whose key differs from the one a caller expects is another
model's or another setting's (:func:`load_analysis` with ``key=``). Loading never unpickles and never reads a file
named by the JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from conv3t.explain.report.analysis import ChosenChannel, ReportAnalysis
from conv3t.explain.report.options import ANALYSED, ReportOptions
from conv3t.files import atomic_write
from conv3t.runtime import hash_weights
from conv3t.verify.store import frame_from_json, frame_to_json

__all__ = [
    "ANALYSIS_NAME",
    "ANALYSIS_VERSION",
    "SavedAnalysis",
    "analysis_key",
    "load_analysis",
    "prediction_records",
    "save_analysis",
]

ANALYSIS_NAME = "analysis.json"
#: Bumped when the saved form changes.
ANALYSIS_VERSION = 1


@dataclass(frozen=True)
class SavedAnalysis:
    """What ``analysis.json`` holds (see the module notes).

    Attributes:
        key: :func:`analysis_key` of the analysis; ``model``: its ``model.json`` content; ``options``: the report
            options that change it; ``device``: where it was computed; ``notes``: how (reuse, batch sizes).
        table, readings, verdicts, ranking: the analysis's tables (None when not computed).
        verification: ``{"config", "seconds", "summary"}`` of the verification (None: not measured).
        layers, channels: the layers explained and the channels shown.
        clips: ``{"name", "label", "prediction", "probability"}`` per clip; ``clip_source``: where they came from.
        predictions: each clip's ``predictions.json`` record (docs/conventions.md), with ``faithfulness`` when the
            checks ran; None when the predictions were not explained.
    """

    key: str
    model: dict[str, Any]
    options: dict[str, Any]
    device: str
    notes: tuple[str, ...]
    table: pd.DataFrame | None
    readings: pd.DataFrame | None
    verdicts: pd.DataFrame | None
    ranking: pd.DataFrame | None
    verification: dict[str, Any] | None
    layers: tuple[str, ...]
    channels: tuple[ChosenChannel, ...]
    clips: tuple[dict[str, Any], ...]
    clip_source: str
    predictions: tuple[dict[str, Any], ...] | None


def _settings(options: ReportOptions) -> dict[str, Any]:
    """The options that change what the analysis holds (:data:`~conv3t.explain.report.options.ANALYSED`)."""
    return {name: getattr(options, name) for name in ANALYSED}


def analysis_key(analysis: ReportAnalysis) -> str:
    """Hex SHA-256 of the weights, the options that change the analysis, the layers and channels shown and the
    clips (names and pixels)."""
    digest = hashlib.sha256()
    hash_weights(analysis.model, digest)
    shown = [[c.layer, c.channel] for c in analysis.channels]
    settings = {"version": ANALYSIS_VERSION, "options": _settings(analysis.options), "layers": list(analysis.layers)}
    settings.update(channels=shown, clips=[c.name for c in analysis.clips])
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for clip in analysis.clips:
        digest.update(clip.clip.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()


def prediction_records(analysis: ReportAnalysis) -> list[dict[str, Any]] | None:
    """Each clip's ``predictions.json`` record (docs/conventions.md), with its ``faithfulness`` object when the
    checks ran; None when the predictions were not explained. ``predictions.json`` and ``analysis.json`` both
    hold these records."""
    if analysis.predictions is None:
        return None
    entries = [record.to_json() for record in analysis.predictions]
    for entry, check in zip(entries, analysis.faithfulness or ()):
        entry["faithfulness"] = check.to_json()
    return entries


def _table(df: pd.DataFrame | None) -> dict[str, Any] | None:
    return None if df is None else frame_to_json(df)


def save_analysis(analysis: ReportAnalysis, folder: str | os.PathLike[str]) -> Path:
    """Write ``folder/ANALYSIS_NAME`` atomically; returns its path."""
    verification = analysis.verification
    clips = [
        {"name": c.name, "label": c.label, "prediction": c.prediction, "probability": c.probability}
        for c in analysis.clips
    ]
    payload = {
        "version": ANALYSIS_VERSION,
        "key": analysis_key(analysis),
        "model": analysis.info.to_json(),
        "options": _settings(analysis.options),
        "device": str(analysis.device),
        "notes": list(analysis.notes),
        "table": _table(analysis.table),
        "readings": _table(analysis.readings),
        "verdicts": _table(analysis.verdicts),
        "ranking": _table(analysis.ranking),
        "verification": None
        if verification is None
        else {
            "config": verification.config,
            "seconds": verification.seconds,
            "summary": frame_to_json(verification.summary),
        },
        "layers": list(analysis.layers),
        "channels": [asdict(c) for c in analysis.channels],
        "clips": clips,
        "clip_source": analysis.clip_source,
        "predictions": prediction_records(analysis),
    }
    path = Path(folder) / ANALYSIS_NAME
    atomic_write(path, json.dumps(payload, default=_plain) + "\n")
    return path


def _plain(obj: object) -> object:
    """numpy scalars and tuples inside the payload (rows of :func:`json_records` keep numpy types)."""
    if hasattr(obj, "item"):
        return obj.item()  # type: ignore[no-any-return, attr-defined]
    if isinstance(obj, tuple | set):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def load_analysis(folder: str | os.PathLike[str], key: str | None = None) -> SavedAnalysis:
    """Read ``folder/ANALYSIS_NAME``.

    Args:
        folder: a report folder.
        key: when given, the :func:`analysis_key` the caller expects.

    Raises:
        FileNotFoundError: there is no saved analysis.
        ValueError naming the file: it is damaged, written by another version, or (with ``key``) another model's
            or another setting's analysis.
    """
    path = Path(folder) / ANALYSIS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved analysis (written by conv3t explain)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != ANALYSIS_VERSION:
            raise ValueError(f"version {data.get('version')!r}, this conv3t reads version {ANALYSIS_VERSION}")
        saved = _parse(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: damaged saved analysis: {type(err).__name__}: {err}") from err
    if key is not None and saved.key != key:
        raise ValueError(f"{path}: the saved analysis is of another model or other settings (key {saved.key[:12]}…)")
    return saved


def _parse(data: dict[str, Any]) -> SavedAnalysis:
    def table(name: str) -> pd.DataFrame | None:
        return None if data[name] is None else frame_from_json(data[name])

    verification = data["verification"]
    if verification is not None:
        verification = {**verification, "summary": frame_from_json(verification["summary"])}
    predictions = data["predictions"]
    return SavedAnalysis(
        key=str(data["key"]),
        model=dict(data["model"]),
        options=dict(data["options"]),
        device=str(data["device"]),
        notes=tuple(str(n) for n in data["notes"]),
        table=table("table"),
        readings=table("readings"),
        verdicts=table("verdicts"),
        ranking=table("ranking"),
        verification=verification,
        layers=tuple(str(n) for n in data["layers"]),
        channels=tuple(_channel(c) for c in data["channels"]),
        clips=tuple(dict(c) for c in data["clips"]),
        clip_source=str(data["clip_source"]),
        predictions=None if predictions is None else tuple(dict(p) for p in predictions),
    )


def _channel(c: dict[str, Any]) -> ChosenChannel:
    readings = tuple((str(label), str(text)) for label, text in c["readings"])
    return ChosenChannel(str(c["layer"]), int(c["channel"]), c["score"], c["sentence"], readings)
