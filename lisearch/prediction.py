"""``lisearch predict``: score formulas with every trained composition model, without Spark.

One output row per input formula, in input order; a formula that cannot be used gets its error in the
``error`` column and the other rows are still scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lisearch.chemistry.composition import parse_formulas
from lisearch.chemistry.elements import OXIDATION_LISTS, oxidation_states, symbols
from lisearch.chemistry.neutrality import cost_per_kg, integer_amounts, mean_atomic_mass, neutral_amounts
from lisearch.errors import InputError
from lisearch.measured.models import load_measured, measured_outputs
from lisearch.models.atom2vec import Atom2VecModel
from lisearch.models.linear import ElementalLinearModel
from lisearch.models.loading import load_atom2vec, load_models
from lisearch.schema import MEASURED_COLUMNS, numpy_type

PREDICT_MODELS = ("esml", "eml", "atom2vec", "measured")


def predict_with_artifacts(
    formulas: Sequence[str], artifacts_dir: Path, models: Sequence[str] | None = None
) -> pd.DataFrame:
    """:func:`predict_formulas` with the models trained into ``artifacts_dir``. ``models``: names from
    :data:`PREDICT_MODELS`; None = every trained one (atom2vec and measured only when trained); naming a model that is
    not trained is an :class:`InputError` that says which command trains it."""
    names = list(PREDICT_MODELS if models is None else models)
    unknown = [n for n in names if n not in PREDICT_MODELS]
    if unknown or not names:
        raise InputError(f"Unknown model name(s) {', '.join(unknown) or '(none)'}; use {', '.join(PREDICT_MODELS)}.")
    if not formulas:
        raise InputError("Give formulas on the command line or --csv FILE with a `formula` column.")
    explicit = models is not None
    loaded: dict[str, Any] = dict(load_models(artifacts_dir, [n for n in ("esml", "eml") if n in names]))
    atom2vec = load_atom2vec(artifacts_dir) if "atom2vec" in names else None
    if atom2vec is not None:
        loaded["atom2vec"] = atom2vec
    elif explicit and "atom2vec" in names:
        raise InputError(f"No atom2vec-esML model in {artifacts_dir}. Run `lisearch train-atom2vec` first.")
    measured = load_measured(artifacts_dir, required=explicit) if "measured" in names else {}
    return predict_formulas(formulas, loaded, measured)


def predict_formulas(
    formulas: Sequence[str],
    models: dict[str, ElementalLinearModel | Atom2VecModel],
    measured: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Columns: formula, error, <model>_score, <model>_label per model, the measured models' columns
    (:func:`add_measured_columns`) when ``measured`` holds a classifier and a regressor, neutral_<list> per
    oxidation-state list, cost_per_kg (USD/kg), mean_atomic_mass (g/mol per atom).

    One row per formula, always: when the batch fails as a whole (a value no check foresaw), the rows are scored one
    by one and a row that still fails carries its exception in ``error``, so one row never costs the others."""
    try:
        return _predict_batch(formulas, models, measured)
    except Exception:
        if len(formulas) <= 1:
            raise
    rows = []
    for formula in formulas:
        try:
            rows.append(_predict_batch([formula], models, measured))
        except Exception as exc:
            row = _predict_batch([""], models, measured)  # every column, nothing scored
            row["formula"], row["error"] = formula, f"{formula!r} could not be scored ({type(exc).__name__}: {exc})"
            rows.append(row)
    return pd.concat(rows, ignore_index=True)


