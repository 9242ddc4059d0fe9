"""Linear composition models, artifacts and their validation, training on small data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lisearch.chemistry.composition import parse_formulas
from lisearch.errors import InputError
from lisearch.models.artifact import FORMAT_VERSION, load_artifact, save_artifact
from lisearch.models.linear import KIND, ElementalLinearModel
from lisearch.models.training import LabelledSet, eml_subset_search, exp40_set, train_esml


def _toy() -> LabelledSet:
    """Sulfides and phosphides positive, oxides and halides negative."""
    pos = ["Li3PS4", "Li2S", "Li7P3S11", "Li3P", "Li4GeS4", "Li2SiS3", "LiAlS2", "Li3BS3", "Li5PS4Cl2", "Li6PS5Br"]
    neg = ["Li2O", "LiCl", "LiF", "Li3PO4", "Li4SiO4", "LiAlO2", "Li2TiO3", "LiNbO3", "LiBr", "Li2ZrO3"]
    fractions, errors, _ = parse_formulas(pos + neg)
    assert not any(errors)
    y = np.array([1] * len(pos) + [0] * len(neg))
    return LabelledSet("toy", fractions, y, np.array(pos + neg))


def test_decision_function_equals_element_weights_form():
    data = _toy()
    model = ElementalLinearModel(class_weight="balanced").fit(data.fractions, data.y)
    bias, weights = model.element_weights()
    np.testing.assert_allclose(model.decision_function(data.fractions), bias + data.fractions @ weights, atol=1e-9)
    assert np.mean(model.predict(data.fractions) == data.y) >= 0.9


def test_non_linear_reductions_have_no_element_weights():
    data = _toy()
    model = ElementalLinearModel(reductions=("mean", "max")).fit(data.fractions, data.y)
    with pytest.raises(InputError, match="mean-reduction"):
        model.element_weights()


def test_artifact_round_trip(tmp_path: Path):
    data = _toy()
    model = ElementalLinearModel(descriptors=["electronegativity", "period"]).fit(data.fractions, data.y)
    path = tmp_path / "m.json"
    save_artifact(path, KIND, model.to_payload({"data": "toy"}))
    loaded = ElementalLinearModel.from_payload(load_artifact(path, kinds=(KIND,))["payload"])
    np.testing.assert_array_equal(loaded.decision_function(data.fractions), model.decision_function(data.fractions))
    assert "pickle" not in path.read_text()


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    data = _toy()
    path = tmp_path / "m.json"
    save_artifact(path, KIND, ElementalLinearModel().fit(data.fractions, data.y).to_payload())
    return path


def test_truncated_artifact(saved: Path):
    saved.write_text(saved.read_text()[:200])
    with pytest.raises(InputError, match=r"not valid JSON.*truncated"):
        load_artifact(saved)


def test_edited_artifact(saved: Path):
    artifact = json.loads(saved.read_text())
    artifact["payload"]["intercept"] += 1.0
    saved.write_text(json.dumps(artifact))
    with pytest.raises(InputError, match="integrity check"):
        load_artifact(saved)


def test_wrong_version_artifact(saved: Path):
    artifact = json.loads(saved.read_text())
    artifact["format_version"] = FORMAT_VERSION + 1
    saved.write_text(json.dumps(artifact))
    with pytest.raises(InputError, match="format version 2; this lisearch reads version 1"):
        load_artifact(saved)


def test_wrong_kind_and_not_an_artifact(saved: Path, tmp_path: Path):
    with pytest.raises(InputError, match="expected one of atom2vec"):
        load_artifact(saved, kinds=("atom2vec",))
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a lisearch model artifact"):
        load_artifact(other)
    with pytest.raises(InputError, match="No model artifact"):
        load_artifact(tmp_path / "missing.json")


def test_payload_with_mismatched_features(saved: Path):
    payload = load_artifact(saved)["payload"]
    payload["coef"] = payload["coef"][:-1]
    with pytest.raises(InputError, match="features do not match"):
        ElementalLinearModel.from_payload(payload)


def test_train_esml_reports_cv_and_holdout():
    data = _toy()
    big = LabelledSet("toy", np.repeat(data.fractions, 5, axis=0), np.repeat(data.y, 5), np.arange(100).astype(str))
    model, metrics = train_esml(big, seed=1, folds=5)
    assert metrics["holdout_size"] == 20 and metrics["cv_accuracy"] > 0.8
    assert 0 < metrics["positive_share"] < 1 and hasattr(model, "coef_")


def test_eml_search_covers_every_subset_on_exp40():
    search = eml_subset_search(exp40_set())
    assert len(search) == 511
    assert search["loocv_accuracy"].iloc[0] == search["loocv_accuracy"].max()
    search["loocv_accuracy"] = 0.0  # callers get a copy of the once-per-process search
    again = eml_subset_search(exp40_set())
    assert again is not search and again["loocv_accuracy"].max() > 0.5


def test_estimators_follow_scikit_learn_conventions():
    """Keyword-only constructors that store their arguments, get_params / clone, NotFittedError, and
    SendekModel.predict_proba with one column per class."""
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    from lisearch.structure.sendek import SendekModel

    model = ElementalLinearModel(descriptors=["period", "group"], C=0.5, class_weight="1:10")
    assert model.get_params() == {"descriptors": ["period", "group"], "reductions": ("mean",), "C": 0.5,
                                  "class_weight": "1:10"}  # fmt: skip
    twin = clone(model)
    assert twin.get_params() == model.get_params() and not hasattr(twin, "coef_")
    with pytest.raises(TypeError):
        ElementalLinearModel(["period"])  # type: ignore[misc]
    with pytest.raises(NotFittedError, match="call fit"):
        model.predict(np.zeros((1, 94)))
    data = exp40_set()
    fitted = model.fit(data.fractions, data.y)
    assert list(fitted.classes_) == [0, 1] and fitted.score(data.fractions, data.y) == pytest.approx(0.425)
    weighted = ElementalLinearModel(class_weight={0: 1.0, 1: 10.0}).fit(data.fractions, data.y)
    same = ElementalLinearModel(class_weight="1:10").fit(data.fractions, data.y)
    assert np.allclose(weighted.coef_, same.coef_)  # one vocabulary, the same model

    sml = SendekModel.published()
    X = np.array([[1.0, 0.5, 2.0, 1.2, 3.0], [2.0, 0.1, 1.0, 1.5, 2.5]])
    proba = sml.predict_proba(X)
    assert proba.shape == (2, 2) and np.allclose(proba.sum(axis=1), 1) and np.allclose(proba[:, 1], sml.p_superionic(X))
    assert clone(SendekModel(C=3.0)).get_params() == {"C": 3.0}
    with pytest.raises(NotFittedError):
        SendekModel().predict(X)


def test_table_one_cells_without_labelled_rows_are_not_an_error():
    """A `structures` table without the DFT set's ids (e.g. `label.limit` small): n/a, not a ValueError."""
    from lisearch.models.training import dft_set, sml_on_ids
    from lisearch.report import _cell

    cell = sml_on_ids(pd.DataFrame({"material_id": ["mp-0"], "label": [1]}), dft_set())
    assert cell["n"] == 0 and np.isnan(cell["accuracy"]) and cell["missing"] == len(dft_set().y)
    assert _cell(cell) == f"n/a ({len(dft_set().y)} unscorable)"
