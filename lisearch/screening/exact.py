"""Decisions the screen counts, made the same on every machine: fused float64 loops, and exact rational arithmetic
for the few cases within a proven rounding bound of a threshold.

The kernel decides three things in floating point: whether a composition's score is above 0 (conductive), whether
its cost per kg is within the limit and whether its mean atomic mass is. Each value is a sum of a few products of
float64 numbers (model weights, masses, prices) with small integers (the composition's units), whose rounding depends
on the order of the sums, on fused multiply-adds and on the BLAS kernel: a composition whose value is within
rounding of the threshold could be counted differently on another machine, or in another block order. Here every
decision is first made in float64 together with a bound on its error; a decision whose value lies within
:data:`SLACK` (relative to the magnitudes summed) of its threshold is made again with :class:`fractions.Fraction`
(binary floats are rationals, so the exact value of the kernel's formula is computable), and that answer counts.
The rule, in exact terms (docs/science.md):

* conductive: ``T * bias + sum_i w_i u_i > 0`` (a score of exactly 0 is not conductive);
* cost: ``sum_i u_i m_i p_i <= limit * sum_i u_i m_i``, every element priced;
* mass: ``sum_i u_i m_i <= limit * T``;

with the model's weights and bias as the binary numbers the model computes with, and the molar masses ``m_i``,
prices ``p_i`` and limits as the decimal numbers the tables and settings write (:func:`decimal`): a composition whose
mean mass is exactly 30.000 g/mol in decimal is within a 30 g/mol limit.

The error bounds: each value is a sum of at most five products (k + 1 <= 5 parts), then at most two more operations;
for any IEEE-754 double evaluation, in any order, with or without FMA, its error is below 16 unit roundoffs of the
magnitudes summed (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., section 3.1: gamma_n bounds);
:data:`SLACK` is four times that. The loops are compiled with numba (cached on disk, one compilation per machine);
:func:`threshold_sums` and :func:`group_decisions` have plain numpy twins in the tests.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np

#: Half-width of the band around a threshold, relative to the magnitudes summed, inside which a float64 decision is
#: made again exactly: 64 unit roundoffs of float64 (the proven error is below 16).
SLACK = 64 * 2.0**-53
#: Kinds of rows of :func:`threshold_sums`: the score rises with the free part, falls with it, or does not change.
RISING, FALLING, FLAT = 0, 1, 2


@numba.njit(cache=True, nogil=True)
def threshold_sums(
    A: np.ndarray, scale: np.ndarray, kind: np.ndarray, U: np.ndarray, band: np.ndarray, sums: np.ndarray,
    near: np.ndarray,
) -> None:  # fmt: skip
    """The closed-form conductive count's last step, fused: for each row r (an element set) and column p (a choice of
    the leading parts), ``A[r, p]`` is the score at free part 0 and the free part runs over 1..U[p].

    * RISING rows (slope > 0): the threshold x = A * scale (scale = -1/slope); ``sums[r]`` = sum over p of
      clip(floor(x), 0, U[p]), the free parts that fail;
    * FALLING rows: ``sums[r]`` = sum of clip(ceil(x) - 1, 0, U[p]), the free parts that pass;
    * FLAT rows: ``sums[r]`` = sum of U[p] where A > 0.

    ``near[r]`` counts the columns whose decision lies within ``band[r]`` of its boundary (x within band of an
    integer; for flat rows |A| <= band): those are settled exactly by the caller. Shapes: A (R, P) float64; scale,
    band (R,) float64; kind (R,) int64; U (P,) float64; sums, near (R,) int64 (written)."""
    R, P = A.shape
    for r in range(R):
        s = 0
        n = 0
        q = scale[r]
        b = band[r]
        if kind[r] == 0:
            for p in range(P):
                x = A[r, p] * q
                v = min(max(np.floor(x), 0.0), U[p])
                s += int(v)
                n += abs(x - np.rint(x)) <= b
        elif kind[r] == 1:
            for p in range(P):
                x = A[r, p] * q
                v = min(max(np.ceil(x) - 1.0, 0.0), U[p])
                s += int(v)
                n += abs(x - np.rint(x)) <= b
        else:
            for p in range(P):
                a = A[r, p]
                if a > 0.0:
                    s += int(U[p])
                n += abs(a) <= b
        sums[r] = s
        near[r] = n


@numba.njit(cache=True, nogil=True)
def group_decisions(
    V: np.ndarray, G: int, T: float, bias: float, scored: bool, priced: np.ndarray, score_band: np.ndarray,
    cost_limit: float, cost_band: float, mass_limit: float, mass_band: float, ok: np.ndarray, counts: np.ndarray,
    near: np.ndarray,
) -> None:  # fmt: skip
    """The screen's decisions on the neutral compositions of a group of G element sets, fused.

    ``V`` (3G, n) float64 holds, per set g and composition c: V[g, c] the weighted sum of the units (or, with
    ``scored``, the score itself), V[G + g, c] the units' total mass and V[2G + g, c] their total mass x price; it is
    rewritten in place to score, mean atomic mass (g/mol) and cost (USD/kg). Written: ``ok`` (G, n) bool, the
    compositions that are conductive, priced (``priced`` (G,)), within the cost and mass limits; ``counts`` (G, 3)
    int64: conductive, ... and within the cost limit, ... and within the mass limit; ``near`` (G,) int64: the
    compositions with some decision within its band (``score_band`` (G,), ``cost_band``, ``mass_band``; a negative
    band never matches), which the caller settles exactly."""
    n = V.shape[1]
    for g in range(G):
        sb = score_band[g]
        has_price = priced[g]
        c_good = 0
        c_cost = 0
        c_mass = 0
        c_near = 0
        for c in range(n):
            score = V[g, c] if scored else V[g, c] / T + bias
            total_mass = V[G + g, c]
            cost = V[2 * G + g, c] / total_mass
            mass = total_mass / T
            V[g, c] = score
            V[G + g, c] = mass
            V[2 * G + g, c] = cost
            good = score > 0.0
            fine = good and has_price and cost <= cost_limit
            light = fine and mass <= mass_limit
            ok[g, c] = light
            c_good += good
            c_cost += fine
            c_mass += light
            unsure = abs(score) <= sb
            if good and has_price:
                unsure = unsure or abs(cost - cost_limit) <= cost_band
            if fine:
                unsure = unsure or abs(mass - mass_limit) <= mass_band
            c_near += unsure
        counts[g, 0] = c_good
        counts[g, 1] = c_cost
        counts[g, 2] = c_mass
        near[g] = c_near


def band(limit: float) -> float:
    """The band of a limit (USD/kg or g/mol) inside which a cost or mass is compared exactly; -1 (never) for no
    limit (infinity)."""
    return SLACK * limit if math.isfinite(limit) else -1.0


def exact_sum(constant: Fraction, weights: np.ndarray, units: np.ndarray) -> Fraction:
    """``constant + sum_j weights[j] * units[j]`` in rational arithmetic (weights float64, units integers)."""
    total = constant
    for w, u in zip(weights.tolist(), units.tolist(), strict=True):
        total += Fraction(w) * int(u)
    return total


def exact_score_positive(total: int, bias: float, weights: np.ndarray, units: np.ndarray) -> bool:
    """Whether ``T * bias + sum_j w_j u_j > 0`` exactly: the score of units ``units`` (Li first) is above 0."""
    return exact_sum(Fraction(bias) * total, weights, units) > 0


def decimal(value: float) -> Fraction:
    """A data value (a molar mass, a price, a limit) as the decimal number it stands for: the shortest decimal that
    reads back as the same float64 (``repr``), exactly. Masses and prices are written in decimal (63.546 g/mol), and a
    mean mass of exactly 30.000 is within a 30 g/mol limit, whatever the binary rounding of 63.546."""
    return Fraction(repr(float(value)))


def exact_within(limit: float, numerator: Fraction, denominator: Fraction) -> bool:
    """Whether ``numerator <= limit * denominator`` exactly, the limit at its decimal value (a cost against its limit:
    total mass x price over total mass; a mean mass: total mass over T)."""
    return math.isinf(limit) or numerator <= decimal(limit) * denominator


__all__ = [
    "FALLING",
    "FLAT",
    "RISING",
    "SLACK",
    "band",
    "decimal",
    "exact_score_positive",
    "exact_sum",
    "exact_within",
    "group_decisions",
    "threshold_sums",
]
