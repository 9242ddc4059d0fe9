"""The screening kernel: one block of element sets in, exact funnel counts per set and the surviving
compositions out. numpy only; called inside ``mapInPandas`` by :mod:`lisearch.spark.screen` and directly by tests.

For an element set {e_1 < ... < e_k} (k = 2 or 3 partners of Li) the compositions are integer unit vectors
u = (u_Li, u_1, ..., u_k), all >= 1, summing to T = 100 / step. With a linear model the score is
z = bias + (u . w) / T (w: per-element weights, :meth:`ElementalLinearModel.element_weights`), so:

* **conductive count** (z > 0) in closed form: fixing the leading parts (u_Li, ..., u_{k-2}) leaves z linear in
  u_{k-1} (u_k is then determined), so the number of u_{k-1} in [1, U] with z > 0 is a floor/ceil expression:
  O(T^(k-1)) work per set instead of O(T^k);
* **charge-neutral compositions** enumerated directly: for each choice of oxidation states the neutrality
  condition is linear, so u_{k-1} is solved from the leading parts; results are unioned over the choices and
  cached per tuple of oxidation-state lists (many elements share a list);
* scores, cost per kg and mean atomic mass are computed only for the neutral compositions.

A nonlinear model (atom2vec-esML, :class:`NetworkScorer`) has no closed form: the kernel then scores only the
charge-neutral compositions and reports the ``conductive`` count of the whole space as -1 (not computed).

Scores within about 1e-12 of zero can be counted differently by the closed form and by direct evaluation.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lisearch.models.atom2vec import forward

STAT_COLUMNS = ("total", "conductive", "neutral", "neutral_conductive", "cost_ok", "survivors")


@dataclass(frozen=True)
class NetworkScorer:
    """atom2vec-esML in plain arrays: ``li`` (D,), ``vectors`` (m, D) aligned with the space's elements (NaN rows
    for elements without a vector, which the plan allows only when they can never be in a neutral composition),
    ``layers`` [(W, b), ...] and the reductions (see :func:`lisearch.models.atom2vec.forward`)."""

    li: np.ndarray
    vectors: np.ndarray
    layers: tuple[tuple[np.ndarray, np.ndarray], ...]
    reductions: tuple[str, ...]

    def score(self, units: np.ndarray, positions: np.ndarray, total: int) -> np.ndarray:
        """Decision values (n,) of unit vectors (n, k+1) (Li first) for partners at ``positions`` (k,)."""
        V = np.vstack([self.li[None, :], self.vectors[positions]])
        return forward(np, units / float(total), V, self.layers, self.reductions)


@dataclass(frozen=True)
class ScreenInputs:
    """Everything a task needs, as plain arrays (built once on the driver, broadcast as a dict).

    ``weights``/``masses``/``prices``/``states``: aligned with the space's elements (sorted by Z);
    ``li_weight``/``li_mass``/``li_price`` for Li. Units: masses g/mol, prices USD/kg, limits USD/kg and g/mol.
    """

    units: int
    atomic_numbers: np.ndarray  # (m,) int16
    bias: float
    li_weight: float
    weights: np.ndarray  # (m,) float64
    li_mass: float
    masses: np.ndarray  # (m,)
    li_price: float
    prices: np.ndarray  # (m,) NaN = unknown
    states: tuple[tuple[int, ...], ...]  # (m,) oxidation states per element
    max_cost_per_kg: float
    max_mean_atomic_mass: float
    emit: bool = True
    network: NetworkScorer | None = None  # set: score neutral compositions with it (weights/bias unused)


@functools.lru_cache(maxsize=8)
def leading_parts(units: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All leading parts (u_Li, ..., u_{k-2}) >= 1 leaving room for two more parts: int64 (P, k-1); and
    U = units - 1 - sum (the number of choices of u_{k-1}), shape (P,)."""
    grids = np.array(list(itertools.product(range(1, units), repeat=k - 1)), dtype=np.int64).reshape(-1, k - 1)
    lead = grids[grids.sum(axis=1) <= units - 2]
    return lead, units - 1 - lead.sum(axis=1)


@functools.lru_cache(maxsize=8)
def lead_f(units: int, k: int) -> np.ndarray:
    return leading_parts(units, k)[0].astype(np.float64)


#: Element sets per slice of :func:`conductive_counts`: its (sets x leading parts) temporaries then stay in the
#: CPU caches (64 x 4,851 float64 = 2.5 MB for quaternaries); measured 1.8x faster than whole 4,000-set blocks.
COUNT_CHUNK = 64


