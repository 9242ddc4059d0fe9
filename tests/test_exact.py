"""Exact means exact on every machine: the kernel's counts at the boundary against a brute-force oracle in rational
arithmetic, under other summation orders and roundings.

The model is built to sit on the boundary: every partner has one oxidation state s and the weight 0.s (a decimal
that binary floats only approximate), Li has +1 and 0.1. A composition's score is then 0.1 x its charge plus the
binary representation errors, so every charge-neutral composition scores exactly 0 or within an ulp or two of it,
and many thresholds of the closed-form count fall on integers. All prices are 10 USD/kg but one, so the cost of most
compositions is exactly the 10 USD/kg limit in decimal; the mass limit is set to a mean mass many compositions have
exactly. The oracle decides everything in :class:`fractions.Fraction`: the weights as binary numbers, the masses,
prices and limits as the decimals they are written as (``lisearch.screening.exact``'s rule). "Another machine" is
simulated by moving every result of the kernel's matrix products by up to two ulps (within the proven error bound), by
other
block sizes and set orders, and by more than one BLAS thread.
"""

from __future__ import annotations

import itertools
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import lisearch.screening.kernels as kernels
from lisearch.chemistry.elements import atomic_masses
from lisearch.schema import STAT_COLUMNS
from lisearch.screening.kernels import ScreenInputs, conductive_counts, screen_sets
from lisearch.screening.space import CompositionSpace

ELEMENTS = ("N", "O", "F", "Na", "Mg", "Al", "P", "S", "Cl")
STATES = {"N": -3, "O": -2, "F": -1, "Na": 1, "Mg": 2, "Al": 3, "P": 5, "S": -2, "Cl": -1}
STEP = 5  # T = 20 units


def _dec(x: float) -> Fraction:
    return Fraction(repr(float(x)))


def _space(sizes: tuple[int, ...] = (2, 3)) -> CompositionSpace:
    return CompositionSpace(ELEMENTS, step=STEP, sizes=sizes)


def _inputs(space: CompositionSpace, bias: float, max_cost: float, max_mass: float) -> ScreenInputs:
    masses = atomic_masses()
    weights = np.array([float(f"{0.1 * STATES[e]:.1f}") for e in space.elements])
    prices = np.array([20.0 if e == "P" else 10.0 for e in space.elements])
    return ScreenInputs(
        units=space.units, atomic_numbers=space.atomic_numbers, bias=bias, li_weight=0.1, weights=weights,
        li_mass=float(masses["Li"]), masses=masses[list(space.elements)].to_numpy(), li_price=10.0, prices=prices,
        states=tuple((STATES[e],) for e in space.elements), max_cost_per_kg=max_cost, max_mean_atomic_mass=max_mass,
        columns=3,
    )  # fmt: skip


def _compositions(space: CompositionSpace):
    for k in space.sizes:
        for els in itertools.combinations(range(len(space.elements)), k):
            for units in itertools.product(range(1, space.units), repeat=k + 1):
                if sum(units) == space.units:
                    yield els, units


def _oracle(space: CompositionSpace, inp: ScreenInputs) -> tuple[dict[tuple[int, ...], dict[str, int]], set]:
    """Every composition, one by one, in rational arithmetic."""
    T = space.units
    stats: dict[tuple[int, ...], dict[str, int]] = {}
    survivors = set()
    for els, units in _compositions(space):
        key = tuple(int(space.atomic_numbers[i]) for i in els) + (0,) * (3 - len(els))
        row = stats.setdefault(key, dict.fromkeys(STAT_COLUMNS, 0) | {"plausible": -1})
        row["total"] += 1
        weights = [inp.li_weight, *(inp.weights[i] for i in els)]
        good = Fraction(inp.bias) * T + sum(Fraction(w) * u for w, u in zip(weights, units, strict=True)) > 0
        row["conductive"] += good
        if units[0] + sum(u * inp.states[i][0] for u, i in zip(units[1:], els, strict=True)) != 0:
            continue
        row["neutral"] += 1
        if not good:
            continue
        row["neutral_conductive"] += 1
        m = [_dec(inp.li_mass), *(_dec(inp.masses[i]) for i in els)]
        p = [_dec(inp.li_price), *(_dec(inp.prices[i]) for i in els)]
        mass = sum((u * mi for u, mi in zip(units, m, strict=True)), Fraction(0))
        cost = sum((u * mi * pi for u, mi, pi in zip(units, m, p, strict=True)), Fraction(0))
        if cost <= _dec(inp.max_cost_per_kg) * mass:
            row["cost_ok"] += 1
            if mass <= _dec(inp.max_mean_atomic_mass) * T:
                row["survivors"] += 1
                survivors.add(key + tuple(units) + (0,) * (4 - len(units)))
    return stats, survivors


def _kernel(space: CompositionSpace, inp: ScreenInputs, sets_per_block: int, reverse: bool = False):
    got_stats, got_survivors = {}, set()
    for block in space.blocks(sets_per_block):
        sets = space.element_sets(block)
        stats, surv = screen_sets(inp, sets[::-1] if reverse else sets)
        for r in stats.itertuples(index=False):
            got_stats[(r.z1, r.z2, r.z3)] = {c: int(getattr(r, c)) for c in STAT_COLUMNS}
        units = surv[["pct_li", "pct_1", "pct_2", "pct_3"]].to_numpy() // STEP
        got_survivors |= set(map(tuple, np.column_stack([surv[["z1", "z2", "z3"]].to_numpy(), units]).tolist()))
    return got_stats, got_survivors


