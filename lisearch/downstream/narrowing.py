"""Narrowing screened candidates to stable oxides: the paper's later filters and composition-level stability
proxies (numpy / pandas / pymatgen; the Spark glue is :mod:`lisearch.spark.narrow`).

Filters, in order (each is a column of :func:`stability_flags` and a stage of the comparison with Table III):

1. ``first_four_rows``: every element has Z <= ``max_z`` (36: the paper's "first four rows");
2. ``anion_present``: the anion (``O``: oxides, the paper's last filter) is present;
3. ``common_states``: charge-neutral with pymatgen's *common* oxidation states only (the screen may use a wider
   list);
4. ``single_anion``: in some such neutral assignment the anion is the only element with a negative state;
5. ``electronegativity_order``: ... and every cation is less electronegative (Pauling) than the anion.

``known_in_mp`` flags (does not filter) compositions whose reduced formula is a known Materials Project compound
with E_hull < 0.1 eV/atom and a band gap >= 0.5 eV (``data/mp_known``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lisearch import paper
from lisearch.chemistry.composition import parse_formula
from lisearch.chemistry.elements import LI_Z, atomic_number, descriptor_table, oxidation_states, symbols
from lisearch.chemistry.neutrality import cost_per_kg, integer_amounts, mean_atomic_mass, neutral_amounts
from lisearch.chemistry.oxidation import assignments, element_sets, neutral_assignments, options_of
from lisearch.datasets import mp_known
from lisearch.errors import InputError
from lisearch.schema import NARROW_STAGES, PARTNERS

#: Table III of Cubuk et al. 2019: the 11 compositions that passed every filter (:mod:`lisearch.paper`).
TABLE_III = paper.TABLE_III
#: The stages a composition goes through from the screen to `stable_oxides`, in order: on the grid, conductive,
#: charge-neutral, the cost and mass limits, then the narrowing (:data:`lisearch.schema.NARROW_STAGES`) and the
#: formula-size rule. The first one a Table III composition fails is what removed it, in ``lisearch narrow``'s trace
#: and in the paper study alike.
TRACE_STAGES = ("grid", "conductive", "neutral", "cost", "mass", *NARROW_STAGES, "simplicity")


def reduced_formula(amounts: dict[str, int]) -> str:
    """pymatgen's reduced formula of integer amounts (element -> amount)."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    return str(Composition(amounts).reduced_formula)