def conductive_counts(inputs: ScreenInputs, sets: np.ndarray) -> np.ndarray:
    """Number of compositions with z > 0 for each element set (rows of ``sets``, positions), shape (B,)."""
    if len(sets) > COUNT_CHUNK:
        return np.concatenate(
            [_conductive_counts(inputs, sets[i : i + COUNT_CHUNK]) for i in range(0, len(sets), COUNT_CHUNK)]
        )
    return _conductive_counts(inputs, sets)


def _conductive_counts(inputs: ScreenInputs, sets: np.ndarray) -> np.ndarray:
    k = sets.shape[1]
    T = inputs.units
    lead, U = leading_parts(T, k)
    w = inputs.weights[sets]  # (B, k)
    w_lead = np.concatenate([np.full((len(sets), 1), inputs.li_weight), w[:, : k - 1]], axis=1)[:, : k - 1]
    w_last, w_fin = w[:, k - 2], w[:, k - 1]
    A = (w_lead - w_fin[:, None]) @ (lead.T / T)  # (B, P), then shifted in place
    A += (inputs.bias + w_fin)[:, None]
    d = (w_last - w_fin) / T  # (B,)
    counts = np.zeros(len(sets), np.int64)
    u_total = int(U.sum())
    rising, falling, flat = d > 0, d < 0, d == 0
    if rising.any():  # z > 0  <=>  u > x = -A/d
        x = A[rising]
        x /= -d[rising, None]
        np.floor(x, out=x)
        np.clip(x, 0, U[None, :], out=x)
        counts[rising] = u_total - x.sum(axis=1).astype(np.int64)
    if falling.any():  # z > 0  <=>  u < x
        x = A[falling]
        x /= -d[falling, None]
        np.ceil(x, out=x)
        x -= 1
        np.clip(x, 0, U[None, :], out=x)
        counts[falling] = x.sum(axis=1).astype(np.int64)
    if flat.any():
        counts[flat] = ((A[flat] > 0) * U[None, :]).sum(axis=1)
    return counts


@functools.lru_cache(maxsize=100_000)
def combo_solutions(units: int, combo: tuple[int, ...]) -> np.ndarray:
    """Keys ``p * units + u`` (p: index into :func:`leading_parts`, u = u_{k-1}) of the unit vectors that are
    neutral for one choice of oxidation states ``combo`` (one per partner; Li is +1). The condition is linear,
    so u_{k-1} is solved from the leading parts (u_k follows from the sum)."""
    k = len(combo)
    _, U = leading_parts(units, k)
    s = np.asarray(combo, dtype=np.float64)
    s_lead = np.concatenate([[1.0], s[: k - 2]])
    num = -(lead_f(units, k) @ (s_lead - s[k - 1]) + s[k - 1] * units)  # (P,)
    den = s[k - 2] - s[k - 1]
    if den != 0:
        q = num / den
        ok = (q >= 1) & (q <= U) & (q == np.rint(q))
        p = np.flatnonzero(ok)
        return p * units + q[p].astype(np.int64)
    p = np.flatnonzero(num == 0)  # the solved part is free: every u in 1..U
    if not len(p):
        return np.empty(0, np.int64)
    return np.concatenate([pi * units + np.arange(1, U[pi] + 1) for pi in p])


