"""Li migration barriers from a bond-valence site-energy (BVSE) map (Adams and co-workers; softBV parameters).

The energy of a Li+ probe on a grid over the cell (Morse-type attraction to the anions, screened Coulomb repulsion
from the cations, softBV parameters) and, by bisection on the energy, the lowest level at which the accessible
region percolates through the crystal in 1, 2 and 3 dimensions: the 1D, 2D and 3D percolation barriers (eV). The
library is ``bvlain`` (pinned; it reproduces its own published LiFePO4 numbers exactly, see
``tests/test_mobility.py``). What lisearch adds: the oxidation states come from the house's assignment
(:func:`lisearch.chemistry.plausibility.plausibility`, the one the prototypes and the shortlist use; pymatgen's
bond-valence analyser, then each element's most frequent ICSD state, only when that has none), the energy grid is
computed in chunks of grid points (bvlain computes it at once, ~8 kB per grid point: gigabytes for a large cell)
and the grid is coarsened when a cell would need more than ``max_points`` points (the resolution used is returned).
A structure the method cannot handle (no Li, no oxidation states, an ion pair without softBV parameters) gives a
reason, never an exception.

A barrier is ``inf`` when the region does not percolate in that dimension below ``encut`` eV above the map's
minimum (the path exists at no energy the method trusts).
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lisearch.chemistry.elements import atomic_numbers
from lisearch.chemistry.plausibility import state_frequencies
from lisearch.materials.templates import ionic_formulas

#: The mobile ion.
MOBILE_ION = "Li1+"
#: Grid points per chunk of the energy map (~8 kB each while computed).
CHUNK_POINTS = 20_000


@dataclass(frozen=True)
class Barriers:
    """BVSE percolation barriers (eV; ``inf``: no percolation below ``encut``), the grid spacing used (A) and why
    there are none (``reason``; the barriers are NaN then)."""

    e_1d: float = math.nan
    e_2d: float = math.nan
    e_3d: float = math.nan
    resolution: float = math.nan
    reason: str | None = None


def most_frequent_states(symbols: Iterable[str]) -> dict[str, int] | None:
    """Each element's most frequent non-zero oxidation state in the ICSD (the counts the plausibility rules use);
    None when an element has none."""
    frequencies = state_frequencies()
    index = atomic_numbers()
    out = {}
    for symbol in symbols:
        states = frequencies.get(index.get(symbol, -1))
        if not states:
            return None
        out[symbol] = max(states, key=lambda s: states[s])
    return out


def oxidation_decorated(structure: Any, composition: Any = None) -> tuple[Any | None, str | None]:
    """``structure`` (ordered) with an oxidation state on every site, the first that exists of: the house's most
    likely neutral assignment of ``composition`` (default: the structure's; give the disordered original's for an
    ordering of it) by element; pymatgen's bond-valence analyser; each element's most frequent ICSD state (for a
    composition that no assignment makes neutral, as doped and off-stoichiometric ones often are: the map needs
    each ion's charge, not neutrality). (None, reason) when none exists."""
    from pymatgen.analysis.bond_valence import BVAnalyzer  # noqa: PLC0415 (slow import, needed here only)

    amounts = (composition or structure.composition).get_el_amt_dict()  # a CIF's 24.19992 read as 24.2
    formula = "".join(f"{element}{round(amount, 2):g}" for element, amount in amounts.items())
    found = ionic_formulas([formula]).iloc[0]
    states = dict(zip(found["elements"], found["states"], strict=False))
    symbols = [str(e) for e in structure.composition.elements]
    decorated = structure.copy()
    if len(found["states"]) and set(symbols) <= set(states):
        decorated.add_oxidation_state_by_element({e: states[e] for e in symbols})
        return decorated, None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return BVAnalyzer().get_oxi_state_decorated_structure(structure), None
    except ValueError:
        pass
    frequent = most_frequent_states(symbols)
    if frequent is None:
        return None, f"no oxidation states ({found['reason'] or 'no neutral assignment'}; no ICSD states either)"
    decorated.add_oxidation_state_by_element(frequent)
    return decorated, None


def grid_resolution(lattice_abc: tuple[float, float, float], resolution: float, max_points: int) -> float:
    """The grid spacing (A) to use: ``resolution``, or the smallest multiple of 1.1 times it that keeps the number
    of grid points (``prod(floor(abc / spacing))``) at or below ``max_points``."""
    spacing = resolution
    while math.prod(int(x // spacing) for x in lattice_abc) > max_points:
        spacing *= 1.1
    return round(spacing, 4)


def _energy_map(calc: Any, r_cut: float, resolution: float, k: int) -> np.ndarray:
    """The BVSE map (eV) on bvlain's grid, computed chunk by chunk (the same terms as ``Lain.bvse_distribution``)."""
    from ase.build import make_supercell  # noqa: PLC0415 (heavy import, needed here only)
    from bvlain.potentials import BVSEPotential  # noqa: PLC0415
    from scipy.spatial import cKDTree  # noqa: PLC0415

    calc._get_params(MOBILE_ION)
    scale = calc._scale_cell(calc.atoms.cell, r_cut=r_cut)
    shift = [float(np.median(np.arange(0, scale[i, i]))) for i in range(3)]
    calc.supercell = make_supercell(calc.atoms, scale)
    sites = calc._cartesian_sites(calc._mesh(resolution=resolution, shift=shift))
    tree = cKDTree(calc.supercell.positions)
    arrays = {name: calc._get_array(name) for name in ("r_min", "alpha", "r_c", "d0", "oxi_states", "n")}
    energy = np.empty(len(sites))
    for start in range(0, len(sites), CHUNK_POINTS):
        distances, ids = tree.query(sites[start : start + CHUNK_POINTS], k=k, distance_upper_bound=r_cut)
        p = {name: np.take(values, ids, axis=-1) for name, values in arrays.items()}
        q = np.where(p["oxi_states"] * calc.q_mi > 0, p["oxi_states"], 0)
        morse = BVSEPotential.Morse(distances, p["r_min"], p["d0"], p["alpha"])
        coulomb = BVSEPotential.Coulomb(distances, calc.q_mi, q, calc.rc_mi, p["r_c"], calc.n_mi, p["n"])
        energy[start : start + CHUNK_POINTS] = (np.nan_to_num(morse, nan=0.0).sum(axis=1)
                                                + np.nan_to_num(coulomb, nan=0.0).sum(axis=1))  # fmt: skip
    calc.distribution = energy
    calc.data = energy.reshape(calc.size)
    return calc.data


def bvse_barriers(
    structure: Any,
    resolution: float = 0.2,
    encut: float = 5.0,
    r_cut: float = 10.0,
    max_points: int = 400_000,
    composition: Any = None,
) -> Barriers:
    """1D/2D/3D Li percolation barriers (eV) of an ordered pymatgen ``structure`` on a grid of spacing
    ``resolution`` (A; coarsened above ``max_points`` grid points), Li-framework interactions within ``r_cut`` (A),
    barriers searched up to ``encut`` eV; oxidation states from ``composition`` (see :func:`oxidation_decorated`).
    Never raises for a bad structure: the reason is in the result."""
    if not structure.is_ordered:
        return Barriers(reason="BVSE needs an ordered structure")
    if "Li" not in {str(e) for e in structure.composition.elements}:
        return Barriers(reason="no Li in the structure")
    decorated, reason = oxidation_decorated(structure, composition)
    if decorated is None:
        return Barriers(reason=reason)
    if any(getattr(s, "oxi_state", 0) != 1 for s in decorated.species if str(s.element) == "Li"):
        return Barriers(reason="Li is not Li+ in the oxidation-state assignment")
    if not any(getattr(s, "oxi_state", 0) < 0 for s in decorated.species):
        return Barriers(reason="no anion in the oxidation-state assignment (the map needs Li-anion bonds)")
    from bvlain import Lain  # noqa: PLC0415 (heavy import, needed here only)

    spacing = grid_resolution(structure.lattice.abc, resolution, max_points)
    calc = Lain(verbose=False)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):  # bvlain prints on a missing pair
        warnings.simplefilter("ignore")  # scipy.ndimage.measurements' deprecation, inside bvlain
        calc.read_structure(decorated, oxi_check=False)
        try:
            _energy_map(calc, r_cut, spacing, 100)
        except KeyError:
            ions = sorted({f"{s}" for s in decorated.species if str(s.element) != "Li"})
            return Barriers(resolution=spacing, reason=f"no softBV parameters for Li+ with one of {', '.join(ions)}")
        energies = calc.percolation_barriers(encut=encut)
    return Barriers(float(energies["E_1D"]), float(energies["E_2D"]), float(energies["E_3D"]), spacing)


__all__ = [
    "CHUNK_POINTS",
    "MOBILE_ION",
    "Barriers",
    "bvse_barriers",
    "grid_resolution",
    "most_frequent_states",
    "oxidation_decorated",
]
