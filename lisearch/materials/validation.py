"""``lisearch validate-materials``: the materials stage checked against the Materials Project.

* **The hull pipeline on known compounds**: a fixed random sample (``seed``) of Li compounds of ``mp_known`` (MP's
  own E_hull, DFT) with a shipped structure and at most four elements; each compound's own MP structure relaxed by
  the potential, its energy above the hull of the potential's energies of the other shipped phases of its system
  (its own MP entry left out, its polymorphs kept), clipped at 0 as MP's is (a compound on the hull has 0). Reported:
  mean absolute error against MP's E_hull, and the share of MP-stable compounds (E_hull 0) placed within 0.05
  eV/atom of the hull, each with a 95 % bootstrap interval over compounds.
* **Structure prediction, leave one out**: a fixed random sample of Li compounds on MP's hull; every polymorph of the
  compound's formula removed from the prototypes and from the phases; predicted from its formula alone
  (:func:`lisearch.materials.pipeline.predict_materials` with ``exclude``): the share whose ``candidates`` relaxed
  structures contain the MP structure (pymatgen ``StructureMatcher``, default tolerances), and the share whose best
  predicted structure lies within 0.1 eV/atom of the hull; how many had no prototype; the recovered share per
  anion set (oxides apart, the class of the literature's anchor).
* **The paper's Table III** (``table_iii``): its 11 "stable oxides" from their formulas, as any shortlisted
  composition goes: each one's best structure, its space group and energy above the hull, or the reason it has
  none (a composition no ionic assignment makes neutral has no prototype).

The first two run in one process per core (``multiprocessing``, the potential loaded once per process); the competing
phases' energies come from (and go to) the `phases` table.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lisearch.datasets import MP2025_ARCHIVE, mp_known
from lisearch.materials.hull import competing_phases, hull_energy
from lisearch.materials.phases import BATCH, append, missing_phases, phase_energies, phase_row, phase_work
from lisearch.materials.potential import POTENTIAL, relax
from lisearch.materials.templates import ionic_formulas, phase_index, read_cifs, read_structures, template_index

#: MP's E_hull at or below this counts as on the hull (MP rounds stable compounds to 0).
ON_HULL = 1e-6


def known_sample(n: int, seed: int = 0, stable_only: bool = False) -> pd.DataFrame:
    """A fixed random sample of ``mp_known`` compounds with a shipped structure and at most four elements
    (material_id, formula, e_above_hull_ev, elements); ``stable_only``: MP's E_hull 0 only."""
    known = mp_known()
    index = phase_index()
    shipped = index[index["source"] == "mp2025_li"].set_index("id")
    known = known[known["material_id"].isin(shipped.index)].copy()
    known["elements"] = [shipped.at[i, "elements"] for i in known["material_id"]]
    known = known[[len(e) <= 4 for e in known["elements"]]]
    if stable_only:
        known = known[known["e_above_hull_ev"] <= ON_HULL]
    return known.sample(n=min(n, len(known)), random_state=seed).reset_index(drop=True)


def _relax_known(args: tuple[str, str, float, int]) -> dict[str, Any]:
    material_id, text, fmax, steps = args
    from pymatgen.core import Structure  # noqa: PLC0415 (worker side)

    result = relax(Structure.from_str(text, fmt="json"), fmax=fmax, steps=steps)
    return {"material_id": material_id, "energy": result.energy_per_atom, "status": result.status,
            "reason": result.reason}  # fmt: skip


def resumable_map(
    processes: int, fn: Callable[[Any], dict[str, Any]], work: list[tuple[Any, ...]], partial: Path | None
) -> pd.DataFrame:
    """``fn`` on every item of ``work`` (items whose first value is their key) in ``processes`` processes, one row
    each. With ``partial`` (a CSV), each row is appended to it the moment it is done and the items whose key it
    already holds are not computed again: a stopped validation continues where it ended."""
    done = pd.read_csv(partial, dtype={"material_id": str}) if partial is not None and partial.is_file() else None
    finished = set(done["material_id"]) if done is not None else set()
    todo = [item for item in work if item[0] not in finished]
    rows: list[dict[str, Any]] = []
    if todo:
        with _pool(processes) as pool:
            for row in pool.imap_unordered(fn, todo):
                rows.append(row)
                if partial is not None:
                    pd.DataFrame([row]).to_csv(partial, mode="a", header=not partial.is_file(), index=False)
    frame = pd.concat([f for f in (done, pd.DataFrame(rows)) if f is not None and len(f)], ignore_index=True)
    keys = {item[0] for item in work}
    return frame[frame["material_id"].isin(keys)].reset_index(drop=True) if len(frame) else frame


