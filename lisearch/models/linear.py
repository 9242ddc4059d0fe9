"""Linear SVM on composition descriptors: eML (trained on exp40) and esML (trained on sML labels).

scikit-learn conventions: the constructor stores parameters, :meth:`ElementalLinearModel.fit` returns self and
sets ``coef_`` / ``intercept_`` / scaler state; inference is plain numpy, so one object serves a notebook, a test
and a Spark task. With the ``mean`` reduction only, the decision function is linear in the atomic fractions:
``z = bias + C @ element_weights`` (:meth:`ElementalLinearModel.element_weights`), which is what the screen uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from lisearch.chemistry.descriptors import check_choice, composition_features, feature_names
from lisearch.chemistry.elements import DESCRIPTORS, descriptor_table, descriptor_table_hash, symbols
from lisearch.errors import InputError
from lisearch.models.weights import class_weight_value

KIND = "elemental-linear-svm"


class ElementalLinearModel(ClassifierMixin, BaseEstimator):
    """Standardised composition descriptors -> linear SVM; a scikit-learn estimator (``get_params``, ``clone``,
    ``score``; fitted state ends in ``_``; ``NotFittedError`` before :meth:`fit`).

    Parameters (keyword-only, stored as given):
        descriptors: elemental descriptors used (subset of :data:`lisearch.chemistry.elements.DESCRIPTORS`).
        reductions: reductions over elements (``mean`` keeps the model linear in the fractions).
        C: inverse regularisation strength of ``LinearSVC``.
        class_weight: lisearch's vocabulary, as in the settings: ``"balanced"`` (reweights the rare superionic
            class), ``"none"`` or ``"1:w"`` (weight w on the superionic class); scikit-learn's ``None`` and
            ``{0: 1, 1: w}`` are accepted too.
    """

    def __init__(
        self,
        *,
        descriptors: Sequence[str] = DESCRIPTORS,
        reductions: Sequence[str] = ("mean",),
        C: float = 1.0,
        class_weight: str | dict[int, float] | None = None,
    ) -> None:
        self.descriptors = descriptors
        self.reductions = reductions
        self.C = C
        self.class_weight = class_weight

    @property
    def feature_names(self) -> list[str]:
        """Names of the features, ``<reduction>_<descriptor>``."""
        return feature_names(self.reductions, self.descriptors)

    def features(self, fractions: np.ndarray) -> np.ndarray:
        """Features (n, len(feature_names)) of a fraction matrix (n, 94)."""
        return composition_features(fractions, self.reductions, self.descriptors)

    def fit(self, fractions: np.ndarray, y: np.ndarray) -> Self:
        """Fit on a fraction matrix (n, 94) and labels (n,) in {0, 1}."""
        check_choice(self.reductions, self.descriptors)
        X = self.features(fractions)
        scaler = StandardScaler().fit(X)
        scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
        weight = sklearn_class_weight(self.class_weight)
        svm = LinearSVC(C=self.C, class_weight=weight, max_iter=50_000).fit((X - scaler.mean_) / scale, y)
        self.classes_ = np.array([0, 1])
        self.mean_ = scaler.mean_
        self.scale_ = scale
        self.coef_ = svm.coef_[0].copy()
        self.intercept_ = float(svm.intercept_[0])
        return self

    def _check(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("ElementalLinearModel is not fitted: call fit() or load an artifact.")

    def decision_function(self, fractions: np.ndarray) -> np.ndarray:
        """Signed distance (n,) for a fraction matrix (n, 94); > 0 means predicted superionic."""
        self._check()
        X = self.features(fractions)
        return ((X - self.mean_) / self.scale_) @ self.coef_ + self.intercept_

    def predict(self, fractions: np.ndarray) -> np.ndarray:
        """Labels (n,) int8: 1 where the decision value is > 0 (predicted superionic)."""
        return (self.decision_function(fractions) > 0).astype(np.int8)

    def element_weights(self) -> tuple[float, np.ndarray]:
        """(bias, weights (94,)) with ``decision = bias + fractions @ weights``; mean-only models."""
        self._check()
        if tuple(self.reductions) != ("mean",):
            raise InputError("element_weights exists only for mean-reduction models (linear in the fractions).")

        table = descriptor_table()[list(self.descriptors)].to_numpy(dtype=np.float64)
        w = self.coef_ / self.scale_
        return float(self.intercept_ - w @ self.mean_), table @ w

    # ------------------------------------------------------------------------------------------- artifacts
    def to_payload(self, training: dict[str, Any] | None = None) -> dict[str, Any]:
        """Plain JSON-ready dict of the fitted model (with per-element weights for mean-only models)."""
        self._check()
        payload: dict[str, Any] = {
            "descriptors": list(self.descriptors),
            "reductions": list(self.reductions),
            "feature_names": self.feature_names,
            "C": self.C,
            "class_weight": self.class_weight,
            "scaler_mean": self.mean_.tolist(),
            "scaler_scale": self.scale_.tolist(),
            "coef": self.coef_.tolist(),
            "intercept": self.intercept_,
            "descriptor_table_sha256": descriptor_table_hash(),
            "training": training or {},
        }
        if tuple(self.reductions) == ("mean",):
            bias, weights = self.element_weights()
            payload["element_bias"] = bias
            payload["element_weights"] = dict(zip(symbols(), weights.tolist(), strict=True))
        return payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any], source: str = "artifact") -> ElementalLinearModel:
        """Rebuild from :meth:`to_payload` output, validating shapes, names and the descriptor table."""
        try:
            weight = payload["class_weight"]  # JSON turns {0: 1, 1: w} into {"0": 1, "1": w}
            weight = {int(k): float(v) for k, v in weight.items()} if isinstance(weight, dict) else weight
            model = cls(
                descriptors=tuple(payload["descriptors"]), reductions=tuple(payload["reductions"]),
                C=float(payload["C"]), class_weight=weight,
            )  # fmt: skip
            check_choice(model.reductions, model.descriptors)
            n = len(model.feature_names)
            arrays = {k: np.asarray(payload[k], dtype=np.float64) for k in ("scaler_mean", "scaler_scale", "coef")}
            intercept = float(payload["intercept"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"{source}: malformed linear-model payload ({exc}). Retrain with `lisearch train`."
            ) from None
        if payload.get("feature_names") != model.feature_names or any(a.shape != (n,) for a in arrays.values()):
            raise InputError(
                f"{source}: its features do not match its descriptors and reductions ({n} expected). "
                "Retrain with `lisearch train`."
            )
        if payload.get("descriptor_table_sha256") != descriptor_table_hash():
            raise InputError(
                f"{source} was trained with a different elemental descriptor table. Retrain with `lisearch train`."
            )
        model.mean_, model.scale_, model.coef_ = arrays["scaler_mean"], arrays["scaler_scale"], arrays["coef"]
        model.intercept_ = intercept
        return model


def sklearn_class_weight(weight: str | dict[int, float] | None) -> str | dict[int, float] | None:
    """lisearch's class-weight vocabulary (``balanced``, ``none``, ``1:w``) in scikit-learn's terms."""
    if weight is None or isinstance(weight, dict):
        return weight
    try:
        return class_weight_value(str(weight))
    except ValueError:
        raise InputError(f"class weight {weight!r}: use balanced, none or 1:w with w > 0 (e.g. 1:10).") from None
