"""The structural evidence that Li moves, per structure: sML (Sendek 2017) and BVSE percolation barriers.

:func:`structure_descriptors` gives the :data:`lisearch.schema.STRUCTURE_MOBILITY_COLUMNS` of one structure: the five
Sendek features and p_superionic of the published sML model (the featurizer and model of ``label-structures``), and
the 1D/2D/3D BVSE barriers (:func:`lisearch.mobility.bvse.bvse_barriers`). A partially occupied structure (an
OBELiX CIF) is featurized as ``label-structures`` does (``partial_occupancy``: the mean over sampled orderings, by
default) and gets its BVSE map on its framework ordering (:func:`lisearch.structure.ordering.framework_ordering`:
the map depends on the framework only), with the oxidation states of its own (neutral) composition.
What could not be computed is NaN, with the reason in ``mobility_reason``.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np

from lisearch.mobility.bvse import bvse_barriers
from lisearch.schema import STRUCTURE_MOBILITY_COLUMNS
from lisearch.structure.featurizer import FEATURE_NAMES, SendekFeaturizer
from lisearch.structure.labelling import featurize_structure
from lisearch.structure.ordering import framework_ordering
from lisearch.structure.sendek import SendekModel


@functools.cache
def _sml() -> tuple[SendekFeaturizer, SendekModel]:
    return SendekFeaturizer(), SendekModel.published()


def sml_columns(structure: Any, partial_occupancy: str = "sample") -> tuple[dict[str, float], str | None]:
    """``sml_<feature>`` and ``sml_p_superionic`` of ``structure``, and why they are missing (None when present)."""
    featurizer, model = _sml()
    try:
        features, _ordering = featurize_structure(structure, featurizer, partial_occupancy)
    except ValueError as exc:  # FeaturizationError included: no Li, an element without electronegativity, ...
        return {f"sml_{n}": math.nan for n in (*FEATURE_NAMES, "p_superionic")}, f"sML: {exc}"
    out = {f"sml_{n}": float(v) for n, v in zip(FEATURE_NAMES, features, strict=True)}
    out["sml_p_superionic"] = float(model.p_superionic(np.asarray(features, dtype=np.float64)[None, :])[0])
    return out, None


def structure_descriptors(structure: Any, settings: Any, partial_occupancy: str = "sample") -> dict[str, Any]:
    """The :data:`STRUCTURE_MOBILITY_COLUMNS` of a pymatgen ``structure`` with ``settings`` (a
    :class:`lisearch.config.MobilitySettings`); never raises for a bad structure."""
    values, reason = sml_columns(structure, partial_occupancy)
    row: dict[str, Any] = dict(values)
    reasons = [reason] if reason else []
    try:
        ordered = structure if structure.is_ordered else framework_ordering(structure)
    except ValueError as exc:
        ordered, reasons = None, [*reasons, f"BVSE: no ordering: {exc}"]
    barriers = None
    if ordered is not None:
        barriers = bvse_barriers(ordered, settings.bvse_resolution, settings.bvse_encut,
                                 max_points=settings.bvse_max_points, composition=structure.composition)  # fmt: skip
    if barriers is not None:
        row.update(bvse_e_1d=barriers.e_1d, bvse_e_2d=barriers.e_2d, bvse_e_3d=barriers.e_3d,
                   bvse_resolution=barriers.resolution)  # fmt: skip
        if barriers.reason:
            reasons.append(f"BVSE: {barriers.reason}")
    row["mobility_reason"] = "; ".join(reasons) or None
    return {name: row.get(name, math.nan) for name in STRUCTURE_MOBILITY_COLUMNS}


def describe_cif(key: str, text: str, settings: Any) -> dict[str, Any]:
    """One CIF text to a row: material_id (``key``), formula, sites, the :data:`STRUCTURE_MOBILITY_COLUMNS` and the
    seconds they took; a CIF that cannot be read is a row with the reason."""
    from lisearch.structure.labelling import parse_cif  # noqa: PLC0415 (pymatgen's CIF reader, needed here only)

    started = time.perf_counter()
    try:
        structure = parse_cif(text)
    except ValueError as exc:
        empty = {**dict.fromkeys(STRUCTURE_MOBILITY_COLUMNS, math.nan), "mobility_reason": str(exc)}
        return {"material_id": key, "formula": None, "sites": 0, **empty, "seconds": 0.0}
    row = structure_descriptors(structure, settings)
    return {"material_id": key, "formula": structure.composition.reduced_formula, "sites": len(structure), **row,
            "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip


__all__ = ["describe_cif", "sml_columns", "structure_descriptors"]
