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
import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lisearch import paper
from lisearch.chemistry.composition import parse_formula
from lisearch.chemistry.elements import descriptor_table, oxidation_states
from lisearch.chemistry.neutrality import cost_per_kg, integer_amounts, mean_atomic_mass, neutral_amounts
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


def _assignments(amounts: dict[str, int]) -> list[dict[str, int]]:
    """Every neutral assignment of pymatgen common oxidation states (Li +1)."""
    states = oxidation_states("pymatgen_common")
    els = list(amounts)
    options = [(1,) if e == "Li" else states[e] for e in els]
    out = []
    for combo in itertools.product(*options):
        if sum(amounts[e] * s for e, s in zip(els, combo, strict=True)) == 0:
            out.append(dict(zip(els, combo, strict=True)))
    return out


@functools.lru_cache(maxsize=1)
def _element_tables() -> tuple[dict[str, float], dict[str, int]]:
    table = descriptor_table()
    return table["electronegativity"].to_dict(), table["atomic_number"].astype(int).to_dict()


def composition_flags(
    amounts: dict[str, int], anion: str = "O", max_z: int = 36, formula_if_failing: bool = True,
    stability: bool = True, max_formula_atoms: int = 0,
) -> dict[str, Any]:  # fmt: skip
    """All narrowing flags of one composition (element -> integer amount, reduced). With ``formula_if_failing=False``
    the (slow, pymatgen) reduced formula and the known-compound flag are computed only when every required stage
    passes (the stability proxies are required when ``stability``) and the formula has at most ``max_formula_atoms``
    atoms (0: any)."""
    x, z = _element_tables()
    z_max = max(z[e] for e in amounts)
    assignments = _assignments(amounts)
    single = [a for a in assignments if all((s < 0) == (e == anion) for e, s in a.items())]
    ordered = [a for a in single if all(x[e] < x[anion] for e in a if e != anion)]
    flags: dict[str, Any] = {
        "first_four_rows": z_max <= max_z,
        "anion_present": anion in amounts,
        "common_states": bool(assignments),
        "single_anion": bool(single),
        "electronegativity_order": bool(ordered),
    }
    required = NARROW_STAGES if stability else NARROW_STAGES[:2]
    small = not max_formula_atoms or sum(amounts.values()) <= max_formula_atoms
    formula = reduced_formula(amounts) if formula_if_failing or (small and all(flags[s] for s in required)) else None
    return {"formula": formula, **flags, "known_in_mp": formula is not None and formula in known_formulas()}


def _amounts_of_rows(frame: pd.DataFrame) -> list[dict[str, int]]:
    rows = []
    for r in frame.itertuples(index=False):
        pairs = [("Li", r.pct_li)] + [
            (e, p)
            for j in PARTNERS
            if isinstance(e := getattr(r, f"element_{j}", None), str) and e and (p := getattr(r, f"pct_{j}"))
        ]
        g = 0
        for _, v in pairs:
            g = math.gcd(g, int(v))
        rows.append({e: int(v) // g for e, v in pairs})
    return rows


def stability_flags(
    candidates: pd.DataFrame, anion: str = "O", max_z: int = 36, stability: bool = True, max_formula_atoms: int = 0
) -> pd.DataFrame:
    """``candidates`` rows (element_1..4, pct_li, pct_1..4, ...; an absent partner's columns may be missing) with the
    flags, ``formula`` (None for rows that fail a required stage or the size limit) and ``formula_atoms`` (atoms in
    the reduced formula) added."""
    amounts = _amounts_of_rows(candidates)
    rows = [composition_flags(a, anion, max_z, False, stability, max_formula_atoms) for a in amounts]
    flags = pd.DataFrame(rows, index=candidates.index, columns=["formula", *NARROW_STAGES, "known_in_mp"])
    flags["formula_atoms"] = [sum(a.values()) for a in amounts]  # amounts are reduced by their gcd
    return pd.concat([candidates, flags], axis=1)


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
