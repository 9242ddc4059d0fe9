"""Energy above the convex hull of a chemical system, every energy from the same potential.

The competing phases of a composition are the shipped Materials Project structures whose elements are a subset of
its own (:func:`competing_phases`); their energies per atom come from :mod:`lisearch.materials.potential` (static on
the MP geometry, or relaxed, a setting), never from DFT. :func:`hull_energy` builds pymatgen's ``PhaseDiagram`` of
those phases and returns the composition's energy above it (eV/atom, negative when the composition lies below the
hull of the known phases: a predicted new stable phase) and the decomposition products with their fractions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import pandas as pd

from lisearch.materials.templates import phase_index


@dataclass
class HullResult:
    """e_above_hull (eV/atom; NaN when it could not be computed), decomposition ("Li2O:0.500 + P2O5:0.500", most
    abundant first), reason (None when computed)."""

    e_above_hull: float
    decomposition: str | None
    reason: str | None = None


def competing_phases(elements: Iterable[str]) -> pd.DataFrame:
    """The shipped MP phases whose elements are a subset of ``elements`` (id, formula, elements, source)."""
    wanted = frozenset(elements)
    index = phase_index()
    return index[[e <= wanted for e in index["elements"]]].reset_index(drop=True)


def hull_energy(formula: str, energy_per_atom: float, phases: pd.DataFrame) -> HullResult:
    """Energy above the hull of ``formula`` at ``energy_per_atom`` (eV/atom) against ``phases`` (columns formula and
    energy_per_atom; rows with a NaN energy are left out). Needs a phase of every element of the formula alone."""
    from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram  # noqa: PLC0415 (slow import)
    from pymatgen.core import Composition  # noqa: PLC0415

    if not math.isfinite(energy_per_atom):
        return HullResult(float("nan"), None, "no energy for the composition")
    target = Composition(formula)
    usable = phases[[math.isfinite(e) for e in phases["energy_per_atom"]]]
    entries = [PDEntry(Composition(f), e * Composition(f).num_atoms) for f, e in
               zip(usable["formula"], usable["energy_per_atom"], strict=True)]  # fmt: skip
    missing = sorted(str(el) for el in target.elements if not any(
        len(x.composition.elements) == 1 and x.composition.elements[0] == el for x in entries))  # fmt: skip
    if missing:
        return HullResult(float("nan"), None, f"no phase of the element(s) {', '.join(missing)} alone")
    diagram = PhaseDiagram(entries)
    entry = PDEntry(target, energy_per_atom * target.num_atoms)
    decomposition, e_hull = diagram.get_decomp_and_e_above_hull(entry, allow_negative=True, check_stable=False)
    parts = sorted((decomposition or {}).items(), key=lambda item: -item[1])
    text = " + ".join(f"{e.composition.reduced_formula}:{amount:.3f}" for e, amount in parts)
    return HullResult(float(e_hull if e_hull is not None else math.nan), text)


__all__ = ["HullResult", "competing_phases", "hull_energy"]
