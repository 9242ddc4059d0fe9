"""Composition space and screening kernel against brute force on small spaces."""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Sequence
from math import comb
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lisearch.chemistry.elements import atomic_masses, default_elements, oxidation_states, prices_per_kg
from lisearch.chemistry.plausibility import PlausibilityRules, plausibility
from lisearch.errors import InputError
from lisearch.schema import PARTNERS, STAT_COLUMNS, partner_columns
from lisearch.screening.kernels import ScreenInputs, conductive_counts, neutral_compositions, screen_sets
from lisearch.screening.space import CompositionSpace, rank_subset, unrank_subset


def test_default_space_count_matches_closed_form():
    space = CompositionSpace(default_elements())
    assert len(space.elements) == 93
    assert space.count() == comb(93, 2) * comb(99, 2) + comb(93, 3) * comb(99, 3) == 20_374_419_912


def _brute_compositions(space: CompositionSpace):
    for k in space.sizes:
        for els in itertools.combinations(space.elements, k):
            for units in itertools.product(range(1, space.units), repeat=k + 1):
                if sum(units) == space.units:
                    yield els, units


def test_quinary_space_count_matches_closed_form():
    space = CompositionSpace(default_elements(), sizes=(4,))
    assert space.count() == comb(93, 4) * comb(99, 4) == 2_919_735 * 3_764_376 == 10_990_980_360_360
    both = CompositionSpace(default_elements(), sizes=(2, 3, 4))
    assert both.count() == 20_374_419_912 + 10_990_980_360_360 < 2**63
    last = both.count() - 1
    assert both.unrank(last) == (both.elements[-4:], (96, 1, 1, 1, 1))
    assert both.rank(*both.unrank(last)) == last


@pytest.mark.parametrize(
    ("elements", "step", "sizes"),
    [
        (("O", "Na", "P", "S", "Cl"), 10, (2, 3)),
        (("N", "Mg", "Ga"), 5, (3,)),
        (("O", "Na", "P", "S", "Cl"), 10, (2, 3, 4)),
    ],
)
def test_rank_unrank_enumerate_in_order(elements, step, sizes):
    space = CompositionSpace(elements, step, sizes)
    listed = list(_brute_compositions(space))
    assert len(listed) == space.count()
    for i, (els, units) in enumerate(listed):
        assert space.rank(els, units) == i
        assert space.unrank(i) == (els, units)


def test_subset_rank_round_trip():
    for k in (1, 2, 3, 4):
        for r, subset in enumerate(itertools.combinations(range(7), k)):
            assert rank_subset(subset, 7) == r and unrank_subset(r, 7, k) == subset


def test_blocks_cover_every_set_once():
    space = CompositionSpace(("O", "Na", "P", "S", "Cl", "F"), 10, (2, 3, 4))
    seen = {k: [] for k in space.sizes}
    for block in space.blocks(3):
        seen[block.k] += [tuple(r) for r in space.element_sets(block)]
    for k in space.sizes:
        assert seen[k] == list(itertools.combinations(range(6), k))


@pytest.mark.parametrize(
    "classes", [(0, 0, 0, 0, 0, 0, 0), (3, 1, 3, 0, 1, 3, 2), (0, 1, 2, 3, 4, 5, 6), (5, 5, 2, 5, 2, 9, 5)]
)
def test_grouped_blocks_cover_every_set_once_with_each_class_multiset_consecutive(classes):
    """With element classes, blocks hold every set once (against itertools), the sets of one multiset of classes
    are consecutive across block boundaries, and the space's counts and ranks do not change."""
    elements = ("O", "Na", "P", "S", "Cl", "K", "Fe")
    space = CompositionSpace(elements, 10, (2, 3, 4), classes)
    plain = CompositionSpace(elements, 10, (2, 3, 4))
    assert space.count() == plain.count() and space.unrank(6789) == plain.unrank(6789)
    for size in (1, 3, 50):
        seen: dict[int, list[tuple[int, ...]]] = {k: [] for k in space.sizes}
        for block in space.blocks(size):
            seen[block.k] += [tuple(r) for r in space.element_sets(block)]
        for k in space.sizes:
            assert sorted(seen[k]) == list(itertools.combinations(range(7), k)), (k, size)
            assert len(set(seen[k])) == len(seen[k])
            keys = [tuple(sorted(classes[i] for i in s)) for s in seen[k]]
            runs = [key for key, _ in itertools.groupby(keys)]
            assert len(runs) == len(set(runs)), (k, size)  # a multiset never comes back once left


