"""Training eML and esML, and evaluating every model on every data set (the paper's Table I).

Spark-free: the MP set comes in as a pandas DataFrame of the ``structures`` table (material_id, elements,
fractions, label, status), read by :mod:`lisearch.spark.models`.

Choices where the paper is silent (``docs/science.md``):

* descriptors are standardised (fit on the training fold only) and reduced by the composition-weighted mean;
* eML: ``LinearSVC(C=1)``; the best of the 511 descriptor subsets by leave-one-out accuracy, ties broken by
  fewer descriptors, then by descriptor order;
* esML: ``LinearSVC(C=1, class_weight="balanced")`` on all nine descriptors (about 13 % of the labels are
  positive: without reweighting the model favours the majority class); 10-fold stratified CV (seeded) on the
  whole MP set, and a stratified 80/20 hold-out split; the shipped model is the one fitted on the 80 %;
* ``marginal`` DFT-MD verdicts of the Sendek 2017 candidates count as superionic (``marginal="positive"``).
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn import config_context
from sklearn.base import clone
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from lisearch.chemistry.composition import fractions_from_lists, parse_formulas
from lisearch.chemistry.elements import DESCRIPTORS
from lisearch.config import TrainSettings
from lisearch.datasets import dft_random20, exp40, sendek2017_candidates21
from lisearch.errors import InputError
from lisearch.models.artifact import save_artifact
from lisearch.models.linear import KIND, ElementalLinearModel


@dataclass(frozen=True)
class LabelledSet:
    """A named evaluation set: fraction matrix (n, 94), labels (n,), ids (n,)."""

    name: str
    fractions: np.ndarray
    y: np.ndarray
    ids: np.ndarray


def mp_set(structures: pd.DataFrame) -> LabelledSet:
    """The sML-labelled MP set from the ``structures`` table (featurized rows only)."""
    ok = structures[(structures["status"] == "ok") & (structures["label"] >= 0)].sort_values("material_id")
    if ok.empty:
        raise InputError("The `structures` table has no labelled rows. Run `lisearch label-structures` first.")
    fractions = fractions_from_lists(ok["elements"].tolist(), ok["fractions"].tolist())
    return LabelledSet("mp", fractions, ok["label"].to_numpy(dtype=int), ok["material_id"].to_numpy())


def training_set_hash(data: LabelledSet) -> str:
    """sha256 of the (id, label) pairs of a training set (recorded in artifacts)."""
    text = "\n".join(f"{i},{y}" for i, y in zip(data.ids, data.y, strict=True))
    return hashlib.sha256(text.encode()).hexdigest()


def _formula_set(name: str, formulas: list[str], y: np.ndarray, ids: list[str]) -> LabelledSet:
    fractions, errors, _ = parse_formulas(formulas)
    bad = [f"{f}: {e}" for f, e in zip(formulas, errors, strict=True) if e]
    if bad:  # pragma: no cover - shipped data is checked by the tests
        raise InputError(f"bundled {name} set has unparsable formulas: {bad}")
    return LabelledSet(name, fractions, y.astype(int), np.asarray(ids))


def exp40_set() -> LabelledSet:
    """The 40 experimental materials (exp40) as a LabelledSet."""
    table = exp40()
    return _formula_set(
        "exp40", table["reduced_formula"].tolist(), table["superionic"].to_numpy(), table["formula"].tolist()
    )


def dft_set() -> LabelledSet:
    """The 20 randomly chosen MP materials with DFT-MD verdicts as a LabelledSet."""
    table = dft_random20()
    return _formula_set(
        "dft", table["formula"].tolist(), table["dft_superionic"].to_numpy(), table["material_id"].tolist()
    )


def candidates_set(marginal: str = "positive") -> LabelledSet:
    """Sendek 2017's 21 candidates with DFT-MD verdicts (``marginal``: positive, negative or exclude)."""
    table = sendek2017_candidates21()
    if marginal == "exclude":
        table = table[table["dft_md_verdict"] != "marginal"]
    positive = {"yes"} | ({"marginal"} if marginal == "positive" else set())
    y = table["dft_md_verdict"].isin(positive).to_numpy(dtype=int)
    return _formula_set("candidates21", table["formula"].tolist(), y, table["material_id"].tolist())


# ---------------------------------------------------------------------------------------------------- eML
def _loocv(model: ElementalLinearModel, data: LabelledSet) -> float:
    hits = 0
    n = len(data.y)
    for i in range(n):
        keep = np.arange(n) != i
        fitted = clone(model)
        fitted.fit(data.fractions[keep], data.y[keep])
        hits += int(fitted.predict(data.fractions[i : i + 1])[0] == data.y[i])
    return hits / n


