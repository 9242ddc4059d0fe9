"""Making partially occupied (experimental) structures ordered before computing structural features.

Experimental CIFs often put several species on one site, or a species on a site with occupancy < 1, and split
one Li position into several sites a fraction of an ångström apart. The Sendek features are defined on ordered
structures; the 2017 paper took an expectation over orderings. Two rules are offered
(setting ``label.partial_occupancy``):

``"sample"`` (default)
    Monte Carlo expectation over orderings: ``n_samples`` random orderings (seeded), each built by visiting
    the sites in random order and occupying a site with a species drawn from its occupancies (or leaving it
    vacant with the remaining probability) unless an already occupied site is closer than ``min_separation``
    (split positions cannot both be occupied). Features are averaged over the orderings.

``"majority"``
    One deterministic ordering: sites in order of decreasing occupancy, each taking its most occupied species
    when its total occupancy is at least 0.5 and no kept site is closer than ``min_separation``.

Ordered structures pass through unchanged.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

RULES = ("sample", "majority")


def _close_pairs(structure: Structure, min_separation: float) -> list[set[int]]:
    centers, points, _, _ = structure.get_neighbor_list(min_separation, exclude_self=True)
    close: list[set[int]] = [set() for _ in range(len(structure))]
    for c, p in zip(centers.tolist(), points.tolist(), strict=True):
        if c != p:
            close[c].add(p)
    return close


def _site_choices(structure: Structure) -> list[tuple[list[str], np.ndarray]]:
    out = []
    for site in structure:
        species = [(el.symbol, float(occ)) for el, occ in site.species.items()]
        symbols = [s for s, _ in species]
        occ = np.array([o for _, o in species])
        out.append((symbols, occ))
    return out


def _build(structure: Structure, chosen: dict[int, str]) -> Structure:
    idx = sorted(chosen)
    return Structure(
        structure.lattice,
        [chosen[i] for i in idx],
        [structure[i].frac_coords for i in idx],
    )


def majority_ordering(structure: Structure, min_separation: float = 1.0) -> Structure:
    """The deterministic ``"majority"`` ordering of ``structure`` (see module docstring)."""
    if structure.is_ordered:
        return structure
    choices = _site_choices(structure)
    close = _close_pairs(structure, min_separation)
    order = sorted(range(len(structure)), key=lambda i: (-choices[i][1].sum(), i))
    chosen: dict[int, str] = {}
    for i in order:
        symbols, occ = choices[i]
        if occ.sum() < 0.5 - 1e-9 or any(j in chosen for j in close[i]):
            continue
        chosen[i] = symbols[int(np.argmax(occ))]
    return _build(structure, chosen)


def framework_ordering(structure: Structure, mobile: str = "Li", min_separation: float = 1.0) -> Structure:
    """An ordering for maps of the ``mobile`` ion's energy (BVSE), where only the framework counts: framework sites
    as in :func:`majority_ordering` (their most occupied non-mobile species when it holds at least half the site);
    every other site that may hold the mobile ion holds it (its positions do not enter the map, only its presence)."""
    if structure.is_ordered:
        return structure
    choices = _site_choices(structure)
    close = _close_pairs(structure, min_separation)
    framework = [[(o, s) for s, o in zip(*choices[i], strict=True) if s != mobile] for i in range(len(structure))]
    order = sorted(range(len(structure)), key=lambda i: (-max(framework[i], default=(0.0, ""))[0], i))
    chosen: dict[int, str] = {}
    for i in order:
        occupancy, symbol = max(framework[i], default=(0.0, ""))
        if occupancy >= 0.5 - 1e-9 and not any(j in chosen for j in close[i]):
            chosen[i] = symbol
    for i in range(len(structure)):
        if i not in chosen and mobile in choices[i][0] and not any(chosen.get(j, mobile) != mobile for j in close[i]):
            chosen[i] = mobile
    return _build(structure, chosen)


def sample_orderings(
    structure: Structure, n_samples: int = 16, seed: int = 0, min_separation: float = 1.0
) -> list[Structure]:
    """``n_samples`` random orderings of ``structure`` (see module docstring); ``[structure]`` when ordered."""
    if structure.is_ordered:
        return [structure]
    rng = np.random.default_rng(seed)
    choices = _site_choices(structure)
    close = _close_pairs(structure, min_separation)
    samples = []
    for _ in range(n_samples):
        chosen: dict[int, str] = {}
        for i in rng.permutation(len(structure)).tolist():
            if any(j in chosen for j in close[i]):
                continue
            symbols, occ = choices[i]
            draw = rng.random()
            cumulative = np.cumsum(occ)
            k = int(np.searchsorted(cumulative, draw, side="right"))
            if k < len(symbols):
                chosen[i] = symbols[k]
        samples.append(_build(structure, chosen))
    return samples
