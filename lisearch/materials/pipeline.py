"""Formulas to materials in one process: candidate structures, relaxation, energy above the hull.

:func:`predict_materials` is what ``lisearch predict-structure`` runs (no Spark) and what a Spark task runs for its
rows. For each formula: up to ``candidates`` structures by ionic substitution
(:func:`lisearch.materials.substitution.candidate_structures`), each relaxed by the potential
(:func:`lisearch.materials.potential.relax`), then its energy above the convex hull of the formula's chemical system
(:func:`lisearch.materials.hull.hull_energy`) with the competing phases' energies from the `phases` table
(:func:`lisearch.materials.phases.phase_energies`, computed once). One row per (formula, candidate) in
:data:`lisearch.schema.MATERIALS_COLUMNS`; a formula without a candidate gets one row with status ``no_template``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from lisearch.materials.hull import competing_phases, hull_energy
from lisearch.materials.phases import phase_energies
from lisearch.materials.potential import POTENTIAL, relax
from lisearch.materials.substitution import candidate_structures
from lisearch.schema import MATERIALS_COLUMNS


def _empty_row(formula: str) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(MATERIALS_COLUMNS)
    row.update(formula=formula, candidate=0, potential=POTENTIAL)
    return row


def predict_materials(
    formulas: list[str],
    warehouse: Path,
    settings: Any,
    exclude: Iterable[str] = (),
    progress: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Rows of :data:`MATERIALS_COLUMNS` for ``formulas`` (``settings``: a :class:`lisearch.config.MaterialsSettings`;
    ``exclude``: reduced formulas whose prototypes are not used; ``progress``: called with a line of text per
    step). Relaxation failures and compositions without prototypes are rows with a status and a reason."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    say = progress or (lambda _text: None)
    rows: list[dict[str, Any]] = []
    for prediction in candidate_structures(formulas, settings.candidates, exclude):
        if not prediction.candidates:
            row = _empty_row(prediction.formula)
            row.update(status="no_template", reason=prediction.reason or "no candidate structure")
            rows.append(row)
            continue
        elements = [str(e) for e in Composition(prediction.formula).elements]
        phases = phase_energies(competing_phases(elements), warehouse, settings.relax_phases, settings.device,
                                settings.fmax, settings.steps)  # fmt: skip
        say(f"{prediction.formula}: {len(prediction.candidates)} candidate(s), {len(phases)} competing phase(s)")
        for rank, candidate in enumerate(prediction.candidates, start=1):
            result = relax(candidate.structure, settings.fmax, settings.steps, settings.device)
            row = _empty_row(prediction.formula)
            row.update(
                candidate=rank, template_id=candidate.template_id, template_formula=candidate.template_formula,
                substitution_probability=candidate.probability, status=result.status, reason=result.reason,
                converged=result.status == "ok", steps=result.steps, energy_per_atom=result.energy_per_atom,
                volume_per_atom=result.volume_per_atom, space_group=result.space_group,
            )  # fmt: skip
            if result.structure is not None and math.isfinite(result.energy_per_atom):
                hull = hull_energy(prediction.formula, result.energy_per_atom, phases)
                row.update(e_above_hull=hull.e_above_hull, decomposition=hull.decomposition)
                if hull.reason:
                    row["reason"] = "; ".join(r for r in (row["reason"], f"no hull: {hull.reason}") if r)
                row["cif"] = result.structure.to(fmt="cif")
            rows.append(row)
            say(f"  {rank}. {candidate.template_id} ({candidate.template_formula}): {result.status}, "
                f"E_hull {row['e_above_hull'] if row['e_above_hull'] is not None else 'n/a'}")  # fmt: skip
    return to_frame(rows)


def to_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame with the columns and nullable types of :data:`MATERIALS_COLUMNS`."""
    frame = pd.DataFrame(rows, columns=list(MATERIALS_COLUMNS))
    kinds = {"int": "Int32", "double": "float64", "boolean": "boolean", "string": "string"}
    return frame.astype({name: kinds[kind] for name, kind in MATERIALS_COLUMNS.items()})


def best_per_formula(frame: pd.DataFrame) -> pd.DataFrame:
    """The lowest-e_above_hull structure of each formula (formulas without one keep their first row)."""
    ranked = frame.assign(_key=frame["e_above_hull"].fillna(math.inf)).sort_values(["formula", "_key", "candidate"])
    return ranked.groupby("formula", sort=False).head(1).drop(columns="_key").reset_index(drop=True)


__all__ = ["best_per_formula", "predict_materials", "to_frame"]