@functools.lru_cache(maxsize=1)
def known_formulas() -> frozenset[str]:
    """Reduced formulas of the known MP compounds (E_hull < 0.1 eV/atom, gap >= 0.5 eV)."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    out = set()
    for formula in mp_known()["formula"]:
        try:
            out.add(Composition(formula).reduced_formula)
        except ValueError:  # pragma: no cover - shipped data
            continue
    return frozenset(out)


@functools.lru_cache(maxsize=1)
def _electronegativity_by_z() -> np.ndarray:
    """Pauling electronegativity by atomic number (index 0 unused, NaN)."""
    return np.concatenate([[np.nan], descriptor_table()["electronegativity"].to_numpy(dtype=np.float64)])


def narrowing_flags(z: np.ndarray, amounts: np.ndarray, anion: str = "O", max_z: int = 36) -> dict[str, np.ndarray]:
    """The narrowing's flags (:data:`lisearch.schema.NARROW_STAGES`, each (n,) bool) of compositions ``z`` (n, k)
    atomic numbers (0 = empty) with integer ``amounts`` (n, k), per element set: every assignment of pymatgen's
    common states (Li +1) from :mod:`lisearch.chemistry.oxidation`, and which of them are neutral, have ``anion`` as
    the only negative element, and every other element less electronegative than the anion (Pauling)."""
    z = np.asarray(z, dtype=np.int64)
    amounts = np.asarray(amounts, dtype=np.int64)
    anion_z, chi = atomic_number(anion), _electronegativity_by_z()
    flags = {stage: np.zeros(len(z), dtype=bool) for stage in NARROW_STAGES}
    flags["first_four_rows"] = z.max(axis=1, initial=0) <= max_z
    flags["anion_present"] = (z == anion_z).any(axis=1)
    common = oxidation_states("pymatgen_common")
    for elements, rows, cols in element_sets(z):
        choices = assignments(options_of(elements, common))
        if not len(choices):
            continue
        neutral = neutral_assignments(np.take_along_axis(amounts[rows], cols, axis=1), choices)  # (rows, m)
        els = np.array(elements)
        is_anion = els == anion_z
        single = ((choices < 0) == is_anion[None, :]).all(axis=1)  # (m,): only the anion negative
        ordered = single & bool(np.all(chi[els[~is_anion]] < chi[anion_z]))
        flags["common_states"][rows] = neutral.any(axis=1)
        flags["single_anion"][rows] = (neutral & single[None, :]).any(axis=1)
        flags["electronegativity_order"][rows] = (neutral & ordered[None, :]).any(axis=1)
    return flags


def composition_flags(
    amounts: dict[str, int], anion: str = "O", max_z: int = 36, formula_if_failing: bool = True,
    stability: bool = True, max_formula_atoms: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """All narrowing flags of one composition (element -> integer amount, reduced): :func:`narrowing_flags` of one
    row. With ``formula_if_failing=False`` the (slow, pymatgen) reduced formula and the known-compound flag are
    computed only when every required stage passes (the stability proxies are required when ``stability``) and the
    formula has at most ``max_formula_atoms`` atoms (0: any)."""
    z = np.array([[atomic_number(e) for e in amounts]], dtype=np.int64)
    flags: dict[str, Any] = {k: bool(v[0]) for k, v in narrowing_flags(z, np.array([list(amounts.values())]),
                                                                       anion, max_z).items()}  # fmt: skip
    required = NARROW_STAGES if stability else NARROW_STAGES[:2]
    small = not max_formula_atoms or sum(amounts.values()) <= max_formula_atoms
    formula = reduced_formula(amounts) if formula_if_failing or (small and all(flags[s] for s in required)) else None
    return {"formula": formula, **flags, "known_in_mp": formula is not None and formula in known_formulas()}


def _arrays_of_rows(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(z (n, 5), amounts (n, 5) reduced by their gcd) of `candidates` rows given by element symbols and percents
    (Li first; an absent partner, or a column a table before quinaries lacks, is 0)."""
    n = len(frame)
    z = np.zeros((n, 1 + len(PARTNERS)), dtype=np.int64)
    amounts = np.zeros((n, 1 + len(PARTNERS)), dtype=np.int64)
    z[:, 0], amounts[:, 0] = LI_Z, frame["pct_li"].to_numpy(dtype=np.int64)
    for j in PARTNERS:
        if f"element_{j}" in frame:
            symbols_j = frame[f"element_{j}"].to_numpy(dtype=object)
            present = np.array([isinstance(e, str) and bool(e) for e in symbols_j])
            z[present, j] = [atomic_number(e) for e in symbols_j[present]]
            amounts[present, j] = frame[f"pct_{j}"].to_numpy()[present].astype(np.int64)
    amounts[z == 0] = 0
    return z, amounts // np.maximum(np.gcd.reduce(amounts, axis=1), 1)[:, None]


