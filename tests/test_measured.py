"""Measured conductivities: the OBELiX loader, tree ensembles as plain data, the measured models, their artifacts,
the validation protocols (no leakage) and `lisearch predict` with them. No Spark, no JAX: the transfer models are
small ones built here."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.metrics import balanced_accuracy_score

from lisearch.chemistry.composition import parse_formulas
from lisearch.chemistry.elements import symbols
from lisearch.datasets import obelix, parse_conductivities
from lisearch.errors import InputError
from lisearch.measured.models import (
    KIND,
    MODEL_FILES,
    MeasuredModel,
    Transfer,
    feature_names,
    fit_pair,
    load_measured,
    measured_features,
)
from lisearch.measured.trees import TreeEnsemble
from lisearch.measured.validation import (
    bootstrap_intervals,
    classification_metrics,
    measured_set,
    official_folds,
    system_folds,
    to_markdown,
    validate,
    write_validation,
)
from lisearch.models.artifact import load_artifact, make_artifact, save_artifact
from lisearch.models.atom2vec import Atom2VecModel
from lisearch.models.linear import ElementalLinearModel
from tests.conftest import cli_env, lisearch_cmd

PARAMS = {"threshold": 1e-4, "n_trees": 12, "seed": 0, "ad_quantile": 0.95}


@pytest.fixture(scope="module")
def transfer() -> Transfer:
    """A small esML (fitted on a few formulas) and an atom2vec network with random vectors for every element."""
    formulas = ["Li3PS4", "Li2O", "LiCl", "Li7La3Zr2O12", "Li3N", "LiF", "Li10GeP2S12", "Li2SO4", "LiI", "Li3PO4"]
    F, _, _ = parse_formulas(formulas)
    esml = ElementalLinearModel().fit(F, np.array([1, 0, 0, 1, 1, 0, 1, 0, 0, 0]))
    rng = np.random.default_rng(0)
    layers = [(rng.normal(size=(6, 4)), rng.normal(size=4)), (rng.normal(size=(4, 4)), rng.normal(size=4))]
    layers.append((rng.normal(size=(4, 1)), rng.normal(size=1)))
    atom2vec = Atom2VecModel([s for s in symbols() if s != "Eu"], rng.normal(size=(93, 3)), layers)
    return Transfer(esml, atom2vec)


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return measured_set()


# ------------------------------------------------------------------------------------------------- OBELiX
def test_obelix_loader_counts_split_and_censoring():
    table = obelix()
    assert len(table) == 599 and table["id"].is_unique
    assert table["split"].value_counts().to_dict() == {"train": 478, "test": 121}
    assert int(table["censored"].sum()) == 37 and int(table["cif_id"].notna().sum()) == 321
    bound = table[table["censored"]].iloc[0]
    assert bound["sigma_s_per_cm"] in (1e-10, 1e-8) and bound["log10_sigma"] == np.log10(bound["sigma_s_per_cm"])
    assert (table.loc[~table["censored"], "sigma_s_per_cm"] > 0).all()


def test_parse_conductivities_refuses_a_value_that_is_not_a_number(tmp_path: Path):
    sigma, censored = parse_conductivities(["1.5e-3", "<1E-10", " 2E-7 "], ["a", "b", "c"])
    assert sigma.tolist() == [1.5e-3, 1e-10, 2e-7] and censored.tolist() == [False, True, False]
    for bad in ("n/a", "-1e-4", "<abc", ""):
        with pytest.raises(InputError, match=r"row 'x'.*Fix or remove"):
            parse_conductivities([bad], ["x"])
    csv = tmp_path / "mine.csv"
    csv.write_text("ID,Reduced Composition,Ionic conductivity (S cm-1)\nq1,Li3PS4,1e-4\nq2,LiCl,high\n")
    with pytest.raises(InputError, match=r"'high' of row 'q2'"):
        obelix(csv)


def test_measured_set_refuses_a_composition_without_li(tmp_path: Path):
    csv = tmp_path / "mine.csv"
    csv.write_text("ID,Reduced Composition,Ionic conductivity (S cm-1)\nq1,Li3PS4,1e-4\nq2,NaCl,1e-9\n")
    with pytest.raises(InputError, match=r"q2: 'NaCl' contains no Li"):
        measured_set(path=csv)


def test_folds_never_share_a_chemical_system(data):  # type: ignore[no-untyped-def]
    assert data.groups[list(data.ids).index("jqc")] == "Bi-Li-O"  # Li7BiO6
    for train, test in system_folds(data, 10):
        assert not set(data.groups[train]) & set(data.groups[test])
        assert len(train) + len(test) == len(data.y)
    ((train, test),) = official_folds(data)
    assert (len(train), len(test)) == (478, 121) and not set(data.ids[train]) & set(data.ids[test])
    with pytest.raises(InputError, match=r"lower measured\.cv_folds"):
        system_folds(data, 10_000)


# -------------------------------------------------------------------------------------------- tree ensembles
@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_tree_ensemble_reproduces_scikit_learn_exactly(kind: str):
    rng = np.random.default_rng(3)
    X, noise = rng.normal(size=(300, 7)), rng.normal(size=300)
    if kind == "regressor":
        forest = ExtraTreesRegressor(20, max_features=1.0, random_state=0).fit(X, X[:, 0] + noise)
    else:
        forest = ExtraTreesClassifier(20, class_weight="balanced", random_state=0).fit(X, (X[:, 1] + noise > 0.8))
    ensemble = TreeEnsemble.from_sklearn(forest)
    Xt = rng.normal(size=(5000, 7))
    expected = forest.predict(Xt) if kind == "regressor" else forest.predict_proba(Xt)[:, 1]
    np.testing.assert_allclose(ensemble.predict(Xt), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ensemble.predict_numpy(Xt), expected, rtol=0, atol=1e-12)
    again = TreeEnsemble.from_payload(json.loads(json.dumps(ensemble.to_payload())))
    assert np.array_equal(again.predict(Xt), ensemble.predict(Xt))


def test_tree_ensemble_median_of_trees_against_scikit_learn_trees():
    """aggregate="median": the median over the forest's own trees, in the compiled kernel and the numpy oracle."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 4))
    forest = ExtraTreesRegressor(25, max_features=1.0, random_state=0).fit(X, X[:, 0] + rng.normal(size=200))
    ensemble = TreeEnsemble.from_sklearn(forest, "median")
    Xt = rng.normal(size=(1000, 4))
    expected = np.median(np.stack([tree.predict(Xt) for tree in forest.estimators_]), axis=0)
    np.testing.assert_allclose(ensemble.predict(Xt), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(ensemble.predict_numpy(Xt), expected, rtol=0, atol=1e-12)
    assert not np.allclose(expected, forest.predict(Xt))  # the median is not the forest's mean here
    payload = json.loads(json.dumps(ensemble.to_payload()))
    assert np.array_equal(TreeEnsemble.from_payload(payload).predict(Xt), ensemble.predict(Xt))
    older = {k: v for k, v in payload.items() if k != "aggregate"}  # written before medians: a mean
    np.testing.assert_allclose(TreeEnsemble.from_payload(older).predict(Xt), forest.predict(Xt), rtol=0, atol=1e-12)
    with pytest.raises(InputError, match=r"m.json: unknown tree aggregate 'mode'"):
        TreeEnsemble.from_payload({**payload, "aggregate": "mode"}, "m.json")


def test_tree_ensemble_refuses_inconsistent_arrays():
    forest = ExtraTreesRegressor(3, random_state=0).fit(np.arange(40.0).reshape(20, 2), np.arange(20.0))
    payload = TreeEnsemble.from_sklearn(forest).to_payload()
    for key, value in (("left", [0] * len(payload["left"])), ("feature", [9] * len(payload["feature"]))):
        with pytest.raises(InputError, match="inconsistent tree ensemble"):
            TreeEnsemble.from_payload({**payload, key: value}, "m.json")
    with pytest.raises(InputError, match="malformed tree ensemble"):
        TreeEnsemble.from_payload({k: v for k, v in payload.items() if k != "roots"}, "m.json")
    with pytest.raises(InputError, match=r"takes \(n, 2\) features"):
        TreeEnsemble.from_payload(payload).predict(np.zeros((3, 5)))


# ---------------------------------------------------------------------------------------------- the models
def test_features_are_computed_row_by_row(transfer: Transfer, data):  # type: ignore[no-untyped-def]
    """No statistic of other rows enters a row's features: the test part cannot leak into training."""
    X = measured_features(data.fractions, transfer)
    assert X.shape == (599, len(feature_names(transfer))) and np.isfinite(X).all()
    rows = np.arange(0, 599, 7)
    # equal up to BLAS rounding (matrix products of another height may sum in another order)
    np.testing.assert_allclose(measured_features(data.fractions[rows], transfer), X[rows], rtol=1e-12, atol=1e-12)
    assert feature_names(None) == feature_names(transfer)[: -len(transfer.feature_names())]


def test_measured_model_artifact_round_trip_and_refusals(transfer: Transfer, data, tmp_path: Path):  # type: ignore[no-untyped-def]
    models = fit_pair(data.fractions, data.log10_sigma, transfer, **PARAMS)
    for task, model in models.items():
        save_artifact(tmp_path / MODEL_FILES[task], KIND, model.to_payload({"n": 599}), compact=True)
    loaded = load_measured(tmp_path, required=True)
    for task in ("classifier", "regressor"):
        assert np.array_equal(loaded[task].predict_value(data.fractions), models[task].predict_value(data.fractions))
    p = models["classifier"].predict_value(data.fractions)
    assert ((p >= 0) & (p <= 1)).all()
    # a training row is at distance 0 from the training set; a far composition is outside the domain
    far, _, _ = parse_formulas(["LiPu3Np2Am"[:-2]])
    dist = models["classifier"].domain_distance(np.vstack([data.fractions[:1], far]))
    assert dist[0] == pytest.approx(0, abs=1e-6) and dist[1] > models["classifier"].domain_.cutoff_

    # a model file trained on other features (re-hashed, so only the feature check can catch it)
    payload = load_artifact(tmp_path / MODEL_FILES["classifier"])["payload"]
    payload["feature_names"] = payload["feature_names"][:-1]
    (tmp_path / MODEL_FILES["classifier"]).write_text(json.dumps(make_artifact(KIND, payload)))
    with pytest.raises(InputError, match="trained on other features"):
        load_measured(tmp_path)
    (tmp_path / MODEL_FILES["classifier"]).write_text(json.dumps(make_artifact(KIND, models["regressor"].to_payload())))
    with pytest.raises(InputError, match="holds a measured regressor"):
        load_measured(tmp_path)
    assert load_measured(tmp_path / "none") == {}
    with pytest.raises(InputError, match="No model artifact"):
        load_measured(tmp_path / "none", required=True)
    with pytest.raises(InputError, match="Unknown measured-model task"):
        MeasuredModel(task="ranker").fit(data.fractions, data.log10_sigma)
    with pytest.raises(InputError, match="Unknown tree aggregate 'mode'"):
        MeasuredModel(task="regressor", aggregate="mode").fit(data.fractions, data.log10_sigma)


def test_measured_model_follows_scikit_learn_conventions(transfer: Transfer, data):  # type: ignore[no-untyped-def]
    """Parameters stored as given (no conversion in __init__), get_params / clone, NotFittedError before fit, the
    transfer models as a constructor parameter, fitted state with a trailing underscore."""
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    model = MeasuredModel(task="classifier", aggregate="median", transfer=transfer, **PARAMS)
    defaults = {
        "calibration": "none",
        "cut_rule": "balanced",
        "coverage": 0.8,
        "calibration_folds": 5,
        "p_fast": "balanced",
    }
    expected = {"task": "classifier", "aggregate": "median", "transfer": transfer, **PARAMS, **defaults}
    assert model.get_params() == expected
    twin = clone(model)
    assert twin.get_params()["aggregate"] == "median" and not hasattr(twin, "ensemble_")
    with pytest.raises(NotFittedError, match="call fit"):
        model.predict(data.fractions[:2])
    fitted = model.fit(data.fractions, data.log10_sigma)
    assert fitted is model and fitted.aggregate == "median" and fitted.aggregate_ == "mean"  # a probability averages
    assert fitted.transfer_ is transfer and fitted.feature_names_ == feature_names(transfer)


def test_median_regressor_is_saved_as_one(transfer: Transfer, data, tmp_path: Path):  # type: ignore[no-untyped-def]
    """measured.regressor_aggregate = "median" reaches the regressor's file; the classifier stays a probability."""
    rows = np.arange(0, 599, 3)
    models = fit_pair(data.fractions[rows], data.log10_sigma[rows], transfer, **{**PARAMS, "aggregate": "median"})
    assert (models["classifier"].ensemble_.aggregate, models["regressor"].ensemble_.aggregate) == ("mean", "median")
    X = models["regressor"].features(data.fractions[:50])
    oracle = models["regressor"].ensemble_.predict_numpy(X)
    save_artifact(tmp_path / MODEL_FILES["regressor"], KIND, models["regressor"].to_payload(), compact=True)
    loaded = MeasuredModel.from_payload(load_artifact(tmp_path / MODEL_FILES["regressor"])["payload"])
    assert loaded.aggregate == "median"
    np.testing.assert_allclose(loaded.predict_value(data.fractions[:50]), oracle, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------- validation
@pytest.fixture(scope="module")
def report(transfer: Transfer, data):  # type: ignore[no-untyped-def]
    fixed = {"esML": transfer.esml, "atom2vec-esML": transfer.atom2vec}
    return validate(data, fixed, transfer, PARAMS, folds=3)


def test_reported_official_split_number_is_a_model_fitted_on_the_training_part(report, transfer, data):  # type: ignore[no-untyped-def]
    ((train, test),) = official_folds(data)
    models = fit_pair(data.fractions[train], data.log10_sigma[train], transfer, data.groups[train], **PARAMS)
    p = models["classifier"].predict_value(data.fractions[test])
    expected = classification_metrics(data.y[test], (p >= models["classifier"].cut_).astype(int), p)
    rows = {(r["model"], r["scope"]): r for r in report["rows"]}
    got = rows[("measured (transfer) classifier", "official test split")]
    assert {k: got[k] for k in expected} == expected
    reg = rows[("measured (transfer) regressor", "official test split")]
    pred = models["regressor"].predict_value(data.fractions[test])
    assert reg["mae"] == pytest.approx(np.mean(np.abs(pred - data.log10_sigma[test])), abs=1e-12)
    baseline = np.median(data.log10_sigma[train])
    assert reg["median_baseline_mae"] == pytest.approx(np.mean(np.abs(baseline - data.log10_sigma[test])), abs=1e-12)


def test_cv_predictions_come_from_folds_without_the_row_s_system(report, data):  # type: ignore[no-untyped-def]
    pred = report["predictions"]
    assert (pred["transfer_cv_fold"] >= 0).all() and pred["transfer_test_fold"].eq(0).sum() == 121
    for fold, rows in pred.groupby("transfer_cv_fold"):
        outside = pred[pred["transfer_cv_fold"] != fold]
        assert not set(rows["group"]) & set(outside["group"])
    models = {(r["model"], r["scope"]) for r in report["rows"]}
    for name in ("esML", "atom2vec-esML", "measured (transfer) classifier", "measured (no transfer) regressor"):
        assert (name, "official test split") in models and (name, "leave-system-out CV") in models


def test_bootstrap_intervals_against_explicit_resamples():
    """The weighted vectorised bootstrap equals drawing systems and concatenating their rows, one resample at a time."""
    rng = np.random.default_rng(1)
    groups = np.array([f"s{g}" for g in rng.integers(0, 12, 70)])
    y, label, errors = rng.random(70) < 0.4, rng.random(70) < 0.5, rng.random(70) * 3
    got = bootstrap_intervals(groups, y, label, errors, resamples=300, seed=4)
    names, group_of_row = np.unique(groups, return_inverse=True)
    balanced, mae = [], []
    for draw in np.random.default_rng(4).integers(0, len(names), size=(300, len(names))):
        rows = np.concatenate([np.flatnonzero(group_of_row == g) for g in draw])
        if len(set(y[rows].tolist())) == 2:
            balanced.append(balanced_accuracy_score(y[rows], label[rows]))
        mae.append(errors[rows].mean())
    assert got["balanced_accuracy_ci"] == pytest.approx(np.percentile(balanced, [2.5, 97.5]), abs=1e-4)
    assert got["mae_ci"] == pytest.approx(np.percentile(mae, [2.5, 97.5]), abs=1e-4)
    assert bootstrap_intervals(np.array(["a", "a"]), np.array([1, 1]), np.array([1, 0])) == {
        "balanced_accuracy_ci": None
    }


def test_reported_intervals_hold_their_numbers(report):  # type: ignore[no-untyped-def]
    rows = {(r["model"], r["scope"]): r for r in report["rows"]}
    for (model, _scope), row in rows.items():
        low, high = row["balanced_accuracy_ci"]
        assert low <= row["balanced_accuracy"] <= high, model
        if "regressor" in model:
            assert row["mae_ci"][0] < row["mae"] < row["mae_ci"][1]
    assert "| measured (transfer) classifier | official test split | 121 | " in to_markdown(report)
    assert to_markdown(report).count(" [0.") >= len(rows) and "bootstrap resamples of chemical systems" in to_markdown(
        report
    )
    cv = rows[("measured (transfer) classifier", "leave-system-out CV")]["by_system"]
    top = cv["most_influential"]
    assert top["ece_without"] <= rows[("measured (transfer) classifier", "leave-system-out CV")]["ece"]
    assert f"the system that moves it most is {top['system']} ({top['n']} materials" in to_markdown(report)


def test_validation_writes_markdown_json_figure_and_predictions(report, tmp_path: Path):  # type: ignore[no-untyped-def]
    paths = write_validation(report, tmp_path)
    body = json.loads(paths["json"].read_text())
    assert body["settings"]["n"] == 599 and body["settings"]["positives"] == 271
    assert len(pd.read_csv(paths["predictions"])) == 599
    assert paths["figure"].stat().st_size > 20_000
    assert "| measured (transfer) classifier | official test split | 121 |" in to_markdown(report)


# -------------------------------------------------------------------------------------------------- the CLI
def test_predict_with_measured_models_and_bad_model_names(transfer: Transfer, data, tmp_path: Path):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    artifacts = home / "artifacts"
    for task, model in fit_pair(data.fractions, data.log10_sigma, transfer, **PARAMS).items():
        save_artifact(artifacts / MODEL_FILES[task], KIND, model.to_payload(), compact=True)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(lisearch_cmd("predict", *args), env=cli_env(home), capture_output=True, text=True)

    out = run("Li7La3Zr2O12", "Li1e400O", "NaCl", "--models", "measured", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[0]["measured_label"] == int(rows[0]["measured_p_fast"] >= 0.5) and rows[0]["measured_in_domain"] is True
    assert rows[0]["measured_ad_distance"] == pytest.approx(0, abs=1e-6)
    assert "not a finite number" in rows[1]["error"] and rows[1]["measured_label"] == -1
    assert "no Li" in rows[2]["error"]
    bad = run("Li3PS4", "--models", "esml,magic")
    assert bad.returncode == 2 and "Unknown model name(s) magic" in bad.stderr and "Traceback" not in bad.stderr
