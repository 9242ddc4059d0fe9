"""Composition descriptors: reductions of elemental descriptors over a compound's elements.

For a fraction matrix ``C`` (n, 94) and the descriptor table ``D`` (94, d):

* ``mean``  = C @ D  (composition-weighted mean; the paper's baseline, linear in the fractions)
* ``std``   = sqrt(C @ D**2 - mean**2)  (composition-weighted standard deviation)
* ``min``, ``max`` over the elements present, ``range`` = max - min.

Feature names are ``<reduction>_<descriptor>``, reductions outer, descriptors inner.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from lisearch.chemistry.elements import DESCRIPTORS, descriptor_table
from lisearch.errors import InputError

REDUCTIONS = ("mean", "std", "min", "max", "range")


def check_choice(reductions: Sequence[str], descriptors: Sequence[str]) -> None:
    """Raise InputError unless every reduction and descriptor is known and neither list is empty."""
    bad_r = [r for r in reductions if r not in REDUCTIONS]
    bad_d = [d for d in descriptors if d not in DESCRIPTORS]
    if bad_r or bad_d or not reductions or not descriptors:
        raise InputError(
            f"Unknown or empty reductions {bad_r or list(reductions)} / descriptors {bad_d or list(descriptors)}; "
            f"reductions: {', '.join(REDUCTIONS)}; descriptors: {', '.join(DESCRIPTORS)}."
        )


def feature_names(reductions: Sequence[str] = ("mean",), descriptors: Sequence[str] = DESCRIPTORS) -> list[str]:
    """Feature names ``<reduction>_<descriptor>``, reductions outer, descriptors inner."""
    return [f"{r}_{d}" for r in reductions for d in descriptors]


def composition_features(
    fractions: np.ndarray, reductions: Sequence[str] = ("mean",), descriptors: Sequence[str] = DESCRIPTORS
) -> np.ndarray:
    """Features (n, len(reductions) * len(descriptors)) float64 of a fraction matrix (n, 94)."""
    check_choice(reductions, descriptors)
    table = _descriptor_columns(tuple(descriptors))  # (94, d)
    C = np.asarray(fractions, dtype=np.float64)
    blocks = []
    mean = C @ table
    present = C > 0
    extremes: tuple[np.ndarray, np.ndarray] | None = None
    for r in reductions:
        if r == "mean":
            blocks.append(mean)
        elif r == "std":
            blocks.append(np.sqrt(np.maximum(C @ table**2 - mean**2, 0.0)))
        else:
            extremes = extremes or _extremes(present, table)
            lo, hi = extremes
            blocks.append({"min": lo, "max": hi, "range": hi - lo}[r])
    return np.hstack(blocks)


@functools.lru_cache(maxsize=1024)
def _descriptor_columns(descriptors: tuple[str, ...]) -> np.ndarray:
    """The descriptor table's columns as a read-only float64 array (94, d), built once per choice (the eML
    search asks for the same 511 subsets 40 times each). Same values and memory layout as selecting the columns
    from the DataFrame each time, so products with it are bit-identical."""
    table = descriptor_table()[list(descriptors)].to_numpy(dtype=np.float64)
    table.setflags(write=False)
    return table


def _extremes(present: np.ndarray, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) (n, d) of the descriptor rows of the elements present in each row, gathering only those
    elements (a composition has a few of the 94), not an (n, 94, d) temporary."""
    n = len(present)
    counts = present.sum(axis=1)
    width = max(int(counts.max(initial=0)), 1)
    rows, cols = np.nonzero(present)
    slot = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    index = np.zeros((n, width), dtype=np.intp)
    used = np.zeros((n, width), dtype=bool)
    index[rows, slot], used[rows, slot] = cols, True
    values = table[index]  # (n, width, d)
    lo = np.where(used[:, :, None], values, np.inf).min(axis=1)
    hi = np.where(used[:, :, None], values, -np.inf).max(axis=1)
    return lo, hi