def _tie_rich_mass_limit(space: CompositionSpace, inp: ScreenInputs) -> float:
    """The mean mass (a short decimal) that the most neutral compositions have exactly."""
    masses = Counter()
    for els, units in _compositions(space):
        if units[0] + sum(u * inp.states[i][0] for u, i in zip(units[1:], els, strict=True)) == 0:
            m = [_dec(inp.li_mass), *(_dec(inp.masses[i]) for i in els)]
            masses[sum((u * mi for u, mi in zip(units, m, strict=True)), Fraction(0)) / space.units] += 1
    value, _ = masses.most_common(1)[0]
    return float(value)


@pytest.fixture(scope="module")
def boundary() -> tuple[CompositionSpace, ScreenInputs, tuple]:
    space = _space()
    inp = _inputs(space, bias=0.0, max_cost=10.0, max_mass=1e9)
    inp = ScreenInputs(**{**inp.__dict__, "max_mean_atomic_mass": _tie_rich_mass_limit(space, inp)})
    return space, inp, _oracle(space, inp)


def test_the_model_really_sits_on_the_boundary(boundary):
    """The premise: many neutral compositions score exactly 0 or within two ulps of it, many costs equal the limit
    in decimal, and float64 evaluation gets some of them wrong."""
    space, inp, (stats, _) = boundary
    T = space.units
    ties = wrong = 0
    for els, units in _compositions(space):
        if units[0] + sum(u * inp.states[i][0] for u, i in zip(units[1:], els, strict=True)) != 0:
            continue
        w = np.array([inp.li_weight, *(inp.weights[i] for i in els)])
        exact = sum(Fraction(x) * u for x, u in zip(w.tolist(), units, strict=True))
        ties += abs(exact) <= Fraction(1, 2**50)
        wrong += (float(np.dot(w, units)) / T + inp.bias > 0) != (exact > 0)
    assert ties >= 100 and wrong >= 5, (ties, wrong)
    assert sum(r["neutral_conductive"] for r in stats.values()) > 0 and sum(r["survivors"] for r in stats.values()) > 0


@pytest.mark.parametrize(("sets_per_block", "reverse", "threads"), [(7, False, 1), (1, True, 1), (1000, False, 2)])
def test_kernel_equals_the_exact_oracle_in_any_order(boundary, sets_per_block: int, reverse: bool, threads: int):
    space, inp, (want_stats, want_survivors) = boundary
    with threadpool_limits(threads):
        stats, survivors = _kernel(space, inp, sets_per_block, reverse)
    assert stats == want_stats
    assert survivors == want_survivors


def _perturbing_matmul(seed: int):
    """np.matmul whose every result is moved by 0, 1 or 2 ulps up or down: another machine's BLAS, within the
    error bound the kernel proves."""
    rng = np.random.default_rng(seed)

    def matmul(a, b, out):  # type: ignore[no-untyped-def]
        np.matmul(a, b, out=out)
        for _ in range(2):
            step = rng.integers(-1, 2, size=out.shape)
            down = np.where(step < 0, np.nextafter(out, -np.inf), out)
            out[...] = np.where(step > 0, np.nextafter(out, np.inf), down)
        return out

    return matmul


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_is_exact_under_another_machines_rounding(boundary, monkeypatch: pytest.MonkeyPatch, seed: int):
    space, inp, (want_stats, want_survivors) = boundary
    monkeypatch.setattr(kernels, "_matmul", _perturbing_matmul(seed))
    stats, survivors = _kernel(space, inp, 5)
    assert stats == want_stats and survivors == want_survivors


def test_quinary_and_biased_boundaries(monkeypatch: pytest.MonkeyPatch):
    """Li + 4 partners (the closed form's leading parts in three dimensions), a bias, no limits: conductive and
    neutral-conductive counts against the oracle, with the rounding perturbed."""
    space = CompositionSpace(("O", "Na", "Mg", "Al", "S", "Cl"), step=10, sizes=(2, 3, 4))
    inp = _inputs(space, bias=float("-0.05"), max_cost=0.0, max_mass=0.0)
    inp = ScreenInputs(**{**inp.__dict__, "max_cost_per_kg": np.inf, "max_mean_atomic_mass": np.inf, "columns": 4})
    T = space.units
    want = Counter()
    for els, units in _compositions(space):
        key = tuple(int(space.atomic_numbers[i]) for i in els)
        weights = [inp.li_weight, *(inp.weights[i] for i in els)]
        want[key] += Fraction(inp.bias) * T + sum(Fraction(w) * u for w, u in zip(weights, units, strict=True)) > 0
    monkeypatch.setattr(kernels, "_matmul", _perturbing_matmul(3))
    for k in (2, 3, 4):
        sets = np.array(list(itertools.combinations(range(len(space.elements)), k)))
        got = conductive_counts(inp, sets)
        for row, count in zip(sets.tolist(), got.tolist(), strict=True):
            assert count == want[tuple(int(space.atomic_numbers[i]) for i in row)], row


def test_a_score_of_exactly_zero_is_not_conductive():
    """The rule at the boundary itself: binary weights (no rounding anywhere) put compositions exactly on 0."""
    space = CompositionSpace(("O", "Mg"), step=25, sizes=(2,))  # T = 4: Li u0, O u1, Mg u2
    inp = _inputs(space, bias=0.0, max_cost=0.0, max_mass=0.0)
    inp = ScreenInputs(**{**inp.__dict__, "li_weight": 0.5, "weights": np.array([-0.5, 0.0])})
    # z * 4 = 0.5 u0 - 0.5 u1: exactly 0 for (1, 1, 2); positive for (2, 1, 1); negative for (1, 2, 1)
    assert conductive_counts(inp, np.array([[0, 1]])).tolist() == [1]
