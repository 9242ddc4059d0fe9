"""Models of measured conductivity (OBELiX): the paper's transfer idea carried to measurements.

The structure set labelled by sML is the large source, the 599 measured OBELiX conductivities the small target.
The transfer: the two source models, esML (linear on elemental descriptors) and atom2vec-esML (learned element
vectors and a network), are frozen and their outputs become inputs of the target models, beside composition
features. Two target models, both extremely randomised forests (``ExtraTrees*``, scikit-learn) stored as node
arrays (:mod:`lisearch.measured.trees`) and evaluated by numpy:

* the classifier: probability that sigma_RT >= ``threshold`` (default 1e-4 S/cm), label = probability >= 0.5;
  classes reweighted to balance (about 45 % of OBELiX is positive);
* the regressor: log10(sigma_RT / (S/cm)), the mean of its trees' predictions (``aggregate="median"`` takes their
  median: it minimises the absolute error within a leaf distribution, but measured worse on OBELiX's test split,
  see docs/science.md).

Features of a composition (fractions (n, 94), see :func:`feature_names`):

* ``frac_<El>``: the 94 atomic fractions;
* ``<reduction>_<descriptor>``: mean, std, min, max, range of the nine elemental descriptors (esML's table);
* chemistry: Li fraction, anion fractions (O; S+Se+Te; F+Cl+Br+I; N; H), total anion fraction, Li per anion,
  number of elements;
* transfer (``transfer=True``): esML's decision value, atom2vec-esML's decision value and its composition vector
  (mean and std of the element vectors). An element without an atom2vec vector contributes a zero vector.

The applicability domain: features are standardised with the training mean and scale; the distance of a
composition to the nearest training composition is compared with the ``ad_quantile`` quantile of the training
compositions' nearest-neighbour distances (each to the others): beyond it the prediction extrapolates.

Censored measurements (37 upper bounds such as "<1E-10"): every bound is far below the threshold, so in the
classifier the row is a negative; in the regressor its target is the bound (log10 sigma = -10 or -8), a choice that
treats "below the detection limit" as "at the detection limit" (documented in ``docs/science.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from lisearch.chemistry.descriptors import REDUCTIONS, composition_features
from lisearch.chemistry.descriptors import feature_names as descriptor_feature_names
from lisearch.chemistry.elements import LI_Z, atomic_number, descriptor_table_hash, n_elements, symbols
from lisearch.errors import InputError
from lisearch.measured.calibration import (
    CALIBRATIONS,
    CUT_RULES,
    P_FAST_SOURCES,
    ConformalIntervals,
    ProbabilityCalibration,
    balanced_cut,
)
from lisearch.measured.trees import AGGREGATES, TreeEnsemble
from lisearch.models.artifact import load_artifact
from lisearch.models.atom2vec import Atom2VecModel, forward, reduce_vectors
from lisearch.models.linear import ElementalLinearModel
from lisearch.models.loading import load_atom2vec, load_models

KIND = "measured-extra-trees"
TASKS = ("classifier", "regressor")
ANION_GROUPS: dict[str, tuple[str, ...]] = {
    "oxide": ("O",),
    "chalcogenide": ("S", "Se", "Te"),
    "halide": ("F", "Cl", "Br", "I"),
    "nitride": ("N",),
    "hydride": ("H",),
}
CHEMISTRY = ("li_fraction", *(f"{g}_fraction" for g in ANION_GROUPS), "anion_fraction", "li_per_anion", "n_elements")


class Transfer:
    """The frozen source models whose outputs feed the measured models: esML and atom2vec-esML."""

    def __init__(self, esml: ElementalLinearModel, atom2vec: Atom2VecModel) -> None:
        self.esml = esml
        self.atom2vec = atom2vec
        self._vectors = np.zeros((n_elements(), atom2vec.dim))
        for row, element in enumerate(atom2vec.elements):
            self._vectors[atomic_number(element) - 1] = atom2vec.embedding[row]

    def feature_names(self) -> list[str]:
        """Names of the transfer features (esML and atom2vec decisions, atom2vec composition vector)."""
        d = self.atom2vec.dim
        vec = [f"atom2vec_{r}_{i}" for r in self.atom2vec.reductions for i in range(d)]
        return ["esml_score", "atom2vec_score", *vec]

    def features(self, fractions: np.ndarray) -> np.ndarray:
        """(n, 2 + D * R): esML decision, atom2vec decision, atom2vec composition vector."""
        a2v = self.atom2vec
        reduced = reduce_vectors(np, fractions, self._vectors, a2v.reductions)
        score = forward(np, fractions, self._vectors, a2v.layers, a2v.reductions)
        return np.column_stack([self.esml.decision_function(fractions), score, reduced])

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the fitted object."""
        return {"esml": self.esml.to_payload(), "atom2vec": self.atom2vec.to_payload()}

    @classmethod
    def from_payload(cls, payload: Any, source: str) -> Transfer:
        """Rebuild from :meth:`to_payload` output; InputError for a malformed payload."""
        try:
            esml, atom2vec = payload["esml"], payload["atom2vec"]
        except (KeyError, TypeError):
            raise InputError(
                f"{source}: its transfer models are missing. Retrain with `lisearch train-measured`."
            ) from None
        return cls(ElementalLinearModel.from_payload(esml, source), Atom2VecModel.from_payload(atom2vec, source))


