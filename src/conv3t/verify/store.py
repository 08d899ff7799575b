"""A verification stored beside the report that measured it, reused when nothing that changes it has changed.

The store is one JSON file (:data:`STORE_NAME`): a key, the column types and the
:class:`~conv3t.verify.network.VerificationResult`. The key (:func:`verification_key`) is a SHA-256 of the
model's weights (every tensor of its ``state_dict``, by name), the clip and normalisation the stimuli are made
for, and every :class:`~conv3t.verify.network.VerifyConfig` field that changes a reading (not the batch size,
which changes the numbers only by float rounding). Another model or other settings give another key, and the
stored result is not used. Loading is plain JSON (never pickle); a file that cannot be read back is reported
as damaged and the caller measures again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from conv3t.files import atomic_write
from conv3t.runtime import hash_weights
from conv3t.verify.network import VerificationResult, VerifyConfig, json_records
from conv3t.verify.report import _json_default

__all__ = [
    "STORE_NAME",
    "STORE_VERSION",
    "frame_from_json",
    "frame_to_json",
    "load_verification",
    "save_verification",
    "verification_key",
]

STORE_NAME = "verification.store.json"
#: Bumped when the measurement changes, so a store written by an older conv3t is measured again. 2: image-mode
#: stimuli of a non-square model are clips of its own (H, W), no longer a square of the longer side. 3: layer mode
#: computes its energies in closed form by default (``VerifyConfig.layer_energies``, part of the key) and its
#: sampled textures have independent channels. 4: image mode measures its views in rounds until the readings are
#: decided (``VerifyConfig.sequential``) and records each reading's sampling error and ``undecided`` flag.
STORE_VERSION = 4
#: Settings that do not change the result (how it runs, not what it measures).
_RUN_ONLY = ("batch_size",)


def verification_key(
    model: nn.Module,
    *,
    num_frames: int,
    size: int | Sequence[int],
    mean: Sequence[float],
    std: Sequence[float],
    config: VerifyConfig,
    in_channels: int = 3,
) -> str:
    """Hex SHA-256 of the weights and the settings that change the verification (see the module notes)."""
    digest = hashlib.sha256()
    hash_weights(model, digest)
    settings = {k: v for k, v in asdict(config).items() if k not in _RUN_ONLY}
    settings.update(
        version=STORE_VERSION,
        num_frames=int(num_frames),
        size=[int(size)] if isinstance(size, int) else [int(s) for s in size],
        mean=[float(v) for v in mean],
        std=[float(v) for v in std],
        in_channels=int(in_channels),
    )
    digest.update(json.dumps(settings, sort_keys=True, default=_json_default).encode())
    return digest.hexdigest()


def frame_to_json(df: pd.DataFrame) -> dict[str, Any]:
    """``{"dtypes": {column: dtype}, "records": [...]}``: a table as plain JSON that :func:`frame_from_json`
    reads back with its column types (NaN / infinity as null)."""
    return {"dtypes": {c: str(t) for c, t in df.dtypes.items()}, "records": json_records(df)}


def frame_from_json(data: dict[str, Any]) -> pd.DataFrame:
    """The table :func:`frame_to_json` wrote (raises KeyError / ValueError / TypeError on other data)."""
    return _frame(data["records"], data["dtypes"])


def save_verification(folder: str | os.PathLike[str], key: str, result: VerificationResult) -> Path:
    """Write ``folder/STORE_NAME`` (atomically); returns its path."""
    frames = {"channels": result.channels, "summary": result.summary}
    payload = {
        "key": key,
        "version": STORE_VERSION,
        "dtypes": {name: {c: str(t) for c, t in df.dtypes.items()} for name, df in frames.items()},
        "result": result.to_json(),
    }
    path = Path(folder) / STORE_NAME
    atomic_write(path, (json.dumps(payload, default=_json_default) + "\n").encode())
    return path


def _frame(records: list[dict[str, Any]], dtypes: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(records, columns=list(dtypes))
    for column, dtype in dtypes.items():
        df[column] = df[column].astype(dtype)  # JSON null -> NaN in float columns
    return df


def load_verification(folder: str | os.PathLike[str], key: str) -> tuple[VerificationResult | None, str]:
    """``(result, "")`` when ``folder/STORE_NAME`` holds the verification for ``key``; otherwise
    ``(None, why)``: ``"missing"``, ``"other"`` (another model or other settings) or ``"damaged: ..."``."""
    path = Path(folder) / STORE_NAME
    if not path.is_file():
        return None, "missing"
    try:
        payload = json.loads(path.read_text())
        if payload.get("version") != STORE_VERSION or payload.get("key") != key:
            return None, "other"
        data, dtypes = payload["result"], payload["dtypes"]
        result = VerificationResult(
            channels=_frame(data["channels"], dtypes["channels"]),
            summary=_frame(data["summary"], dtypes["summary"]),
            config=dict(data["config"]),
            seconds=float(data["seconds"]),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        return None, f"damaged: {type(err).__name__}: {err}"
    return result, ""
