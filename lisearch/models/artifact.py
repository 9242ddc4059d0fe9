"""Model artifacts: versioned JSON with an integrity hash. Never pickle: a model file is input.

Layout::

    {"format": "lisearch-model", "format_version": 1, "kind": "...", "created": "...",
     "library_versions": {...}, "payload": {...}, "sha256": "<hash of the canonical JSON of everything else>"}

:func:`load_artifact` refuses anything that is not exactly that: not JSON (truncated), another format or version,
a hash that does not match (edited or corrupted), or a payload that fails the kind's own validation.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from lisearch.errors import InputError

FORMAT = "lisearch-model"
FORMAT_VERSION = 1


def _canonical(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("lisearch", "numpy", "scikit-learn", "pymatgen", "jax"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def make_artifact(kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """An artifact dict of ``kind`` around ``payload``: format, versions and a sha256 over the rest."""
    body = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "library_versions": _versions(),
        "payload": payload,
    }
    body["sha256"] = hashlib.sha256(_canonical(body)).hexdigest()
    return body


def save_artifact(path: Path, kind: str, payload: dict[str, Any], compact: bool = False) -> dict[str, Any]:
    """Write atomically (temporary file + rename): a crash never leaves a half-written model. ``compact`` writes
    no indentation (tree ensembles: hundreds of thousands of numbers)."""
    artifact = make_artifact(kind, payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        if compact:
            json.dump(artifact, fh, separators=(",", ":"), allow_nan=False)
        else:
            json.dump(artifact, fh, indent=1, allow_nan=False)
    os.replace(tmp, path)
    return artifact


def check_artifact(artifact: Any, source: str, kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """``artifact`` when its format, kind and sha256 are right; InputError naming ``source`` and the fix otherwise."""
    if not isinstance(artifact, dict) or artifact.get("format") != FORMAT:
        raise InputError(f"{source} is not a lisearch model artifact. Train one with `lisearch train`.")
    if artifact.get("format_version") != FORMAT_VERSION:
        raise InputError(
            f"{source} is a model artifact of format version {artifact.get('format_version')!r}; this lisearch "
            f"reads version {FORMAT_VERSION}. Retrain it with `lisearch train`."
        )
    body = {k: v for k, v in artifact.items() if k != "sha256"}
    try:
        digest = hashlib.sha256(_canonical(body)).hexdigest()
    except (TypeError, ValueError):
        digest = ""
    if digest != artifact.get("sha256"):
        raise InputError(
            f"{source} fails its integrity check (sha256 mismatch): it was edited or corrupted after training. "
            "Retrain with `lisearch train` instead of editing a model file."
        )
    if kinds is not None and artifact.get("kind") not in kinds:
        raise InputError(f"{source} holds a {artifact.get('kind')!r} model; expected one of {', '.join(kinds)}.")
    if not isinstance(artifact.get("payload"), dict):
        raise InputError(f"{source} has no payload object.")
    return artifact


def load_artifact(path: Path | str, kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Read and validate a model artifact; raises :class:`InputError` naming the problem."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No model artifact at {path}. Train the models with `lisearch train`.")
    try:
        artifact = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path} is not valid JSON ({exc}): truncated or corrupted. Retrain with `lisearch train`."
        ) from None
    return check_artifact(artifact, str(path), kinds)
