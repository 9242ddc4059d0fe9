"""Metrics of trained models, saved beside the artifacts (``<artifacts>/metrics/``) so that ``lisearch report``
regenerates its tables and figures in seconds instead of recomputing searches and cross-validations.

A saved report carries the key it was computed under: the SHA-256 of every model file it used, the version of the
``structures`` table (Delta, read with delta-rs: no Spark), the settings that change its numbers and the lisearch
version. A report is reused only under the same key; anything else (a retrained model, relabelled structures, other
settings) recomputes it, as does ``--retrain``. Numbers are stored as JSON (numpy arrays as lists, then as arrays
again), tables as Parquet: the regenerated files equal the computed ones.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from deltalake import DeltaTable

from lisearch.version import __version__

#: Folder under the artifacts folder.
METRICS_DIR = "metrics"
_ARRAY = "__ndarray__"
_FRAME = "__frame__"


def file_digest(path: Path) -> str | None:
    """SHA-256 of a file's bytes, or None when it does not exist."""
    if not path.is_file():
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def table_version(table: Path) -> int | None:
    """The current version of the Delta table in ``table`` (delta-rs), None when there is none."""
    if not (table / "_delta_log").is_dir():
        return None
    return int(DeltaTable(str(table)).version())


def metrics_key(files: list[Path], **parts: Any) -> dict[str, Any]:
    """The key of a saved report: each file's digest by name, the ``parts`` given, the lisearch version."""
    return {"files": {p.name: file_digest(p) for p in files}, **parts, "lisearch": __version__}


def _encode(value: Any, frames: dict[str, pd.DataFrame], path: str) -> Any:
    if isinstance(value, pd.DataFrame):
        frames[path] = value
        return {_FRAME: path}
    if isinstance(value, np.ndarray):
        return {_ARRAY: value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, dict):
        return {k: _encode(v, frames, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v, frames, f"{path}.{i}") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any, folder: Path, stem: str) -> Any:
    if isinstance(value, dict):
        if _ARRAY in value:
            return np.array(value[_ARRAY], dtype=value["dtype"])
        if _FRAME in value:
            return pd.read_parquet(folder / f"{stem}{value[_FRAME]}.parquet")
        return {k: _decode(v, folder, stem) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, folder, stem) for v in value]
    return value


def save_metrics(folder: Path, name: str, key: dict[str, Any], report: dict[str, Any]) -> Path:
    """Save ``report`` as ``<folder>/<name>.json`` (+ a Parquet file per DataFrame in it) under ``key``; every file is
    written under a temporary name first and the JSON last, so a reader never takes a half-written report."""
    folder.mkdir(parents=True, exist_ok=True)
    frames: dict[str, pd.DataFrame] = {}
    body = {"key": key, "report": _encode(report, frames, "")}
    for suffix, frame in frames.items():
        partial = folder / f".{name}{suffix}.parquet.{os.getpid()}"
        frame.to_parquet(partial, index=False)
        partial.replace(folder / f"{name}{suffix}.parquet")
    target = folder / f"{name}.json"
    partial = folder / f".{name}.json.{os.getpid()}"
    partial.write_text(json.dumps(body, allow_nan=True))
    partial.replace(target)
    return target


def load_metrics(folder: Path, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The report saved as ``<folder>/<name>.json`` when it was computed under ``key``; None otherwise (missing,
    another key, unreadable)."""
    try:
        body = json.loads((folder / f"{name}.json").read_text())
        if body.get("key") != json.loads(json.dumps(key)):
            return None
        report = _decode(body["report"], folder, name)
    except (OSError, ValueError, KeyError):
        return None
    return report if isinstance(report, dict) else None


__all__ = ["METRICS_DIR", "file_digest", "load_metrics", "metrics_key", "save_metrics", "table_version"]
