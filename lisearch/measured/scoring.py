"""The measured models on rows of `candidates`: what ``lisearch score-measured`` and the shortlist run on each Arrow
batch (pandas, no Spark)."""

from __future__ import annotations

from typing import Any

from lisearch.measured.models import MeasuredModel, measured_outputs
from lisearch.schema import MEASURED_COLUMNS, candidate_fractions, numpy_type


def score_candidates(batch: Any, classifier: MeasuredModel, regressor: MeasuredModel) -> Any:
    """The rows of a `candidates` batch (pandas) with :data:`lisearch.schema.MEASURED_COLUMNS` added: the classifier's
    calibrated probability of sigma >= its threshold and label, the regressor's log10 sigma (S/cm) with its
    conformal interval, the distance to the nearest
    measured training composition and whether it is inside the applicability domain. Features are computed once
    for both models (they must share them: :func:`lisearch.measured.models.check_pair`)."""
    values = measured_outputs(classifier, regressor, candidate_fractions(batch))
    out = batch.copy()
    for column, kind in MEASURED_COLUMNS.items():
        out[column] = values[column].astype(numpy_type(kind))
    return out
