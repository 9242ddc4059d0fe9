"""The screening kernel: one block of element sets in, exact funnel counts per set and the surviving
compositions out. numpy only; called inside ``mapInPandas`` by :mod:`lisearch.spark.screen` and directly by tests.

For an element set {e_1 < ... < e_k} (k = 2, 3 or 4 partners of Li) the compositions are integer unit vectors
u = (u_Li, u_1, ..., u_k), all >= 1, summing to T = 100 / step. With a linear model the score is
z = bias + (u . w) / T (w: per-element weights, :meth:`ElementalLinearModel.element_weights`), so:

* **conductive count** (z > 0) in closed form: fixing the leading parts (u_Li, ..., u_{k-2}) leaves z linear in
  u_{k-1} (u_k is then determined), so the number of u_{k-1} in [1, U] with z > 0 is a floor/ceil expression:
  O(T^(k-1)) work per set instead of O(T^k);
* **charge-neutral compositions** enumerated directly: for each choice of oxidation states the neutrality
  condition is linear, so u_{k-1} is solved from the leading parts (with four partners, the solutions for each pair
  (u_Li, u_1) are an arithmetic progression in the plane of (u_2, u_3), listed without a search); results are
  unioned over the choices and cached per tuple of oxidation-state lists (many elements share a list), each
  composition as its column in a table of every unit vector (:func:`unit_vector_table`);
* scores, cost per kg and mean atomic mass are computed only for the neutral compositions: element sets of a
  block whose state lists are permutations of each other share their neutral unit vectors (in a canonical column
  order), so each such group is scored with one matrix product.

Large work arrays are reused between calls (:class:`_Scratch`): allocating them afresh made glibc return them to
the OS and fault them in again on every call (3-5x slower).

A nonlinear model (atom2vec-esML, :class:`NetworkScorer`) has no closed form: the kernel then scores only the
charge-neutral compositions and reports the ``conductive`` count of the whole space as -1 (not computed).

Every decision that a count reports (score > 0, cost and mass within their limits) is the same on every machine:
the float64 loops (:mod:`lisearch.screening.exact`) flag the values within a proven rounding bound of their threshold,
and those are decided again in rational arithmetic, in the closed-form count, the per-set counts and the emitted
survivors
alike.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from math import comb
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from lisearch.chemistry.elements import LI_Z
from lisearch.chemistry.plausibility import PlausibilityRules, plausible_mask
from lisearch.models.atom2vec import forward
from lisearch.schema import STAT_COLUMNS, VALUE_TYPES, survivor_dtypes
from lisearch.screening.exact import (
    FALLING,
    FLAT,
    RISING,
    SLACK,
    band,
    decimal,
    exact_score_positive,
    exact_sum,
    exact_within,
    group_decisions,
    threshold_sums,
)

#: The kernel's matrix products (BLAS). One name, so that a test can stand in for another machine's rounding.
_matmul = np.matmul


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
    columns: int = 3  # partner columns of the output frames (partner_columns of the space's sizes)
    plausibility: PlausibilityRules | None = None  # set: survivors must also pass these rules

    @property
    def plausible_only(self) -> bool:
        """Whether survivors must also pass the plausibility rules (:mod:`lisearch.chemistry.plausibility`)."""
        return self.plausibility is not None


@functools.lru_cache(maxsize=8)
def leading_parts(units: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All leading parts (u_Li, ..., u_{k-2}) >= 1 leaving room for two more parts: int64 (P, k-1); and
    U = units - 1 - sum (the number of choices of u_{k-1}), shape (P,)."""
    grids = np.array(list(itertools.product(range(1, units), repeat=k - 1)), dtype=np.int64).reshape(-1, k - 1)
    lead = grids[grids.sum(axis=1) <= units - 2]
    return lead, units - 1 - lead.sum(axis=1)


@functools.lru_cache(maxsize=8)
def lead_f(units: int, k: int) -> np.ndarray:
    """The leading parts of :func:`leading_parts` as float64, shape (P, k-1)."""
    return leading_parts(units, k)[0].astype(np.float64)


