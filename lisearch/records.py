"""Job records: every job writes what it did and the settings it resolved, the same way (no Spark).

A record is ``<home>/runs/<UTC time>-<job>-<run id>.json`` holding the job name, its run id, the summary it returned
(tables as row counts, not rows) and :meth:`lisearch.config.Settings.to_dict` in full, so any result can be traced to
the exact settings that made it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from lisearch.config import Settings


def _plain(value: Any) -> Any:
    if isinstance(value, pd.DataFrame):
        return {"rows": len(value), "columns": list(value.columns)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record_job(settings: Settings, job: str, run_id: str, summary: Mapping[str, Any]) -> Path:
    """Write the record of one job run (see the module docstring); returns its path."""
    folder = settings.paths.home / "runs"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}-{job}-{run_id}.json"
    body = {"job": job, "run_id": run_id, "recorded_at": stamp, "summary": _plain(summary),
            "settings": settings.to_dict()}  # fmt: skip
    path.write_text(json.dumps(body, indent=2, default=str))
    return path


__all__ = ["record_job"]