def chemistry_features(fractions: np.ndarray) -> np.ndarray:
    """(n, len(CHEMISTRY)) from fractions (n, 94), in :data:`CHEMISTRY` order."""
    li = fractions[:, LI_Z - 1]
    groups = [fractions[:, [atomic_number(e) - 1 for e in els]].sum(axis=1) for els in ANION_GROUPS.values()]
    anion = np.sum(groups[:-1], axis=0)  # H is counted apart: it is a cation as often as an anion
    per_anion = li / np.maximum(anion, 1e-3)
    return np.column_stack([li, *groups, anion, per_anion, (fractions > 0).sum(axis=1)])


def feature_names(transfer: Transfer | None) -> list[str]:
    """Names of the measured models' features: 94 fractions, descriptor reductions, chemistry, then (with
    ``transfer``) the transfer features."""
    names = [f"frac_{s}" for s in symbols()] + descriptor_feature_names(REDUCTIONS) + list(CHEMISTRY)
    return names + (transfer.feature_names() if transfer is not None else [])


def measured_features(fractions: np.ndarray, transfer: Transfer | None) -> np.ndarray:
    """Feature matrix (n, len(feature_names(transfer))) float64 of fractions (n, 94)."""
    F = np.asarray(fractions, dtype=np.float64)
    parts = [F, composition_features(F, REDUCTIONS), chemistry_features(F)]
    if transfer is not None:
        parts.append(transfer.features(F))
    return np.hstack(parts)


