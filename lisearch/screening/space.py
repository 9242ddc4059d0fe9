"""The composition space: Li plus 2, 3 or 4 distinct other elements, every atomic fraction a positive multiple
of ``step`` percent, summing to 100 %.

Order (used by :meth:`CompositionSpace.rank` / :meth:`CompositionSpace.unrank`): all ternaries, then all
quaternaries, then all quinaries; within one size, element sets in lexicographic order of their positions in
``elements``; within one set, fraction vectors (u_Li, u_1, ..., u_k) in lexicographic order, where ``u`` counts steps
(``units = 100 / step``). A fraction vector corresponds to the cut points u_Li < u_Li+u_1 < ... of
{1, ..., units-1}, so both levels are ranks of k-subsets in lexicographic order.

Blocks (:meth:`CompositionSpace.blocks`) are ranges of element sets of one size: in that lexicographic order, or,
when the space has element ``classes`` (the screen passes one class per distinct oxidation-state list), grouped:
sets whose classes form the same multiset are consecutive (:func:`class_groups`), so the sets of a block share
their charge-neutral compositions and the kernel computes them once per group rather than once per block.

Counts: C(m, k) C(units-1, k) compositions with k partners; with the 93 elements Z <= 94 other than Li and 1 %
steps: 20,374,419,912 ternaries and quaternaries (the paper's space), and 10,990,980,360,360 quinaries. Counts,
ranks and block bounds are Python integers; the largest space there can be (those 93 elements, 1 % steps, sizes
2-4: 1.1e13) is six orders of magnitude below 2**63, so they also fit the int64 columns downstream.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from math import comb, prod

import numpy as np

from lisearch.chemistry.elements import symbols
from lisearch.errors import InputError

#: Numbers of partner elements a space may hold (Li + 2 to 4 others).
SIZES = (2, 3, 4)


def rank_subset(subset: Sequence[int], n: int) -> int:
    """Lexicographic rank of a sorted k-subset of range(n)."""
    k = len(subset)
    rank, prev = 0, -1
    for i, c in enumerate(subset):
        for v in range(prev + 1, c):
            rank += comb(n - 1 - v, k - 1 - i)
        prev = c
    return rank


def unrank_subset(rank: int, n: int, k: int) -> tuple[int, ...]:
    """Inverse of :func:`rank_subset`."""
    if not 0 <= rank < comb(n, k):
        raise IndexError(f"rank {rank} outside 0..{comb(n, k) - 1}")
    out, v = [], 0
    for i in range(k):
        while True:
            below = comb(n - 1 - v, k - 1 - i)
            if rank < below:
                out.append(v)
                v += 1
                break
            rank -= below
            v += 1
    return tuple(out)


def subsets_from(start: int, stop: int, n: int, k: int) -> np.ndarray:
    """The k-subsets of range(n) with lexicographic ranks start..stop-1, as an int array (stop-start, k)."""
    out = np.empty((max(stop - start, 0), k), dtype=np.int64)
    if stop <= start:
        return out
    cur = list(unrank_subset(start, n, k))
    for row in range(stop - start):
        out[row] = cur
        if not _advance(cur, n):
            break
    return out


@functools.lru_cache(maxsize=16)
def class_groups(
    classes: tuple[int, ...], k: int
) -> tuple[list[tuple[tuple[int, int], ...]], np.ndarray, list[tuple[int, ...]]]:
    """The k-subsets of range(len(classes)) grouped by the multiset of their elements' ``classes``.

    Returns (groups, offsets, members): a group is ((class index, multiplicity), ...), groups in lexicographic
    order of their sorted class indices; ``offsets`` (G+1,) int64, the first set of each group in the grouped
    order (offsets[-1] = C(m, k)); ``members[c]`` the positions of class c (classes are numbered in sorted order
    of their labels)."""
    labels = sorted(set(classes))
    members = [tuple(i for i, c in enumerate(classes) if c == label) for label in labels]
    ways = [[comb(len(m), j) for j in range(k + 1)] for m in members]
    groups, sizes = [], []
    for key in itertools.combinations_with_replacement(range(len(labels)), k):
        counted = tuple((c, len(list(run))) for c, run in itertools.groupby(key))
        size = prod(ways[c][j] for c, j in counted)
        if size:
            groups.append(counted)
            sizes.append(size)
    return groups, np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]), members


def _group_sets(
    group: tuple[tuple[int, int], ...], members: list[tuple[int, ...]], lo: int, hi: int
) -> Iterator[tuple[int, ...]]:
    """The element sets number lo..hi-1 (sorted positions) of one group of :func:`class_groups`: the product of
    each class's combinations in lexicographic order, the last class fastest. The first set is unranked (mixed
    radix, then :func:`unrank_subset` per class) and the others follow by successors, so a block that starts deep
    in a large group (all elements in one class: one group of every set) costs its own sets only; near the group's
    start itertools walks there (2.5x faster per set)."""
    if lo <= 4 * (hi - lo):
        product = itertools.product(*(itertools.combinations(members[c], j) for c, j in group))
        for parts in itertools.islice(product, lo, hi):
            yield tuple(sorted(itertools.chain.from_iterable(parts)))
        return
    sizes = [len(members[c]) for c, _ in group]
    digits, rest = [], lo
    for (_, j), n in zip(reversed(group), reversed(sizes), strict=True):
        rest, digit = divmod(rest, comb(n, j))
        digits.append(digit)
    cur = [list(unrank_subset(d, n, j)) for d, n, (_, j) in zip(reversed(digits), sizes, group, strict=True)]
    for _ in range(hi - lo):
        yield tuple(sorted(members[c][i] for (c, _), part in zip(group, cur, strict=True) for i in part))
        for p in range(len(group) - 1, -1, -1):  # the next set: carry from the last class to the first
            if _advance(cur[p], sizes[p]):
                break


def _advance(cur: list[int], n: int) -> bool:
    """Replace the sorted subset ``cur`` of range(n) by its lexicographic successor; False (and ``cur`` reset to the
    first subset) when it was the last."""
    m = len(cur)
    i = m - 1
    while i >= 0 and cur[i] == n - m + i:
        i -= 1
    if i < 0:
        cur[:] = range(m)
        return False
    cur[i] += 1
    for j in range(i + 1, m):
        cur[j] = cur[j - 1] + 1
    return True


def grouped_subsets(start: int, stop: int, classes: tuple[int, ...], k: int) -> np.ndarray:
    """The k-subsets number start..stop-1 of the grouped order of :func:`class_groups`, int64 (stop-start, k)."""
    groups, offsets, members = class_groups(classes, k)
    out: list[tuple[int, ...]] = []
    g = int(np.searchsorted(offsets, start, side="right")) - 1
    while start < stop:
        lo, hi = start - int(offsets[g]), min(stop, int(offsets[g + 1])) - int(offsets[g])
        out.extend(_group_sets(groups[g], members, lo, hi))
        start = int(offsets[g]) + hi
        g += 1
    return np.array(out, dtype=np.int64).reshape(-1, k)


@dataclass(frozen=True)
class Block:
    """Element sets ``start..stop-1`` of size ``k`` (a Spark partition of the space)."""

    k: int
    start: int
    stop: int


@dataclass(frozen=True)
class CompositionSpace:
    """Parameters: ``elements`` (the partners of Li, any order; stored sorted by Z), ``step`` in percent
    (must divide 100), ``sizes``: numbers of partner elements (2 = ternaries, 3 = quaternaries, 4 = quinaries);
    ``classes``: one integer label per element (of ``elements`` sorted by Z) that groups the element sets of
    blocks (see the module notes), or empty: blocks in lexicographic order. Classes change which sets a block
    holds, never the space, its counts or :meth:`rank`."""

    elements: tuple[str, ...]
    step: int = 1
    sizes: tuple[int, ...] = (2, 3)
    classes: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        known = symbols()
        unknown = [e for e in self.elements if e not in known]
        if unknown:
            raise InputError(
                f"Unknown element(s) {', '.join(unknown)} in the element set; use symbols of Z = 1..94 (e.g. O, Na)."
            )
        if "Li" in self.elements:
            raise InputError("The element set lists the partners of Li: leave Li out (it is always present).")
        if len(set(self.elements)) != len(self.elements):
            raise InputError("The element set lists an element twice.")
        if not isinstance(self.step, int) or self.step < 1 or 100 % self.step:
            raise InputError(
                f"step is {self.step!r}: it must be a whole percentage that divides 100 (1, 2, 4, 5, ...)."
            )
        if not self.sizes or any(k not in SIZES for k in self.sizes):
            raise InputError(
                f"sizes is {self.sizes!r}: use 2 (ternaries), 3 (quaternaries), 4 (quinaries) or several of them."
            )
        if len(self.elements) < min(self.sizes):
            raise InputError(
                f"The element set has {len(self.elements)} element(s): at least {min(self.sizes)} are needed."
            )
        if 100 // self.step < max(self.sizes) + 1:
            raise InputError(f"step {self.step} % is too coarse for {max(self.sizes) + 1} elements.")
        ordered = tuple(sorted(self.elements, key=known.index))
        if self.classes and (len(self.classes) != len(self.elements) or ordered != tuple(self.elements)):
            raise InputError(
                "Element classes need one label per element, with the elements listed in order of Z "
                f"({len(self.classes)} labels for {len(self.elements)} elements)."
            )
        object.__setattr__(self, "elements", ordered)
        object.__setattr__(self, "classes", tuple(int(c) for c in self.classes))
        object.__setattr__(self, "sizes", tuple(sorted(set(self.sizes))))

    @property
    def units(self) -> int:
        """Steps in 100 % (100 for 1 % steps)."""
        return 100 // self.step

    def n_sets(self, k: int) -> int:
        """Element sets of size k: C(len(elements), k)."""
        return comb(len(self.elements), k)

    def n_fractions(self, k: int) -> int:
        """Fraction vectors per element set of size k: C(units - 1, k)."""
        return comb(self.units - 1, k)

    def count(self, k: int | None = None) -> int:
        """Exact number of compositions (of size k, or all)."""
        sizes = self.sizes if k is None else (k,)
        return sum(self.n_sets(j) * self.n_fractions(j) for j in sizes)

    def _offset(self, k: int) -> int:
        return sum(self.count(j) for j in self.sizes if j < k)

    def rank(self, elements: Sequence[str], units: Sequence[int]) -> int:
        """Index of a composition: ``elements`` = partners of Li; ``units`` = (u_Li, u_1, ...) in steps,
        aligned with ``elements`` sorted by Z."""
        k = len(elements)
        if k not in self.sizes:
            raise InputError(f"{k} partner elements: this space has sizes {self.sizes}.")
        pos = sorted(self.elements.index(e) for e in elements)
        if len(units) != k + 1 or any(u < 1 for u in units) or sum(units) != self.units:
            raise InputError(f"units {tuple(units)} must be {k + 1} positive integers summing to {self.units}.")
        cuts = np.cumsum(units)[:-1] - 1  # cut points in 0..units-2
        set_rank = rank_subset(pos, len(self.elements))
        frac_rank = rank_subset([int(c) for c in cuts], self.units - 1)
        return self._offset(k) + set_rank * self.n_fractions(k) + frac_rank

    def unrank(self, index: int) -> tuple[tuple[str, ...], tuple[int, ...]]:
        """Inverse of :meth:`rank`: (partner elements sorted by Z, units (u_Li, u_1, ...))."""
        if not 0 <= index < self.count():
            raise IndexError(f"index {index} outside 0..{self.count() - 1}")
        for k in self.sizes:
            if index < self.count(k):
                break
            index -= self.count(k)
        set_rank, frac_rank = divmod(index, self.n_fractions(k))
        pos = unrank_subset(set_rank, len(self.elements), k)
        cuts = [c + 1 for c in unrank_subset(frac_rank, self.units - 1, k)]
        bounds = [0, *cuts, self.units]
        units = tuple(b - a for a, b in itertools.pairwise(bounds))
        return tuple(self.elements[p] for p in pos), units

    def blocks(self, sets_per_block: int) -> Iterator[Block]:
        """Partition every size's element sets into ranges of at most ``sets_per_block`` sets."""
        for k in self.sizes:
            n = self.n_sets(k)
            for start in range(0, n, sets_per_block):
                yield Block(k, start, min(start + sets_per_block, n))

    def element_sets(self, block: Block) -> np.ndarray:
        """Positions (into ``elements``) of the block's element sets, int array (stop-start, k): numbers
        start..stop-1 in lexicographic order, or in the grouped order when the space has ``classes``."""
        if self.classes:
            return grouped_subsets(block.start, block.stop, self.classes, block.k)
        return subsets_from(block.start, block.stop, len(self.elements), block.k)

    @cached_property
    def atomic_numbers(self) -> np.ndarray:
        """Atomic numbers (m,) of the elements, in space order."""
        known = symbols()
        return np.array([known.index(e) + 1 for e in self.elements], dtype=np.int16)


def partition_blocks(blocks: tuple[Block, ...], partitions: int) -> list[list[int]]:
    """Block ids for each of ``partitions`` Spark partitions (at most one per block), balanced by estimated work.

    A block's work is estimated as its number of element sets x (k - 1) (measured at 1 % steps: a quaternary set
    costs 2-3 ternary ones). Blocks are dealt largest first to the least-loaded partition, so equal blocks go round
    the partitions in rank order: each partition samples every region of the space, which evens out the charge-
    neutral work (it varies 4x between regions: elements with many oxidation states). Each list is in order.
    """
    n = max(1, min(partitions, len(blocks)))
    cost = [(b.stop - b.start) * (b.k - 1) for b in blocks]
    loads = [0] * n
    parts: list[list[int]] = [[] for _ in range(n)]
    for bid in sorted(range(len(cost)), key=lambda i: (-cost[i], i)):
        target = min(range(n), key=lambda j: (loads[j], j))
        parts[target].append(bid)
        loads[target] += cost[bid]
    return [sorted(p) for p in parts]
