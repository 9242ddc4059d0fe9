"""Screening kernels: charge neutrality, cost per kg, mean atomic mass (numpy, no Spark).

Conventions: Li is +1; every other element takes one oxidation state from the chosen list
(:func:`lisearch.elements.oxidation_states`); a composition is charge-neutral when some choice makes
sum(amount_i * state_i) exactly 0, in integer arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from lisearch.elements import atomic_masses, prices_per_kg, symbols


def integer_amounts(amounts: Mapping[str, float], max_denominator: int = 100) -> dict[str, int] | None:
    """Amounts scaled to the smallest integers (formulas with up to 2 decimals); None if not representable."""
    scaled = {}
    for sym, amount in amounts.items():
        value = round(amount * max_denominator)
        if abs(value - amount * max_denominator) > 1e-6 * max_denominator or value <= 0:
            return None
        scaled[sym] = int(value)
    g = 0
    for v in scaled.values():
        g = math.gcd(g, v)
    return {sym: v // g for sym, v in scaled.items()}


def is_charge_neutral(amounts: Mapping[str, int], states: Mapping[str, Sequence[int]]) -> bool:
    """True when one oxidation state per element (Li +1) makes the integer charge sum exactly zero.

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
