"""``lisearch validate``: every model on measured conductivities (OBELiX), beside the published figures.

Two protocols, both on the 599 OBELiX materials (label: sigma_RT >= ``measured.threshold``, 1e-4 S/cm):

* **official split**: OBELiX's 478 / 121 train / test split (papers and compositions disjoint);
* **leave-chemical-system-out CV**: ``measured.cv_folds`` folds (``GroupKFold``) over all 599, where a group is a
  composition's chemical system, the set of its elements at >= ``measured.group_min_fraction`` (5 at%), so a test
  system is never seen in training: the honest test for a screen, whose job is to find new chemistries.

The measured models are refitted on each training part (never on its test part: features are computed row by row
and the forests see only training rows; nothing is tuned here). The paper's models (sML, eML, esML,
atom2vec-esML) never saw OBELiX, so for them the CV column is simply all rows they can score. sML scores the
bundled OBELiX structures (partial occupancies ordered as in ``label-structures``), so it covers only materials with
a CIF.

Metrics: n scored, accuracy, balanced accuracy, Matthews correlation (MCC), ROC-AUC where a score exists; for the
regressors the mean absolute error (MAE) of log10 sigma beside the median baseline (the training part's median).
Balanced accuracy and MAE come with a 95 % interval from a bootstrap over chemical systems (:func:`bootstrap_intervals`:
the rows of one system are resampled together, as materials of one system are not independent measurements).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    matthews_corrcoef,
    mean_absolute_error,
    roc_auc_score,
    roc_curve,
)
from sklearn.model_selection import GroupKFold

from lisearch.datasets import OBELIX_CIFS, OBELIX_DIR, iter_cifs
from lisearch.errors import InputError
from lisearch.figures import pyplot
from lisearch.measured.calibration import (
    CALIBRATIONS,
    P_FAST_SOURCES,
    ProbabilityCalibration,
    balanced_cut,
    brier_score,
    chance_ece,
    expected_calibration_error,
    reliability_table,
    system_calibration,
)
from lisearch.measured.models import (
    MODEL_FILES,
    MeasuredModel,
    Transfer,
    fit_pair,
    load_transfer,
    measured_outputs,
    model_params,
)
from lisearch.measured.obelix import MeasuredSet, measured_set
from lisearch.models.loading import ATOM2VEC_FILE, load_models
from lisearch.models.loading import MODEL_FILES as LINEAR_FILES
from lisearch.saved_metrics import METRICS_DIR, load_metrics, metrics_key, save_metrics
from lisearch.structure.labelling import label_cifs

#: Published figures to put beside lisearch's (see docs/science.md for the sources).
PUBLISHED = {
    "paper_exp40_accuracy": {"sML": 0.90, "eML": 0.975, "esML": 0.875, "atom2vec-esML": 0.875},
    "obelix_baseline_test_mae": "about 1.5-1.6 (OBELiX paper; composition + space group + lattice parameters)",
}


def official_folds(data: MeasuredSet) -> list[tuple[np.ndarray, np.ndarray]]:
    """The official OBELiX train / test split as one (train, test) fold of indices."""
    train, test = np.flatnonzero(data.split == "train"), np.flatnonzero(data.split == "test")
    if not len(train) or not len(test):
        raise InputError("The measured set has no official train / test rows (is it OBELiX?).")
    return [(train, test)]


def system_folds(data: MeasuredSet, folds: int = 10) -> list[tuple[np.ndarray, np.ndarray]]:
    """Leave-chemical-system-out folds: no chemical system is in both parts of a fold."""
    n_groups = len(set(data.groups.tolist()))
    if n_groups < folds:
        raise InputError(f"{n_groups} chemical systems cannot make {folds} folds; lower measured.cv_folds.")
    return [(a, b) for a, b in GroupKFold(folds).split(data.fractions, data.y, data.groups)]


# ------------------------------------------------------------------------------------------------- metrics
def classification_metrics(y: np.ndarray, label: np.ndarray, score: np.ndarray | None = None) -> dict[str, Any]:
    """n, accuracy, balanced_accuracy, mcc, roc_auc (None without a score or with one class), positives."""
    y, label = np.asarray(y), np.asarray(label)
    two = len(set(y.tolist())) > 1
    return {
        "n": len(y),
        "positives": int(y.sum()),
        "accuracy": float(accuracy_score(y, label)) if len(y) else None,
        "balanced_accuracy": float(balanced_accuracy_score(y, label)) if two else None,
        "mcc": float(matthews_corrcoef(y, label)) if two else None,
        "roc_auc": float(roc_auc_score(y, score)) if two and score is not None else None,
    }


def regression_metrics(target: np.ndarray, pred: np.ndarray, baseline: np.ndarray) -> dict[str, Any]:
    """MAE of log10 sigma (pred) beside the median baseline (baseline: the training median per row)."""
    return {
        "n": len(target),
        "mae": float(mean_absolute_error(target, pred)),
        "median_baseline_mae": float(mean_absolute_error(target, baseline)),
    }


#: Bootstrap resamples behind every interval of `lisearch validate` (:func:`bootstrap_intervals`).
BOOTSTRAP_RESAMPLES = 2000


def bootstrap_intervals(
    groups: np.ndarray,
    y: np.ndarray,
    label: np.ndarray,
    errors: np.ndarray | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
    p: np.ndarray | None = None,
    covered: np.ndarray | None = None,
    outside: np.ndarray | None = None,
) -> dict[str, list[float] | None]:
    """95 % intervals (2.5th and 97.5th percentiles) of balanced accuracy and, with ``errors`` (n,) absolute errors,
    of their mean (MAE), over ``resamples`` bootstrap resamples of the distinct ``groups`` (n,): each resample draws
    as many groups as there are, with replacement, and takes every row of a drawn group as often as it is drawn.
    Resamples holding a single class are left out of the balanced-accuracy interval (None when all are).

    Optional, on the same resamples: ``p`` (n,) probabilities give ``ece_ci`` (10 equal-width bins); ``covered`` (n,)
    whether each row's interval holds its measurement gives ``coverage_ci``, and with ``outside`` (n,) flags also
    ``coverage_inside_ci`` / ``coverage_outside_ci``."""
    _, group_of_row = np.unique(np.asarray(groups), return_inverse=True)
    n_groups = int(group_of_row.max()) + 1 if len(group_of_row) else 0
    out: dict[str, list[float] | None] = {"balanced_accuracy_ci": None}
    if n_groups == 0:
        return out | ({"mae_ci": None} if errors is not None else {})
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_groups, size=(resamples, n_groups))
    counts = np.zeros((resamples, n_groups))
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)  # times each group is drawn, per resample
    weights = counts[:, group_of_row]  # (resamples, n) times each row is taken
    y, label = np.asarray(y, bool), np.asarray(label, bool)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = weights @ (y & label) / (weights @ y)
        specificity = weights @ (~y & ~label) / (weights @ ~y)
        balanced = 0.5 * (recall + specificity)
    if np.isfinite(balanced).any():
        out["balanced_accuracy_ci"] = np.nanpercentile(balanced, [2.5, 97.5]).round(4).tolist()
    if errors is not None:
        mae = weights @ np.asarray(errors, np.float64) / weights.sum(axis=1)
        out["mae_ci"] = np.percentile(mae, [2.5, 97.5]).round(4).tolist()
    if p is not None:
        p = np.asarray(p, np.float64)
        which = np.clip((p * 10).astype(int), 0, 9)
        gap = sum(np.abs(weights[:, which == b] @ (y[which == b] - p[which == b])) for b in range(10))
        out["ece_ci"] = np.percentile(gap / weights.sum(axis=1), [2.5, 97.5]).round(4).tolist()
    if covered is not None:
        hit = np.asarray(covered, np.float64)
        parts = {"coverage_ci": np.ones(len(hit), bool)}
        if outside is not None:
            far = np.asarray(outside, bool)
            parts |= {"coverage_inside_ci": ~far, "coverage_outside_ci": far}
        for key, rows in parts.items():
            with np.errstate(invalid="ignore", divide="ignore"):
                share = weights[:, rows] @ hit[rows] / weights[:, rows].sum(axis=1)
            out[key] = np.nanpercentile(share, [2.5, 97.5]).round(4).tolist() if np.isfinite(share).any() else None
    return out


# ----------------------------------------------------------------------------------------------- predictions
def cross_predict(
    data: MeasuredSet,
    folds: list[tuple[np.ndarray, np.ndarray]],
    transfer: Transfer | None,
    params: dict[str, Any],
    calibrate: bool = True,
) -> pd.DataFrame:
    """Out-of-fold predictions of the measured classifier and regressor (NaN for rows in no test part). With
    ``calibrate`` each fold's models are calibrated, and get their intervals, from group folds inside that fold's
    training part only (:meth:`lisearch.measured.models.MeasuredModel.fit` with groups), as the shipped models are
    from all of OBELiX.

    Columns: fold, p_fast (calibrated classifier probability), p_fast_raw (the forest's), label (p_fast >= the fold
    classifier's cut-off), log10_sigma_pred, log10_sigma_low / _high (conformal interval; NaN without
    ``calibrate``), outside (outside the fold model's applicability domain), median_baseline (training median).
    """
    n = len(data.y)
    out = pd.DataFrame(
        {"fold": -1, "p_fast": np.nan, "p_fast_raw": np.nan, "label": -1, "log10_sigma_pred": np.nan,
         "log10_sigma_low": np.nan, "log10_sigma_high": np.nan, "outside": False, "median_baseline": np.nan},
        index=range(n),
    )  # fmt: skip
    for k, (train, test) in enumerate(folds):
        groups = data.groups[train] if calibrate else None
        models = fit_pair(data.fractions[train], data.log10_sigma[train], transfer, groups, **params)
        classifier, regressor = models["classifier"], models["regressor"]
        X = classifier.features(data.fractions[test])
        values = measured_outputs(classifier, regressor, data.fractions[test])
        out.loc[test, "fold"] = k
        out.loc[test, "p_fast"] = values["measured_p_fast"]
        out.loc[test, "p_fast_raw"] = classifier.ensemble_.predict(X)
        out.loc[test, "label"] = values["measured_label"].astype(int)
        out.loc[test, "log10_sigma_pred"] = values["measured_log10_sigma"]
        out.loc[test, "log10_sigma_low"] = values["measured_log10_sigma_low"]
        out.loc[test, "log10_sigma_high"] = values["measured_log10_sigma_high"]
        out.loc[test, "outside"] = ~values["measured_in_domain"]
        out.loc[test, "median_baseline"] = float(np.median(data.log10_sigma[train]))
    return out


def sml_on_obelix(partial_occupancy: str = "sample") -> pd.DataFrame:
    """sML (published coefficients) on the bundled OBELiX CIFs: id, p_superionic, label (-1 when not
    featurized), status, reason."""
    items = list(iter_cifs(OBELIX_CIFS))
    batch = pd.DataFrame({"material_id": [i for i, _ in items], "cif": [c for _, c in items]})
    out = label_cifs(batch, partial_occupancy=partial_occupancy)
    return out.rename(columns={"material_id": "id"})[["id", "p_superionic", "label", "status", "reason"]]


def _fixed_model_rows(
    data: MeasuredSet, models: dict[str, Any], sml: pd.DataFrame | None
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Rows for the models that never saw OBELiX, and their scores by model (NaN where not scorable)."""
    rows, scores = [], {}
    scopes = {"official test split": data.split == "test", "leave-system-out CV": np.ones(len(data.y), bool)}
    for name, model in models.items():
        mask = model.known_rows(data.fractions) if hasattr(model, "known_rows") else np.ones(len(data.y), bool)
        score = np.full(len(data.y), np.nan)
        score[mask] = model.decision_function(data.fractions[mask])
        scores[name] = score
    if sml is not None:
        indexed = sml.set_index("id")
        p = indexed["p_superionic"].where(indexed["label"] >= 0)
        scores["sML"] = np.array(
            [p.get(i, np.nan) if c else np.nan for i, c in zip(data.ids, data.cif_id, strict=True)]
        )
        scores["sML"] = scores["sML"] - 0.5
    for name, score in scores.items():
        for scope, rows_in in scopes.items():
            have = rows_in & np.isfinite(score)
            label = (score[have] > 0).astype(int)
            metrics = classification_metrics(data.y[have], label, score[have])
            intervals = bootstrap_intervals(data.groups[have], data.y[have], label)
            rows.append({"model": name, "scope": scope, "trained_on": "not OBELiX", **metrics, **intervals})
    return rows, scores


def _measured_rows(data: MeasuredSet, name: str, scope: str, pred: pd.DataFrame, threshold: float) -> list[dict]:
    have = pred["fold"].to_numpy() >= 0
    y, target = data.y[have], data.log10_sigma[have]
    p = pred["p_fast"].to_numpy()[have]
    raw = pred["p_fast_raw"].to_numpy()[have]
    reg = pred["log10_sigma_pred"].to_numpy()[have]
    cut = np.log10(threshold)
    base = {"scope": scope, "trained_on": "OBELiX training part"}
    groups = data.groups[have]
    label, reg_label = pred["label"].to_numpy()[have], (reg >= cut).astype(int)
    calibration = {
        "ece": expected_calibration_error(y, p), "ece_uncalibrated": expected_calibration_error(y, raw),
        "ece_if_calibrated": chance_ece(p),
        "brier": brier_score(y, p), "brier_uncalibrated": brier_score(y, raw),
        "balanced_accuracy_at_0.5": classification_metrics(y, (p >= 0.5).astype(int))["balanced_accuracy"],
        "reliability": reliability_table(y, p), "by_system": system_calibration(y, p, groups),
    }  # fmt: skip
    low, high = pred["log10_sigma_low"].to_numpy()[have], pred["log10_sigma_high"].to_numpy()[have]
    intervals: dict[str, Any] = {}
    if np.isfinite(low).all() and len(low):
        covered = (target >= low) & (target <= high)
        outside = pred["outside"].to_numpy(dtype=bool)[have]
        intervals = {
            "coverage": float(covered.mean()), "mean_width": float(np.mean(high - low)),
            "n_inside": int((~outside).sum()), "n_outside": int(outside.sum()),
            "coverage_inside": float(covered[~outside].mean()) if (~outside).any() else None,
            "coverage_outside": float(covered[outside].mean()) if outside.any() else None,
            "mean_width_inside": float(np.mean((high - low)[~outside])) if (~outside).any() else None,
            "mean_width_outside": float(np.mean((high - low)[outside])) if outside.any() else None,
            **bootstrap_intervals(groups, y, reg_label, covered=covered, outside=outside),
        }  # fmt: skip
    return [
        {
            "model": f"{name} classifier",
            **base,
            **classification_metrics(y, label, p),
            **calibration,
            **bootstrap_intervals(groups, y, label, p=p),
        },
        {
            "model": f"{name} regressor",
            **base,
            **classification_metrics(y, reg_label, reg),
            **regression_metrics(target, reg, pred["median_baseline"].to_numpy()[have]),
            **bootstrap_intervals(groups, y, reg_label, np.abs(reg - target)),
            **intervals,
        },
    ]


def validate(
    data: MeasuredSet,
    fixed_models: dict[str, Any],
    transfer: Transfer,
    params: dict[str, Any],
    folds: int = 10,
    sml: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """The validation report: ``rows`` (one per model and scope), ``predictions`` (a DataFrame per row of OBELiX
    with every model's out-of-sample score), the settings and the published figures."""
    rows, scores = _fixed_model_rows(data, fixed_models, sml)
    predictions = pd.DataFrame(
        {"id": data.ids, "formula": data.formulas, "split": data.split, "group": data.groups, "y": data.y}
    )
    predictions["log10_sigma"] = data.log10_sigma
    for name, score in scores.items():
        predictions[f"{name}_score"] = score
    protocols = {"official test split": official_folds(data), "leave-system-out CV": system_folds(data, folds)}
    variants = {"measured (transfer)": transfer, "measured (no transfer)": None}
    for scope, fold_list in protocols.items():
        tag = "test" if scope.startswith("official") else "cv"
        for name, source in variants.items():
            pred = cross_predict(data, fold_list, source, params, calibrate=source is not None)
            rows += _measured_rows(data, name, scope, pred, params["threshold"])
            key = "transfer" if source is not None else "no_transfer"
            predictions[f"{key}_{tag}_p_fast"] = pred["p_fast"].to_numpy()
            predictions[f"{key}_{tag}_log10_sigma"] = pred["log10_sigma_pred"].to_numpy()
            predictions[f"{key}_{tag}_fold"] = pred["fold"].to_numpy()
            if source is not None:
                for column in ("p_fast_raw", "label", "log10_sigma_low", "log10_sigma_high", "outside"):
                    predictions[f"{key}_{tag}_{column}"] = pred[column].to_numpy()
    return {
        "rows": rows,
        "predictions": predictions,
        "settings": {**params, "cv_folds": folds, "n": len(data.y), "positives": int(data.y.sum())},
        "sml_featurized": None if sml is None else int((sml["label"] >= 0).sum()),
        "sml_cifs": None if sml is None else len(sml),
        "published": PUBLISHED,
    }


def calibration_study(
    data: MeasuredSet, transfer: Transfer | None, params: dict[str, Any], folds: int = 10
) -> dict[str, Any]:
    """How each source of P(fast) (:data:`lisearch.measured.calibration.P_FAST_SOURCES`), each recalibration of it
    (:data:`~lisearch.measured.calibration.CALIBRATIONS`) and each cut-off rule does on chemical systems it has not
    seen, measured **inside OBELiX's official training part only** (the test split is never read): ``folds``
    leave-system-out folds over the training rows; in each, the classifier is fitted with the fold's training groups
    (its out-of-group predictions come from ``calibration_folds`` group folds inside them), every method is fitted on
    those predictions and applied to the fold's held-out systems. This is the evidence behind the defaults
    ``measured.p_fast``, ``measured.calibration`` and ``measured.cut_rule`` (docs/science.md says how each was chosen).

    Returns ``{"rows": [{"p_fast", "calibration", "cut_rule", "ece", "brier", "roc_auc", "balanced_accuracy"}, ...],
    "n", "folds"}``; the probabilities are pooled over the folds."""
    train = np.flatnonzero(data.split == "train")
    y = data.y[train]
    rows_out = []
    for source in P_FAST_SOURCES:
        pooled, cuts = _study_predictions(data, train, transfer, {**params, "p_fast": source}, folds)
        rows_out += [
            {"p_fast": source, "calibration": m, "cut_rule": rule, "ece": expected_calibration_error(y, pooled[m]),
             "brier": brier_score(y, pooled[m]), "roc_auc": float(roc_auc_score(y, pooled[m])),
             "balanced_accuracy": float(balanced_accuracy_score(y, pooled[m] >= cuts[(m, rule)]))}
            for m in CALIBRATIONS for rule in ("balanced", "search")
        ]  # fmt: skip
    return {"rows": rows_out, "n": len(train), "folds": folds}


def _study_predictions(
    data: MeasuredSet, train: np.ndarray, transfer: Transfer | None, params: dict[str, Any], folds: int
) -> tuple[dict[str, np.ndarray], dict[tuple[str, str], np.ndarray]]:
    """The calibration study's pooled held-out probabilities (train,) per recalibration and cut-offs (train,) per
    (recalibration, cut rule), for one P(fast) source in ``params``."""
    y = data.y[train]
    pooled = {m: np.full(len(train), np.nan) for m in CALIBRATIONS}
    cuts = {(m, rule): np.full(len(train), np.nan) for m in CALIBRATIONS for rule in ("balanced", "search")}
    for fit_rows, held in GroupKFold(folds).split(train, groups=data.groups[train]):
        rows = train[fit_rows]
        model = MeasuredModel(task="classifier", transfer=transfer, **{**params, "calibration": "none"})
        model.fit(data.fractions[rows], data.log10_sigma[rows], data.groups[rows])
        raw = model.ensemble_.predict(model.features(data.fractions[train[held]]))
        for method in CALIBRATIONS:
            fitted = ProbabilityCalibration.fit(model.out_of_group_, y[fit_rows], method)
            pooled[method][held] = fitted.transform(raw)
            cuts[(method, "balanced")][held] = 0.5 if method == "none" else y[fit_rows].mean()
            cuts[(method, "search")][held] = balanced_cut(y[fit_rows], fitted.transform(model.out_of_group_))
    return pooled, cuts


def calibration_study_markdown(study: dict[str, Any]) -> str:
    """The calibration study as a Markdown table."""
    lines = [
        f"Sources and recalibrations of P(fast) on unseen chemical systems, inside OBELiX's official training part "
        f"only ({study['n']} materials, {study['folds']} leave-system-out folds; probabilities pooled over folds)",
        "",
        "| P(fast) | calibration | cut-off rule | ECE | Brier | ROC-AUC | balanced accuracy |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in study["rows"]:
        lines.append(
            f"| {r.get('p_fast', 'balanced')} | {r['calibration']} | {r['cut_rule']} | {_fmt(r['ece'])} | "
            f"{_fmt(r['brier'])} | {_fmt(r['roc_auc'])} | {_fmt(r['balanced_accuracy'])} |"
        )
    return "\n".join(lines)


def validation_frame(report: dict[str, Any]) -> pd.DataFrame:
    """The validation rows as a DataFrame."""
    return pd.DataFrame(report["rows"])


# --------------------------------------------------------------------------------------------------- output
def _fmt(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not np.isfinite(value)) else f"{value:.{digits}f}"


BOOTSTRAP_NOTE = (
    f" In brackets: 95 % intervals over {BOOTSTRAP_RESAMPLES:,} bootstrap resamples of chemical systems (a system's "
    "rows together)."
)


def _interval(ci: Any) -> str:
    """A bootstrap interval as text to append to its number, "[lo, hi]" after a space; empty when there is none
    (reports written before intervals, or a single class in every resample)."""
    if not isinstance(ci, list | tuple) or len(ci) != 2:
        return ""
    return f" [{_fmt(ci[0], 2)}, {_fmt(ci[1], 2)}]"


def to_markdown(report: dict[str, Any]) -> str:
    """The validation table as Markdown with its notes."""
    frame = validation_frame(report)
    lines = [
        f"Measured conductivities (OBELiX, {report['settings']['n']} materials, {report['settings']['positives']} with "
        f"sigma >= {report['settings']['threshold']:g} S/cm)",
        "",
        "| model | scope | n | accuracy | balanced acc. | MCC | ROC-AUC | MAE log10 sigma (median baseline) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in frame.to_dict("records"):
        has_mae = pd.notna(r.get("mae"))
        mae = (
            f"{_fmt(r['mae'], 2)}{_interval(r.get('mae_ci'))} ({_fmt(r['median_baseline_mae'], 2)})" if has_mae else ""
        )
        balanced = _fmt(r["balanced_accuracy"]) + _interval(r.get("balanced_accuracy_ci"))
        lines.append(
            f"| {r['model']} | {r['scope']} | {r['n']} | {_fmt(r['accuracy'])} | {balanced} | "
            f"{_fmt(r['mcc'])} | {_fmt(r['roc_auc'])} | {mae} |"
        )
    lines += [
        "",
        f"Leave-system-out CV: {report['settings']['cv_folds']} folds, a chemical system (elements at >= 5 at%) "
        "never in both parts. Models not trained on OBELiX are scored on every row they can score. sML: "
        f"{report['sml_featurized']} of {report['sml_cifs']} OBELiX CIFs featurized. "
        f"Published: OBELiX baseline test MAE {report['published']['obelix_baseline_test_mae']}."
        + (BOOTSTRAP_NOTE if any(r.get("balanced_accuracy_ci") for r in report["rows"]) else ""),
    ]
    return "\n".join(lines + _calibration_markdown(frame, report["settings"]))


def _calibration_markdown(frame: pd.DataFrame, settings: dict[str, Any]) -> list[str]:
    """The calibration and interval tables of the calibrated (transfer) models; none for older reports."""
    if "ece" not in frame or "coverage" not in frame:
        return []
    rows = frame[frame["ece"].notna() & frame["model"].str.contains(r"\(transfer\)")]
    method = settings.get("calibration", "none")
    lines = [
        "",
        f"Calibration of P(fast) (measured classifier, transfer; recalibration `{method}`, fitted on group folds "
        "inside each training part; ECE over 10 equal-width bins)",
        "",
        "| scope | n | ECE | ECE without recalibration | ECE of a calibrated model by chance (mean, 95 %) | Brier "
        "(without) | balanced acc. at the cut-off / at 0.5 |",
        "|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows.to_dict("records"):
        chance = r.get("ece_if_calibrated") or [None, None]
        lines.append(
            f"| {r['scope']} | {r['n']} | {_fmt(r['ece'])}{_interval(r.get('ece_ci'))} | "
            f"{_fmt(r['ece_uncalibrated'])} | {_fmt(chance[0])}, {_fmt(chance[1])} | "
            f"{_fmt(r['brier'])} ({_fmt(r['brier_uncalibrated'])}) | {_fmt(r['balanced_accuracy'])} / "
            f"{_fmt(r['balanced_accuracy_at_0.5'])} |"
        )
    for r in rows.to_dict("records"):
        lines += ["", _by_system_line(r)] if isinstance(r.get("by_system"), dict) else []
    rows = frame[frame["coverage"].notna()]
    coverage = settings.get("coverage", 0.8)
    lines += ["", f"Conformal intervals of log10 sigma ({100 * coverage:.0f} %; measured regressor, transfer)", "",
              "| scope | coverage | inside the domain (n) | outside (n) | mean width inside / outside (dex) |",
              "|---|---|---|---|---|"]  # fmt: skip
    for r in rows.to_dict("records"):
        lines.append(
            f"| {r['scope']} | {_fmt(r['coverage'])}{_interval(r.get('coverage_ci'))} | "
            f"{_fmt(r['coverage_inside'])}{_interval(r.get('coverage_inside_ci'))} ({int(r['n_inside'])}) | "
            f"{_fmt(r['coverage_outside'])}{_interval(r.get('coverage_outside_ci'))} ({int(r['n_outside'])}) | "
            f"{_fmt(r['mean_width_inside'], 2)} / {_fmt(r['mean_width_outside'], 2)} |"
        )
    return lines


def _by_system_line(row: dict[str, Any]) -> str:
    """One sentence on how much of a row's ECE one chemical system carries (:func:`system_calibration`)."""
    by = row["by_system"]
    chance = by["ece_system_weighted_if_calibrated"]
    text = (
        f"{row['scope']}: ECE with every chemical system counted once {_fmt(by['ece_system_weighted'])} "
        f"(a calibrated model by chance {_fmt(chance[0])}, 95 % {_fmt(chance[1])})"
    )
    top = by.get("most_influential")
    if top:
        text += (
            f"; the system that moves it most is {top['system']} ({top['n']} materials, "
            f"mean P {_fmt(top['mean_p'], 2)}, observed share fast {_fmt(top['observed'], 2)}): without it the ECE "
            f"is {_fmt(top['ece_without'])}."
        )
    return text


def validation_figure(pred: pd.DataFrame) -> Any:
    """ROC curves (official test split and CV) and predicted vs measured log10 sigma (transfer regressor), from the
    per-material predictions of :func:`validate` (``measured_predictions.csv``)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.8))
    curves = {"eML": "eML_score", "esML": "esML_score", "atom2vec-esML": "atom2vec-esML_score", "sML": "sML_score"}
    for ax, tag, title in ((axes[0], "test", "official test split"), (axes[1], "cv", "leave-system-out CV")):
        rows = pred["split"].eq("test") if tag == "test" else pd.Series(True, index=pred.index)
        extra = {"measured classifier": f"transfer_{tag}_p_fast", "no transfer": f"no_transfer_{tag}_p_fast"}
        for label, column in {**curves, **extra}.items():
            if column not in pred:
                continue
            have = rows & pred[column].notna()
            if pred.loc[have, "y"].nunique() < 2:
                continue
            fpr, tpr, _ = roc_curve(pred.loc[have, "y"], pred.loc[have, column])
            auc = roc_auc_score(pred.loc[have, "y"], pred.loc[have, column])
            ax.plot(fpr, tpr, label=f"{label} (AUC {auc:.2f}, n={int(have.sum())})")
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
        ax.set(title=f"ROC, {title}", xlabel="false positive rate", ylabel="true positive rate")
        ax.legend(fontsize=7, loc="lower right")
    ax = axes[2]
    for tag, marker in (("cv", "."), ("test", "x")):
        column = f"transfer_{tag}_log10_sigma"
        have = pred[column].notna() & (pred["split"].eq("test") if tag == "test" else True)
        ax.scatter(pred.loc[have, "log10_sigma"], pred.loc[have, column], s=10, marker=marker, alpha=0.6,
                   label="official test" if tag == "test" else "leave-system-out CV")  # fmt: skip
    ax.plot([-12, -1], [-12, -1], color="0.5", lw=0.8)
    ax.set(title="measured regressor (transfer)", xlabel="measured log10 sigma (S/cm)", ylabel="predicted")
    ax.legend(fontsize=7)
    ax = axes[3]
    for tag, title in (("cv", "leave-system-out CV"), ("test", "official test split")):
        for column, style in ((f"transfer_{tag}_p_fast", "-o"), (f"transfer_{tag}_p_fast_raw", ":x")):
            if column not in pred:
                continue
            have = pred[column].notna() & (pred["split"].eq("test") if tag == "test" else True)
            table = [r for r in reliability_table(pred.loc[have, "y"].to_numpy(), pred.loc[have, column].to_numpy())
                     if r["n"]]  # fmt: skip
            kind = "uncalibrated" if column.endswith("raw") else "calibrated"
            ax.plot([r["mean_p"] for r in table], [r["observed"] for r in table], style, ms=4,
                    label=f"{title}, {kind}")  # fmt: skip
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8)
    ax.set(title="reliability of P(fast) (transfer)", xlabel="mean predicted P (10 bins)", ylabel="observed share fast")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def interval_figure(pred: pd.DataFrame, tag: str = "cv") -> Any:
    """Predicted log10 sigma with its conformal interval against the measured value (transfer regressor; ``tag``
    ``"cv"``: leave-system-out CV, ``"test"``: the official test split), coloured by applicability domain, from the
    per-material predictions of :func:`validate`; an interval that misses the measurement is drawn darker."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 6))
    columns = [f"transfer_{tag}_{c}" for c in ("log10_sigma", "log10_sigma_low", "log10_sigma_high", "outside")]
    if any(c not in pred for c in columns):
        raise InputError("These predictions have no intervals: rerun `lisearch validate` with this lisearch.")
    value, low, high, outside = (pred[c] for c in columns)
    rows = value.notna() & (pred["split"].eq("test") if tag == "test" else True)
    for far, colour, label in ((False, "tab:blue", "inside the domain"), (True, "tab:orange", "outside the domain")):
        keep = rows & outside.astype(bool).eq(far)
        if not keep.any():
            continue
        measured = pred.loc[keep, "log10_sigma"]
        hit = (measured >= low[keep]) & (measured <= high[keep])
        errors = np.vstack([value[keep] - low[keep], high[keep] - value[keep]])
        ax.errorbar(measured, value[keep], yerr=errors, fmt="o", ms=3, color=colour, ecolor=colour, alpha=0.35, lw=0.6,
                    label=f"{label}: {int(hit.sum())} of {int(keep.sum())} covered")  # fmt: skip
    ax.plot([-13, 0], [-13, 0], color="0.5", lw=0.8)
    scope = "leave-system-out CV" if tag == "cv" else "official test split"
    ax.set(title=f"log10 sigma with its conformal interval ({scope})", xlabel="measured log10 sigma (S/cm)",
           ylabel="predicted log10 sigma (S/cm)")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def ablation(rows: pd.DataFrame) -> pd.DataFrame:
    """Transfer vs no transfer: balanced accuracy, ROC-AUC and MAE of the measured models per scope."""
    measured = rows[rows["model"].str.startswith("measured")].copy()
    measured["transfer"] = ~measured["model"].str.contains("no transfer")
    measured["model"] = measured["model"].str.replace(r" \((no )?transfer\)", "", regex=True)
    columns = [c for c in ("balanced_accuracy", "roc_auc", "mae") if c in measured]
    return measured.pivot_table(index=["model", "scope"], columns="transfer", values=columns)


def plot_validation(report: dict[str, Any], path: Path) -> None:
    """The validation figure (ROC curves, predicted vs measured) saved to ``path``."""
    fig = validation_figure(report["predictions"])
    fig.savefig(path, dpi=110)
    pyplot().close(fig)


def write_validation(report: dict[str, Any], folder: Path) -> dict[str, Path]:
    """measured.json (rows, settings), measured.md, measured.png, measured_predictions.csv in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": folder / "measured.json",
        "markdown": folder / "measured.md",
        "figure": folder / "measured.png",
        "predictions": folder / "measured_predictions.csv",
    }
    body = {k: v for k, v in report.items() if k != "predictions"}
    paths["json"].write_text(json.dumps(body, indent=1, default=lambda v: None))
    paths["markdown"].write_text(to_markdown(report) + "\n")
    report["predictions"].to_csv(paths["predictions"], index=False)
    plot_validation(report, paths["figure"])
    return paths


def run_calibration_study(settings: Any, output: Path | None = None) -> tuple[dict[str, Any], Path]:
    """`lisearch validate --calibration-study`: :func:`calibration_study` with the settings' models; writes
    ``calibration_study.json`` and ``.md`` into ``output`` (default ``<home>/reports``)."""
    m = settings.measured
    transfer = load_transfer(settings.paths.artifacts_dir)
    study = calibration_study(
        measured_set(m.threshold, m.group_min_fraction), transfer, model_params(settings), m.cv_folds
    )
    folder = output or settings.paths.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "calibration_study.json").write_text(json.dumps(study, indent=1))
    path = folder / "calibration_study.md"
    path.write_text(calibration_study_markdown(study) + "\n")
    return study, path


def _validation_key(settings: Any, with_sml: bool) -> dict[str, Any]:
    """The key of a saved validation: the model files, OBELiX's files, the measured settings."""
    m, artifacts = settings.measured, settings.paths.artifacts_dir
    files = [artifacts / f for f in (*MODEL_FILES.values(), *LINEAR_FILES.values(), ATOM2VEC_FILE)]
    return metrics_key(
        [*files, *sorted(p for p in OBELIX_DIR.iterdir() if p.is_file())],
        measured={f.name: getattr(m, f.name) for f in dataclasses.fields(m)},
        with_sml=with_sml, partial_occupancy=settings.label.partial_occupancy,
    )  # fmt: skip


def saved_validation(settings: Any, with_sml: bool = True) -> dict[str, Any] | None:
    """The validation saved beside the artifacts for the same models, data and settings; None when there is none."""
    return load_metrics(settings.paths.artifacts_dir / METRICS_DIR, "measured", _validation_key(settings, with_sml))


def run_validation(
    settings: Any, output: Path | None = None, with_sml: bool = True, reuse: bool = False
) -> tuple[dict[str, Any], Any]:
    """`lisearch validate` on ``Settings``: every trained model on OBELiX; writes the report into ``output`` (default
    ``<home>/reports``) and returns (report, paths written). The report is saved beside the artifacts
    (``<artifacts>/metrics/measured``); with ``reuse`` a saved one for the same models, data and settings
    (:func:`saved_validation`) is taken instead of recomputing (``lisearch report``: seconds)."""
    m = settings.measured
    artifacts = settings.paths.artifacts_dir
    report = saved_validation(settings, with_sml) if reuse else None
    if report is None:
        transfer = load_transfer(artifacts)  # esML and atom2vec-esML, read once for both roles
        eml = load_models(artifacts, ("eml",))["eml"]
        fixed = {"eML": eml, "esML": transfer.esml, "atom2vec-esML": transfer.atom2vec}
        data = measured_set(m.threshold, m.group_min_fraction)
        sml = sml_on_obelix(settings.label.partial_occupancy) if with_sml else None
        report = validate(data, fixed, transfer, model_params(settings), m.cv_folds, sml)
        save_metrics(artifacts / METRICS_DIR, "measured", _validation_key(settings, with_sml), report)
    return report, write_validation(report, output or settings.paths.home / "reports")


__all__ = [
    "bootstrap_intervals", "measured_set", "run_validation", "saved_validation", "system_folds", "validate",
    "write_validation",
]  # fmt: skip