def _pool(processes: int) -> Any:
    return multiprocessing.get_context("spawn").Pool(processes)


def _phase_job(args: tuple[str, str, str, str | None, Any]) -> dict[str, Any]:
    from pymatgen.core import Structure  # noqa: PLC0415 (worker side)

    pid, formula, source, text, m = args
    structure = Structure.from_str(text, fmt="json") if text is not None else None
    return phase_row(pid, formula, source, structure, m.relax_phases, m.device, m.fmax, m.steps)


def cache_phases(
    systems: list[frozenset[str]], warehouse: Path, settings: Any, processes: int, say: Callable[[str], None]
) -> None:
    """Every competing phase of ``systems`` into the `phases` table, computed in ``processes`` processes (this one
    appends every :data:`BATCH` results, so a stopped validation keeps them)."""
    wanted = pd.concat([competing_phases(e) for e in systems], ignore_index=True).drop_duplicates("id")
    missing, _ = missing_phases(wanted, warehouse, settings.relax_phases)
    work = [(*item, settings) for item in phase_work(missing)]
    done: list[dict[str, Any]] = []
    with _pool(processes) as pool:
        for row in pool.imap_unordered(_phase_job, work, chunksize=4):
            done.append(row)
            if len(done) >= BATCH:
                append(warehouse, pd.DataFrame(done))
                done = []
    if done:
        append(warehouse, pd.DataFrame(done))
    say(f"phases: {len(wanted)} in {len(systems)} systems, {len(missing)} computed now")


def bootstrap_mean(values: np.ndarray, resamples: int = 2000, seed: int = 0) -> list[float] | None:
    """95 % interval of the mean of ``values`` over bootstrap resamples (None for no value)."""
    values = np.asarray(values, np.float64)
    if not len(values):
        return None
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    return np.percentile(means, [2.5, 97.5]).round(4).tolist()


