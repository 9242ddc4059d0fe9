import numpy as np
import pytest

from lisearch.structure.sendek import PUBLISHED_COEF, SendekModel, loocv_accuracy


def test_published_formula_by_hand():
    x = np.array([[1.0, 0.5, 10.0, 2.0, 3.0]])
    z = 0.184 * 1 - 4.009 * 0.5 - 0.467 * 10 + 8.699 * 2 - 2.170 * 3 - 6.564
    model = SendekModel.published()
    assert model.decision_function(x)[0] == pytest.approx(z)
    assert model.p_superionic(x)[0] == pytest.approx(1 / (1 + np.exp(-z)))
    assert model.predict(x)[0] == int(z >= 0)


def test_nan_features_get_label_minus_one():
    assert SendekModel.published().predict(np.full((1, 5), np.nan))[0] == -1


def test_unfitted_model_says_what_to_do():
    with pytest.raises(ValueError, match=r"published\(\) or call fit"):
        SendekModel().predict(np.zeros((1, 5)))


def test_refit_recovers_the_published_decision():
    """Labels drawn from the published model are learned back (same sign of every coefficient)."""
    rng = np.random.default_rng(0)
    X = np.column_stack(
        [rng.uniform(0, 12, 400), rng.uniform(0.3, 1.8, 400), rng.uniform(4, 12, 400), rng.uniform(1.8, 3, 400),
         rng.uniform(2.2, 4.5, 400)]
    )  # fmt: skip
    y = SendekModel.published().predict(X)
    model = SendekModel(C=100.0).fit(X, y)
    assert np.mean(model.predict(X) == y) > 0.97
    assert np.all(np.sign(model.coef_) == np.sign(PUBLISHED_COEF))
    assert loocv_accuracy(X[:60], y[:60], C=100.0) > 0.8
