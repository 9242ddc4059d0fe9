"""The measured models on rows of `candidates`: what ``lisearch score-measured`` and the shortlist run on each Arrow
batch (pandas, no Spark)."""

from __future__ import annotations

from typing import Any

from lisearch.measured.models import MeasuredModel
from lisearch.schema import MEASURED_COLUMNS, candidate_fractions, numpy_type


def score_candidates(batch: Any, classifier: MeasuredModel, regressor: MeasuredModel) -> Any:
    """The rows of a `candidates` batch (pandas) with :data:`lisearch.schema.MEASURED_COLUMNS` added: the classifier's
    probability of sigma >= its threshold and label, the regressor's log10 sigma (S/cm), the distance to the nearest
    measured training composition and whether it is inside the applicability domain. Features are computed once
    for both models (they must share them: :func:`lisearch.measured.models.check_pair`)."""
    X = classifier.features(candidate_fractions(batch))
    p = classifier.ensemble_.predict(X)
    distance = classifier.domain_.distance(X)
    values = {
        "measured_p_fast": p, "measured_label": p >= 0.5, "measured_log10_sigma": regressor.ensemble_.predict(X),
        "measured_ad_distance": distance, "measured_in_domain": distance <= classifier.domain_.cutoff_,
    }  # fmt: skip
    out = batch.copy()
    for column, kind in MEASURED_COLUMNS.items():
        out[column] = values[column].astype(numpy_type(kind))
    return out