@functools.lru_cache(maxsize=200_000)
def neutral_compositions(units: int, states: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
    """Charge-neutral unit vectors for partners with the given oxidation-state lists (Li is +1): the union over
    every choice of states of :func:`combo_solutions`.

    Returns (units int16 (n, k+1) in lexicographic order, one valid state per partner int8 (n, k)).
    """
    k = len(states)
    empty = (np.empty((0, k + 1), np.int16), np.empty((0, k), np.int8))
    if any(len(s) == 0 for s in states):
        return empty
    combos = list(itertools.product(*states))
    found = [combo_solutions(units, c) for c in combos]
    sizes = np.array([len(f) for f in found])
    if not sizes.sum():
        return empty
    keys = np.concatenate(found)
    which = np.repeat(np.arange(len(combos)), sizes)
    keys, first = np.unique(keys, return_index=True)  # sorted: lexicographic order of the unit vectors
    lead, _ = leading_parts(units, k)
    p, u = np.divmod(keys, units)
    lead_u = lead[p]
    out = np.empty((len(p), k + 1), np.int16)
    out[:, : k - 1] = lead_u
    out[:, k - 1] = u
    out[:, k] = units - lead_u.sum(axis=1) - u
    return out, np.asarray(combos, dtype=np.int8)[which[first]]


def neutral_for(units: int, states: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`neutral_compositions` through a canonical (sorted) order of the state lists, so that element sets
    whose lists are permutations of each other share one cache entry; columns are mapped back to ``states``'
    order (rows are then not in lexicographic order)."""
    order = sorted(range(len(states)), key=lambda i: states[i])
    if order == list(range(len(states))):
        return neutral_compositions(units, states)
    comp, ox = neutral_compositions(units, tuple(states[i] for i in order))
    inverse = np.argsort(order)
    return comp[:, np.concatenate([[0], inverse + 1])], ox[:, inverse]


def screen_sets(inputs: ScreenInputs, sets: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Screen element sets (positions, int (B, k)).

    Returns:
        stats: one row per set: z1, z2, z3 (atomic numbers of the partners, 0 when absent) and the counts
            total, conductive, neutral, neutral_conductive, cost_ok, survivors (int64);
        survivors: one row per neutral, conductive composition within the cost and mass limits: z1..z3,
            p_li, p1, p2, p3 (units), ox1..ox3 (oxidation states used), score, cost_per_kg, mean_atomic_mass.
    """
    B, k = sets.shape
    T = inputs.units
    z = np.zeros((B, 3), np.int16)
    z[:, :k] = inputs.atomic_numbers[sets]
    stats = {name: np.zeros(B, np.int64) for name in STAT_COLUMNS}
    stats["total"][:] = _n_fractions(T, k)
    stats["conductive"][:] = conductive_counts(inputs, sets) if inputs.network is None else -1
    parts: list[tuple[Any, ...]] = []
    for row in range(B):
        pos = sets[row]
        comp, ox = neutral_for(T, tuple(inputs.states[i] for i in pos))
        stats["neutral"][row] = len(comp)
        if not len(comp):
            continue
        if inputs.network is None:
            w = np.concatenate([[inputs.li_weight], inputs.weights[pos]])
            score = inputs.bias + (comp @ w) / T
        else:
            score = inputs.network.score(comp, pos, T)
        good = score > 0
        stats["neutral_conductive"][row] = good.sum()
        if not good.any():
            continue
        comp, ox, score = comp[good], ox[good], score[good]
        m = np.concatenate([[inputs.li_mass], inputs.masses[pos]])
        price = np.concatenate([[inputs.li_price], inputs.prices[pos]])
        mass_units = comp * m
        total_mass = mass_units.sum(axis=1)
        cost = (
            (mass_units @ np.nan_to_num(price, nan=0.0)) / total_mass
            if not np.isnan(price).any()
            else np.full(len(comp), np.inf)
        )
        mean_mass = total_mass / T
        cost_ok = cost <= inputs.max_cost_per_kg
        keep = cost_ok & (mean_mass <= inputs.max_mean_atomic_mass)
        stats["cost_ok"][row] = cost_ok.sum()
        stats["survivors"][row] = keep.sum()
        if inputs.emit and keep.any():
            parts.append((row, comp[keep], ox[keep], score[keep], cost[keep], mean_mass[keep]))
    stats_frame = pd.DataFrame({"z1": z[:, 0], "z2": z[:, 1], "z3": z[:, 2], **stats})
    return stats_frame, _survivor_frame(parts, z, k)


def _survivor_frame(parts: list[tuple[Any, ...]], z: np.ndarray, k: int) -> pd.DataFrame:
    if not parts:
        return empty_survivors()
    rows = np.concatenate([np.full(len(p[1]), p[0]) for p in parts])
    comp = np.concatenate([p[1] for p in parts])
    ox = np.concatenate([p[2] for p in parts])
    n = len(rows)
    frame = {
        "z1": z[rows, 0], "z2": z[rows, 1], "z3": z[rows, 2],
        "p_li": comp[:, 0], "p1": comp[:, 1], "p2": comp[:, 2], "p3": comp[:, 3] if k == 3 else np.zeros(n, np.int16),
        "ox1": ox[:, 0], "ox2": ox[:, 1], "ox3": ox[:, 2] if k == 3 else np.zeros(n, np.int8),
        "score": np.concatenate([p[3] for p in parts]).astype(np.float32),
        "cost_per_kg": np.concatenate([p[4] for p in parts]).astype(np.float32),
        "mean_atomic_mass": np.concatenate([p[5] for p in parts]).astype(np.float32),
    }  # fmt: skip
    return pd.DataFrame(frame)


SURVIVOR_DTYPES = {
    "z1": np.int16, "z2": np.int16, "z3": np.int16, "p_li": np.int16, "p1": np.int16, "p2": np.int16,
    "p3": np.int16, "ox1": np.int8, "ox2": np.int8, "ox3": np.int8, "score": np.float32,
    "cost_per_kg": np.float32, "mean_atomic_mass": np.float32,
}  # fmt: skip


def empty_survivors() -> pd.DataFrame:
    return pd.DataFrame({c: np.empty(0, t) for c, t in SURVIVOR_DTYPES.items()})


def _n_fractions(units: int, k: int) -> int:
    from math import comb

    return comb(units - 1, k)
