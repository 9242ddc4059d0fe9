"""The result tables' one home (lisearch.schema): every `candidates` column is either produced by the kernel or derived
here, the downstream tables add columns without clashing, and the decoder inverts the columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lisearch.schema import (
    MEASURED_COLUMNS,
    SHORTLIST_COLUMNS,
    candidate_columns,
    candidate_fractions,
    decode_candidates,
    derived_columns,
    partner_of,
    stable_oxides_columns,
    survivor_dtypes,
)


def test_every_candidates_column_is_produced_or_derived():
    for columns in (3, 4):
        survivors = pd.DataFrame({c: np.ones(2, t) for c, t in survivor_dtypes(columns).items()})
        made = set(survivors) | set(derived_columns(survivors, columns))
        symbols = {c for c in candidate_columns(columns) if c.startswith("element_")}  # from z, dictionary-encoded
        assert set(candidate_columns(columns)) - symbols <= made


def test_downstream_columns_do_not_clash_with_candidates():
    """A column added to `candidates` must not carry a name a downstream table adds (the shortlist has
    formula_atoms, for one): the downstream frames are the candidates columns plus theirs."""
    base = set(candidate_columns(4))
    for added in (SHORTLIST_COLUMNS, MEASURED_COLUMNS):
        assert not base & set(added), base & set(added)
    extras = set(stable_oxides_columns()) - base
    assert extras == {"formula", "known_in_mp", "first_four_rows", "anion_present", "common_states", "single_anion",
                      "electronegativity_order"}  # fmt: skip


def test_partner_of_and_the_decoder():
    assert [partner_of(c) for c in ("element_2", "z3", "pct_4", "ox_1", "pct_li", "max_z", "score")] == [
        2, 3, 4, 1, None, None, None,
    ]  # fmt: skip
    rows = pd.DataFrame({"pct_li": [50, 40], "z1": [8, 8], "pct_1": [50, 30], "z2": [None, 15], "pct_2": [None, 30]})
    z, amounts = decode_candidates(rows)
    assert z.tolist() == [[3, 8, 0, 0, 0], [3, 8, 15, 0, 0]]
    assert amounts.tolist() == [[50, 50, 0, 0, 0], [40, 30, 30, 0, 0]]
    fractions = candidate_fractions(rows)
    assert fractions.shape == (2, 94) and fractions[1, [2, 7, 14]].tolist() == [0.4, 0.3, 0.3]
