"""The `phases` table: the potential's energy of every competing phase, computed once and reused by every hull.

A Delta table under the warehouse (``<warehouse>/phases``, columns :data:`lisearch.schema.PHASES_COLUMNS`), written
with delta-rs (``deltalake``) so that it needs no Spark and is read by Spark SQL like the other tables. A phase is
keyed by (material_id, potential, relaxed): energies of another potential or protocol are never mixed in. It grows
incrementally: :func:`phase_energies` reads what is there, computes only the missing phases, and appends them in
batches, so a run that is stopped keeps every finished batch and the next run continues from there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from lisearch.materials.potential import POTENTIAL, relax, static_energy
from lisearch.materials.templates import read_structures
from lisearch.schema import PHASES_COLUMNS, arrow_type

TABLE = "phases"
#: Phases computed between two appends (a stopped run loses at most one batch).
BATCH = 25


def _arrow_schema() -> Any:
    import pyarrow as pa  # noqa: PLC0415 (needed here only)

    return pa.schema([(name, arrow_type(kind)) for name, kind in PHASES_COLUMNS.items()])


def read_cached(warehouse: Path, relaxed: bool) -> pd.DataFrame:
    """The cached rows of this potential and protocol (empty frame when the table does not exist yet)."""
    from deltalake import DeltaTable  # noqa: PLC0415 (needed here only)

    path = warehouse / TABLE
    if not (path / "_delta_log").is_dir():
        return pd.DataFrame({name: pd.Series(dtype=object) for name in PHASES_COLUMNS})
    frame = DeltaTable(str(path)).to_pandas()
    return frame[(frame["potential"] == POTENTIAL) & (frame["relaxed"] == relaxed)]


def append(warehouse: Path, rows: pd.DataFrame) -> None:
    """Append computed rows (columns :data:`PHASES_COLUMNS`) in one Delta commit."""
    import pyarrow as pa  # noqa: PLC0415 (needed here only)
    from deltalake import write_deltalake  # noqa: PLC0415

    warehouse.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(rows[list(PHASES_COLUMNS)], schema=_arrow_schema(), preserve_index=False)
    write_deltalake(str(warehouse / TABLE), table, mode="append")


def compute_energy(
    structure: Any, relaxed: bool, device: str, fmax: float, steps: int
) -> tuple[float, str, str | None]:
    """(energy per atom, status, reason) of one phase: static on its MP geometry, or relaxed."""
    if not relaxed:
        try:
            energy = static_energy(structure, device)
        except (ValueError, RuntimeError, IndexError) as exc:  # e.g. CHGNet refuses isolated atoms (molecules)
            return float("nan"), "failed", f"the potential refused it: {str(exc)[:200]}"
        if math.isfinite(energy):
            return energy, "ok", None
        return float("nan"), "failed", "no energy (element not covered, or NaN)"
    result = relax(structure, fmax=fmax, steps=steps, device=device)
    return result.energy_per_atom, result.status, result.reason


def missing_phases(phases: pd.DataFrame, warehouse: Path, relaxed: bool) -> tuple[pd.DataFrame, dict[str, float]]:
    """(the rows of ``phases`` (id, formula, source) not in the table yet, energy per atom by id of those that are)."""
    cached = read_cached(warehouse, relaxed).drop_duplicates("material_id", keep="last")
    known = {str(k): float(v) for k, v in zip(cached["material_id"], cached["energy_per_atom"], strict=True)}
    return phases[~phases["id"].isin(known)].reset_index(drop=True), known


def phase_work(missing: pd.DataFrame) -> list[tuple[str, str, str, str | None]]:
    """(id, formula, source, structure as pymatgen JSON or None when unreadable) of each phase of ``missing`` (id,
    formula, source), read from the shipped archives in one pass each, largest structures first: what a worker
    process or a Spark task gets to compute (:func:`phase_row`)."""
    ids = {s: missing.loc[missing["source"] == s, "id"].tolist() for s in set(missing["source"])}
    structures = read_structures(ids)
    items = [(pid, f, s, structures[pid].to(fmt="json") if pid in structures else None)
             for pid, f, s in zip(missing["id"], missing["formula"], missing["source"], strict=True)]  # fmt: skip
    return sorted(items, key=lambda it: -len(it[3] or ""))


def phase_row(
    pid: str, formula: str, source: str, structure: Any, relaxed: bool, device: str, fmax: float, steps: int
) -> dict[str, Any]:
    """The `phases` row of one phase (``structure`` None: not found); the work of one phase, in process or in a
    Spark task."""
    reason: str | None
    if structure is None:
        energy, status, atoms = float("nan"), "failed", 0
        reason = "structure not readable (missing from the archive, or a CIF pymatgen cannot parse)"
    else:
        energy, status, reason = compute_energy(structure, relaxed, device, fmax, steps)
        atoms = len(structure)
    return {"material_id": pid, "source": source, "formula": formula, "n_atoms": atoms, "energy_per_atom": energy,
            "potential": POTENTIAL, "relaxed": relaxed, "status": status, "reason": reason}  # fmt: skip


def with_energies(phases: pd.DataFrame, known: dict[str, float]) -> pd.DataFrame:
    """``phases`` with ``energy_per_atom`` from ``known`` (NaN where missing or failed)."""
    out = phases.copy()
    out["energy_per_atom"] = [float(known.get(pid, float("nan"))) for pid in out["id"]]
    return out


def phase_energies(
    phases: pd.DataFrame,
    warehouse: Path,
    relaxed: bool = False,
    device: str = "cpu",
    fmax: float = 0.1,
    steps: int = 300,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """``phases`` (id, formula, source) with ``energy_per_atom`` (NaN where it failed), from the `phases` table where
    cached, computed in this process and appended there in batches of :data:`BATCH` otherwise."""
    missing, known = missing_phases(phases, warehouse, relaxed)
    for start in range(0, len(missing), BATCH):
        part = missing.iloc[start : start + BATCH]
        structures = read_structures({s: part.loc[part["source"] == s, "id"].tolist() for s in set(part["source"])})
        rows = [phase_row(pid, formula, source, structures.get(pid), relaxed, device, fmax, steps)
                for pid, formula, source in zip(part["id"], part["formula"], part["source"], strict=True)]  # fmt: skip
        append(warehouse, pd.DataFrame(rows))
        known.update({row["material_id"]: row["energy_per_atom"] for row in rows})
        if progress is not None:
            progress(min(start + BATCH, len(missing)), len(missing))
    return with_energies(phases, known)


__all__ = [
    "BATCH",
    "TABLE",
    "append",
    "missing_phases",
    "phase_energies",
    "phase_row",
    "phase_work",
    "read_cached",
    "with_energies",
]
