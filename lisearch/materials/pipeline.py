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


def plan_candidates(
    formulas: list[str], settings: Any, exclude: Iterable[str] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(work, rows): one work item per (formula, candidate structure), the structure as pymatgen JSON text (what a
    Spark task receives), and the finished rows of formulas without a candidate (status ``no_template``)."""
    work, rows = [], []
    for prediction in candidate_structures(formulas, settings.candidates, exclude):
        if not prediction.candidates:
            row = _empty_row(prediction.formula)
            row.update(status="no_template", reason=prediction.reason or "no candidate structure")
            rows.append(row)
        for rank, candidate in enumerate(prediction.candidates, start=1):
            work.append({"formula": prediction.formula, "candidate": rank, "template_id": candidate.template_id,
                         "template_formula": candidate.template_formula,
                         "substitution_probability": candidate.probability,
                         "structure": candidate.structure.to(fmt="json")})  # fmt: skip
    return work, rows


def relax_item(item: dict[str, Any], settings: Any, mobility: Any = None) -> dict[str, Any]:
    """The row of one work item (:func:`plan_candidates`) after its relaxation (no hull yet): the work of one Spark
    task, or of one step in process. ``cif`` holds the relaxed structure. With ``mobility`` (a
    :class:`lisearch.config.MobilitySettings` whose ``structure_descriptors`` is on), the relaxed structure's sML and
    BVSE columns too (:func:`lisearch.mobility.structure.structure_descriptors`)."""
    from pymatgen.core import Structure  # noqa: PLC0415 (slow import, needed here only)

    from lisearch.mobility.structure import structure_descriptors  # noqa: PLC0415 (bvlain, ase: task side only)

    result = relax(Structure.from_str(item["structure"], fmt="json"), settings.fmax, settings.steps, settings.device)
    row = _empty_row(item["formula"])
    row.update({k: item[k] for k in ("candidate", "template_id", "template_formula", "substitution_probability")})
    row.update(
        status=result.status, reason=result.reason, converged=result.status == "ok", steps=result.steps,
        energy_per_atom=result.energy_per_atom, volume_per_atom=result.volume_per_atom, space_group=result.space_group,
        cif=result.structure.to(fmt="cif") if result.structure is not None else None,
    )  # fmt: skip
    if result.structure is not None and mobility is not None and mobility.structure_descriptors:
        row.update(structure_descriptors(result.structure, mobility))
    return row


def system_phases(formulas: Iterable[str]) -> dict[str, pd.DataFrame]:
    """The competing phases (id, formula, source) of each formula's chemical system."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    return {f: competing_phases([str(e) for e in Composition(f).elements]) for f in dict.fromkeys(formulas)}


def without_formulas(phases: pd.DataFrame, formulas: Iterable[str]) -> pd.DataFrame:
    """``phases`` without the phases whose reduced formula is one of ``formulas``."""
    from pymatgen.core import Composition  # noqa: PLC0415 (slow import, needed here only)

    gone = {Composition(f).reduced_formula for f in formulas}
    return phases[[Composition(f).reduced_formula not in gone for f in phases["formula"]]].reset_index(drop=True)


def add_hull(row: dict[str, Any], phases: pd.DataFrame) -> dict[str, Any]:
    """``row`` (from :func:`relax_item`) with its energy above the hull against ``phases`` (with energy_per_atom)."""
    energy = row["energy_per_atom"]
    if row["cif"] is None or energy is None or not math.isfinite(energy):
        return row
    hull = hull_energy(row["formula"], energy, phases)
    row.update(e_above_hull=hull.e_above_hull, decomposition=hull.decomposition)
    if hull.reason:
        row["reason"] = "; ".join(r for r in (row["reason"], f"no hull: {hull.reason}") if r)
    return row


def predict_materials(
    formulas: list[str],
    warehouse: Path,
    settings: Any,
    exclude: Iterable[str] = (),
    progress: Callable[[str], None] | None = None,
    mobility: Any = None,
) -> pd.DataFrame:
    """Rows of :data:`MATERIALS_COLUMNS` for ``formulas``, in this process (``settings``: a
    :class:`lisearch.config.MaterialsSettings`; ``exclude``: formulas whose prototypes and phases are not used;
    ``progress``: called with a line of text per step; ``mobility``: see :func:`relax_item`). Relaxation failures
    and compositions without prototypes are rows with a status and a reason. The Spark job
    (:mod:`lisearch.spark.materials`) runs the same steps."""
    say = progress or (lambda _text: None)
    exclude = list(exclude)
    work, rows = plan_candidates(formulas, settings, exclude)
    systems = system_phases(item["formula"] for item in work)
    if exclude:  # left out of the hull as well (a leave-one-out test): every polymorph of those formulas
        systems = {f: without_formulas(p, exclude) for f, p in systems.items()}
    energies = {
        f: phase_energies(p, warehouse, settings.relax_phases, settings.device, settings.fmax, settings.steps)
        for f, p in systems.items()
    }
    for f, p in energies.items():
        say(f"{f}: {sum(i['formula'] == f for i in work)} candidate(s), {len(p)} competing phase(s)")
    for item in work:
        row = add_hull(relax_item(item, settings, mobility), energies[item["formula"]])
        rows.append(row)
        hull = "n/a" if row["e_above_hull"] is None else f"{row['e_above_hull']:.3f} eV/atom"
        say(f"  {row['formula']} {row['candidate']}. {row['template_id']} ({row['template_formula']}): "
            f"{row['status']}, E_hull {hull}")  # fmt: skip
    order = {f: i for i, f in enumerate(dict.fromkeys(formulas))}
    rows.sort(key=lambda r: (order.get(r["formula"], len(order)), r["candidate"]))
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


__all__ = [
    "add_hull",
    "best_per_formula",
    "plan_candidates",
    "predict_materials",
    "relax_item",
    "system_phases",
    "to_frame",
]
