"""The Sendek 2017 logistic-regression model on the five structural features (sML).

    z = 0.184 LLB - 4.009 SBI - 0.467 AFC + 8.699 LASD - 2.170 LLSD - 6.564,   P(superionic) = 1 / (1 + e^-z)

A material is labelled superionic when P >= 0.5. :meth:`SendekModel.published` gives the published
coefficients; :meth:`SendekModel.fit` refits them (L2-regularised logistic regression on standardised
features, mapped back to raw-feature coefficients) and :func:`loocv_accuracy` scores a refit by
leave-one-out as the paper did (90 % on the 40 experimental materials).
"""

from __future__ import annotations

from typing import Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from lisearch.structure.featurizer import FEATURE_NAMES

PUBLISHED_COEF = (0.184, -4.009, -0.467, 8.699, -2.170)
PUBLISHED_INTERCEPT = -6.564


class SendekModel(ClassifierMixin, BaseEstimator):
    """Logistic model on (LLB, SBI, AFC, LASD, LLSD), a scikit-learn estimator (``get_params``, ``clone``).

    Parameters (keyword-only):
        C: inverse L2 regularisation strength used by :meth:`fit` (features standardised first).
    Attributes (after :meth:`fit` or :meth:`published`):
        coef_: ndarray (5,), per raw feature unit; intercept_: float; classes_: [0, 1].
    """

    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __init__(self, *, C: float = 1.0) -> None:
        self.C = C

    @classmethod
    def published(cls) -> SendekModel:
        """The logistic model with Sendek et al. 2017's published coefficients."""
        model = cls()
        model.coef_ = np.array(PUBLISHED_COEF)
        model.intercept_ = PUBLISHED_INTERCEPT
        model.classes_ = np.array([0, 1])
        return model

    def fit(self, X: np.ndarray, y: np.ndarray) -> Self:
        """Fit on features ``X`` (n, 5) and labels ``y`` (n,) in {0, 1}."""
        X = np.asarray(X, dtype=np.float64)
        scaler = StandardScaler().fit(X)
        clf = LogisticRegression(C=self.C, max_iter=10_000).fit(scaler.transform(X), np.asarray(y))
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        self.coef_ = clf.coef_[0] / scale
        self.intercept_ = float(clf.intercept_[0] - np.sum(clf.coef_[0] * scaler.mean_ / scale))
        self.classes_ = np.array([0, 1])
        return self

    def _check(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("SendekModel is not fitted: use SendekModel.published() or call fit(X, y) first.")

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """z for features ``X`` of shape (n, 5) -> (n,). NaN rows give NaN."""
        self._check()
        return np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_

    def p_superionic(self, X: np.ndarray) -> np.ndarray:
        """P(superionic), shape (n,) (NaN where a feature is NaN)."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(X)))

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities as scikit-learn returns them: shape (n, 2), columns P(not superionic), P(superionic)."""
        p = self.p_superionic(X)
        return np.column_stack([1.0 - p, p])

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Labels (n,) int8: 1 when P >= 0.5 (z >= 0); -1 where a feature is NaN."""
        z = self.decision_function(X)
        out = (z >= 0).astype(np.int8)
        out[np.isnan(z)] = -1
        return out


def loocv_accuracy(X: np.ndarray, y: np.ndarray, C: float = 1.0) -> float:
    """Leave-one-out accuracy of :meth:`SendekModel.fit` on (X, y)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y)
    hits = 0
    for i in range(len(y)):
        keep = np.arange(len(y)) != i
        model = SendekModel(C=C).fit(X[keep], y[keep])
        hits += int(model.predict(X[i : i + 1])[0] == y[i])
    return hits / len(y)
