"""Training the measured models on all of OBELiX (``lisearch train-measured``); ``lisearch validate`` refits them on
each training part instead (:mod:`lisearch.measured.validation`)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from lisearch.measured.models import KIND, MODEL_FILES, fit_pair, load_transfer
from lisearch.measured.obelix import measured_set
from lisearch.models.artifact import save_artifact


def train_measured(artifacts_dir: Path, params: dict[str, Any], group_min_fraction: float = 0.05) -> dict[str, Any]:
    """Fit the classifier and the regressor on all of OBELiX (with the transfer features; calibrated and with
    conformal intervals from out-of-group predictions over its chemical systems) and save them as
    ``measured_classifier.json`` and ``measured_regressor.json``; returns the training metadata.

    The shipped models use every measured row; ``lisearch validate`` refits on each training part instead.
    """
    data = measured_set(params["threshold"], group_min_fraction)
    transfer = load_transfer(artifacts_dir)
    models = fit_pair(data.fractions, data.log10_sigma, transfer, data.groups, **params)
    text = "\n".join(f"{i},{v:.6f}" for i, v in zip(data.ids, data.log10_sigma, strict=True))
    meta = {
        "data": "OBELiX (all rows; official split and CV folds are refitted by `lisearch validate`)",
        "n": len(data.y),
        "positives": int(data.y.sum()),
        "censored_rows": int(data.censored.sum()),
        "training_set_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "transfer_from": ["esml", "atom2vec"],
        "ad_cutoff": models["classifier"].domain_.cutoff_,
        "calibration": models["classifier"].calibration_.to_payload(),
        "label_cut": models["classifier"].cut_,
        "conformal": models["regressor"].conformal_.to_payload() if models["regressor"].conformal_ else None,
    }
    for task, model in models.items():
        save_artifact(artifacts_dir / MODEL_FILES[task], KIND, model.to_payload(meta), compact=True)
    return meta