def _predict_batch(
    formulas: Sequence[str],
    models: dict[str, ElementalLinearModel | Atom2VecModel],
    measured: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """:func:`predict_formulas` in one batch."""
    fractions, errors, amounts = parse_formulas(list(formulas))
    ok = np.array([e is None for e in errors])
    out = pd.DataFrame({"formula": list(formulas), "error": errors})
    for name, model in models.items():
        score = np.full(len(out), np.nan)
        rows = ok.copy()
        if isinstance(model, Atom2VecModel):  # an element without a learned vector: an error for that row only
            problems: list[str | None] = [None] * len(out)
            rows = ok & model.known_rows(fractions)
            for i in np.flatnonzero(ok & ~rows):  # only the failing rows: for their message
                try:
                    model.vectors([symbols()[c] for c in np.flatnonzero(fractions[i])], f"the {name} model")
                except InputError as exc:
                    problems[i] = str(exc)
            out[f"{name}_error"] = problems
        if rows.any():
            score[rows] = model.decision_function(fractions[rows])
        out[f"{name}_score"] = score
        out[f"{name}_label"] = pd.array(np.where(rows, (score > 0).astype(int), -1), dtype="Int8")
    if measured:
        add_measured_columns(out, fractions, ok, measured)
    states = {name: oxidation_states(name) for name in OXIDATION_LISTS}
    ints = [integer_amounts(a) if a else None for a in amounts]
    for name in OXIDATION_LISTS:
        neutral = neutral_amounts(ints, states[name])
        out[f"neutral_{name}"] = pd.array([None if i is None else bool(v) for i, v in zip(ints, neutral, strict=True)],
                                          dtype="boolean")  # fmt: skip
    cost = np.full(len(out), np.nan)
    mass = np.full(len(out), np.nan)
    if ok.any():
        cost[ok] = cost_per_kg(fractions[ok])
        mass[ok] = mean_atomic_mass(fractions[ok])
    out["cost_per_kg"] = cost
    out["mean_atomic_mass"] = mass
    return out


def add_measured_columns(frame: pd.DataFrame, fractions: np.ndarray, ok: np.ndarray, measured: dict[str, Any]) -> None:
    """Add the measured models' columns (:data:`lisearch.schema.MEASURED_COLUMNS`, in their types) to a
    :func:`predict_formulas` frame (rows where ``ok``; NaN elsewhere): measured_p_fast (calibrated probability of
    sigma >= the threshold), measured_label (1 / 0 at the classifier's cut-off, -1 for failed rows, as the other
    models' labels), measured_log10_sigma (regressor, S/cm) and its conformal interval (measured_log10_sigma_low /
    _high), measured_ad_distance (to the nearest measured training composition, standardised features) and
    measured_in_domain (null for failed rows)."""
    kinds = {column: numpy_type(kind) for column, kind in MEASURED_COLUMNS.items()}
    values = {column: np.full(len(frame), np.nan) for column in MEASURED_COLUMNS}
    if ok.any():
        scored = measured_outputs(measured["classifier"], measured["regressor"], fractions[ok])
        for column in MEASURED_COLUMNS:
            values[column][ok] = scored[column]
    for column, kind in kinds.items():  # in the schema's order
        if column == "measured_label":
            label = np.where(ok, np.nan_to_num(values[column]), -1).astype(kind)
            frame[column] = pd.array(label, dtype=pd.api.types.pandas_dtype(label.dtype.name.capitalize()))
        elif column == "measured_in_domain":
            inside = [None if not o else bool(v) for o, v in zip(ok, values[column], strict=True)]
            frame[column] = pd.array(inside, dtype="boolean")
        else:
            frame[column] = values[column].astype(kind)


def read_formula_csv(path: Path) -> list[str]:
    """Formulas of the ``formula`` column of a CSV file; InputError when the file, its header or the column is
    missing, when it cannot be read, or when it holds no row."""
    if not path.is_file():
        raise InputError(f"No CSV file at {path}. Give the path of a CSV with a `formula` column.")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(
            f"{path} is empty. Give a CSV with a header line `formula` and one formula per line."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise InputError(
            f"{path} is not a readable CSV ({exc}). Save it as UTF-8 CSV with a `formula` column."
        ) from None
    if "formula" not in frame.columns:
        raise InputError(f"{path} has no `formula` column (columns: {', '.join(frame.columns)}).")
    if frame.empty:
        raise InputError(f"{path} has a `formula` column but no rows. Add one formula per line.")
    return frame["formula"].tolist()