def test_a_group_slice_starts_where_the_product_order_puts_it():
    """Sets lo..hi-1 of a group, unranked then advanced, equal the slice of itertools' product of combinations."""
    from lisearch.screening.space import _group_sets, class_groups

    rng = np.random.default_rng(7)
    classes = tuple(int(c) for c in rng.integers(0, 3, 12))
    groups, offsets, members = class_groups(classes, 4)
    for g, group in enumerate(groups):
        size = int(offsets[g + 1] - offsets[g])
        every = [
            tuple(sorted(itertools.chain.from_iterable(parts)))
            for parts in itertools.product(*(itertools.combinations(members[c], j) for c, j in group))
        ]
        assert len(every) == size
        for lo in {0, size // 3, size - 1}:
            hi = min(size, lo + int(rng.integers(1, 40)))
            assert list(_group_sets(group, members, lo, hi)) == every[lo:hi], (group, lo, hi)


def test_element_classes_must_match_the_ordered_elements():
    with pytest.raises(InputError, match="one label per element"):
        CompositionSpace(("O", "Na", "P"), 10, (2,), (0, 1))
    with pytest.raises(InputError, match="order of Z"):
        CompositionSpace(("Na", "O", "P"), 10, (2,), (0, 1, 2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"elements": ("O", "Xx")}, "Unknown element"),
        ({"elements": ("O", "S"), "step": 3}, "divides 100"),
        ({"elements": ()}, "at least 2"),
        ({"elements": ("O", "Li")}, "leave Li out"),
        ({"elements": ("O", "S"), "sizes": (5,)}, "sizes"),
        ({"elements": ("O", "S", "P"), "sizes": (4,)}, "at least 4"),
        ({"elements": ("O", "S", "P", "N"), "step": 25, "sizes": (4,)}, "too coarse"),
    ],
)
def test_bad_spaces_are_refused(kwargs, message):
    with pytest.raises(InputError, match=message):
        CompositionSpace(**kwargs)


def _inputs(space: CompositionSpace, list_name: str, seed: int, max_cost=60.0, max_mass=30.0) -> ScreenInputs:
    rng = np.random.default_rng(seed)
    states = oxidation_states(list_name)
    masses, prices = atomic_masses(), prices_per_kg()
    els = list(space.elements)
    return ScreenInputs(
        units=space.units,
        atomic_numbers=space.atomic_numbers,
        bias=float(rng.normal(0, 0.3)),
        li_weight=float(rng.normal(0, 1)),
        weights=rng.normal(0, 1, len(els)),
        li_mass=float(masses["Li"]),
        masses=masses[els].to_numpy(),
        li_price=float(prices["Li"]),
        prices=prices[els].to_numpy(),
        states=tuple(states[e] for e in els),
        max_cost_per_kg=max_cost,
        max_mean_atomic_mass=max_mass,
        columns=partner_columns(space.sizes),
    )


@functools.cache
def _neutral_by_trying(units: tuple[int, ...], states: tuple[tuple[int, ...], ...]) -> bool:
    """Li+ and one state per partner: does any combination sum to zero? (Every combination tried; remembered
    across the oracle's calls.)"""
    return any(
        units[0] + sum(u * s for u, s in zip(units[1:], combo, strict=True)) == 0
        for combo in itertools.product(*states)
    )


