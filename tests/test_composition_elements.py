"""Formulas, element data, descriptors and the per-formula chemistry kernels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lisearch.chemistry.composition import parse_formula, parse_formulas
from lisearch.chemistry.descriptors import composition_features, feature_names
from lisearch.chemistry.elements import (
    DESCRIPTORS,
    OXIDATION_LISTS,
    atomic_masses,
    atomic_numbers,
    descriptor_fills,
    descriptor_table,
    oxidation_states,
    prices_per_kg,
)
from lisearch.chemistry.neutrality import cost_per_kg, integer_amounts, is_charge_neutral, mean_atomic_mass
from lisearch.errors import InputError


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("Li2O)", "is not a chemical formula"),
        ("", "empty formula"),
        ("LiQq2O", "unknown element Qq"),
        ("LiAm", "unknown element Am"),
        ("NaCl", "contains no Li"),
        ("li2o", "is not a chemical formula"),
    ],
)
def test_bad_formulas_say_what_is_wrong(formula: str, message: str):
    with pytest.raises(InputError, match=message):
        parse_formula(formula)


def test_parse_formulas_keeps_going_after_bad_rows():
    fractions, errors, amounts = parse_formulas(["LiPO3", "Xx", "Li9.81Sn0.81P2.19S12"])
    assert errors[0] is None and errors[2] is None and "unknown element" in (errors[1] or "")
    idx = {s: z - 1 for s, z in atomic_numbers().items()}
    assert fractions[0, idx["Li"]] == pytest.approx(0.2) and fractions[0, idx["O"]] == pytest.approx(0.6)
    assert fractions[1].sum() == 0 and amounts[1] is None
    np.testing.assert_allclose(fractions.sum(axis=1), [1, 0, 1])


def test_descriptor_table_is_complete_and_gaps_are_documented():
    table = descriptor_table()
    assert list(table.columns) == list(DESCRIPTORS) and len(table) == 94
    assert not table.isna().any().any()
    fills = descriptor_fills()
    assert set(fills["descriptor"]) <= set(DESCRIPTORS)
    assert {"He", "Ne", "Ar"} <= set(fills.loc[fills["descriptor"] == "electronegativity", "symbol"])
    assert table.loc["Li", "electronegativity"] == pytest.approx(0.98)
    assert table.loc["Ce", "group"] == 3


def test_mean_descriptor_of_lipo3_by_hand():
    fr = parse_formula("LiPO3")[None]
    table = descriptor_table()
    want = (table.loc["Li"] + table.loc["P"] + 3 * table.loc["O"]) / 5
    np.testing.assert_allclose(composition_features(fr)[0], want.to_numpy())


def test_other_reductions_by_hand():
    fr = parse_formula("Li2O")[None]
    x = descriptor_table()["electronegativity"]
    got = composition_features(fr, ("mean", "std", "min", "max", "range"), ["electronegativity"])[0]
    mean = (2 * x["Li"] + x["O"]) / 3
    std = np.sqrt((2 * (x["Li"] - mean) ** 2 + (x["O"] - mean) ** 2) / 3)
    np.testing.assert_allclose(got, [mean, std, x["Li"], x["O"], x["O"] - x["Li"]])
    assert feature_names(("mean", "std"), ["density"]) == ["mean_density", "std_density"]


def _brute_neutral(amounts: dict[str, int], states: dict[str, tuple[int, ...]]) -> bool:
    options = [(1,) if el == "Li" else states[el] for el in amounts]
    return any(
        sum(n * s for n, s in zip(amounts.values(), combo, strict=True)) == 0 for combo in itertools.product(*options)
    )


@pytest.mark.parametrize("list_name", OXIDATION_LISTS)
def test_neutrality_matches_brute_force(list_name: str):
    states = oxidation_states(list_name)
    rng = np.random.default_rng(3)
    candidates = [el for el in ("O", "S", "N", "P", "Fe", "Mn", "Cl", "Ti", "Ge", "Na", "B") if states[el]]
    for _ in range(300):
        els = ["Li", *rng.choice(candidates, size=int(rng.integers(1, 4)), replace=False).tolist()]
        amounts = {el: int(rng.integers(1, 9)) for el in els}
        assert is_charge_neutral(amounts, states) == _brute_neutral(amounts, states)


def test_neutrality_known_cases():
    common = oxidation_states("pymatgen_common")
    assert is_charge_neutral(integer_amounts({"Li": 7, "La": 3, "Zr": 2, "O": 12}) or {}, common)
    assert not is_charge_neutral({"Li": 1, "O": 1}, common)
    full = oxidation_states("pymatgen_all")
    assert is_charge_neutral({"Li": 5, "Na": 2, "O": 3}, full)  # needs Na-1 and O-1 (SPEC §5)
    assert not is_charge_neutral({"Li": 5, "Na": 2, "O": 3}, common)


def test_integer_amounts():
    assert integer_amounts({"Li": 9.81, "S": 12}) == {"Li": 327, "S": 400}  # 981:1200 reduced by 3
    assert integer_amounts({"Li": 2, "O": 4}) == {"Li": 1, "O": 2}
    assert integer_amounts({"Li": 1 / 3, "O": 1}) is None


def test_cost_and_mass_by_hand():
    fr = parse_formula("Li2O")[None]
    m, p = atomic_masses(), prices_per_kg()
    assert mean_atomic_mass(fr)[0] == pytest.approx((2 * m["Li"] + m["O"]) / 3)
    want = (2 * m["Li"] * p["Li"] + m["O"] * p["O"]) / (2 * m["Li"] + m["O"])
    assert cost_per_kg(fr)[0] == pytest.approx(want)
    assert np.isinf(cost_per_kg(parse_formula("LiAt")[None])[0])  # no price for astatine


def test_unknown_oxidation_list():
    with pytest.raises(InputError, match="Unknown oxidation-state list 'icsd'"):
        oxidation_states("icsd")
