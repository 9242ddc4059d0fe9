"""Agreement with the 2017 authors' feature values, and sML on the experimental set."""

import pytest

from lisearch.datasets import exp40
from lisearch.structure.exp40 import choose_structures, evaluate_sml
from lisearch.structure.reference import compare_with_reference, format_comparison


@pytest.fixture(scope="module")
def report():  # type: ignore[no-untyped-def]
    return compare_with_reference()


def test_label_agreement_with_sendek_2017_reference(report):  # type: ignore[no-untyped-def]
    # Deterministic (seeded orderings): pinned exactly, so any change to the featurizer shows here.
    assert report["reference_ids"] == 400 and report["featurized"] == 400 and report["not_featurized"] == []
    assert report["label_agreement"] == 1.0 and report["label_disagreements"] == []
    assert report["superionic_share_ours"] == report["superionic_share_reference"] == 70 / 400
    # Counts agree exactly for most structures; distances drift by about 1 % between the 2017 and 2025 structures.
    within = {name: f["share_within_1pct"] for name, f in report["features"].items()}
    assert within == {"llb": 385 / 400, "sbi": 358 / 400, "afc": 375 / 400, "lasd": 346 / 400, "llsd": 346 / 400}
    for name in ("lasd", "llsd"):
        assert abs(report["features"][name]["mean_signed_rel_diff"]) < 0.02
    assert "label agreement" in format_comparison(report)


def test_exp40_has_forty_rows_and_eleven_superionic():
    table = exp40()
    assert len(table) == 40 and int(table["superionic"].sum()) == 11


def test_structure_choice_prefers_experimental_cifs():
    chosen = choose_structures().set_index("reduced_formula")
    assert chosen.loc["Li3P", "source"] == "obelix" and chosen.loc["Li3P", "rule"] == 1
    assert chosen.loc["LiI", "source"] == "mp2025"


def test_sml_on_exp40_is_reported():
    result = evaluate_sml()
    assert result["rows"] == 40 and result["with_features"] == 33
    # The published model on our features: 28 of 33 right (the paper: 36 of 40 by LOOCV on its features); the
    # refit by leave-one-out: 24 of 33. Deterministic, so pinned exactly.
    assert result["published_accuracy"] == 28 / 33 and result["refit_loocv_accuracy"] == 24 / 33
    assert sorted(result["published_misclassified"]) == sorted(
        ["LiLa(TiO3)2", "Li2NH", "Li6BaLa2Ta2O12", "Li7La3Zr2O12", "Li7P3S11"]
    )