def _oracle(space: CompositionSpace, inp: ScreenInputs):
    """Every composition, one by one: score, neutrality by trying every state combination, cost, mass."""
    pos = {e: i for i, e in enumerate(space.elements)}
    stats, survivors = {}, set()
    for els, units in _brute_compositions(space):
        idx = [pos[e] for e in els]
        key = tuple(space.atomic_numbers[idx].tolist()) + (0,) * (inp.columns - len(els))
        row = stats.setdefault(key, dict.fromkeys(STAT_COLUMNS, 0) | {"plausible": -1})  # rules not applied
        row["total"] += 1
        score = (
            inp.bias
            + (units[0] * inp.li_weight + sum(u * inp.weights[i] for u, i in zip(units[1:], idx, strict=True)))
            / space.units
        )
        row["conductive"] += score > 0
        if not _neutral_by_trying(tuple(units), tuple(inp.states[i] for i in idx)):
            continue
        row["neutral"] += 1
        if score <= 0:
            continue
        row["neutral_conductive"] += 1
        m = [inp.li_mass, *(inp.masses[i] for i in idx)]
        p = [inp.li_price, *(inp.prices[i] for i in idx)]
        mass = sum(u * mi for u, mi in zip(units, m, strict=True))
        cost = np.inf if np.isnan(p).any() else sum(u * mi * pi for u, mi, pi in zip(units, m, p, strict=True)) / mass
        if cost <= inp.max_cost_per_kg:
            row["cost_ok"] += 1
            if mass / space.units <= inp.max_mean_atomic_mass:
                row["survivors"] += 1
                survivors.add(key + tuple(units) + (0,) * (inp.columns + 1 - len(units)))
    return stats, survivors


def _check_against_oracle(space: CompositionSpace, inp: ScreenInputs, sets_per_block: int) -> pd.DataFrame:
    """The kernel block by block against :func:`_oracle`: every set's counts and the survivors' rows."""
    want_stats, want_survivors = _oracle(space, inp)
    got_stats, got_survivors = [], []
    for block in space.blocks(sets_per_block):
        stats, surv = screen_sets(inp, space.element_sets(block))
        got_stats.append(stats)
        got_survivors.append(surv)
    stats = pd.concat(got_stats)
    zs = [f"z{j}" for j in range(1, inp.columns + 1)]
    got = {
        tuple(r[: inp.columns]): dict(zip(STAT_COLUMNS, r[inp.columns :], strict=True))
        for r in stats[[*zs, *STAT_COLUMNS]].itertuples(index=False)
    }
    assert got == want_stats
    surv = pd.concat(got_survivors)
    units = surv[["pct_li", *[f"pct_{j}" for j in range(1, inp.columns + 1)]]].to_numpy() // space.step  # in units
    got_survivors = set(map(tuple, np.column_stack([surv[zs].to_numpy(), units]).tolist()))
    assert got_survivors == want_survivors
    assert len(surv) == len(want_survivors)
    assert stats["total"].sum() == space.count()
    return surv


@pytest.mark.parametrize("list_name", ["pymatgen_common", "pymatgen_all", "smact_icsd24"])
@pytest.mark.parametrize(("seed", "step"), [(0, 5), (1, 10)])
def test_kernel_equals_brute_force(list_name: str, seed: int, step: int):
    space = CompositionSpace(("B", "N", "O", "Na", "Mg", "P", "S", "Cl", "Ga"), step=step)
    _check_against_oracle(space, _inputs(space, list_name, seed), 7)


@pytest.mark.parametrize(("list_name", "seed"), [("pymatgen_icsd", 2), ("smact_icsd24", 3)])
def test_quinary_kernel_equals_brute_force(list_name: str, seed: int):
    """Ternaries to quinaries in one space; every column of the fourth partner is checked like the others."""
    space = CompositionSpace(("N", "O", "Na", "P", "S", "Cl", "Fe"), step=10, sizes=(2, 3, 4))
    surv = _check_against_oracle(space, _inputs(space, list_name, seed, max_cost=1e9, max_mass=1e9), 9)
    quinary = surv[surv["z4"] > 0]
    assert len(quinary) > 0 and (quinary[["pct_4", "ox_4"]] != 0).all(axis=None)
    assert (surv.loc[surv["z4"] == 0, ["pct_4", "ox_4"]] == 0).all(axis=None)


