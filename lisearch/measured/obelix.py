"""OBELiX as the measured models take it: 599 Li solid electrolytes with measured room-temperature conductivity, 321
CIFs, the official 478 / 121 split (CC BY 4.0; provenance in ``data/obelix/SOURCE.txt``). The shipped table is read
by :func:`lisearch.datasets.obelix`; :func:`measured_set` turns it into arrays, with each composition's chemical system
(the unit of the grouped cross-validation)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lisearch.chemistry.composition import parse_formulas
from lisearch.chemistry.elements import symbols
from lisearch.datasets import obelix
from lisearch.errors import InputError


@dataclass(frozen=True)
class MeasuredSet:
    """OBELiX as arrays: ids (n,), formulas (n,), fractions (n, 94), log10_sigma (n,), censored (n,), y (n,) label,
    groups (n,) chemical systems, split (n,) "train" / "test", family (n,), cif_id (n,) or None."""

    ids: np.ndarray
    formulas: np.ndarray
    fractions: np.ndarray
    log10_sigma: np.ndarray
    censored: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    split: np.ndarray
    family: np.ndarray
    cif_id: np.ndarray


def chemical_systems(fractions: np.ndarray, min_fraction: float = 0.05) -> np.ndarray:
    """(n,) the set of elements at >= ``min_fraction`` of each composition, e.g. ``"La-Li-O-Zr"``."""
    syms = np.array(symbols())
    return np.array(["-".join(sorted(syms[row >= min_fraction])) for row in np.asarray(fractions)])


def measured_set(threshold: float = 1e-4, group_min_fraction: float = 0.05, path: Path | None = None) -> MeasuredSet:
    """OBELiX (or an OBELiX-style CSV at ``path``) parsed; a row whose composition cannot be used is an error."""
    table = obelix(path)
    fractions, errors, _ = parse_formulas(table["composition"].tolist())
    bad = [f"{i}: {e}" for i, e in zip(table["id"], errors, strict=True) if e]
    if bad:
        raise InputError(
            f"{len(bad)} measured row(s) cannot be used: {'; '.join(bad[:5])}. Fix or remove them (every composition "
            "must be a formula with Li)."
        )
    log10 = table["log10_sigma"].to_numpy(dtype=np.float64)
    return MeasuredSet(
        ids=table["id"].to_numpy(),
        formulas=table["formula"].to_numpy(),
        fractions=fractions,
        log10_sigma=log10,
        censored=table["censored"].to_numpy(dtype=bool),
        y=(log10 >= np.log10(threshold)).astype(int),
        groups=chemical_systems(fractions, group_min_fraction),
        split=table["split"].to_numpy(),
        family=table["family"].fillna("").to_numpy(),
        cif_id=table["cif_id"].to_numpy(),
    )
