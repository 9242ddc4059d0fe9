"""Calibrated probabilities and conformal intervals of the measured models: the numpy pieces against brute force and
hand values, the forest's spread against its trees, the fitted models (groups -> calibration, cut-off, intervals),
their files, and the reported numbers against a recomputation. No Spark."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import balanced_accuracy_score

from lisearch.chemistry.composition import parse_formulas
from lisearch.errors import ConfigError, InputError
from lisearch.measured.calibration import (
    ConformalIntervals,
    ProbabilityCalibration,
    balanced_cut,
    brier_score,
    conformal_quantile,
    expected_calibration_error,
    reliability_table,
    system_calibration,
)
from lisearch.measured.models import KIND, MODEL_FILES, MeasuredModel, fit_pair, load_measured, measured_outputs
from lisearch.measured.obelix import measured_set
from lisearch.measured.trees import TreeEnsemble
from lisearch.measured.validation import bootstrap_intervals
from lisearch.models.artifact import load_artifact, make_artifact, save_artifact

PARAMS = {"threshold": 1e-4, "n_trees": 12, "seed": 0, "ad_quantile": 0.95, "calibration_folds": 3}
CALIBRATED = {**PARAMS, "calibration": "linear", "cut_rule": "search"}


# ------------------------------------------------------------------------------------------------ metrics
def test_ece_and_reliability_by_hand():
    y = np.array([0, 0, 1, 1, 1, 0])
    p = np.array([0.05, 0.15, 0.15, 0.95, 0.85, 1.0])
    table = reliability_table(y, p)
    assert [r["n"] for r in table] == [1, 2, 0, 0, 0, 0, 0, 0, 1, 2]  # p = 1.0 falls in the last bin
    assert table[1]["mean_p"] == pytest.approx(0.15) and table[1]["observed"] == 0.5 and table[2]["observed"] is None
    # bins: |0 - .05| * 1, |.5 - .15| * 2, |1 - .85| * 1, |.5 - .975| * 2, over 6 rows
    assert expected_calibration_error(y, p) == pytest.approx((0.05 + 0.7 + 0.15 + 0.95) / 6)
    assert brier_score(y, p) == pytest.approx(np.mean((p - y) ** 2))
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == 0


def test_weighted_ece_is_the_ece_of_rows_repeated_by_their_weight():
    rng = np.random.default_rng(5)
    y, p, w = rng.random(40) < 0.4, rng.random(40), rng.integers(1, 5, 40)
    repeated = np.repeat(np.arange(40), w)
    assert expected_calibration_error(y, p, weights=w) == pytest.approx(
        expected_calibration_error(y[repeated], p[repeated])
    )
    assert expected_calibration_error(y, p, weights=np.full(40, 0.3)) == pytest.approx(expected_calibration_error(y, p))


def test_system_calibration_finds_the_system_the_model_misses_as_a_whole():
    """One system (20 rows) predicted slow but all fast carries the ECE; the rest is calibrated by construction."""
    rng = np.random.default_rng(6)
    p_rest = rng.random(200)
    y_rest = rng.random(200) < p_rest
    groups = np.array([f"s{i % 40}" for i in range(200)] + ["Li-O-P-Ti"] * 20)
    y, p = np.concatenate([y_rest, np.ones(20, bool)]), np.concatenate([p_rest, np.full(20, 0.15)])
    got = system_calibration(y, p, groups)
    top = got["most_influential"]
    assert top["system"] == "Li-O-P-Ti" and top["n"] == 20
    assert (top["mean_p"], top["observed"]) == pytest.approx((0.15, 1.0))
    assert top["ece_without"] == pytest.approx(expected_calibration_error(y_rest, p_rest))
    assert top["ece_without"] < expected_calibration_error(y, p)
    # each system counted once: rows repeated so that every system has the same total weight (lcm of 5 and 20)
    sizes = {g: (groups == g).sum() for g in set(groups)}
    repeated = np.repeat(np.arange(220), [20 // sizes[g] for g in groups])
    assert got["ece_system_weighted"] == pytest.approx(expected_calibration_error(y[repeated], p[repeated]))
    low, high = got["ece_system_weighted_if_calibrated"]
    assert 0 < low < high
    assert system_calibration(y[:5], p[:5], np.array(["one"] * 5))["most_influential"] is None


def test_platt_sigmoid_is_the_maximum_likelihood_fit_on_smoothed_targets():
    rng = np.random.default_rng(3)
    p = rng.random(300)
    y = (rng.random(300) < 0.2 + 0.5 * p).astype(int)
    fitted = ProbabilityCalibration.fit(p, y, "sigmoid")
    t = np.where(y > 0, (y.sum() + 1) / (y.sum() + 2), 1 / (len(y) - y.sum() + 2))

    def loss(v: np.ndarray) -> float:
        z = v[0] * p + v[1]
        return float(np.sum(np.logaddexp(0, z) - t * z))

    best = minimize(loss, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000})
    assert (fitted.a, fitted.b) == pytest.approx(tuple(best.x), abs=1e-4)


def test_linear_and_isotonic_calibration_against_numpy_and_scikit_learn():
    rng = np.random.default_rng(4)
    p = rng.random(200)
    y = (rng.random(200) < p**2).astype(int)
    linear = ProbabilityCalibration.fit(p, y, "linear")
    a, b = np.polyfit(p, y, 1)
    assert (linear.a, linear.b) == pytest.approx((a, b), abs=1e-10)
    assert np.array_equal(linear.transform(np.array([-5.0, 5.0])), [0.0, 1.0])  # clipped to probabilities
    iso = ProbabilityCalibration.fit(p, y, "isotonic")
    oracle = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(p, y)
    grid = np.linspace(-0.1, 1.1, 57)
    np.testing.assert_allclose(iso.transform(grid), oracle.predict(grid), atol=1e-12)
    assert np.array_equal(ProbabilityCalibration.fit(p, y, "none").transform(grid), grid)
    constant = ProbabilityCalibration.fit(np.full(4, 0.3), np.array([1, 0, 0, 0]), "linear")
    assert constant.transform(np.array([0.3, 0.9])).tolist() == [0.25, 0.25]
    with pytest.raises(InputError, match="Unknown calibration 'platt'"):
        ProbabilityCalibration.fit(p, y, "platt")
    for method in ("linear", "sigmoid", "isotonic", "none"):
        fitted = ProbabilityCalibration.fit(p, y, method)
        again = ProbabilityCalibration.from_payload(json.loads(json.dumps(fitted.to_payload())), "f")
        assert np.array_equal(again.transform(grid), fitted.transform(grid))
    with pytest.raises(InputError, match="malformed probability calibration"):
        ProbabilityCalibration.from_payload({"method": "isotonic", "a": 1, "b": 0, "x": [], "y": []}, "f")


def test_balanced_cut_is_the_best_cut_by_brute_force():
    rng = np.random.default_rng(5)
    for trial in range(20):
        p = np.round(rng.random(40), 1 + trial % 2)  # ties among probabilities too
        y = rng.random(40) < p
        if y.all() or not y.any():
            continue
        cut = balanced_cut(y, p)
        brute = max(balanced_accuracy_score(y, p >= c) for c in np.concatenate([np.unique(p), [2.0]]))
        assert balanced_accuracy_score(y, p >= cut) == pytest.approx(brute, abs=1e-12)
    with pytest.raises(InputError, match="both classes"):
        balanced_cut(np.ones(3, bool), np.array([0.1, 0.2, 0.3]))


# ---------------------------------------------------------------------------------------------- intervals
def test_conformal_quantile_and_coverage_on_exchangeable_data():
    assert conformal_quantile(np.arange(1.0, 10.0), 0.8) == 8.0  # ceil(10 * 0.8) = 8th of 9
    assert conformal_quantile(np.arange(1.0, 4.0), 0.8) == np.inf  # 3 rows cannot give 80 %
    rng = np.random.default_rng(6)
    covered = []
    for _ in range(200):  # split conformal: coverage >= 80 % on average over calibration sets
        calibration, new = rng.normal(size=50), rng.normal(size=200)
        fitted = ConformalIntervals.fit(np.abs(calibration), np.zeros(50, bool), np.zeros(50), 0.8)
        covered.append(np.mean(np.abs(new) <= fitted.half_width(np.zeros(200, bool), np.zeros(200))))
    assert 0.8 <= np.mean(covered) <= 0.84


def test_conformal_intervals_are_normalised_by_spread_and_wider_outside_the_domain():
    residuals = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0, 8.0])
    outside = np.array([False] * 5 + [True] * 10)
    spread = np.array([1.0, 1.0, 1.0, 3.0, 1.0] + [1.0] * 10)
    fitted = ConformalIntervals.fit(residuals, outside, spread, 0.8)
    # offset: median spread 1; scores inside 0.5, 1, 1.5, 1, 0.25 -> ceil(6 * .8) = 5th of 5 = 1.5; outside 4
    assert (fitted.offset, fitted.inside, fitted.outside, fitted.n_inside, fitted.n_outside) == (1.0, 1.5, 4.0, 5, 10)
    assert fitted.half_width(np.array([False, True, False]), np.array([0.0, 0.0, 1.0])).tolist() == [1.5, 4.0, 3.0]
    few = ConformalIntervals.fit(residuals[:7], outside[:7], spread[:7], 0.8)  # 2 outside rows: their largest score
    assert few.outside == 4.0
    calm = ConformalIntervals.fit(np.array([0.1] * 10), np.zeros(10, bool), np.zeros(10), 0.5)
    assert calm.offset == 1.0  # trees that never disagree: plain absolute residuals
    again = ConformalIntervals.from_payload(json.loads(json.dumps(fitted.to_payload())), "f")
    assert again == fitted and ConformalIntervals.from_payload(None, "f") is None
    with pytest.raises(InputError, match="malformed conformal"):
        ConformalIntervals.from_payload({**fitted.to_payload(), "outside": 0.1}, "f")
    with pytest.raises(InputError, match=r"coverage 1\.5"):
        ConformalIntervals.fit(residuals, outside, spread, 1.5)


def test_forest_spread_is_the_standard_deviation_of_its_trees():
    rng = np.random.default_rng(7)
    X, y = rng.normal(size=(120, 5)), rng.normal(size=120)
    forest = ExtraTreesRegressor(n_estimators=9, random_state=0).fit(X, y)
    ensemble = TreeEnsemble.from_sklearn(forest)
    Z = rng.normal(size=(300, 5))
    trees = np.stack([t.predict(Z.astype(np.float32)) for t in forest.estimators_], axis=1)
    np.testing.assert_allclose(ensemble.spread(Z), trees.std(axis=1), atol=1e-10)
    np.testing.assert_allclose(ensemble.leaves_numpy(Z), trees, atol=0)


def test_votes_are_the_share_of_regression_trees_at_or_above_the_cut():
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(120, 5)), rng.normal(size=120)
    forest = ExtraTreesRegressor(n_estimators=9, random_state=0).fit(X, y)
    Z = rng.normal(size=(300, 5))
    trees = np.stack([t.predict(Z.astype(np.float32)) for t in forest.estimators_], axis=1)
    votes = TreeEnsemble.from_sklearn(forest).votes(0.2)
    np.testing.assert_allclose(votes.predict(Z), (trees >= 0.2).mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(votes.predict_numpy(Z), (trees >= 0.2).mean(axis=1), atol=1e-12)
    again = TreeEnsemble.from_payload(json.loads(json.dumps(votes.to_payload())))
    assert np.array_equal(again.predict(Z), votes.predict(Z))


def test_the_votes_classifier_is_the_regressor_s_trees_voting(data, tmp_path: Path):  # type: ignore[no-untyped-def]
    """P(fast) with ``p_fast="votes"`` is the share of the regressor's trees (same seed, same rows) at or above the
    threshold; its file says so and loads back; a file written before the setting is a balanced forest."""
    rows = np.arange(1, 599, 3)
    F, target = data.fractions[rows], data.log10_sigma[rows]
    classifier = MeasuredModel(task="classifier", p_fast="votes", **PARAMS).fit(F, target)
    regressor = MeasuredModel(task="regressor", **PARAMS).fit(F, target)
    X = classifier.features(data.fractions[:50])
    expected = (regressor.ensemble_.leaves_numpy(X) >= np.log10(PARAMS["threshold"])).mean(axis=1)
    p = classifier.predict_value(data.fractions[:50])
    np.testing.assert_allclose(p, expected, atol=1e-12)
    assert set(np.round(p * PARAMS["n_trees"], 9)) <= set(range(PARAMS["n_trees"] + 1))  # shares of 12 trees
    payload = json.loads(json.dumps(classifier.to_payload()))
    assert payload["p_fast"] == "votes" and MeasuredModel.from_payload(payload).p_fast == "votes"
    balanced = MeasuredModel(task="classifier", p_fast="balanced", **PARAMS).fit(F, target)
    old = {k: v for k, v in balanced.to_payload().items() if k != "p_fast"}
    assert MeasuredModel.from_payload(old).p_fast == "balanced"
    with pytest.raises(InputError, match="Unknown P\\(fast\\) source 'trees'; use one of balanced, votes"):
        MeasuredModel(task="classifier", p_fast="trees").fit(F, target)
    with pytest.raises(InputError, match="Unknown P\\(fast\\) source"):
        MeasuredModel.from_payload({**payload, "p_fast": "trees"})


def test_bootstrap_intervals_of_ece_and_coverage_against_explicit_resamples():
    rng = np.random.default_rng(8)
    groups = np.array([f"s{g}" for g in rng.integers(0, 10, 60)])
    y, p = rng.random(60) < 0.4, rng.random(60)
    covered, outside = rng.random(60) < 0.8, rng.random(60) < 0.3
    got = bootstrap_intervals(groups, y, y, resamples=200, seed=2, p=p, covered=covered, outside=outside)
    names, group_of_row = np.unique(groups, return_inverse=True)
    ece, cover, far = [], [], []
    for draw in np.random.default_rng(2).integers(0, len(names), size=(200, len(names))):
        rows = np.concatenate([np.flatnonzero(group_of_row == g) for g in draw])
        ece.append(expected_calibration_error(y[rows], p[rows]))
        cover.append(covered[rows].mean())
        if outside[rows].any():
            far.append(covered[rows][outside[rows]].mean())
    assert got["ece_ci"] == pytest.approx(np.percentile(ece, [2.5, 97.5]), abs=1e-4)
    assert got["coverage_ci"] == pytest.approx(np.percentile(cover, [2.5, 97.5]), abs=1e-4)
    assert got["coverage_outside_ci"] == pytest.approx(np.percentile(far, [2.5, 97.5]), abs=1e-4)


# ----------------------------------------------------------------------------------------------- the models
@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    return measured_set()


@pytest.fixture(scope="module")
def calibrated(data):  # type: ignore[no-untyped-def]
    rows = np.arange(0, 599, 2)
    return rows, fit_pair(data.fractions[rows], data.log10_sigma[rows], None, data.groups[rows], **CALIBRATED)


def test_groups_give_the_calibration_and_intervals_of_out_of_group_predictions(data, calibrated):  # type: ignore[no-untyped-def]
    """The fitted calibration, cut-off and intervals are those of the models refitted on each group fold."""
    from sklearn.model_selection import GroupKFold

    rows, models = calibrated
    F, target, groups = data.fractions[rows], data.log10_sigma[rows], data.groups[rows]
    y = (target >= -4).astype(int)
    raw, value, spread, outside = (np.empty(len(rows)) for _ in range(4))
    for train, held in GroupKFold(3).split(F, target, groups):
        pair = fit_pair(F[train], target[train], None, **PARAMS)
        X = pair["classifier"].features(F[held])
        raw[held] = pair["classifier"].ensemble_.predict(X)
        value[held] = pair["regressor"].ensemble_.predict(X)
        spread[held] = pair["regressor"].ensemble_.spread(X)
        outside[held] = pair["regressor"].domain_.distance(X) > pair["regressor"].domain_.cutoff_
    expected = ProbabilityCalibration.fit(raw, y, "linear")
    classifier, regressor = models["classifier"], models["regressor"]
    assert (classifier.calibration_.a, classifier.calibration_.b) == pytest.approx((expected.a, expected.b))
    assert classifier.cut_ == pytest.approx(balanced_cut(y, expected.transform(raw)))
    assert regressor.conformal_ == ConformalIntervals.fit(np.abs(value - target), outside.astype(bool), spread, 0.8)
    # the outputs: calibrated probability, label at the cut-off, interval around the prediction
    out = measured_outputs(classifier, regressor, data.fractions[:40])
    X = classifier.features(data.fractions[:40])
    np.testing.assert_allclose(out["measured_p_fast"], expected.transform(classifier.ensemble_.predict(X)))
    assert np.array_equal(out["measured_label"], out["measured_p_fast"] >= classifier.cut_)
    low, high = regressor.predict_interval(data.fractions[:40])
    assert np.array_equal(out["measured_log10_sigma_low"], low) and (low < out["measured_log10_sigma"]).all()
    half = regressor.conformal_.half_width(~out["measured_in_domain"], regressor.ensemble_.spread(X))
    np.testing.assert_allclose(high - out["measured_log10_sigma"], half, atol=1e-12)
    # the defaults: no recalibration, the balanced forest's own cut-off 0.5 (or the share of positives when calibrated)
    default = MeasuredModel(task="classifier", **PARAMS).fit(F, target, groups)
    assert default.calibration_.method == "none" and default.cut_ == 0.5
    prior = MeasuredModel(task="classifier", **{**PARAMS, "calibration": "linear"}).fit(F, target, groups)
    assert prior.cut_ == pytest.approx(y.mean())
    with pytest.raises(InputError, match="Unknown cut-off rule 'best'"):
        MeasuredModel(task="classifier", cut_rule="best").fit(F, target, groups)
    with pytest.raises(InputError, match="cannot make 400 calibration folds"):
        MeasuredModel(task="classifier", calibration_folds=400).fit(F, target, groups)
    with pytest.raises(InputError, match="belong to the measured regressor"):
        classifier.predict_interval(data.fractions[:2])


def test_calibrated_model_files_round_trip_and_older_files_still_load(data, calibrated, tmp_path: Path):  # type: ignore[no-untyped-def]
    _, models = calibrated
    for task, model in models.items():
        save_artifact(tmp_path / MODEL_FILES[task], KIND, model.to_payload(), compact=True)
    loaded = load_measured(tmp_path, required=True)
    before = measured_outputs(models["classifier"], models["regressor"], data.fractions[:30])
    after = measured_outputs(loaded["classifier"], loaded["regressor"], data.fractions[:30])
    for column, values in before.items():
        assert np.array_equal(values, after[column]), column
    # a file written before calibration: no calibration, cut-off 0.5, no intervals (NaN), still scored
    payload = load_artifact(tmp_path / MODEL_FILES["regressor"])["payload"]
    old = {k: v for k, v in payload.items() if k not in ("calibration", "cut", "conformal")}
    regressor = MeasuredModel.from_payload(old)
    assert regressor.conformal_ is None and np.isnan(regressor.predict_interval(data.fractions[:3])[0]).all()
    bad = {**load_artifact(tmp_path / MODEL_FILES["classifier"])["payload"], "cut": 1.5}
    (tmp_path / MODEL_FILES["classifier"]).write_text(json.dumps(make_artifact(KIND, bad)))
    with pytest.raises(InputError, match=r"label cut-off 1\.5 is not a probability"):
        load_measured(tmp_path)


def test_predict_shows_the_interval_and_far_formulas_get_the_outside_width(data, calibrated):  # type: ignore[no-untyped-def]
    import pandas as pd

    from lisearch.prediction import add_measured_columns

    _, models = calibrated
    F, _, _ = parse_formulas(["Li7La3Zr2O12", "LiPu3Np2"])
    frame = pd.DataFrame({"formula": ["Li7La3Zr2O12", "LiPu3Np2", "bad"]})
    fractions = np.vstack([F, np.zeros((1, F.shape[1]))])
    add_measured_columns(frame, fractions, np.array([True, True, False]), models)
    assert list(frame.columns[1:]) == ["measured_p_fast", "measured_label", "measured_log10_sigma",
                                       "measured_log10_sigma_low", "measured_log10_sigma_high",
                                       "measured_ad_distance", "measured_in_domain"]  # fmt: skip
    assert frame["measured_in_domain"].tolist()[:2] == [True, False] and frame["measured_label"].tolist()[2] == -1
    width = (frame["measured_log10_sigma_high"] - frame["measured_log10_sigma_low"]).to_numpy()
    assert np.isnan(width[2]) and width[0] > 0 and width[1] > 0


def test_shortlist_ranks_by_the_interval_s_low_end_when_asked(calibrated):  # type: ignore[no-untyped-def]
    import dataclasses

    import pandas as pd

    from lisearch.config import ShortlistSettings
    from lisearch.downstream.shortlisting import shortlist_batch

    _, models = calibrated
    none = pd.array([None, None, None, None], dtype="Int16")
    batch = pd.DataFrame({"run_id": ["x"] * 4, "z1": [13, 31, 5, 57], "z2": [8, 8, 8, 40],
                          "z3": pd.array([None, None, None, 8], dtype="Int16"), "z4": none,
                          "pct_li": [25, 25, 25, 30], "pct_1": [25, 25, 25, 10], "pct_2": [50, 50, 50, 10],
                          "pct_3": pd.array([None, None, None, 50], dtype="Int16"), "pct_4": none,
                          "score": [1.0] * 4, "cost_per_kg": [1.0] * 4, "mean_atomic_mass": [20.0] * 4})  # fmt: skip
    settings = dataclasses.replace(ShortlistSettings(), in_domain_only=False)
    point, _ = shortlist_batch(batch, settings, models)
    low, _ = shortlist_batch(batch, dataclasses.replace(settings, rank_by="lower_bound"), models)
    assert len(point) == 4 and point["ranked_by"].iloc[0] == "predicted log10 sigma (measured regressor)"
    np.testing.assert_array_equal(point["rank_score"], point["measured_log10_sigma"].astype(np.float64))
    np.testing.assert_array_equal(low["rank_score"], low["measured_log10_sigma_low"].astype(np.float64))
    assert low["ranked_by"].iloc[0].startswith("low end of the predicted log10 sigma's interval")
    assert (low["measured_log10_sigma_low"] < low["measured_log10_sigma"]).all()
    with pytest.raises(ConfigError, match=r"shortlist\.rank_by is 'upper'"):
        ShortlistSettings(rank_by="upper")


def test_calibration_study_never_reads_the_test_split(data):  # type: ignore[no-untyped-def]
    """The study that chose the defaults sees only OBELiX's training part: changing every test row's target and
    composition changes nothing in it."""
    import dataclasses

    from lisearch.measured.validation import calibration_study, calibration_study_markdown

    params = {**PARAMS, "calibration_folds": 3}
    study = calibration_study(data, None, params, folds=3)
    test = data.split == "test"
    scrambled = dataclasses.replace(
        data,
        log10_sigma=np.where(test, -data.log10_sigma, data.log10_sigma),
        y=np.where(test, 1 - data.y, data.y),
        fractions=np.where(test[:, None], data.fractions[::-1], data.fractions),
    )
    assert calibration_study(scrambled, None, params, folds=3) == study
    assert study["n"] == 478 and len(study["rows"]) == 16  # 2 sources x 4 recalibrations x 2 cut-off rules
    assert {r["p_fast"] for r in study["rows"]} == {"balanced", "votes"}
    assert "| votes | none | balanced |" in calibration_study_markdown(study)