@functools.lru_cache(maxsize=8)
def _lead_terms(units: int, k: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(lead.T / units as float64 (k-1, P), U as float64 (P,), sum of U) for :func:`conductive_counts`."""
    lead, U = leading_parts(units, k)
    return np.ascontiguousarray(lead.T / units), U.astype(np.float64), int(U.sum())


class _Scratch(threading.local):
    """Work arrays reused from call to call (one set per thread). numpy would otherwise allocate megabyte-sized
    temporaries thousands of times, and glibc hands each back to the OS and page-faults it in again: measured
    3.5x slower for the conductive counts."""

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, str], np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
        """A scratch array of ``shape`` and ``dtype`` reused across calls (contents undefined)."""
        size = int(np.prod(shape))
        key = (name, np.dtype(dtype).str)
        buf = self.buffers.get(key)
        if buf is None or buf.size < size:
            buf = self.buffers[key] = np.empty(max(size, 1 << 16), dtype)
        return buf[:size].reshape(shape)


_scratch = _Scratch()

#: Element sets per slice of :func:`conductive_counts`: its (sets x leading parts) work array then stays in the
#: CPU caches (64 x 4,851 float64 = 2.5 MB for quaternaries); measured 1.8x faster than whole 4,000-set blocks.
COUNT_CHUNK = 64
#: ... and at most this many work-array cells: quinaries have 152,096 leading parts at 1 % steps, so a slice is
#: 2 sets (2.4 MB) instead of 64 (78 MB).
COUNT_CELLS = COUNT_CHUNK * 4_851


def conductive_counts(inputs: ScreenInputs, sets: np.ndarray) -> np.ndarray:
    """Number of compositions with z > 0 for each element set (rows of ``sets``, positions), shape (B,)."""
    n_lead = len(leading_parts(inputs.units, sets.shape[1])[1])
    chunk = max(1, min(COUNT_CHUNK, COUNT_CELLS // max(n_lead, 1)))
    return np.concatenate(
        [_conductive_counts(inputs, sets[i : i + chunk]) for i in range(0, len(sets), chunk)] or [np.zeros(0, np.int64)]
    )


def _conductive_counts(inputs: ScreenInputs, sets: np.ndarray) -> np.ndarray:
    """:func:`conductive_counts` of one slice of sets. z at free part u (the last but one partner's units, the last
    partner's then fixed) is A + slope * u for each choice of the leading parts; the float64 thresholds are counted
    by :func:`lisearch.screening.exact.threshold_sums`, and the few whose threshold lies within the rounding bound of an
    integer (or, for a flat row, whose A lies within it of 0) are settled exactly (:func:`_settle_counts`)."""
    B, k = sets.shape
    T = inputs.units
    lead_t, U, u_total = _lead_terms(T, k)
    w = inputs.weights[sets]  # (B, k)
    w_fin = w[:, k - 1]
    w_lead = np.concatenate([np.full((B, 1), inputs.li_weight), w[:, : k - 2]], axis=1)  # (B, k-1): Li, leading
    slope = (w[:, k - 2] - w_fin) / T  # dz / du_{k-1}; its sign is exact (a float difference is 0 only for equals)
    kind = np.where(slope > 0, RISING, np.where(slope < 0, FALLING, FLAT))
    D = w_lead - w_fin[:, None]
    A = _scratch.get("counts", (B, len(U)))  # z at u_{k-1} = 0, for every choice of the leading parts
    _matmul(D, lead_t, out=A)
    A += (inputs.bias + w_fin)[:, None]
    size = np.abs(D).sum(axis=1) + abs(inputs.bias) + np.abs(w_fin)  # the magnitudes summed into A, at most
    with np.errstate(divide="ignore"):
        scale = np.where(kind == FLAT, 0.0, -1.0 / slope)  # the threshold on u_{k-1} is x = A * scale
    band = np.where(kind == FLAT, SLACK * size, SLACK * (size * np.abs(scale) + T + 1))
    sums = np.empty(B, np.int64)
    near = np.empty(B, np.int64)
    threshold_sums(A, scale, kind, U, band, sums, near)
    counts = np.where(kind == RISING, u_total - sums, sums)
    for r in np.flatnonzero(near).tolist():
        counts[r] += _settle_counts(inputs, k, w_lead[r], w[r], A[r], scale[r], int(kind[r]), band[r])
    return counts


def _settle_counts(
    inputs: ScreenInputs, k: int, w_lead: np.ndarray, w: np.ndarray, A: np.ndarray, scale: float, kind: int,
    band: float,
) -> int:  # fmt: skip
    """The correction of one set's conductive count from its columns (choices of the leading parts) whose float64
    decision lies within ``band`` of its boundary (the columns :func:`lisearch.screening.exact.threshold_sums` counted
    in ``near``): each is decided again in rational arithmetic. ``w_lead`` (k-1,) Li's and the leading partners'
    weights, ``w`` (k,) the set's weights, ``A`` (P,) its float64 scores at free part 0."""
    T = inputs.units
    lead, U = leading_parts(T, k)
    if kind == FLAT:
        cols = np.flatnonzero(np.abs(A) <= band)
        float_value = np.where(A[cols] > 0, U[cols], 0)
    else:
        x = A * scale  # the same products as the compiled loop: the same float64 values
        cols = np.flatnonzero(np.abs(x - np.rint(x)) <= band)
        xf = np.ceil(x[cols]) - 1 if kind == FALLING else np.floor(x[cols])
        float_value = np.clip(xf, 0, U[cols]).astype(np.int64)
    w_free, w_fin = Fraction(w[k - 2]), Fraction(w[k - 1])
    change = 0
    for col, fv in zip(cols.tolist(), float_value.tolist(), strict=True):
        # T * z at free part 0: T * bias + sum of the leading parts' weighted units + w_fin * (T - leading units)
        at_zero = exact_sum(Fraction(inputs.bias) * T + w_fin * (T - int(lead[col].sum())), w_lead, lead[col])
        if kind == FLAT:
            exact = int(U[col]) if at_zero > 0 else 0
        else:
            x_exact = -at_zero / (w_free - w_fin)  # T cancels
            edge = math.ceil(x_exact) - 1 if kind == FALLING else math.floor(x_exact)
            exact = min(max(edge, 0), int(U[col]))
        change += exact - int(fv)
    return -change if kind == RISING else change  # rising rows count the failing parts


class ByteBoundedCache:
    """A least-recently-used cache of numpy results bounded by their bytes rather than their number: a quaternary
    set's neutral compositions take kilobytes, a quinary set's up to 10 MB, so a count bound either wastes the
    cache on paper-space runs or lets quinary runs grow without limit. One per process, with a lock (the kernel
    may run in threads)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.nbytes = 0
        self._items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate ``function`` (hashable arguments; a numpy array or tuple of arrays result)."""

        @functools.wraps(function)
        def cached(*args: Any) -> Any:
            with self._lock:
                found = self._items.get(args)
                if found is not None:
                    self._items.move_to_end(args)
                    return found[0]
            value = function(*args)
            size = sum(a.nbytes for a in (value if isinstance(value, tuple) else (value,))) + 200
            with self._lock:
                if args not in self._items and size <= self.max_bytes:
                    self._items[args] = (value, size)
                    self.nbytes += size
                    while self.nbytes > self.max_bytes:
                        _, (_, dropped) = self._items.popitem(last=False)
                        self.nbytes -= dropped
            return value

        cached.cache = self  # type: ignore[attr-defined]
        return cached

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()
            self.nbytes = 0


#: Memory for the cached neutral solutions per process (each Spark Python worker has its own).
SOLUTION_CACHE_BYTES = 256 << 20
NEUTRAL_CACHE_BYTES = 512 << 20


@functools.lru_cache(maxsize=8)
def _lead_offsets(units: int, k: int) -> np.ndarray:
    """(P,) int64: the column of :func:`unit_vector_table` holding each leading part's first unit vector."""
    U = leading_parts(units, k)[1]
    return np.concatenate([[0], np.cumsum(U)[:-1]])


@functools.lru_cache(maxsize=4)
def unit_vector_table(units: int, k: int) -> np.ndarray:
    """Every unit vector (u_Li, u_1, ..., u_k) of parts >= 1 summing to ``units``, in lexicographic order, as int16
    columns (k+1, N), N = C(units-1, k) (3,764,376 x 5 = 38 MB for quinaries at 1 % steps, built once per
    process): a column's index is the unit vector's key in :func:`combo_solutions`."""
    lead, U = leading_parts(units, k)
    p = np.repeat(np.arange(len(U)), U)
    u = np.arange(len(p)) - _lead_offsets(units, k)[p] + 1
    out = np.empty((k + 1, len(p)), np.int16)
    for j in range(k - 1):
        out[j] = lead[p, j]
    out[k - 1] = u
    out[k] = U[p] + 1 - u  # u_k = units - sum(lead) - u_{k-1}
    return out


@ByteBoundedCache(SOLUTION_CACHE_BYTES)
def combo_solutions(units: int, combo: tuple[int, ...]) -> np.ndarray:
    """Keys (column indices of :func:`unit_vector_table`, int32, sorted) of the unit vectors that are neutral for
    one choice of oxidation states ``combo`` (one per partner; Li is +1). The condition is linear, so u_{k-1} is
    solved from the leading parts (u_k follows from the sum)."""
    keys = _combo_solutions_4(units, combo) if len(combo) == 4 else solutions_by_search(units, combo)
    return keys.astype(np.int32)


def solutions_by_search(units: int, combo: tuple[int, ...]) -> np.ndarray:
    """:func:`combo_solutions` (int64) by trying every leading part (O(P) per choice of states,
    P = C(units-1, k-1)); any number of partners (the reference for the four-partner progressions)."""
    k = len(combo)
    _, U = leading_parts(units, k)
    offsets = _lead_offsets(units, k)
    s = np.asarray(combo, dtype=np.float64)
    s_lead = np.concatenate([[1.0], s[: k - 2]])
    num = -(lead_f(units, k) @ (s_lead - s[k - 1]) + s[k - 1] * units)  # (P,)
    den = s[k - 2] - s[k - 1]
    if den != 0:
        q = num / den
        ok = (q >= 1) & (q <= U) & (q == np.rint(q))
        p = np.flatnonzero(ok)
        return offsets[p] + q[p].astype(np.int64) - 1
    p = np.flatnonzero(num == 0)  # the solved part is free: every u in 1..U
    if not len(p):
        return np.empty(0, np.int64)
    return np.concatenate([offsets[pi] + np.arange(U[pi]) for pi in p])


@functools.lru_cache(maxsize=8)
def _pair_terms(units: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For four partners: the pairs (u_Li, u_1) >= 1 leaving room for three more parts, in lexicographic order,
    int64 (Q, 2); R = units - 1 - u_Li - u_1, the most u_2 + u_3 can take (Q,); and the index in
    :func:`leading_parts` ``(units, 4)`` of the triple (u_Li, u_1, 1) (Q,): a pair's triples are consecutive there."""
    a, b = np.meshgrid(np.arange(1, units, dtype=np.int64), np.arange(1, units, dtype=np.int64), indexing="ij")
    pairs = np.stack([a.ravel(), b.ravel()], axis=1)
    pairs = pairs[pairs.sum(axis=1) <= units - 3]
    R = units - 1 - pairs.sum(axis=1)
    return pairs, R, np.concatenate([[0], np.cumsum(R - 1)[:-1]])


def _progressions(r: np.ndarray, R: np.ndarray, a: int, b: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer solutions of a x + b y = r (b != 0) with x, y >= 1 and x + y <= R, one equation per row (r, R int64
    (Q,)): they are x = first + m i, i = 0..count-1. Returns (first (Q,), count (Q,), m). x must satisfy
    a x = r (mod |b|), one residue modulo m = |b| / gcd(a, b) when gcd divides r; the bounds on y are linear in x."""
    a, b = int(a), int(b)
    g = math.gcd(a, b)
    m = abs(b) // g
    valid = r % g == 0
    residue = np.zeros_like(r) if m == 1 else (r // g) % m * pow((a // g) % m, -1, m) % m
    sign = 1 if b > 0 else -1
    lo, hi = np.ones_like(r), R - 1
    # y >= 1 and x + y <= R, each as c x <= d (multiplied by |b|)
    for c, d in ((sign * a, sign * r - abs(b)), (sign * (b - a), abs(b) * R - sign * r)):
        if c > 0:
            hi = np.minimum(hi, d // c)
        elif c < 0:
            lo = np.maximum(lo, -(d // -c))
        else:
            valid &= d >= 0
    first = lo + (residue - lo) % m
    return first, np.where(valid & (hi >= first), (hi - first) // m + 1, 0), int(m)


def _expand(first: np.ndarray, count: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, value) of every term of the progressions first + m i, i < count (one per row), row by row."""
    rows = np.repeat(np.arange(len(count)), count)
    offset = np.arange(rows.size) - np.repeat(np.cumsum(count) - count, count)
    return rows, first[rows] + m * offset


def _combo_solutions_4(units: int, combo: tuple[int, ...]) -> np.ndarray:
    """:func:`combo_solutions` for four partners. With u_4 = units - the rest, neutrality reads
    a_0 u_Li + a_1 u_1 + a_2 u_2 + a_3 u_3 = r (a_i = s_i - s_4, s_Li = 1, r = -s_4 units): for each pair
    (u_Li, u_1) the solutions (u_2, u_3) are an arithmetic progression (:func:`_progressions`), so the work is
    the pairs plus the solutions, not the 152,096 leading triples of the search at 1 % steps. Keys sorted."""
    s1, s2, s3, s4 = combo
    a0, a1, a2, a3 = 1 - s4, s1 - s4, s2 - s4, s3 - s4
    pairs, R, base = _pair_terms(units)
    r = -s4 * units - a0 * pairs[:, 0] - a1 * pairs[:, 1]
    if a3 != 0:  # u_3 solved from u_2
        rows, u2 = _expand(*_progressions(r, R, a2, a3))
        u3 = (r[rows] - a2 * u2) // a3
    elif a2 != 0:  # u_2 solved from u_3
        rows, u3 = _expand(*_progressions(r, R, a3, a2))
        u2 = (r[rows] - a3 * u3) // a2
    else:  # neither appears: every (u_2, u_3) of a pair with r = 0
        q = np.flatnonzero(r == 0)
        at, u2 = _expand(np.ones(len(q), np.int64), R[q] - 1, 1)
        rows = q[at]
        at, u3 = _expand(np.ones(len(rows), np.int64), R[rows] - u2, 1)
        rows, u2 = rows[at], u2[at]
    return _lead_offsets(units, 4)[base[rows] + u2 - 1] + u3 - 1


class NeutralSet(NamedTuple):
    """The charge-neutral unit vectors of a tuple of oxidation-state lists: ``keys`` (n,) int32, sorted (columns of
    :func:`unit_vector_table`: lexicographic order), ``which`` (n,) int16, the first choice of states under which
    each is neutral, as a row of ``combos`` (c, k) int8, the choices of states (one per partner)."""

    keys: np.ndarray
    which: np.ndarray
    combos: np.ndarray


@ByteBoundedCache(NEUTRAL_CACHE_BYTES)
def neutral_set(units: int, states: tuple[tuple[int, ...], ...]) -> NeutralSet:
    """Charge-neutral unit vectors for partners with the given oxidation-state lists (Li is +1): the union over
    every choice of states of :func:`combo_solutions` (6 bytes per composition in the cache)."""
    k = len(states)
    combos = [c for c in itertools.product(*states) if min(c) < 0]  # Li is +1: no anion, no neutral composition
    empty = NeutralSet(np.empty(0, np.int32), np.empty(0, np.int16), np.empty((0, k), np.int8))
    if not combos:
        return empty
    found = [combo_solutions(units, c) for c in combos]
    sizes = np.array([len(f) for f in found])
    if not sizes.sum():
        return empty
    space = unit_vector_table(units, k).shape[1]  # keys lie in [0, space)
    if sizes.sum() * UNION_BY_TABLE >= space and len(found) < np.iinfo(np.int16).max:
        keys, which = _union_by_table(found, space)
    else:
        keys = np.concatenate(found)
        owner = np.repeat(np.arange(len(combos), dtype=np.int16), sizes)
        keys, first = np.unique(keys, return_index=True)  # sorted: lexicographic order of the unit vectors
        which = owner[first]
    return NeutralSet(keys.astype(np.int32), which.astype(np.int16), np.asarray(combos, dtype=np.int8))


def neutral_compositions(units: int, states: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`neutral_set` as (units int16 (n, k+1) in lexicographic order, one valid state per partner int8 (n, k))."""
    found = neutral_set(units, states)
    comp = np.ascontiguousarray(unit_vector_table(units, len(states))[:, found.keys].T)
    return comp, found.combos[found.which]


#: The union of a choice's solutions goes through a table of every key (:func:`_union_by_table`) once they number
#: at least 1/16 of the key space (the table's scan then costs less than sorting them); 0: never.
UNION_BY_TABLE = 16


def _union_by_table(found: list[np.ndarray], space: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct keys, index of the first array of ``found`` holding each): an owner table of ``space`` int16
    entries (-1: absent; per thread, reset after use) written from the last array to the first, then scanned."""
    table = _owner_table(space)
    for i in range(len(found) - 1, -1, -1):
        table[found[i]] = i
    keys = np.flatnonzero(table >= 0)
    which = table[keys]
    table[keys] = -1
    return keys, which


def _owner_table(space: int) -> np.ndarray:
    table = _scratch.buffers.get(("owner", str(space)))
    if table is None:
        table = _scratch.buffers[("owner", str(space))] = np.full(space, -1, np.int16)
    return table


def clear_caches() -> None:
    """Empty this process's caches of neutral solutions (benchmarks measure the kernel cold with it)."""
    for function in (combo_solutions, neutral_set):
        function.cache.clear()  # type: ignore[attr-defined]


#: Work-array size (float64 elements) for the charge-neutral part: compositions x element sets of one group.
GROUP_CELLS = 1 << 17


def screen_sets(inputs: ScreenInputs, sets: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Screen element sets (positions, int (B, k)).

    Element sets whose oxidation-state lists are permutations of each other have the same charge-neutral unit
    vectors (in a canonical column order, :func:`neutral_set`), so the block is grouped by those lists
    and each group is scored with one matrix product: (n compositions, k+1) @ (k+1, 3 x sets) gives the score,
    the total mass and the mass-weighted price of every composition for every set of the group.

    Returns:
        stats: one row per set: z1..z3 or z1..z4 (``inputs.columns``: atomic numbers of the partners, 0 when
            absent) and the counts total, conductive, neutral, neutral_conductive, cost_ok, survivors, plausible
            (int64; -1: not computed, i.e. conductive for a network model, plausible without rules);
        survivors: one row per neutral, conductive composition within the cost and mass limits (and plausible
            with ``inputs.plausibility``): z1.., pct_li, pct_1.. (percent), ox_1.. (oxidation states used), score,
            cost_per_kg, mean_atomic_mass: the names of the `candidates` columns (0 for absent partners).
    """
    B, k = sets.shape
    T = inputs.units
    z = np.zeros((B, inputs.columns), np.int16)
    z[:, :k] = inputs.atomic_numbers[sets]
    stats = {name: np.zeros(B, np.int64) for name in STAT_COLUMNS}
    stats["total"][:] = _n_fractions(T, k)
    stats["conductive"][:] = conductive_counts(inputs, sets) if inputs.network is None else -1
    stats["plausible"][:] = 0 if inputs.plausible_only else -1
    parts: list[_Part] = []
    if B:
        lists, rank = state_ranks(inputs.states)
        ranks = rank[sets]
        order = np.argsort(ranks, axis=1, kind="stable")  # canonical column order of each set
        keys, group_of = np.unique(np.take_along_axis(ranks, order, axis=1), axis=0, return_inverse=True)
        members = np.argsort(group_of.ravel(), kind="stable")
        bounds = np.searchsorted(group_of.ravel()[members], np.arange(len(keys) + 1))
        table = _element_table(inputs)
        for g, key in enumerate(keys.tolist()):
            found = neutral_set(T, tuple(lists[r] for r in key))
            rows = members[bounds[g] : bounds[g + 1]]
            if not len(found.keys):
                continue
            stats["neutral"][rows] = len(found.keys)
            group = _group(inputs, k, found)
            step = max(1, GROUP_CELLS // (3 * len(found.keys)))
            for i in range(0, len(rows), step):
                _screen_group(inputs, table, sets, order, rows[i : i + step], group, stats, parts)
    stats_frame = pd.DataFrame({**{f"z{j}": z[:, j - 1] for j in range(1, inputs.columns + 1)}, **stats})
    return stats_frame, _survivor_frame(parts, z, 100 // inputs.units)


#: (row in the block, units (n, k+1), states (n, k), score, cost per kg, mean atomic mass) of emitted survivors.
_Part = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@functools.lru_cache(maxsize=64)
def state_ranks(states: tuple[tuple[int, ...], ...]) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """The distinct oxidation-state lists in sorted order and each element's index among them."""
    lists = sorted(set(states))
    index = {s: i for i, s in enumerate(lists)}
    return lists, np.array([index[s] for s in states], dtype=np.int64)


def _element_table(inputs: ScreenInputs) -> np.ndarray:
    """Per element (row 0: Li, then the space's elements): model weight, molar mass (g/mol), mass x price
    (g/mol x USD/kg, 0 when the price is unknown), 1.0 when the price is known, and the price (USD/kg, 0 when
    unknown); shape (m+1, 5)."""
    price = np.concatenate([[inputs.li_price], inputs.prices])
    mass = np.concatenate([[inputs.li_mass], inputs.masses])
    known = ~np.isnan(price)
    price = np.where(known, price, 0.0)
    return np.stack([np.concatenate([[inputs.li_weight], inputs.weights]), mass, mass * price, known, price], axis=1)


def _small_formulas(comp: np.ndarray, max_atoms: int) -> np.ndarray:
    """(n,) bool: the unit vectors ``comp`` (n, k+1) whose reduced formula has at most ``max_atoms`` atoms: the
    plausibility rule that depends on the composition alone, not on its elements. The parts sum to T, so the
    reduced formula has T / g atoms (g: the gcd of the parts, a divisor of T): the test is whether every part is a
    multiple of one of the smallest divisors d of T with T / d <= max_atoms, looked up per part in a table of T + 1
    bit masks (a gcd per row is ~50x slower)."""
    T = int(comp[0].sum()) if len(comp) else 1
    divisors = [d for d in range(1, T + 1) if T % d == 0 and T // d <= max_atoms]
    smallest = [d for d in divisors if not any(d % e == 0 for e in divisors if e < d)]
    # bit i of divides[x]: smallest[i] divides x; a composition passes when some bit is set in every part
    divides = np.zeros(T + 1, np.uint32)
    for i, d in enumerate(smallest[:32]):  # T = 100 has at most 9 divisors
        divides[::d] |= np.uint32(1 << i)
    common = divides[comp[:, 0]]
    for j in range(1, comp.shape[1]):
        common &= divides[comp[:, j]]
    return common != 0


class _Group(NamedTuple):
    """What the element sets of a group share: their neutral unit vectors as float64 columns ``units`` (k+1, n) (a
    scratch array, valid until the next group), ``found`` (:class:`NeutralSet`) and ``small`` (n,) bool with
    plausibility rules (the formula-size rule, :func:`_small_formulas`)."""

    units: np.ndarray
    found: NeutralSet
    small: np.ndarray | None


def _group(inputs: ScreenInputs, k: int, found: NeutralSet) -> _Group:
    """The :class:`_Group` of the neutral set ``found`` of ``k`` partners."""
    vectors = unit_vector_table(inputs.units, k)
    n = len(found.keys)
    units = _scratch.get("group_units", (k + 1, n))
    # np.take into reused arrays: 2.5x faster than vectors[:, keys], and no fresh pages per group
    units[...] = np.take(vectors, found.keys, axis=1, out=_scratch.get("group_int", (k + 1, n), np.int16), mode="clip")
    rules = inputs.plausibility
    small = None
    if rules:
        table = _small_table(inputs.units, k, rules.max_formula_atoms)
        small = np.take(table, found.keys, out=_scratch.get("group_small", (n,), np.bool_), mode="clip")
    return _Group(units, found, small)


@functools.lru_cache(maxsize=8)
def _small_table(units: int, k: int, max_atoms: int) -> np.ndarray:
    """(N,) bool: :func:`_small_formulas` of every column of :func:`unit_vector_table`."""
    return _small_formulas(unit_vector_table(units, k).T, max_atoms)


def _screen_group(
    inputs: ScreenInputs,
    table: np.ndarray,
    sets: np.ndarray,
    order: np.ndarray,
    rows: np.ndarray,
    group: _Group,
    stats: dict[str, np.ndarray],
    parts: list[_Part],
) -> None:
    """Score the shared neutral compositions of a group (:class:`_Group`, in canonical column order) for its sets
    ``rows``."""
    units = group.units
    n, G = units.shape[1], len(rows)
    T = inputs.units
    cpos = np.take_along_axis(sets[rows], order[rows], axis=1)  # (G, k) positions in canonical order
    idx = np.concatenate([np.zeros((G, 1), np.int64), cpos + 1], axis=1)  # rows of `table`, Li first
    coef = table[idx, :3].transpose(2, 0, 1).reshape(3 * G, idx.shape[1])  # (3G, k+1): weights; masses; m x p
    V = _scratch.get("values", (3 * G, n))  # one row per set and quantity: reductions run along contiguous rows
    _matmul(coef, units, out=V)
    network = inputs.network
    scored = network is not None
    if network is not None:
        for j in range(G):
            V[j] = network.score(units.T, cpos[j], T)
    priced = table[idx, 3].all(axis=1)  # (G,): every element of the set has a price
    # a network's score has no exact form: its sign is taken as computed (score band -1: never settled)
    score_band = np.full(G, -1.0) if scored else SLACK * (abs(inputs.bias) + np.abs(coef[:G]).max(axis=1))
    ok = _scratch.get("ok", (G, n), np.bool_)
    counts = np.empty((G, 3), np.int64)
    near = np.empty(G, np.int64)
    cost_limit, mass_limit = inputs.max_cost_per_kg, inputs.max_mean_atomic_mass
    group_decisions(V, G, float(T), inputs.bias, scored, priced, score_band, cost_limit, band(cost_limit),
                    mass_limit, band(mass_limit), ok, counts, near)  # fmt: skip
    for g in np.flatnonzero(near).tolist():
        _settle_group(inputs, g, G, table[idx[g]], units, V, priced[g], score_band[g], ok, counts)
    stats["neutral_conductive"][rows] = counts[:, 0]
    stats["cost_ok"][rows] = counts[:, 1]
    stats["survivors"][rows] = kept = counts[:, 2]
    score, mass, cost = V[:G], V[G : 2 * G], V[2 * G :]
    if (inputs.emit or inputs.plausible_only) and kept.any():
        if group.small is not None:
            ok &= group.small  # the formula-size rule first: it needs no elements, and few compositions pass it
        s_, c_ = np.nonzero(ok)  # set (within the group) and composition of every survivor
        _emit(inputs, group, sets[rows], order[rows], (s_, c_), (score, cost, mass), rows, stats, parts)


def _settle_group(
    inputs: ScreenInputs, g: int, G: int, elements: np.ndarray, units: np.ndarray, V: np.ndarray, priced: bool,
    score_band: float, ok: np.ndarray, counts: np.ndarray,
) -> None:  # fmt: skip
    """Decide again, in rational arithmetic, set ``g``'s compositions whose score, cost or mass
    :func:`lisearch.screening.exact.group_decisions` found within the rounding bound of its threshold; correct ``ok[g]``
    and ``counts[g]`` (conductive, ... cost, ... mass) where the exact answer differs. ``V`` holds the float64 score,
    mean mass and cost the compiled loop wrote; ``elements`` (k+1, 5) the set's rows of :func:`_element_table`
    (Li first). The score is exact in the model's binary weights; costs and masses in the decimal values of the
    element table and the limits (:func:`lisearch.screening.exact.decimal`)."""
    T = inputs.units
    cost_limit, mass_limit = inputs.max_cost_per_kg, inputs.max_mean_atomic_mass
    score, mass, cost = V[g], V[G + g], V[2 * G + g]
    good = score > 0
    fine = good & priced & (cost <= cost_limit)
    light = fine & (mass <= mass_limit)
    unsure = np.abs(score) <= score_band  # the compiled loop's test, on the same values
    unsure |= good & priced & (np.abs(cost - cost_limit) <= band(cost_limit))
    unsure |= fine & (np.abs(mass - mass_limit) <= band(mass_limit))
    masses = [decimal(m) for m in elements[:, 1].tolist()]
    mass_price = [m * decimal(p) for m, p in zip(masses, elements[:, 4].tolist(), strict=True)]
    for c in np.flatnonzero(unsure).tolist():
        u = units[:, c].astype(np.int64).tolist()
        is_good = bool(good[c]) if score_band < 0 else exact_score_positive(T, inputs.bias, elements[:, 0], units[:, c])
        total_mass = sum((m * n for m, n in zip(masses, u, strict=True)), Fraction(0))
        total_cost = sum((mp * n for mp, n in zip(mass_price, u, strict=True)), Fraction(0))
        is_fine = is_good and priced and exact_within(cost_limit, total_cost, total_mass)
        is_light = is_fine and exact_within(mass_limit, total_mass, Fraction(T))
        counts[g] += (int(is_good) - int(good[c]), int(is_fine) - int(fine[c]), int(is_light) - int(light[c]))
        ok[g, c] = is_light


def _emit(
    inputs: ScreenInputs,
    group: _Group,
    positions: np.ndarray,
    order: np.ndarray,
    hits: tuple[np.ndarray, np.ndarray],
    values: tuple[np.ndarray, np.ndarray, np.ndarray],
    rows: np.ndarray,
    stats: dict[str, np.ndarray],
    parts: list[_Part],
) -> None:
    """Gather the survivors ``hits`` = (set within the group (s,) sorted, composition (s,)) of the group's sets
    (``positions`` (G, k), canonical ``order`` (G, k), block rows ``rows`` (G,)) in their sets' column order, keep
    the plausible ones with plausibility rules (counted in ``stats``), and append them to ``parts``."""
    s_, c_ = hits
    G, k = positions.shape
    back = np.argsort(order, axis=1)  # canonical column of each original column
    cols = np.take_along_axis(np.broadcast_to(np.arange(1, k + 1), (G, k)), back, 1)
    keys = group.found.keys[c_]
    vectors = unit_vector_table(inputs.units, k)
    units_out = np.empty((len(c_), k + 1), np.int16)
    units_out[:, 0] = vectors[0, keys]
    units_out[:, 1:] = vectors[cols[s_], keys[:, None]]
    if inputs.plausible_only:
        keep = _plausible(inputs, positions, s_, units_out)  # s_ is sorted: np.nonzero is row-major
        s_, c_, units_out = s_[keep], c_[keep], units_out[keep]
        stats["plausible"][rows] = np.bincount(s_, minlength=G)
    if inputs.emit and len(s_):
        found = group.found
        states = np.take_along_axis(found.combos[found.which[c_]], cols[s_] - 1, axis=1)
        score, cost, mass = values
        parts.append((rows[s_], units_out, states, score[s_, c_], cost[s_, c_], mass[s_, c_]))


def _plausible(inputs: ScreenInputs, positions: np.ndarray, which: np.ndarray, units: np.ndarray) -> np.ndarray:
    """(n,) bool: the compositions (Li first, amounts ``units`` (n, k+1)) of the element sets ``positions[which]``
    ((G, k) positions, ``which`` (n,) sorted) that pass ``inputs.plausibility``
    (:func:`lisearch.chemistry.plausibility.plausible_mask`), one element set at a time."""
    rules = inputs.plausibility
    assert rules is not None
    out = np.zeros(len(units), dtype=bool)
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(which)) + 1, [len(which)]])
    for a, b in itertools.pairwise(bounds.tolist()):
        if b > a:
            z = (LI_Z, *(int(v) for v in inputs.atomic_numbers[positions[which[a]]]))
            out[a:b] = plausible_mask(z, units[a:b], rules)
    return out


def _survivor_frame(parts: list[_Part], z: np.ndarray, step: int) -> pd.DataFrame:
    width = z.shape[1]  # partner columns
    if not parts:
        return empty_survivors(width)
    rows = np.concatenate([p[0] for p in parts])
    comp = np.concatenate([p[1] for p in parts])
    ox = np.concatenate([p[2] for p in parts])
    k = ox.shape[1]
    dtypes = survivor_dtypes(width)
    pct = np.zeros((len(rows), width + 1), dtypes["pct_li"])
    np.multiply(comp, step, out=pct[:, : k + 1], casting="unsafe")  # units -> percent, the unit of `candidates`
    states = np.zeros((len(rows), width), dtypes["ox_1"])
    states[:, :k] = ox
    js = range(1, width + 1)
    frame = {
        **{f"z{j}": z[rows, j - 1] for j in js},
        "pct_li": pct[:, 0],
        **{f"pct_{j}": pct[:, j] for j in js},
        **{f"ox_{j}": states[:, j - 1] for j in js},
        **{name: np.concatenate([p[3 + i] for p in parts]).astype(dtypes[name]) for i, name in enumerate(VALUE_TYPES)},
    }
    return pd.DataFrame(frame)


def empty_survivors(columns: int = 3) -> pd.DataFrame:
    """A survivors frame with no rows and the columns and dtypes of :func:`survivor_dtypes`."""
    return pd.DataFrame({c: np.empty(0, t) for c, t in survivor_dtypes(columns).items()})


def _n_fractions(units: int, k: int) -> int:
    return comb(units - 1, k)