def _plausible_rows(frame: pd.DataFrame, rules: PlausibilityRules) -> np.ndarray:
    z = np.column_stack([np.full(len(frame), 3), frame[[f"z{j}" for j in PARTNERS]].to_numpy()])
    amounts = frame[["pct_li", *[f"pct_{j}" for j in PARTNERS]]].to_numpy()
    return plausibility(z, amounts, rules)["plausible"].to_numpy()


def test_plausible_only_keeps_exactly_the_plausible_survivors():
    """With ``plausible_only`` the kernel's rows and per-set ``plausible`` counts equal the plausibility rules applied
    to the rows of the same kernel without them; the other stages do not change."""
    space = CompositionSpace(("N", "O", "Na", "P", "S", "Cl", "Fe"), step=10, sizes=(2, 3, 4))
    plain = _inputs(space, "pymatgen_icsd", 2, max_cost=1e9, max_mass=1e9)
    rules = PlausibilityRules(min_state_frequency=0.05, max_formula_atoms=12)
    strict = dataclasses.replace(plain, plausibility=rules)
    for block in space.blocks(50):
        sets = space.element_sets(block)
        stats_all, surv_all = screen_sets(plain, sets)
        stats, surv = screen_sets(strict, sets)
        assert (stats_all["plausible"] == -1).all()
        keep = _plausible_rows(surv_all, rules)
        pd.testing.assert_frame_equal(surv.reset_index(drop=True), surv_all[keep].reset_index(drop=True))
        zs = [f"z{j}" for j in PARTNERS]
        per_set = surv_all[keep].groupby(zs).size()
        want = stats[zs].apply(tuple, axis=1).map(per_set).fillna(0).astype(int)
        assert (stats["plausible"] == want).all()
        pd.testing.assert_frame_equal(stats.drop(columns="plausible"), stats_all.drop(columns="plausible"))
    assert 0 < int(stats["plausible"].sum()) < int(stats["survivors"].sum())


def test_oxidation_states_emitted_make_the_composition_neutral():
    space = CompositionSpace(("N", "O", "P", "S", "Fe"), step=5, sizes=(3, 4))
    inp = _inputs(space, "pymatgen_all", 3, max_cost=1e9, max_mass=1e9)
    _, surv = screen_sets(inp, space.element_sets(next(space.blocks(100))))
    charge = surv["pct_li"].astype(int) + sum(
        surv[f"pct_{i}"].astype(int) * surv[f"ox_{i}"].astype(int) for i in PARTNERS
    )
    assert len(surv) > 0 and (charge == 0).all()


def test_neutral_enumeration_handles_equal_states():
    """Na and K both +1 only: the solved variable is free along a line (den = 0 branch)."""
    comps, ox = neutral_compositions(10, ((1,), (1,), (-2,)))
    brute = [
        u for u in itertools.product(range(1, 10), repeat=4) if sum(u) == 10 and u[0] + u[1] + u[2] - 2 * u[3] == 0
    ]
    assert sorted(map(tuple, comps.tolist())) == sorted(brute)
    assert (ox == [1, 1, -2]).all()


def test_conductive_counts_flat_and_signed_cases():
    space = CompositionSpace(("O", "S", "Se"), step=10, sizes=(2,))
    inp = _inputs(space, "pymatgen_common", 0)
    for weights in ([1.0, 1.0, 1.0], [0.5, -0.2, 0.9], [-1.0, 0.3, 0.3]):
        inp2 = ScreenInputs(**{**inp.__dict__, "weights": np.array(weights)})
        sets = space.element_sets(next(space.blocks(10)))
        got = conductive_counts(inp2, sets)
        for row, pos in enumerate(sets):
            brute = sum(
                inp2.bias + (u0 * inp2.li_weight + u1 * inp2.weights[pos[0]] + u2 * inp2.weights[pos[1]]) / 10 > 0
                for u0, u1, u2 in itertools.product(range(1, 10), repeat=3)
                if u0 + u1 + u2 == 10
            )
            assert got[row] == brute