_SEARCHES: dict[tuple[str, float], pd.DataFrame] = {}


def eml_subset_search(data: LabelledSet, C: float = 1.0, n_jobs: int | None = -1) -> pd.DataFrame:
    """LOOCV accuracy of a linear SVM for each of the 511 non-empty descriptor subsets, best first.

    The 20,440 fits are spread over ``n_jobs`` processes (joblib's convention: -1 = every core, None or 1 = this
    process); the result does not depend on it. Deterministic, so it is computed once per process for the same
    data and C (about 35 s in one process on the 2-core machine, 20 s on two) and copied.
    """
    key = (hashlib.sha256(data.fractions.tobytes() + data.y.tobytes()).hexdigest(), float(C))
    if key not in _SEARCHES:
        _SEARCHES[key] = _subset_search(data, C, n_jobs)
    return _SEARCHES[key].copy()


def _subset_search(data: LabelledSet, C: float, n_jobs: int | None) -> pd.DataFrame:
    if not np.isfinite(data.fractions).all():
        raise InputError("The eML search got a fraction matrix with NaN or infinite values.")
    subsets = [s for k in range(1, len(DESCRIPTORS) + 1) for s in itertools.combinations(DESCRIPTORS, k)]
    chunks = [subsets[i : i + 32] for i in range(0, len(subsets), 32)]  # 16 tasks: little to ship per task
    scores = Parallel(n_jobs=n_jobs)(delayed(_loocv_subsets)(chunk, data, C) for chunk in chunks)
    rows = [
        {"descriptors": list(subset), "n_descriptors": len(subset), "loocv_accuracy": acc}
        for chunk, accs in zip(chunks, scores, strict=True)
        for subset, acc in zip(chunk, accs, strict=True)
    ]
    frame = pd.DataFrame(rows)
    frame["order"] = np.arange(len(frame))
    return frame.sort_values(["loocv_accuracy", "n_descriptors", "order"], ascending=[False, True, True]).drop(
        columns="order"
    )


def _loocv_subsets(subsets: list[tuple[str, ...]], data: LabelledSet, C: float) -> list[float]:
    """LOOCV accuracy of each descriptor subset (one joblib task)."""
    # the inputs were checked once by the caller, not in each fit (same arithmetic, ~1.5x faster)
    with config_context(assume_finite=True, skip_parameter_validation=True):
        return [_loocv(ElementalLinearModel(descriptors=subset, C=C), data) for subset in subsets]


def train_eml(data: LabelledSet, C: float = 1.0) -> tuple[ElementalLinearModel, pd.DataFrame]:
    """eML: the best descriptor subset by LOOCV on ``data`` refitted on all of it; and the whole search."""
    search = eml_subset_search(data, C)
    best = search.iloc[0]
    return ElementalLinearModel(descriptors=tuple(best["descriptors"]), C=C).fit(data.fractions, data.y), search


# --------------------------------------------------------------------------------------------------- esML
def train_esml(
    data: LabelledSet,
    seed: int = 0,
    C: float = 1.0,
    class_weight: str | dict[int, float] | None = "balanced",
    folds: int = 10,
    descriptors: Sequence[str] = DESCRIPTORS,
) -> tuple[ElementalLinearModel, dict[str, Any]]:
    """Fit esML on an 80 % stratified split; report 10-fold CV (whole set) and hold-out metrics."""
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    pred = np.empty_like(data.y)
    for train, test in cv.split(data.fractions, data.y):
        fold = ElementalLinearModel(descriptors=descriptors, C=C, class_weight=class_weight)
        pred[test] = fold.fit(data.fractions[train], data.y[train]).predict(data.fractions[test])
    train_idx, test_idx = holdout_split(data, seed)
    model = ElementalLinearModel(descriptors=descriptors, C=C, class_weight=class_weight)
    model.fit(data.fractions[train_idx], data.y[train_idx])
    held = model.predict(data.fractions[test_idx])
    metrics = {
        "cv_folds": folds,
        "cv_accuracy": float(accuracy_score(data.y, pred)),
        "cv_balanced_accuracy": float(balanced_accuracy_score(data.y, pred)),
        "holdout_size": len(test_idx),
        "holdout_accuracy": float(accuracy_score(data.y[test_idx], held)),
        "holdout_balanced_accuracy": float(balanced_accuracy_score(data.y[test_idx], held)),
        "constant_classifier_accuracy": float(max(data.y.mean(), 1 - data.y.mean())),
        "positive_share": float(data.y.mean()),
        "seed": seed,
    }
    return model, metrics


