"""Chemical plausibility: the vectorised rules against a per-row brute-force oracle, the acceptance cases (state 0
and rare states removed, known Li conductors kept), and nearness to known compounds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lisearch.chemistry.plausibility import (
    PlausibilityRules,
    _electronegativity,
    formula_arrays,
    nearest_known,
    plausibility,
    state_frequencies,
)
from lisearch.errors import ConfigError

KNOWN_CONDUCTORS = ["Li3PO4", "Li2SO4", "Li4SiO4", "Li7La3Zr2O12", "Li6PS5Cl", "Li10GeP2S12", "Li3N", "LiTi2(PO4)3"]


def oracle(z: list[int], amounts: list[int], rules: PlausibilityRules) -> tuple[str | None, float]:
    """Per row, by enumeration of every product of states: (reason, probability of the most likely assignment)."""
    freq, chi = state_frequencies(), _electronegativity()
    options = [[s for s, f in freq.get(e, {}).items() if f >= rules.min_state_frequency] for e in z]
    if any(not o for o in options):
        return "rare_state", 0.0
    neutral = [c for c in itertools.product(*options) if sum(a * s for a, s in zip(amounts, c, strict=True)) == 0]
    if not neutral:
        return "not_neutral", 0.0

    def ionic(c: tuple[int, ...]) -> bool:
        an = [chi[e] for e, s in zip(z, c, strict=True) if s < 0]
        cat = [chi[e] for e, s in zip(z, c, strict=True) if s > 0]
        return bool(an) and bool(cat) and min(an) > max(cat)

    good = [c for c in neutral if ionic(c)]
    if not good:
        return "not_ionic", 0.0
    prob = max(math.prod(freq[e][s] for e, s in zip(z, c, strict=True)) for c in good)
    atoms = sum(amounts) // math.gcd(*amounts)
    return ("too_complex" if atoms > rules.max_formula_atoms else None), prob


def test_known_li_conductors_pass_and_their_states_are_the_textbook_ones():
    z, amounts, errors = formula_arrays(KNOWN_CONDUCTORS)
    assert errors == [None] * len(KNOWN_CONDUCTORS)
    result = plausibility(z, amounts)
    assert result["plausible"].all(), result[~result["plausible"]]
    li3po4 = dict(zip(z[0][z[0] > 0].tolist(), result.loc[0, ["state_1", "state_2", "state_3"]].tolist(), strict=True))
    assert li3po4 == {3: 1, 8: -2, 15: 5}


def test_state_zero_and_rare_states_are_removed():
    # carbon at 0 or +1, bromine +1, oxygen -1 (peroxide) or gold as an ion in LiAu: none is a common ionic state
    formulas = ["LiC2BrO", "Li3C26Br13O8", "Li6Si13C52O29", "LiBrO", "Li2O2", "LiAu"]
    z, amounts, _ = formula_arrays(formulas)
    result = plausibility(z, amounts)
    assert not result["plausible"].any()
    assert set(result["reason"]) <= {"rare_state", "not_neutral", "not_ionic"}
    freq = state_frequencies()
    assert 0 not in freq[6] and freq[35][1] < 0.05 and freq[8][-1] < 0.05  # C has no state 0; Br+1, O-1 are rare
    # with no frequency limit, LiBrO becomes neutral with Br+1 (the old list's loophole)
    loose = plausibility(*formula_arrays(["LiBrO"])[:2], PlausibilityRules(min_state_frequency=0.0))
    assert bool(loose.loc[0, "plausible"])


def test_vectorised_rules_equal_the_brute_force_oracle_on_random_compositions():
    rng = np.random.default_rng(7)
    light = [z for z in range(1, 57) if z != 3]
    rows = []
    for _ in range(400):
        k = int(rng.integers(2, 4))
        partners = sorted(rng.choice(light, k, replace=False).tolist())
        rows.append(([3, *partners], rng.integers(1, 9, size=k + 1).tolist()))
    width = 4
    z = np.array([r[0] + [0] * (width - len(r[0])) for r in rows])
    amounts = np.array([r[1] + [0] * (width - len(r[1])) for r in rows])
    rules = PlausibilityRules(min_state_frequency=0.05, max_formula_atoms=12)
    result = plausibility(z, amounts, rules)
    for i, (zz, aa) in enumerate(rows):
        reason, prob = oracle(zz, aa, rules)
        assert result.loc[i, "reason"] == reason, (zz, aa)
        assert result.loc[i, "probability"] == pytest.approx(prob if reason in (None, "too_complex") else 0.0)
    assert 0 < result["plausible"].sum() < len(rows)  # both outcomes occur in the sample


def test_column_order_does_not_matter():
    z, amounts, _ = formula_arrays(["Li4NaGaO4", "Li5Na2NO2"])
    flipped = plausibility(z[:, ::-1], amounts[:, ::-1])
    straight = plausibility(z, amounts)
    assert flipped["reason"].tolist() == straight["reason"].tolist()
    assert np.array_equal(flipped[["state_4", "state_3", "state_2", "state_1"]].to_numpy(),
                          straight[["state_1", "state_2", "state_3", "state_4"]].to_numpy())  # fmt: skip


def test_nearest_known_compound_and_novelty():
    z, amounts, _ = formula_arrays(["Li3PO4", "Li2K3GaO4", "LiAu"])
    near = nearest_known(z, amounts)
    assert near.loc[0, "nearest_known"] == "Li3PO4" and near.loc[0, "known_distance"] == 0
    assert near.loc[1, "known_distance"] == pytest.approx(0.1) and not near.loc[1, "novel"]
    assert bool(near.loc[2, "novel"]) and np.isnan(near.loc[2, "known_distance"])


def test_bad_rules_are_refused():
    with pytest.raises(ConfigError, match="min_state_frequency"):
        PlausibilityRules(min_state_frequency=1.5)
    with pytest.raises(ConfigError, match="max_formula_atoms"):
        PlausibilityRules(max_formula_atoms=1)