def stability_flags(
    candidates: pd.DataFrame, anion: str = "O", max_z: int = 36, stability: bool = True, max_formula_atoms: int = 0
) -> pd.DataFrame:
    """``candidates`` rows (element_1..4, pct_li, pct_1..4, ...; an absent partner's columns may be missing) with the
    flags (:func:`narrowing_flags`, per element set), ``formula`` (the reduced formula, None for rows that fail a
    required stage or the size limit), ``known_in_mp`` and ``formula_atoms`` (atoms in the reduced formula) added."""
    z, amounts = _arrays_of_rows(candidates)
    flags = narrowing_flags(z, amounts, anion, max_z)
    atoms = amounts.sum(axis=1)
    required = NARROW_STAGES if stability else NARROW_STAGES[:2]
    keep = np.logical_and.reduce([flags[s] for s in required])
    if max_formula_atoms:
        keep &= atoms <= max_formula_atoms
    syms = ("", *symbols())
    formula = np.full(len(z), None, dtype=object)
    for row in np.flatnonzero(keep).tolist():
        formula[row] = reduced_formula({syms[e]: int(a) for e, a in zip(z[row], amounts[row], strict=True) if e})
    known = known_formulas()
    table = pd.DataFrame({"formula": formula, **flags}, index=candidates.index)
    table["known_in_mp"] = [f is not None and f in known for f in formula]
    table["formula_atoms"] = atoms
    return pd.concat([candidates, table], axis=1)


def passes_all(frame: pd.DataFrame, stability: bool = True, max_formula_atoms: int = 0) -> np.ndarray:
    """Rows passing the narrowing: Z <= max_z and the anion, the stability proxies when ``stability``, and at most
    ``max_formula_atoms`` atoms in the reduced formula (0: no limit; needs the ``formula_atoms`` column)."""
    stages = NARROW_STAGES if stability else NARROW_STAGES[:2]
    ok = np.logical_and.reduce([frame[s].to_numpy(dtype=bool) for s in stages])
    if max_formula_atoms:
        ok &= frame["formula_atoms"].to_numpy() <= max_formula_atoms
    return ok


def trace_table_iii(
    score: Callable[[np.ndarray], np.ndarray],
    oxidation_list: str,
    max_cost_per_kg: float,
    max_mean_atomic_mass: float,
    found: set[str],
    step: int = 1,
    formulas: tuple[str, ...] = TABLE_III,
    anion: str = "O",
    max_z: int = 36,
    stability: bool = True,
    max_formula_atoms: int = 0,
) -> pd.DataFrame:
    """For each Table III formula: the first screen or narrowing stage that removes it (``None`` = kept) and
    whether it is in ``found`` (reduced formulas of `stable_oxides`). ``score``: the screen model's decision
    function on a fraction matrix (n, 94); ``stability`` and ``max_formula_atoms`` as in :func:`passes_all`."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    states = oxidation_states(oxidation_list)
    rows = []
    for formula in formulas:
        amounts = integer_amounts(Composition(formula).get_el_amt_dict()) or {}
        total = sum(amounts.values())
        fractions = parse_formula(formula)[None]
        try:
            value = float(score(fractions)[0])
        except InputError:  # e.g. an element without an atom2vec vector: the screen could not score it
            value = float("nan")
        flags = composition_flags(amounts, anion, max_z)
        checks = {
            "grid": all((100 * n / total) % step == 0 for n in amounts.values()),
            "conductive": value > 0,
            "neutral": bool(neutral_amounts([amounts], states)[0]),
            "cost": float(cost_per_kg(fractions)[0]) <= max_cost_per_kg,
            "mass": float(mean_atomic_mass(fractions)[0]) <= max_mean_atomic_mass,
            **{stage: flags[stage] or (not stability and stage not in NARROW_STAGES[:2]) for stage in NARROW_STAGES},
            "simplicity": not max_formula_atoms or sum(amounts.values()) <= max_formula_atoms,
        }
        removed = next((stage for stage in TRACE_STAGES if not checks[stage]), None)
        if removed == "neutral":
            removed = f"neutral ({oxidation_list})"
        rows.append(
            {
                "table_iii": formula,
                "formula": flags["formula"],
                "score": value,
                "cost_per_kg": float(cost_per_kg(fractions)[0]),
                "mean_atomic_mass": float(mean_atomic_mass(fractions)[0]),
                "removed_by": removed,
                "found": flags["formula"] in found,
            }
        )
    return pd.DataFrame(rows)