def holdout_split(data: LabelledSet, seed: int = 0, test_size: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of the stratified hold-out split used by esML (and atom2vec-esML)."""
    idx = np.arange(len(data.y))
    train, test = train_test_split(idx, test_size=test_size, stratify=data.y, random_state=seed)
    return np.sort(train), np.sort(test)


# ---------------------------------------------------------------------------------------------- Table I
def accuracy(pred: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Accuracy, balanced accuracy, n and the predicted and true positive shares of labels ``pred`` vs ``y``
    (NaN where undefined: no rows, or one class only for the balanced accuracy)."""
    if not len(y):
        return dict.fromkeys(("accuracy", "balanced_accuracy", "predicted_positive_share", "true_positive_share"),
                             float("nan")) | {"n": 0}  # fmt: skip
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)) if len(set(y.tolist())) > 1 else float("nan"),
        "n": len(y),
        "predicted_positive_share": float(np.mean(pred == 1)) if len(pred) else float("nan"),
        "true_positive_share": float(np.mean(y == 1)) if len(y) else float("nan"),
    }


def accuracy_where_scorable(model: Any, fractions: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """:func:`accuracy` over the rows the model can score (atom2vec: every element has a vector); ``missing``
    counts the others."""
    mask = model.known_rows(fractions) if hasattr(model, "known_rows") else np.ones(len(y), bool)
    out = accuracy(model.predict(fractions[mask]), y[mask]) if mask.any() else {"accuracy": float("nan"), "n": 0}
    out["missing"] = int((~mask).sum())
    return out


def sml_on_ids(structures: pd.DataFrame, data: LabelledSet) -> dict[str, Any]:
    """sML (labels of the ``structures`` table) on a set of MP ids; ids without a label are left out."""
    labels = structures.set_index("material_id")["label"]
    got = np.array([labels.get(i, -1) for i in data.ids])
    have = got >= 0
    out = accuracy(got[have], data.y[have])
    out["missing"] = int((~have).sum())
    return out


# ------------------------------------------------------------------------------------------------ train all
def esml_descriptors(text: str, eml_descriptors: Sequence[str]) -> tuple[str, ...]:
    """``all`` -> the nine descriptors, ``eml`` -> eML's subset, else comma-separated names (checked)."""
    if text == "all":
        return tuple(DESCRIPTORS)
    if text == "eml":
        return tuple(eml_descriptors)
    names = tuple(d.strip() for d in text.split(",") if d.strip())
    unknown = [d for d in names if d not in DESCRIPTORS]
    if unknown or not names:
        raise InputError(f"descriptors {text!r}: use all, eml or names from {', '.join(DESCRIPTORS)}.")
    return names


def train_all(
    structures: pd.DataFrame, artifacts_dir: Any, seed: int = 0, esml: TrainSettings | None = None
) -> dict[str, Any]:
    """Train eML (exp40) and esML (sML-labelled MP set, as ``esml`` says: name, class weight, C, descriptors); save
    ``eml.json``, ``<esml_name>.json`` and the eML subset search (``eml_subsets.csv``) into ``artifacts_dir``;
    return a summary."""
    folder = Path(artifacts_dir)
    exp = exp40_set()
    eml, search = train_eml(exp)
    best = search.iloc[0]
    eml_training = {
        "data": "exp40",
        "training_set_sha256": training_set_hash(exp),
        "descriptors": list(best["descriptors"]),
        "best_loocv_accuracy": float(best["loocv_accuracy"]),
        "subsets_tried": len(search),
        "subsets_at_best": int((search["loocv_accuracy"] == best["loocv_accuracy"]).sum()),
    }
    save_artifact(folder / "eml.json", KIND, eml.to_payload(eml_training))
    folder.mkdir(parents=True, exist_ok=True)
    search.assign(descriptors=search["descriptors"].map(" ".join)).to_csv(folder / "eml_subsets.csv", index=False)

    mp = mp_set(structures)
    cfg = esml or TrainSettings()
    descriptors = esml_descriptors(cfg.descriptors, eml.descriptors)
    model, metrics = train_esml(mp, seed, cfg.C, cfg.class_weight, descriptors=descriptors)
    esml_training = {"data": "mp (sML labels)", "training_set_sha256": training_set_hash(mp), "n": len(mp.y),
                     "name": cfg.esml_name, "class_weight": cfg.class_weight, **metrics}  # fmt: skip
    save_artifact(folder / f"{cfg.esml_name}.json", KIND, model.to_payload(esml_training))
    return {"eml": eml_training, "esml": esml_training, "artifacts": str(folder)}
