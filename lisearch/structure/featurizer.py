"""The five structural features of the Sendek 2017 model, from periodic neighbour lists.

Reference: A. D. Sendek et al., "Holistic computational structure screening of more than 12000 candidates for
solid lithium-ion conductor materials", Energy Environ. Sci. 10, 306 (2017), SI section on descriptors.

Conventions (``docs/architecture.md`` has the reasoning):

* "The anion" is the most electronegative element of the structure (Pauling scale, pymatgen's values).
* Distances include periodic images (equivalent to the paper's central cell of a 3x3x3 supercell, but with no
  cut-off at the supercell boundary), so a cell with a single Li still has Li-Li distances.
* Bonds are pairs closer than ``bond_cutoff`` (4 Å).
* Structures with an element that the paper's electronegativity table lacks (He, Ne, Ar, Pm, Eu, Tb, Yb, Rn)
  or without Li are not featurized; :class:`FeaturizationError` says why.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
from pymatgen.core import Element, Structure

#: Elements without a Pauling electronegativity in the table Sendek et al. used; structures with them were
#: excluded in the paper and are here.
NO_PAULING_X = frozenset({"He", "Ne", "Ar", "Pm", "Eu", "Tb", "Yb", "Rn"})

FEATURE_NAMES: tuple[str, ...] = ("llb", "sbi", "afc", "lasd", "llsd")


class FeaturizationError(ValueError):
    """A structure the Sendek features are not defined for; the message is the recorded reason."""


def _pauling(symbol: str) -> float:
    if symbol in NO_PAULING_X:
        return math.nan
    x = Element(symbol).X
    return float(x) if x is not None else math.nan


class SendekFeaturizer:
    """Computes LLB, SBI, AFC, LASD, LLSD (Sendek 2017) for ordered pymatgen structures.

    Parameters:
        bond_cutoff: Å; neighbours closer than this count as bonds (LLB, SBI). Paper: 4 Å.
        afc_window: Å; AFC counts anions at r0 <= r <= r0 + afc_window from each anion. Paper: 1 Å.
        max_radius: Å; the largest search radius for nearest Li/anion distances before giving up.

    Output of :meth:`featurize`: ndarray of shape (5,), float64, in :data:`FEATURE_NAMES` order:
    LLB (Li neighbours per Li, count), SBI (mean |ΔX| Pauling), AFC (count), LASD (Å), LLSD (Å).
    """

    def __init__(self, bond_cutoff: float = 4.0, afc_window: float = 1.0, max_radius: float = 24.0) -> None:
        self.bond_cutoff = bond_cutoff
        self.afc_window = afc_window
        self.max_radius = max_radius

    @staticmethod
    def feature_labels() -> list[str]:
        """Names of the five features, in order."""
        return list(FEATURE_NAMES)

    @staticmethod
    def citations() -> list[str]:
        """References of the features."""
        return [
            "A. D. Sendek, Q. Yang, E. D. Cubuk, K.-A. N. Duerloo, Y. Cui, E. J. Reed, "
            "Energy Environ. Sci. 10, 306 (2017)",
            "E. D. Cubuk, A. D. Sendek, E. J. Reed, J. Chem. Phys. 150, 214701 (2019)",
        ]

    # ---------------------------------------------------------------------------------------------- public
    def featurize(self, structure: Structure) -> np.ndarray:
        """Features of one ordered structure, shape (5,). Raises :class:`FeaturizationError` with the reason."""
        if not structure.is_ordered:
            raise FeaturizationError("structure is partially occupied; order it first (lisearch.structure.ordering)")
        symbols = [site.specie.symbol for site in structure]
        elements = sorted(set(symbols))
        if "Li" not in elements:
            raise FeaturizationError("no Li in the structure")
        missing = [el for el in elements if math.isnan(_pauling(el))]
        if missing:
            raise FeaturizationError(
                f"no Pauling electronegativity for {', '.join(missing)} (excluded as in Sendek 2017)"
            )
        x_by_el = {el: _pauling(el) for el in elements}
        x = np.array([x_by_el[s] for s in symbols])
        sym = np.array(symbols)
        anion = max(elements, key=lambda el: (x_by_el[el], el))
        is_li = sym == "Li"
        is_anion = sym == anion

        centers, points, _ = self._pairs(structure, self.bond_cutoff)
        llb = self._llb(is_li, centers, points)
        sbi = self._sbi(is_li, x, centers, points)
        # When Li itself is the most electronegative element (e.g. Sr6Li23), every Li is an anion site and its
        # nearest anion is itself: LASD = 0, as in the 2017 reference values (checked on mp-2272, mp-569025).
        lasd = 0.0 if anion == "Li" else self._nearest_mean(structure, is_li, is_anion, "anion", "Li")
        llsd = self._nearest_mean(structure, is_li, is_li, "other Li", "Li")
        afc = self._afc(structure, is_anion)
        return np.array([llb, sbi, afc, lasd, llsd], dtype=np.float64)

    def featurize_many(self, structures: Iterable[Structure]) -> tuple[np.ndarray, list[str | None]]:
        """Features of many structures: (ndarray (n, 5) float64, NaN rows for failures; reasons, None when ok)."""
        rows: list[np.ndarray] = []
        reasons: list[str | None] = []
        for structure in structures:
            try:
                rows.append(self.featurize(structure))
                reasons.append(None)
            except FeaturizationError as exc:
                rows.append(np.full(len(FEATURE_NAMES), np.nan))
                reasons.append(str(exc))
        return (np.vstack(rows) if rows else np.empty((0, len(FEATURE_NAMES)))), reasons

    # ------------------------------------------------------------------------------------------- numerics
    @staticmethod
    def _pairs(structure: Structure, radius: float, sites: Sequence[int] | None = None) -> tuple[np.ndarray, ...]:
        """(centers, points, distances) of all ordered pairs within ``radius`` Å, images included, self excluded."""
        sub = structure if sites is None else Structure.from_sites([structure[i] for i in sites])
        centers, points, _, dists = sub.get_neighbor_list(radius, exclude_self=True)
        return centers, points, dists

    def _llb(self, is_li: np.ndarray, centers: np.ndarray, points: np.ndarray) -> float:
        li_li = is_li[centers] & is_li[points]
        return float(li_li.sum() / is_li.sum())

    def _sbi(self, is_li: np.ndarray, x: np.ndarray, centers: np.ndarray, points: np.ndarray) -> float:
        # Bonds of the non-Li sublattice atoms, to any neighbour (Li included), pooled.
        keep = ~is_li[centers]
        if not keep.any():
            return 0.0
        return float(np.abs(x[centers[keep]] - x[points[keep]]).mean())

    def _nearest_mean(
        self, structure: Structure, from_mask: np.ndarray, to_mask: np.ndarray, what: str, origin: str
    ) -> float:
        """Mean over ``from_mask`` sites of the distance to the nearest ``to_mask`` site (images included), Å."""
        sites = np.flatnonzero(from_mask | to_mask)
        local_from = from_mask[sites]
        local_to = to_mask[sites]
        radius = 6.0
        while True:
            centers, points, dists = self._pairs(structure, radius, sites.tolist())
            ok = local_from[centers] & local_to[points]
            nearest = np.full(len(sites), np.inf)
            np.minimum.at(nearest, centers[ok], dists[ok])
            found = nearest[local_from]
            if np.isfinite(found).all():
                return float(found.mean())
            if radius >= self.max_radius:
                raise FeaturizationError(f"no {what} within {self.max_radius:g} Å of some {origin} atom")
            radius = min(radius * 2, self.max_radius)

    def _afc(self, structure: Structure, is_anion: np.ndarray) -> float:
        sites = np.flatnonzero(is_anion)
        radius = 6.0
        while True:
            centers, _, dists = self._pairs(structure, radius, sites.tolist())
            r0 = np.full(len(sites), np.inf)
            np.minimum.at(r0, centers, dists)
            if np.isfinite(r0).all() and radius >= r0.max() + self.afc_window:
                within = dists <= r0[centers] + self.afc_window + 1e-8
                counts = np.bincount(centers[within], minlength=len(sites))
                return float(counts.mean())
            if radius >= self.max_radius:
                raise FeaturizationError(f"no anion-anion pair within {self.max_radius:g} Å")
            radius = min(
                max(radius * 2, float(r0[np.isfinite(r0)].max(initial=0.0)) + self.afc_window), self.max_radius
            )