class ApplicabilityDomain:
    """Distance to the nearest training composition in standardised feature space.

    Attributes: mean_, scale_ (F,), train_ (m, F) standardised training rows, cutoff_ (the ``quantile`` of the
    training rows' distances to their nearest other training row).
    """

    def __init__(self, quantile: float = 0.95) -> None:
        self.quantile = quantile

    def fit(self, X: np.ndarray) -> Self:
        """Fit on the training features X (n, d); returns self."""
        self.mean_ = X.mean(axis=0)
        scale = X.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        self.train_ = (X - self.mean_) / self.scale_
        d = self._pairwise(self.train_)
        np.fill_diagonal(d, np.inf)
        self.cutoff_ = float(np.quantile(d.min(axis=1), self.quantile))
        return self

    def _pairwise(self, Z: np.ndarray) -> np.ndarray:
        sq = (Z * Z).sum(axis=1)[:, None] + (self.train_ * self.train_).sum(axis=1)[None, :] - 2 * Z @ self.train_.T
        return np.sqrt(np.maximum(sq, 0.0))

    def distance(self, X: np.ndarray, chunk: int = 4096) -> np.ndarray:
        """(n,) distance of each row of X (n, F) to its nearest training row."""
        out = np.empty(len(X))
        for start in range(0, len(X), chunk):
            Z = (X[start : start + chunk] - self.mean_) / self.scale_
            out[start : start + chunk] = self._pairwise(Z).min(axis=1)
        return out

    def to_payload(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the fitted object."""
        return {
            "quantile": self.quantile,
            "mean": self.mean_.tolist(),
            "scale": self.scale_.tolist(),
            "train": self.train_.tolist(),
            "cutoff": self.cutoff_,
        }

    @classmethod
    def from_payload(cls, payload: Any, n_features: int, source: str) -> ApplicabilityDomain:
        """Rebuild from :meth:`to_payload` output; InputError for a malformed payload."""
        try:
            ad = cls(float(payload["quantile"]))
            ad.mean_ = np.asarray(payload["mean"], dtype=np.float64)
            ad.scale_ = np.asarray(payload["scale"], dtype=np.float64)
            ad.train_ = np.asarray(payload["train"], dtype=np.float64)
            ad.cutoff_ = float(payload["cutoff"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed applicability domain ({exc}). Retrain the model.") from None
        shapes_ok = ad.mean_.shape == ad.scale_.shape == (n_features,) and ad.train_.ndim == 2
        if not shapes_ok or ad.train_.shape[1] != n_features:
            raise InputError(f"{source}: its applicability domain does not match its {n_features} features.")
        return ad


class MeasuredModel(BaseEstimator):
    """An extremely randomised forest on composition (+ transfer) features, fitted on measured conductivities; a
    scikit-learn estimator (keyword parameters stored as given, ``get_params`` / ``clone``, fitted state with a
    trailing underscore, ``NotFittedError`` before ``fit``).

    Parameters:
        task: ``"classifier"`` (P(sigma >= threshold)) or ``"regressor"`` (log10 sigma in S/cm).
        threshold: S/cm; the label of the classifier, and the regressor's label cut.
        n_trees, seed: the forest.
        ad_quantile: see :class:`ApplicabilityDomain`.
        aggregate: the regressor's output over its trees, ``"median"`` or ``"mean"`` (the classifier always
            averages: its output is scikit-learn's probability; ``aggregate_`` is what the fitted model uses).
        transfer: the frozen source models whose outputs become features (:class:`Transfer`), or None.
        p_fast: the classifier's forest (:data:`~lisearch.measured.calibration.P_FAST_SOURCES`): ``"balanced"``, a
            class-balanced classification forest, or ``"votes"``, a regression forest of log10 sigma whose
            probability is the share of its trees predicting >= ``threshold`` (the regressor's trees, as votes).

    Fitted: ``aggregate_``, ``transfer_``, ``feature_names_``, ``ensemble_`` (:class:`TreeEnsemble`), ``domain_``
    (:class:`ApplicabilityDomain`), ``training_`` (metadata of the training run, from an artifact), ``calibration_``
    (:class:`~lisearch.measured.calibration.ProbabilityCalibration`), ``cut_`` (the classifier's label cut-off),
    ``conformal_`` (:class:`~lisearch.measured.calibration.ConformalIntervals` or None) and, after a fit with groups,
    ``out_of_group_`` (n,) (the forest's out-of-group predictions of the training rows, not saved in files).
    """

    def __init__(
        self,
        *,
        task: str = "classifier",
        threshold: float = 1e-4,
        n_trees: int = 300,
        seed: int = 0,
        ad_quantile: float = 0.95,
        aggregate: str = "mean",
        transfer: Transfer | None = None,
        calibration: str = "none",
        cut_rule: str = "balanced",
        coverage: float = 0.8,
        calibration_folds: int = 5,
        p_fast: str = "balanced",
    ) -> None:
        self.task = task
        self.threshold = threshold
        self.n_trees = n_trees
        self.seed = seed
        self.ad_quantile = ad_quantile
        self.aggregate = aggregate
        self.transfer = transfer
        self.calibration = calibration
        self.coverage = coverage
        self.calibration_folds = calibration_folds
        self.cut_rule = cut_rule
        self.p_fast = p_fast

    def _validate(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"Unknown measured-model task {self.task!r}; use one of {', '.join(TASKS)}.")
        if self.calibration not in CALIBRATIONS:
            raise InputError(f"Unknown calibration {self.calibration!r}; use one of {', '.join(CALIBRATIONS)}.")
        if self.cut_rule not in CUT_RULES:
            raise InputError(f"Unknown cut-off rule {self.cut_rule!r}; use one of {', '.join(CUT_RULES)}.")
        if self.p_fast not in P_FAST_SOURCES:
            raise InputError(f"Unknown P(fast) source {self.p_fast!r}; use one of {', '.join(P_FAST_SOURCES)}.")
        if not 0 < self.coverage < 1 or self.calibration_folds < 2:
            raise InputError(
                f"Interval coverage {self.coverage} must lie in (0, 1) (e.g. 0.8) and calibration folds "
                f"{self.calibration_folds} must be at least 2."
            )
        if self.aggregate not in AGGREGATES:
            raise InputError(f"Unknown tree aggregate {self.aggregate!r}; use one of {', '.join(AGGREGATES)}.")

    def fit(self, fractions: np.ndarray, log10_sigma: np.ndarray, groups: np.ndarray | None = None) -> Self:
        """Fit on fractions (n, 94) and measured log10 sigma (n,) (censored rows carry their bound).

        With ``groups`` (n,) (chemical systems), the model is also refitted on the training rows of each of
        ``calibration_folds`` group folds (``GroupKFold``) to predict the held-out systems; from those out-of-group
        predictions the classifier learns its probability calibration (``calibration_``) and the cut-off of its
        label for balanced accuracy (``cut_``), the regressor its conformal intervals (``conformal_``). Without
        groups: no calibration, cut-off 0.5, no intervals."""
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor  # noqa: PLC0415 (slow import, needed here only)

        self._validate()
        X = measured_features(fractions, self.transfer)
        common = {"n_estimators": self.n_trees, "max_features": 1.0, "random_state": self.seed, "n_jobs": 1}
        if self.task == "classifier":
            y = (np.asarray(log10_sigma) >= np.log10(self.threshold)).astype(int)
            if len(set(y.tolist())) < 2:
                raise InputError("The measured training set has a single class at this threshold; change it.")
        if self.task == "classifier" and self.p_fast == "balanced":
            forest: Any = ExtraTreesClassifier(class_weight="balanced", **common).fit(X, y)
        else:
            forest = ExtraTreesRegressor(**common).fit(X, np.asarray(log10_sigma, dtype=np.float64))
        self.aggregate_ = self.aggregate if self.task == "regressor" else "mean"
        self.transfer_ = self.transfer
        self.feature_names_ = feature_names(self.transfer)
        self.ensemble_ = TreeEnsemble.from_sklearn(forest, self.aggregate_)
        if self.task == "classifier" and self.p_fast == "votes":
            self.ensemble_ = self.ensemble_.votes(float(np.log10(self.threshold)))
        self.domain_ = ApplicabilityDomain(self.ad_quantile).fit(X)
        self.training_: dict[str, Any] = {}
        self.calibration_ = ProbabilityCalibration()
        self.cut_ = 0.5
        self.conformal_: ConformalIntervals | None = None
        if groups is not None:
            self._calibrate(fractions, np.asarray(log10_sigma, dtype=np.float64), np.asarray(groups))
        return self

    def _calibrate(self, fractions: np.ndarray, log10_sigma: np.ndarray, groups: np.ndarray) -> None:
        """Out-of-group predictions (see :meth:`fit`), then the calibration (classifier) or intervals (regressor)."""
        from sklearn.model_selection import GroupKFold  # noqa: PLC0415 (slow import, needed here only)

        if len(set(groups.tolist())) < self.calibration_folds:
            raise InputError(
                f"{len(set(groups.tolist()))} chemical systems cannot make {self.calibration_folds} calibration folds; "
                "lower measured.calibration_folds."
            )
        value, spread, outside = (np.empty(len(log10_sigma)) for _ in range(3))
        for train, held in GroupKFold(self.calibration_folds).split(fractions, log10_sigma, groups):
            inner = MeasuredModel(**{**self.get_params(), "seed": self.seed}).fit(fractions[train], log10_sigma[train])
            X = inner.features(fractions[held])
            value[held] = inner.ensemble_.predict(X)
            spread[held] = inner.ensemble_.spread(X) if self.task == "regressor" else 0.0
            outside[held] = inner.domain_.distance(X) > inner.domain_.cutoff_
        self.out_of_group_ = value
        if self.task == "classifier":
            y = (log10_sigma >= np.log10(self.threshold)).astype(int)
            self.calibration_ = ProbabilityCalibration.fit(value, y, self.calibration)
            if self.cut_rule == "search":
                self.cut_ = balanced_cut(y, self.calibration_.transform(value))
            elif self.calibration != "none":  # a calibrated P maximises balanced accuracy at the share of positives
                self.cut_ = float(y.mean())
        else:
            self.conformal_ = ConformalIntervals.fit(
                np.abs(value - log10_sigma), outside.astype(bool), spread, self.coverage
            )

    def _check(self) -> None:
        check_is_fitted(self, "ensemble_", msg="MeasuredModel is not fitted: call fit() or load an artifact.")

    def features(self, fractions: np.ndarray) -> np.ndarray:
        """Features (n, len(feature_names)) of a fraction matrix (n, 94)."""
        self._check()
        return measured_features(fractions, self.transfer_)

    def value_from_features(self, X: np.ndarray) -> np.ndarray:
        """(n,) of features X (n, F): the classifier's calibrated probability, or the regressor's log10 sigma."""
        self._check()
        raw = self.ensemble_.predict(X)
        return self.calibration_.transform(raw) if self.task == "classifier" else raw

    def predict_value(self, fractions: np.ndarray) -> np.ndarray:
        """(n,): the classifier's calibrated probability of sigma >= threshold, or the regressor's log10 sigma."""
        return self.value_from_features(self.features(fractions))

    def interval_from_features(
        self, X: np.ndarray, outside: np.ndarray | None = None, value: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(low, high), each (n,) log10 sigma: the regressor's ``coverage`` conformal interval for features X (n, F);
        ``outside`` (n,) the rows' outside-the-domain flags and ``value`` (n,) the regressor's prediction (computed when
        not given). NaN without intervals."""
        self._check()
        if self.task != "regressor":
            raise InputError("Prediction intervals belong to the measured regressor, not the classifier.")
        value = self.ensemble_.predict(X) if value is None else value
        if self.conformal_ is None:
            return np.full(len(X), np.nan), np.full(len(X), np.nan)
        if outside is None:
            outside = self.domain_.distance(X) > self.domain_.cutoff_
        half = self.conformal_.half_width(outside, self.ensemble_.spread(X))
        return value - half, value + half

    def predict_interval(self, fractions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) (n,) each: the regressor's conformal interval of log10 sigma (S/cm) for fractions (n, 94)."""
        return self.interval_from_features(self.features(fractions))

    def decision_function(self, fractions: np.ndarray) -> np.ndarray:
        """(n,) signed score, > 0 means predicted fast conductor: P - cut_ (classifier: calibrated probability minus
        the label's cut-off), log10(sigma / threshold) (regressor)."""
        value = self.predict_value(fractions)
        return value - self.cut_ if self.task == "classifier" else value - np.log10(self.threshold)

    def predict(self, fractions: np.ndarray) -> np.ndarray:
        """Labels (n,) int8: 1 where the model predicts sigma >= threshold."""
        return (self.decision_function(fractions) >= 0).astype(np.int8)

    def domain_distance(self, fractions: np.ndarray) -> np.ndarray:
        """(n,) distance to the nearest training composition (standardised features); compare with
        ``domain_.cutoff_``."""
        X = self.features(fractions)  # checks that the model is fitted first
        return self.domain_.distance(X)

    # ------------------------------------------------------------------------------------------- artifacts
    def to_payload(self, training: dict[str, Any] | None = None) -> dict[str, Any]:
        """Plain JSON-ready dict of the fitted object."""
        self._check()
        return {
            "task": self.task,
            "threshold": self.threshold,
            "n_trees": self.n_trees,
            "seed": self.seed,
            "ad_quantile": self.ad_quantile,
            "p_fast": self.p_fast,
            "feature_names": self.feature_names_,
            "descriptor_table_sha256": descriptor_table_hash(),
            "transfer": self.transfer_.to_payload() if self.transfer_ is not None else None,
            "ensemble": self.ensemble_.to_payload(),
            "domain": self.domain_.to_payload(),
            "calibration": self.calibration_.to_payload(),
            "cut": self.cut_,
            "conformal": None if self.conformal_ is None else self.conformal_.to_payload(),
            "training": training or {},
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any], source: str = "artifact") -> MeasuredModel:
        """Rebuild from :meth:`to_payload`; refuses a model whose features differ from this lisearch's."""
        retrain = "Retrain with `lisearch train-measured`."
        try:
            params: dict[str, Any] = {
                "task": str(payload["task"]),
                "threshold": float(payload["threshold"]),
                "n_trees": int(payload["n_trees"]),
                "seed": int(payload["seed"]),
                "ad_quantile": float(payload["ad_quantile"]),
                "p_fast": str(payload.get("p_fast", "balanced")),  # files written before votes: balanced
            }
            transfer_payload = payload["transfer"]
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed measured-model payload ({exc}). {retrain}") from None
        if payload.get("descriptor_table_sha256") != descriptor_table_hash():
            raise InputError(f"{source} was trained with a different elemental descriptor table. {retrain}")
        transfer = None if transfer_payload is None else Transfer.from_payload(transfer_payload, source)
        ensemble = TreeEnsemble.from_payload(payload["ensemble"], source)
        model = cls(**params, aggregate=ensemble.aggregate, transfer=transfer)
        model._validate()
        model.aggregate_, model.transfer_, model.ensemble_ = ensemble.aggregate, transfer, ensemble
        model.feature_names_ = feature_names(model.transfer_)
        if payload.get("feature_names") != model.feature_names_:
            raise InputError(
                f"{source} was trained on other features than this lisearch computes ({len(model.feature_names_)} "
                f"expected). {retrain}"
            )
        if model.ensemble_.n_features != len(model.feature_names_):
            raise InputError(f"{source}: its trees take {model.ensemble_.n_features} features. {retrain}")
        model.domain_ = ApplicabilityDomain.from_payload(payload.get("domain"), len(model.feature_names_), source)
        model.calibration_ = ProbabilityCalibration.from_payload(payload.get("calibration"), source)
        model.calibration = model.calibration_.method
        model.conformal_ = ConformalIntervals.from_payload(payload.get("conformal"), source)
        if model.conformal_ is not None:
            model.coverage = model.conformal_.coverage
        try:
            model.cut_ = float(payload.get("cut", 0.5))
        except (TypeError, ValueError):
            raise InputError(f"{source}: malformed label cut-off {payload.get('cut')!r}. {retrain}") from None
        if not 0 <= model.cut_ <= 1:
            raise InputError(f"{source}: label cut-off {model.cut_} is not a probability. {retrain}")
        model.training_ = payload.get("training", {})
        return model


def fit_pair(
    fractions: np.ndarray,
    log10_sigma: np.ndarray,
    transfer: Transfer | None,
    groups: np.ndarray | None = None,
    **params: Any,
) -> dict[str, MeasuredModel]:
    """The classifier and the regressor fitted on the same rows: ``{"classifier": ..., "regressor": ...}``; with
    ``groups`` (n,) (chemical systems) calibrated and with intervals (:meth:`MeasuredModel.fit`)."""
    return {
        task: MeasuredModel(task=task, transfer=transfer, **params).fit(fractions, log10_sigma, groups)
        for task in TASKS
    }


def measured_outputs(
    classifier: MeasuredModel, regressor: MeasuredModel, fractions: np.ndarray
) -> dict[str, np.ndarray]:
    """Every measured column (:data:`lisearch.schema.MEASURED_COLUMNS`, (n,) each, before their table types) of
    fractions (n, 94), features computed once for both models (they must share them, :func:`check_pair`): the
    calibrated P(fast) and its label (P >= the classifier's cut-off), log10 sigma (S/cm) and its conformal interval,
    the distance to the nearest training composition and whether it is inside the applicability domain."""
    X = classifier.features(fractions)
    p = classifier.value_from_features(X)
    distance = classifier.domain_.distance(X)
    outside = distance > classifier.domain_.cutoff_
    value = regressor.value_from_features(X)
    low, high = regressor.interval_from_features(X, outside, value)  # the trees evaluated once for both
    return {
        "measured_p_fast": p, "measured_label": p >= classifier.cut_,
        "measured_log10_sigma": value,
        "measured_log10_sigma_low": low, "measured_log10_sigma_high": high,
        "measured_ad_distance": distance, "measured_in_domain": ~outside,
    }  # fmt: skip


MODEL_FILES = {"classifier": "measured_classifier.json", "regressor": "measured_regressor.json"}


def load_transfer(artifacts_dir: Path) -> Transfer:
    """esML and atom2vec-esML from the artifacts folder (both are needed by the measured models)."""
    atom2vec = load_atom2vec(artifacts_dir)
    if atom2vec is None:
        raise InputError(
            f"No atom2vec-esML model in {artifacts_dir}: the measured models use it. Run `lisearch train-atom2vec` "
            "(or `make run`) first."
        )
    return Transfer(load_models(artifacts_dir, ("esml",))["esml"], atom2vec)


def load_measured(artifacts_dir: Path, required: bool = False) -> dict[str, MeasuredModel]:
    """The measured models by task ({} when not trained yet and not ``required``; invalid files always raise)."""
    out = {}
    for task, name in MODEL_FILES.items():
        path = artifacts_dir / name
        if not path.exists() and not required:
            continue
        payload = load_artifact(path, kinds=(KIND,))["payload"]
        model = MeasuredModel.from_payload(payload, str(path))
        if model.task != task:
            raise InputError(
                f"{path} holds a measured {model.task}, not a {task}. Retrain with `lisearch train-measured`."
            )
        out[task] = model
    return out


def model_params(settings: Any) -> dict[str, Any]:
    """Constructor keywords of :class:`MeasuredModel` from ``Settings.measured``."""
    m = settings.measured
    return {
        "threshold": m.threshold,
        "n_trees": m.n_trees,
        "seed": m.seed,
        "ad_quantile": m.ad_quantile,
        "aggregate": m.regressor_aggregate,
        "calibration": m.calibration,
        "cut_rule": m.cut_rule,
        "coverage": m.coverage,
        "calibration_folds": m.calibration_folds,
        "p_fast": m.p_fast,
    }


__all__: Sequence[str] = (
    "KIND",
    "MeasuredModel",
    "Transfer",
    "fit_pair",
    "load_measured",
    "measured_features",
    "measured_outputs",
    "model_params",
)


def check_pair(models: dict[str, MeasuredModel], source: str) -> tuple[MeasuredModel, MeasuredModel]:
    """(classifier, regressor), refusing a pair that does not share its features (they are scored together)."""
    if set(models) != set(TASKS):
        raise InputError(
            f"{source}: the measured classifier and regressor are both needed. Run `lisearch train-measured`."
        )
    classifier, regressor = models["classifier"], models["regressor"]
    if classifier.feature_names_ != regressor.feature_names_:
        raise InputError(f"{source}: the measured classifier and regressor use different features. Retrain both.")
    return classifier, regressor