@pytest.mark.parametrize(("units", "max_atoms"), [(100, 30), (100, 10), (20, 12), (50, 60), (12, 5)])
def test_small_formula_prefilter_equals_the_gcd(units: int, max_atoms: int):
    """The formula-size rule by divisibility equals atoms = units / gcd(parts) <= max_atoms, on every unit vector
    of 3 parts and a random sample of 5."""
    import math

    from lisearch.screening.kernels import _small_formulas

    rng = np.random.default_rng(units + max_atoms)
    three = np.array([(a, b, units - a - b) for a in range(1, units) for b in range(1, units - a)], np.int16)
    fives = []
    for d in (d for d in range(1, units + 1) if units % d == 0 and units // d >= 5):  # rows with gcd d or more
        cuts = np.sort(np.stack([rng.choice(np.arange(1, units // d), 4, replace=False) for _ in range(500)]), axis=1)
        parts = np.diff(np.column_stack([np.zeros(500, int), cuts, np.full(500, units // d)]), axis=1)
        fives.append((parts * d).astype(np.int16))
    for comp in (three, np.concatenate(fives)):
        want = np.array([units // math.gcd(*map(int, row)) <= max_atoms for row in comp])
        assert np.array_equal(_small_formulas(comp, max_atoms), want)


@pytest.mark.parametrize(("units", "k"), [(20, 3), (33, 4), (50, 4)])
def test_union_by_table_equals_the_sorted_union(units: int, k: int, monkeypatch: pytest.MonkeyPatch):
    """The union of the state choices' solutions through the owner table equals np.unique's (keys and the first
    choice of states of each), for random oxidation-state lists; the table is left clean for the next call."""
    import lisearch.screening.kernels as kernels

    rng = np.random.default_rng(units + k)
    pool = [(-3,), (-2,), (-1,), (1,), (2,), (3,), (-2, 2, 4, 6), (-3, 3, 5), (-1, 1, 3, 5, 7), (2, 3), (-4, 4)]
    for _ in range(12):
        states = tuple(pool[i] for i in rng.choice(len(pool), k, replace=False))
        kernels.clear_caches()
        monkeypatch.setattr(kernels, "UNION_BY_TABLE", 0)  # never the table
        want = kernels.neutral_compositions(units, states)
        kernels.clear_caches()
        monkeypatch.setattr(kernels, "UNION_BY_TABLE", 1 << 40)  # always
        got = kernels.neutral_compositions(units, states)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]), states
    space = len(kernels.leading_parts(units, k)[1]) * units
    assert (kernels._owner_table(space) == -1).all()


@pytest.mark.parametrize("units", [5, 12, 33, 100])
def test_four_partner_progressions_equal_the_search(units: int):
    """The neutral solutions of one choice of states listed as arithmetic progressions equal those found by trying
    every leading part, for random states and the degenerate ones (s_2 = s_3 = s_4, s_3 = s_4, all equal)."""
    from lisearch.screening.kernels import _combo_solutions_4, solutions_by_search

    rng = np.random.default_rng(units)
    combos = [tuple(int(x) for x in rng.integers(-4, 8, 4)) for _ in range(150)]
    combos += [(a, b, c, c) for a, b, c in rng.integers(-4, 8, (20, 3)).tolist()]
    combos += [(a, b, b, b) for a, b in rng.integers(-4, 8, (10, 2)).tolist()] + [(-1, -1, -1, -1), (1, 1, 1, -4)]
    for combo in combos:
        want = solutions_by_search(units, combo)
        got = _combo_solutions_4(units, combo)
        assert np.array_equal(got, want), combo


@pytest.mark.parametrize(("list_name", "step"), [("pymatgen_all", 10), ("smact_icsd24", 5)])
def test_quinary_counts_and_neutral_compositions_equal_brute_force(list_name: str, step: int):
    """Four partners: the closed-form conductive counts and the neutral enumeration against every unit vector."""
    space = CompositionSpace(("N", "O", "Na", "P", "S", "V", "Fe"), step=step, sizes=(4,))
    inp = _inputs(space, list_name, 4)
    sets = space.element_sets(next(space.blocks(100)))
    counts = conductive_counts(inp, sets)
    T = space.units
    vectors = [u for u in itertools.product(range(1, T), repeat=5) if sum(u) == T]
    assert len(vectors) == space.n_fractions(4)
    U = np.array(vectors)
    neutral_seen = 0
    for row, pos in enumerate(sets):
        w = np.concatenate([[inp.li_weight], inp.weights[pos]])
        assert counts[row] == int((inp.bias + U @ w / T > 0).sum()), pos
        states = tuple(inp.states[i] for i in pos)
        comps, ox = neutral_compositions(T, states)
        charges = [U @ np.array([1, *combo]) for combo in itertools.product(*states)]  # every choice of states
        neutral = np.any(np.array(charges) == 0, axis=0) if charges else np.zeros(len(U), bool)
        brute = [u for u, ok in zip(vectors, neutral, strict=True) if ok]
        assert list(map(tuple, comps.tolist())) == brute, pos  # same vectors, same (lexicographic) order
        neutral_seen += len(comps)
        if len(comps):
            assert (comps[:, 0] + (comps[:, 1:].astype(int) * ox).sum(axis=1) == 0).all()
    assert neutral_seen > 0 and 0 < counts.sum() < len(sets) * len(vectors)  # (pymatgen_all: every vector neutral)


def _smact_neutral(smact: Any, states: dict[str, tuple[int, ...]], els: Sequence[str], units: Sequence[int]) -> bool:
    """SMACT's neutral_ratios: is Li + ``els`` with amounts ``units`` (Li first) neutral for some choice of states?"""
    from math import gcd

    g = 0
    for u in units:
        g = gcd(g, int(u))
    reduced = [[int(u) // g] for u in units]
    lists = [(1,), *(states[e] for e in els)]
    return any(smact.neutral_ratios(list(c), stoichs=reduced, threshold=None) for c in itertools.product(*lists))


@pytest.mark.parametrize("list_name", ["pymatgen_icsd", "smact_icsd24"])
@pytest.mark.parametrize(("step", "sizes", "seed"), [(1, (2, 3), 11), (5, (4,), 5)])
def test_neutrality_agrees_with_smact_neutral_ratios(list_name: str, step: int, sizes: tuple[int, ...], seed: int):
    """Random compositions of the 93-element space (the paper's at 1 %; quinaries at 5 %, so that a set's neutral
    compositions are enumerated in milliseconds), then compositions solved from random sets (neutral by
    construction): our enumeration against SMACT's neutral_ratios, same state lists."""
    smact = pytest.importorskip("smact")
    space = CompositionSpace(default_elements(), step=step, sizes=sizes)
    states = oxidation_states(list_name)
    rng = np.random.default_rng(seed)
    checked = neutral_seen = 0
    for index in rng.integers(0, space.count(), 300):
        els, units = space.unrank(int(index))
        comps, _ = neutral_compositions(space.units, tuple(states[e] for e in els))
        ours = bool(len(comps)) and bool((comps == np.asarray(units)).all(axis=1).any())
        assert ours == _smact_neutral(smact, states, els, units), (els, units)
        checked += 1
        neutral_seen += ours
    usable = [e for e in space.elements if states[e]]
    for _ in range(100):
        els = tuple(sorted(rng.choice(usable, max(sizes), replace=False).tolist(), key=space.elements.index))
        comps, _ = neutral_compositions(space.units, tuple(states[e] for e in els))
        if len(comps):
            assert _smact_neutral(smact, states, els, comps[rng.integers(len(comps))]), els
            neutral_seen += 1
    assert checked == 300 and neutral_seen > 30


@pytest.mark.parametrize("partitions", [1, 3, 8, 500])
def test_partitions_cover_every_block_once_and_balance_the_work(partitions: int):
    from lisearch.screening.space import partition_blocks

    space = CompositionSpace(default_elements())
    blocks = tuple(space.blocks(700))
    parts = partition_blocks(blocks, partitions)
    assert len(parts) == min(partitions, len(blocks))
    assert sorted(b for p in parts for b in p) == list(range(len(blocks)))
    assert all(p == sorted(p) and p for p in parts)
    cost = [(b.stop - b.start) * (b.k - 1) for b in blocks]
    loads = [sum(cost[b] for b in p) for p in parts]
    assert max(loads) - min(loads) <= max(cost)  # largest first to the least loaded: at most one block apart
