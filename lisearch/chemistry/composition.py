"""Parsing and validating chemical formulas into atomic-fraction vectors over the 94 elements.

Batch-first: :func:`parse_formulas` turns a sequence of formulas into a fraction matrix (n, 94) and a list of
per-row errors, so one bad row never stops the others; :func:`parse_formula` wraps it for a single formula.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence

import numpy as np

from lisearch.chemistry.elements import atomic_numbers, n_elements
from lisearch.errors import InputError

_TOKEN = re.compile(r"[A-Z][a-z]?")


def _amounts(formula: str, require_li: bool) -> dict[str, float]:
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    text = formula.strip()
    if not text:
        raise InputError("empty formula")
    known = atomic_numbers()
    unknown = sorted({tok for tok in _TOKEN.findall(text) if tok not in known})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            amounts = Composition(text).get_el_amt_dict()
    except (ValueError, KeyError) as exc:
        if unknown:
            raise InputError(f"{formula!r}: unknown element {', '.join(unknown)} (lisearch knows Z = 1..94)") from None
        raise InputError(f"{formula!r} is not a chemical formula ({exc}); write e.g. Li7La3Zr2O12") from None
    bad = sorted(set(amounts) - set(known))
    if bad or unknown:
        raise InputError(f"{formula!r}: unknown element {', '.join(bad or unknown)} (lisearch knows Z = 1..94)")
    infinite = sorted(sym for sym, amount in amounts.items() if not math.isfinite(amount))
    if infinite:
        raise InputError(f"{formula!r}: the amount of {', '.join(infinite)} is not a finite number; write e.g. Li2O")
    if not amounts or sum(amounts.values()) <= 0:
        raise InputError(f"{formula!r} has no atoms")
    if require_li and amounts.get("Li", 0) <= 0:
        raise InputError(f"{formula!r} contains no Li: lisearch models Li-ion conductors, so Li must be present")
    return amounts


def parse_formulas(
    formulas: Sequence[str], require_li: bool = True
) -> tuple[np.ndarray, list[str | None], list[dict[str, float] | None]]:
    """Parse many formulas.

    Returns:
        fractions: ndarray (n, 94) float64, atomic fractions (rows sum to 1; zeros for failed rows);
        errors: per row, None or the message of the :class:`InputError`;
        amounts: per row, the element -> amount dict as written (None for failed rows).
    """
    index = atomic_numbers()
    fractions = np.zeros((len(formulas), n_elements()))
    errors: list[str | None] = []
    amounts_out: list[dict[str, float] | None] = []
    for row, formula in enumerate(formulas):
        try:
            amounts = _amounts(str(formula), require_li)
        except InputError as exc:
            errors.append(str(exc))
            amounts_out.append(None)
            continue
        total = sum(amounts.values())
        for sym, amount in amounts.items():
            fractions[row, index[sym] - 1] = amount / total
        errors.append(None)
        amounts_out.append(amounts)
    return fractions, errors, amounts_out


def parse_formula(formula: str, require_li: bool = True) -> np.ndarray:
    """Atomic fractions (94,) of one formula. Raises :class:`InputError` naming the problem."""
    fractions, errors, _ = parse_formulas([formula], require_li)
    if errors[0]:
        raise InputError(errors[0])
    return fractions[0]


def fractions_from_lists(elements: Sequence[Sequence[str]], fractions: Sequence[Sequence[float]]) -> np.ndarray:
    """Fraction matrix (n, 94) from per-row element lists and aligned fractions (the ``structures`` table form)."""
    index = atomic_numbers()
    out = np.zeros((len(elements), n_elements()))
    for row, (els, fracs) in enumerate(zip(elements, fractions, strict=True)):
        for sym, frac in zip(els, fracs, strict=True):
            out[row, index[sym] - 1] = frac
    return out
