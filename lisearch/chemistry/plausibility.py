"""Chemical plausibility of compositions: is this a salt a chemist would try to make? (numpy, no Spark)

A composition is given as atomic numbers ``z`` (n, k) (0 = no element in that column; Li is one of them) and integer
amounts ``amounts`` (n, k) (e.g. the percents of a `candidates` row, or a formula's amounts). The rules, in order
(``reason`` names the first that fails):

1. ``rare_state``: every element can be an ion in a common way: it has at least one non-zero oxidation state whose
   frequency among the element's non-zero states in the ICSD (2024; SMACT's counts, ``data/oxidation``) is at least
   ``min_state_frequency``. An element at 0 is a metal or an element, not an ion of a salt, so state 0 is never used.
2. ``not_neutral``: some choice of such states (Li +1) makes the integer charge sum exactly 0;
3. ``not_ionic``: ... with at least one anion (negative state), and every anion more electronegative (Pauling) than
   every cation;
4. ``too_complex``: the reduced formula has at most ``max_formula_atoms`` atoms (the paper's Table III has 5 or 10).

Among the neutral, ionic assignments the most likely is kept: the product of its states' frequencies
(``probability``) and the states themselves. Work is vectorised per element set: the assignments of a set are
enumerated once (a few dozen) and every row of that set is checked with one matrix product.

:func:`nearest_known` adds nearness to known chemistry: the nearest known compound of the same element set
(Materials Project stable Li compounds and OBELiX) and its distance, the share of atoms that differ (half the L1
distance of the atomic fractions); a composition whose element set has no known compound is ``novel``.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lisearch.chemistry.composition import parse_formulas
from lisearch.chemistry.elements import LI_Z, atomic_numbers, descriptor_table
from lisearch.chemistry.neutrality import integer_amounts
from lisearch.chemistry.oxidation import assignments
from lisearch.datasets import DATA_DIR, mp_known, obelix
from lisearch.errors import ConfigError

REASONS = ("rare_state", "not_neutral", "not_ionic", "too_complex")


@dataclass(frozen=True)
class PlausibilityRules:
    """Thresholds of the rules: ``min_state_frequency`` (share of an element's non-zero ICSD reports, default 5 %),
    ``max_formula_atoms`` (atoms in the reduced formula, default 30: Li7La3Zr2O12 has 24, Li10GeP2S12 25)."""

    min_state_frequency: float = 0.05
    max_formula_atoms: int = 30

    def __post_init__(self) -> None:
        if not 0 <= self.min_state_frequency < 1:
            raise ConfigError(f"min_state_frequency is {self.min_state_frequency}; use a share in [0, 1), e.g. 0.05.")
        if self.max_formula_atoms < 2:
            raise ConfigError(f"max_formula_atoms is {self.max_formula_atoms}; use at least 2 (e.g. 30).")


@functools.cache
def state_frequencies() -> dict[int, dict[int, float]]:
    """Atomic number -> {non-zero oxidation state: share of the element's non-zero ICSD reports}; Li is {+1: 1}."""
    index = atomic_numbers()
    counts: dict[int, dict[int, int]] = {}
    for row in json.loads((DATA_DIR / "oxidation" / "smact_icsd24_counts.json").read_text()):
        z = index.get(row["element"])
        if z is not None and row["oxidation_state"] != 0 and row["results_count"] > 0:
            counts.setdefault(z, {})[int(row["oxidation_state"])] = int(row["results_count"])
    out = {z: {s: c / sum(states.values()) for s, c in states.items()} for z, states in counts.items()}
    out[LI_Z] = {1: 1.0}
    return out


@functools.cache
def _electronegativity() -> np.ndarray:
    return np.concatenate([[np.nan], descriptor_table()["electronegativity"].to_numpy(dtype=np.float64)])


@functools.cache
def _assignments(elements: tuple[int, ...], min_frequency: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(states (m, k) int, probability (m,), ionic (m,) bool) of every choice of common states of an element set,
    most likely first; None when an element has no common state (rule 1). Ionic: an anion, and every anion more
    electronegative than every cation."""
    freq = state_frequencies()
    common = [{s: f for s, f in sorted(freq.get(z, {}).items()) if f >= min_frequency} for z in elements]
    if any(not c for c in common):
        return None
    chi = _electronegativity()[list(elements)]
    states = assignments(tuple(tuple(c) for c in common))
    probs = np.prod([[c[int(v)] for v in states[:, j]] for j, c in enumerate(common)], axis=0)
    anion, cation = states < 0, states > 0
    chi_anion = np.where(anion, chi, np.inf).min(axis=1)
    chi_cation = np.where(cation, chi, -np.inf).max(axis=1)
    ionic = anion.any(axis=1) & cation.any(axis=1) & (chi_anion > chi_cation)
    order = np.argsort(-probs, kind="stable")
    return states[order], probs[order], ionic[order]


def plausibility(z: np.ndarray, amounts: np.ndarray, rules: PlausibilityRules | None = None) -> pd.DataFrame:
    """Rules 1-4 for compositions ``z`` (n, k) int atomic numbers (0 = empty column) with integer ``amounts``
    (n, k) (need not be reduced).

    Returns a DataFrame of n rows: plausible (bool), reason (first failing rule of :data:`REASONS`, None when
    plausible), probability (float, of the most likely neutral ionic assignment; 0 without one), state_1..state_k
    (the states of that assignment, aligned with the columns of ``z``; 0 for empty columns or without one),
    formula_atoms (atoms in the reduced formula).
    """
    rules = rules or PlausibilityRules()
    z = np.asarray(z, dtype=np.int64)
    amounts = np.where(z > 0, np.asarray(amounts, dtype=np.int64), 0)
    n, k = z.shape
    g = np.gcd.reduce(amounts, axis=1)
    atoms = amounts.sum(axis=1) // np.maximum(g, 1)
    reason = np.full(n, None, dtype=object)
    probability = np.zeros(n)
    states = np.zeros((n, k), dtype=np.int64)
    order = np.argsort(z, axis=1, kind="stable")  # element sets as sorted tuples (zeros first)
    zs = np.take_along_axis(z, order, axis=1)
    sorted_amounts = np.take_along_axis(amounts, order, axis=1)
    keys, inverse = np.unique(zs, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    groups = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse))[:-1])
    for key, rows in zip(keys, groups, strict=True):
        present = np.flatnonzero(key > 0)
        found = _assignments(tuple(int(v) for v in key[present]), rules.min_state_frequency)
        if found is None:
            reason[rows] = "rare_state"
            continue
        combos, probs, ionic = found
        neutral = (sorted_amounts[rows][:, present] @ combos.T) == 0  # (rows, m)
        good = neutral & ionic[None, :]
        has = good.any(axis=1)
        reason[rows[~neutral.any(axis=1)]] = "not_neutral"
        reason[rows[neutral.any(axis=1) & ~has]] = "not_ionic"
        picked, best = rows[has], np.argmax(good[has], axis=1)  # combos are most likely first
        probability[picked] = probs[best]
        chosen = np.zeros((len(picked), k), dtype=np.int64)
        chosen[:, present] = combos[best]
        back = np.zeros((len(picked), k), dtype=np.int64)
        np.put_along_axis(back, order[picked], chosen, axis=1)
        states[picked] = back
    complex_ = pd.isna(reason) & (atoms > rules.max_formula_atoms)
    reason[complex_] = "too_complex"
    out = pd.DataFrame({"plausible": pd.isna(reason), "reason": reason, "probability": probability})
    for j in range(k):
        out[f"state_{j + 1}"] = states[:, j]
    out["formula_atoms"] = atoms
    return out


def plausible_mask(elements: tuple[int, ...], amounts: np.ndarray, rules: PlausibilityRules) -> np.ndarray:
    """(n,) bool: :func:`plausibility`'s ``plausible`` for rows of one element set, fast (the screen's kernel calls
    it per set on millions of rows): ``elements`` distinct atomic numbers (Li among them), ``amounts`` (n, k) int
    aligned with them. No reasons, states or DataFrame; memory O(n)."""
    order = np.argsort(elements, kind="stable")
    found = _assignments(tuple(int(elements[i]) for i in order), rules.min_state_frequency)
    n = len(amounts)
    if found is None or not n:
        return np.zeros(n, dtype=bool)
    combos, _, ionic = found
    A = np.asarray(amounts, dtype=np.int64)[:, order]
    ok = np.zeros(n, dtype=bool)
    for combo in combos[ionic]:
        ok |= A @ combo == 0
    atoms = A.sum(axis=1) // np.maximum(np.gcd.reduce(A, axis=1), 1)
    return ok & (atoms <= rules.max_formula_atoms)


# ------------------------------------------------------------------------------------------- known chemistry
@functools.cache
def known_compounds() -> pd.DataFrame:
    """Known Li compounds: formula, source ("mp" stable Li compounds, "obelix" measured), key (sorted atomic
    numbers joined by "-") and fractions (94 floats)."""
    mp, ob = mp_known(), obelix()
    formulas = [*mp["formula"], *ob["composition"]]
    names = [*mp["formula"], *ob["formula"]]
    sources = ["mp"] * len(mp) + ["obelix"] * len(ob)
    fractions, errors, _ = parse_formulas(formulas)
    keep = np.array([e is None for e in errors])
    keys = ["-".join(str(i + 1) for i in np.flatnonzero(row)) for row in fractions]
    frame = pd.DataFrame({"formula": names, "source": sources, "key": keys})[keep].reset_index(drop=True)
    frame["fractions"] = list(fractions[keep])
    return frame


def nearest_known(z: np.ndarray, amounts: np.ndarray) -> pd.DataFrame:
    """For compositions ``z``, ``amounts`` (n, k): nearest_known (formula of the nearest known compound with the
    same element set, None when there is none), known_source, known_distance (share of atoms that differ, 0..1;
    NaN without one) and novel (no known compound of this element set)."""
    z = np.asarray(z, dtype=np.int64)
    amounts = np.where(z > 0, np.asarray(amounts, dtype=np.float64), 0.0)
    n = len(z)
    known = known_compounds()
    by_key = {key: group for key, group in known.groupby("key")}
    formula = np.full(n, None, dtype=object)
    source = np.full(n, None, dtype=object)
    distance = np.full(n, np.nan)
    keys = np.array(["-".join(str(v) for v in sorted(row[row > 0])) for row in z])
    for key in np.unique(keys):
        group = by_key.get(key)
        if group is None:
            continue
        rows = np.flatnonzero(keys == key)
        cols = [int(v) - 1 for v in key.split("-")]
        ref = np.stack(group["fractions"].to_numpy())[:, cols]  # (m, e)
        mine = np.zeros((len(rows), len(cols)))
        for j, col in enumerate(cols):
            mine[:, j] = np.where(z[rows] == col + 1, amounts[rows], 0).sum(axis=1)
        mine /= mine.sum(axis=1, keepdims=True)
        d = 0.5 * np.abs(mine[:, None, :] - ref[None, :, :]).sum(axis=2)
        best = d.argmin(axis=1)
        formula[rows] = group["formula"].to_numpy()[best]
        source[rows] = group["source"].to_numpy()[best]
        distance[rows] = d[np.arange(len(rows)), best]
    return pd.DataFrame(
        {"nearest_known": formula, "known_source": source, "known_distance": distance, "novel": pd.isna(formula)}
    )


def formula_arrays(formulas: list[str]) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(z (n, k), integer amounts (n, k), errors) of formulas, for the rules above (amounts scaled to integers)."""
    _, errors, parsed = parse_formulas(formulas)
    ints = [integer_amounts(a) if a else None for a in parsed]
    k = max((len(a) for a in ints if a), default=1)
    z = np.zeros((len(formulas), k), dtype=np.int64)
    amounts = np.zeros((len(formulas), k), dtype=np.int64)

    index = atomic_numbers()
    out_errors: list[str | None] = list(errors)
    for row, a in enumerate(ints):
        if a is None:
            out_errors[row] = out_errors[row] or "amounts are not whole numbers at 0.01 resolution"
            continue
        for j, (sym, v) in enumerate(sorted(a.items(), key=lambda kv: index[kv[0]])):
            z[row, j], amounts[row, j] = index[sym], v
    return z, amounts, out_errors


__all__ = ["REASONS", "PlausibilityRules", "formula_arrays", "nearest_known", "plausibility"]
