"""Chemistry of compositions: charge neutrality (per composition and in batches), cost per kg, mean atomic mass
(numpy, no Spark). Prediction, the narrowing, the Table III trace and the paper study use these; the screen's kernel
enumerates its neutral compositions itself (:func:`lisearch.screening.kernels.neutral_set`), and its tests check it
against these.

Conventions: Li is +1; every other element takes one oxidation state from the chosen list
(:func:`lisearch.chemistry.elements.oxidation_states`); a composition is charge-neutral when some choice makes
sum(amount_i * state_i) exactly 0, in integer arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from lisearch.chemistry.elements import atomic_masses, atomic_number, atomic_numbers, prices_per_kg, symbols
from lisearch.chemistry.oxidation import neutral_mask

#: Largest integer amount :func:`integer_amounts` returns: charge sums stay far inside int64 (at most 8 x this per
#: element), and no real formula comes near it.
MAX_INTEGER_AMOUNT = 10**12


def integer_amounts(amounts: Mapping[str, float], max_denominator: int = 100) -> dict[str, int] | None:
    """Amounts scaled to the smallest integers (formulas with up to 2 decimals); None if not representable (more
    than 2 decimals, not finite, or an amount above :data:`MAX_INTEGER_AMOUNT` once scaled)."""
    scaled = {}
    for sym, amount in amounts.items():
        if not math.isfinite(amount) or abs(amount) * max_denominator > MAX_INTEGER_AMOUNT:
            return None
        value = round(amount * max_denominator)
        if abs(value - amount * max_denominator) > 1e-6 * max_denominator or value <= 0:
            return None
        scaled[sym] = int(value)
    g = 0
    for v in scaled.values():
        g = math.gcd(g, v)
    return {sym: v // g for sym, v in scaled.items()}


def is_charge_neutral(amounts: Mapping[str, int], states: Mapping[str, Sequence[int]]) -> bool:
    """True when one oxidation state per element (Li +1) makes the integer charge sum exactly zero. The
    per-composition oracle of the batch functions :func:`charge_neutral` and :func:`neutral_amounts`.

    Dynamic programming over elements on the set of reachable partial sums (exact, no enumeration of products).
    """
    reachable = {0}
    for sym, n in amounts.items():
        options = (1,) if sym == "Li" else tuple(states.get(sym, ()))
        if not options:
            return False
        reachable = {r + n * s for r in reachable for s in options}
    return 0 in reachable


def _mass_vector() -> np.ndarray:
    return atomic_masses().reindex(list(symbols())).to_numpy(dtype=np.float64)


def mean_atomic_mass(fractions: np.ndarray) -> np.ndarray:
    """Mean atomic mass (g/mol per atom), shape (n,), of a fraction matrix (n, 94)."""
    return np.asarray(fractions, dtype=np.float64) @ _mass_vector()


def cost_per_kg(fractions: np.ndarray) -> np.ndarray:
    """Raw-material cost (USD/kg), shape (n,): element prices weighted by mass fraction; inf when an element
    has no price (At, Rn, Fr, Ra, Pa)."""
    masses = np.asarray(fractions, dtype=np.float64) * _mass_vector()
    prices = prices_per_kg().reindex(list(symbols())).to_numpy(dtype=np.float64)
    unknown = (masses > 0) & np.isnan(prices)
    cost = (masses * np.nan_to_num(prices, nan=0.0)).sum(axis=1) / masses.sum(axis=1)
    cost[unknown.any(axis=1)] = np.inf
    return cost


_NO_STATE = 1 << 20  # a padding "state" no real combination can cancel (amounts <= 10^4, states <= 8 in size)


def state_table(states: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Oxidation states as an array (95, m) int64 indexed by atomic number (row 0: an empty column, state 0; Li:
    +1 only), padded with a large positive sentinel that makes any sum using it non-zero."""
    width = max([1, *(len(v) for v in states.values())])
    table = np.full((len(symbols()) + 1, width), _NO_STATE, dtype=np.int64)
    table[0, 0] = 0
    for sym, z in atomic_numbers().items():
        options = (1,) if sym == "Li" else tuple(states.get(sym, ()))
        table[z, : len(options)] = options
    return table


def charge_neutral(z: np.ndarray, amounts: np.ndarray, table: np.ndarray, chunk: int = 16384) -> np.ndarray:
    """Batch form of :func:`is_charge_neutral` for rows of distinct elements: ``z`` (n, k) atomic numbers (0 = empty
    column), ``amounts`` (n, k) non-negative integers (percents or formula amounts, < 10^4), ``table`` from
    :func:`state_table`. Returns (n,) bool.

    Vectorised: rows are grouped by how many states each of their elements has, and within a group every
    combination of states is summed at once ((rows, m_1 * ... * m_k) integers, ``chunk`` rows at a time).
    """
    z = np.asarray(z, dtype=np.int64)
    amounts = np.asarray(amounts, dtype=np.int64)
    widths = (table != _NO_STATE).sum(axis=1)[z]  # (n, k) states per element (an empty column: 1)
    out = np.zeros(len(z), dtype=bool)
    keys, inverse = np.unique(widths, axis=0, return_inverse=True)
    for g, key in enumerate(keys):
        rows = np.flatnonzero(inverse.ravel() == g)
        if (key == 0).any():
            continue  # an element without states is never neutral
        for lo in range(0, len(rows), chunk):
            r = rows[lo : lo + chunk]
            sums = np.zeros((len(r), 1), dtype=np.int64)
            for j, m in enumerate(key):
                charges = amounts[r, j, None] * table[z[r, j], :m]  # (rows, m)
                sums = (sums[:, :, None] + charges[:, None, :]).reshape(len(r), -1)
            out[r] = (sums == 0).any(axis=1)
    return out


def neutral_amounts(amounts: Sequence[Mapping[str, int] | None], states: Mapping[str, Sequence[int]]) -> np.ndarray:
    """Charge neutrality of compositions given as element -> integer amount (None: no composition, False), with the
    oxidation-state assignments of :mod:`lisearch.chemistry.oxidation`, grouped by element set. Returns (n,) bool;
    any number of elements per composition."""
    k = max([1, *(len(a) for a in amounts if a)])
    z = np.zeros((len(amounts), k), dtype=np.int64)
    counts = np.zeros((len(amounts), k), dtype=np.int64)
    for row, a in enumerate(amounts):
        for j, (sym, n) in enumerate((a or {}).items()):
            z[row, j], counts[row, j] = atomic_number(sym), n
    return neutral_mask(z, counts, states)
