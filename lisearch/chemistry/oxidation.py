"""Oxidation-state assignments: the one place where the choices of one state per element are enumerated.

For an element set, every assignment is one row of :func:`assignments` (cached per tuple of options), and the
neutral ones of many compositions of that set are one matrix product (:func:`neutral_assignments`). The narrowing's
stability proxies, the shortlist's plausibility rules and ``lisearch predict``'s neutrality columns all use these,
grouped by element set (:func:`element_sets`). The screen's kernel enumerates neutral *compositions* of a set instead
(:func:`lisearch.screening.kernels.neutral_set`), and :func:`lisearch.chemistry.neutrality.charge_neutral` counts
neutrality over many different sets at once (the paper study's samples); both are tested against these.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from lisearch.chemistry.elements import LI_Z, symbols


@functools.cache
def assignments(options: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """Every choice of one state per element: (m, k) int64, m = the product of the options' lengths, rows in
    :func:`itertools.product` order (0 rows when an element has no option). ``options``: per element, its states."""
    if any(not o for o in options):
        return np.zeros((0, len(options)), dtype=np.int64)
    return np.array(list(itertools.product(*options)), dtype=np.int64).reshape(-1, len(options))


def neutral_assignments(amounts: np.ndarray, choices: np.ndarray) -> np.ndarray:
    """(n, m) bool: which assignments (``choices`` (m, k)) make each composition (integer ``amounts`` (n, k), aligned
    with the choices' columns) charge-neutral: sum_j amount_j * state_j == 0, exactly in integers."""
    return (np.asarray(amounts, dtype=np.int64) @ choices.T) == 0


def options_of(elements: Sequence[int], states: Mapping[str, Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    """Per element (atomic numbers), its states from a list (element symbol -> states); Li is always +1."""
    syms = symbols()
    return tuple((1,) if z == LI_Z else tuple(states.get(syms[z - 1], ())) for z in elements)


def element_sets(z: np.ndarray) -> Iterator[tuple[tuple[int, ...], np.ndarray, np.ndarray]]:
    """Rows grouped by element set: yields (sorted atomic numbers of the set, the rows (indices), the column of each
    of the set's elements in every row ((rows, e) indices into ``z``'s columns)). ``z`` (n, k) int, 0 = empty."""
    z = np.asarray(z, dtype=np.int64)
    order = np.argsort(z, axis=1, kind="stable")
    zs = np.take_along_axis(z, order, axis=1)
    keys, inverse = np.unique(zs, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    groups = np.split(np.argsort(inverse, kind="stable"), np.cumsum(np.bincount(inverse, minlength=len(keys)))[:-1])
    for key, rows in zip(keys, groups, strict=True):
        present = np.flatnonzero(key > 0)
        yield tuple(int(v) for v in key[present]), rows, order[rows][:, present]


def neutral_mask(z: np.ndarray, amounts: np.ndarray, states: Mapping[str, Sequence[int]]) -> np.ndarray:
    """(n,) bool: compositions (``z`` (n, k) atomic numbers, 0 = empty; integer ``amounts`` (n, k)) with a neutral
    assignment of states from ``states`` (symbol -> states; Li +1). A row without elements is not neutral."""
    out = np.zeros(len(z), dtype=bool)
    amounts = np.asarray(amounts, dtype=np.int64)
    for elements, rows, cols in element_sets(z):
        if elements:
            choices = assignments(options_of(elements, states))
            out[rows] = neutral_assignments(np.take_along_axis(amounts[rows], cols, axis=1), choices).any(axis=1)
    return out


__all__ = ["assignments", "element_sets", "neutral_assignments", "neutral_mask", "options_of"]