def hull_validation(
    sample: pd.DataFrame,
    warehouse: Path,
    settings: Any,
    processes: int,
    say: Callable[[str], None],
    partial: Path | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The known-compound check (see the module doc) on ``sample`` (:func:`known_sample`); ``partial``: see
    :func:`resumable_map`."""
    cache_phases(sorted({frozenset(e) for e in sample["elements"]}, key=sorted), warehouse, settings, processes, say)
    structures = read_structures({"mp2025_li": sample["material_id"].tolist()})
    work = [(i, structures[i].to(fmt="json"), settings.fmax, settings.steps) for i in sample["material_id"]
            if i in structures]  # fmt: skip
    results = resumable_map(processes, _relax_known, work, partial)
    relaxed = {r.material_id: (r.energy, r.status, None if pd.isna(r.reason) else r.reason)
               for r in results.itertuples(index=False)}  # fmt: skip
    say(f"hull check: {len(relaxed)} compounds relaxed")
    rows = []
    for compound in sample.itertuples(index=False):
        phases = competing_phases(compound.elements)
        phases = phases[phases["id"] != compound.material_id]
        energies = phase_energies(phases, warehouse, settings.relax_phases, settings.device, settings.fmax,
                                  settings.steps)  # fmt: skip
        energy, status, reason = relaxed.get(compound.material_id, (math.nan, "failed", "structure not readable"))
        hull = hull_energy(compound.formula, energy, energies)
        ours = max(hull.e_above_hull, 0.0) if math.isfinite(hull.e_above_hull) else math.nan
        rows.append({"material_id": compound.material_id, "formula": compound.formula,
                     "mp_e_above_hull": compound.e_above_hull_ev, "e_above_hull": ours, "signed": hull.e_above_hull,
                     "status": status, "reason": reason or hull.reason})  # fmt: skip
    frame = pd.DataFrame(rows)
    have = frame[np.isfinite(frame["e_above_hull"])]
    errors = (have["e_above_hull"] - have["mp_e_above_hull"]).abs().to_numpy()
    stable = have[have["mp_e_above_hull"] <= ON_HULL]
    within = (stable["e_above_hull"] <= 0.05).to_numpy(np.float64)
    return {
        "n_sample": len(sample), "n_scored": len(have), "mae": float(errors.mean()) if len(errors) else None,
        "mae_ci": bootstrap_mean(errors), "n_mp_stable": len(stable),
        "mp_stable_within_0.05": float(within.mean()) if len(within) else None, "within_ci": bootstrap_mean(within),
    }, frame  # fmt: skip


def _matches(predicted: list[str], reference: Any) -> bool:
    from pymatgen.analysis.structure_matcher import StructureMatcher  # noqa: PLC0415 (slow import)
    from pymatgen.core import Structure  # noqa: PLC0415

    matcher = StructureMatcher()
    return any(matcher.fit(Structure.from_str(cif, fmt="cif"), reference) for cif in predicted)


def _predict_one(args: tuple[str, str, str, Any, str | None]) -> dict[str, Any]:
    """One leave-one-out compound: predicted from its formula alone, compared with its MP structure (CIF text)."""
    from pymatgen.core import Composition, Structure  # noqa: PLC0415 (worker side)

    from lisearch.materials.pipeline import predict_materials  # noqa: PLC0415 (worker side)

    material_id, formula, warehouse, settings, reference = args
    frame = predict_materials([formula], Path(warehouse), settings, exclude=[formula])
    cifs = frame["cif"].dropna().tolist()
    best = frame.dropna(subset=["e_above_hull"])
    structure = Structure.from_str(reference, fmt="cif") if reference is not None else None
    return {"material_id": material_id, "formula": Composition(formula).reduced_formula,
            "no_template": bool((frame["status"] == "no_template").all()),
            "recovered": bool(structure is not None and cifs and _matches(cifs, structure)),
            "best_e_above_hull": float(best["e_above_hull"].min()) if len(best) else math.nan}  # fmt: skip


def structure_validation(
    sample: pd.DataFrame,
    warehouse: Path,
    settings: Any,
    processes: int,
    say: Callable[[str], None],
    partial: Path | None = None,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The leave-one-out check (see the module doc) on ``sample`` (:func:`known_sample` of stable compounds);
    ``partial``: see :func:`resumable_map`.

    The compound's polymorphs are left out of the prototypes and of the phases (``exclude`` of
    :func:`lisearch.materials.pipeline.predict_materials`)."""
    references = read_cifs(MP2025_ARCHIVE, sample["material_id"].tolist())
    # phases first (the workers then only read them): every system of the sample
    cache_phases(sorted({frozenset(e) for e in sample["elements"]}, key=sorted), warehouse, settings, processes, say)
    work = [(i, f, str(warehouse), settings, references.get(i))
            for f, i in zip(sample["formula"], sample["material_id"], strict=True)]  # fmt: skip
    rows = resumable_map(processes, _predict_one, work, partial)
    order = {i: k for k, i in enumerate(sample["material_id"])}
    out = rows.sort_values("material_id", key=lambda ids: ids.map(order)).reset_index(drop=True)
    summary, out = loo_summary(out, settings.candidates)
    say(f"leave-one-out: {summary['n_sample']} compounds, {summary['no_template']} without a prototype")
    return summary, out


def anions_of(formulas: list[str]) -> list[str]:
    """The anions of each formula in its most likely neutral ionic assignment (the prototypes' rules,
    :func:`lisearch.materials.templates.ionic_formulas`), joined by ',' in formula order: "O" for an oxide, "S,Cl"
    for a thiohalide; "none" when the formula has no assignment (e.g. a peroxide)."""
    ionic = ionic_formulas(formulas)
    return [",".join(e for e, s in zip(els, states, strict=True) if s < 0) if states else "none"
            for els, states in zip(ionic["elements"], ionic["states"], strict=True)]  # fmt: skip


def loo_summary(out: pd.DataFrame, k: int) -> tuple[dict[str, Any], pd.DataFrame]:
    """The leave-one-out numbers of per-compound rows (formula, no_template, recovered, best_e_above_hull): among
    the compounds with a prototype, the share whose MP structure is among the ``k`` candidates and the share whose best
    structure lies within 0.1 eV/atom of the hull, each with its 95 % bootstrap interval; ``by_anions``: the
    recovered share per anion set (:func:`anions_of`; oxides are "O", the class of Yang and Ceder's 0.75), largest
    first. Returns the summary and the rows with an ``anions`` column."""
    out = out.assign(no_template=out["no_template"].astype(bool), recovered=out["recovered"].astype(bool),
                     anions=anions_of(out["formula"].tolist()))  # fmt: skip
    with_template = out[~out["no_template"]]
    recovered = with_template["recovered"].to_numpy(np.float64)
    near = (with_template["best_e_above_hull"] <= 0.1).to_numpy(np.float64)
    groups = with_template.groupby("anions")["recovered"]
    by_anions = [{"anions": a, "n_with_template": int(n), "recovered_top_k": float(groups.get_group(a).mean()),
                  "recovered_ci": bootstrap_mean(groups.get_group(a).to_numpy(np.float64))}
                 for a, n in groups.size().sort_values(ascending=False, kind="stable").items()]  # fmt: skip
    return {
        "n_sample": len(out), "no_template": int(out["no_template"].sum()), "n_with_template": len(with_template),
        "recovered_top_k": float(recovered.mean()) if len(recovered) else None,
        "recovered_ci": bootstrap_mean(recovered),
        "best_within_0.1": float(near.mean()) if len(near) else None, "within_ci": bootstrap_mean(near),
        "k": k, "by_anions": by_anions,
    }, out  # fmt: skip


#: The columns of the Table III check's rows (a subset of :data:`lisearch.schema.MATERIALS_COLUMNS`).
TABLE_III_COLUMNS = ["formula", "status", "reason", "template_id", "template_formula", "substitution_probability",
                     "space_group", "e_above_hull", "decomposition", "converged"]  # fmt: skip


def table_iii_check(
    warehouse: Path, settings: Any, say: Callable[[str], None], window: float = 0.1
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The paper's Table III compositions through the materials steps in this process: one row per formula (its
    lowest-E_hull structure, :data:`TABLE_III_COLUMNS`) and a summary (how many got a structure, how many lie within
    ``window`` eV/atom of the hull)."""
    from lisearch.materials.pipeline import best_per_formula, predict_materials  # noqa: PLC0415 (torch: used here)
    from lisearch.paper import TABLE_III  # noqa: PLC0415

    frame = predict_materials(list(TABLE_III), warehouse, settings, progress=say)
    order = {f: i for i, f in enumerate(TABLE_III)}
    best = best_per_formula(frame).sort_values("formula", key=lambda f: f.map(order), kind="stable")
    best = best[TABLE_III_COLUMNS].reset_index(drop=True)
    have = best["e_above_hull"].notna()
    summary = {"formulas": len(best), "with_structure": int(have.sum()),
               "within_window": int((best["e_above_hull"] <= window).sum()), "window_ev": window,
               "rows": best.astype(object).where(best.notna(), None).to_dict(orient="records")}  # fmt: skip
    return summary, best


def run_materials_validation(
    settings: Any,
    known: int,
    loo: int,
    processes: int,
    output: Path | None = None,
    say: Callable[[str], None] = print,
    table_iii: bool = False,
) -> dict[str, Any]:
    """`lisearch validate-materials`: the checks asked for (``known``, ``loo`` > 0, ``table_iii``), written to
    ``materials_validation.json`` and the per-compound CSVs in ``output`` (default ``<home>/reports``)."""
    started = time.perf_counter()
    m, warehouse = settings.materials, settings.paths.warehouse_dir
    folder = output or settings.paths.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"potential": POTENTIAL, "settings": {"fmax": m.fmax, "steps": m.steps,
                              "candidates": m.candidates, "relax_phases": m.relax_phases}}  # fmt: skip
    tag = f"k{m.candidates}-f{m.fmax:g}-s{m.steps}-{'relaxed' if m.relax_phases else 'static'}"
    if known:
        partial = folder / f"materials_validation_hull.partial-{tag}.csv"
        report["hull"], frame = hull_validation(known_sample(known, 0), warehouse, m, processes, say, partial)
        frame.to_csv(folder / "materials_validation_hull.csv", index=False)
    if loo:
        # the prototypes are part of what a leave-one-out row depends on: another set never resumes these rows
        partial = folder / f"materials_validation_loo.partial-{tag}-t{len(template_index())}.csv"
        report["leave_one_out"], frame = structure_validation(known_sample(loo, 1, stable_only=True), warehouse, m,
                                                              processes, say, partial)  # fmt: skip
        frame.to_csv(folder / "materials_validation_loo.csv", index=False)
    if table_iii:
        report["table_iii"], frame = table_iii_check(warehouse, m, say)
        frame.to_csv(folder / "materials_validation_table3.csv", index=False)
    report["seconds"] = round(time.perf_counter() - started, 1)
    (folder / "materials_validation.json").write_text(json.dumps(report, indent=1))
    return report


__all__ = [
    "TABLE_III_COLUMNS", "anions_of", "hull_validation", "known_sample", "loo_summary", "resumable_map",
    "run_materials_validation", "structure_validation", "table_iii_check",
]  # fmt: skip
