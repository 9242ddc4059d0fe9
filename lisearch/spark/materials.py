"""The materials stage on Spark: the top of a run's shortlist (or given formulas) to relaxed structures and hulls.

Extract: the run's `shortlist` rows by rank (or the formulas given). Plan on the driver: candidate structures by
substitution (:func:`lisearch.materials.pipeline.plan_candidates`, seconds) and the competing phases of every
chemical system, whose structures the driver reads from the shipped archives once. Transform on the executors, one
task per item: the energy of each phase missing from the `phases` table (:func:`lisearch.materials.phases.phase_row`),
then the relaxation of each candidate (:func:`lisearch.materials.pipeline.relax_item`); the potential is loaded
once per Python worker, one torch thread per task. Load: after every chunk of tasks, the new phases are appended to
`phases` and the new rows (with their energy above the hull, computed on the driver) to `materials` (Delta,
partitioned by run id), so a run that is stopped keeps every finished chunk and the next run of the same run id
continues with what is missing (``--restart`` drops the run's rows first).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lisearch.config import Settings
from lisearch.errors import InputError
from lisearch.logs import get_logger
from lisearch.materials import phases as phase_store
from lisearch.materials.pipeline import add_hull, plan_candidates, relax_item, system_phases
from lisearch.records import record_job
from lisearch.schema import MATERIALS_TABLE_COLUMNS, ddl
from lisearch.spark.catalog import (
    check_tables_writable,
    is_delta_table,
    read_table,
    register_table,
    replace_run_rows,
    table_path,
)
from lisearch.spark.runs import check_run, downstream_run
from lisearch.spark.tasks import append_run_rows, chunks, run_rows, run_tasks

log = get_logger("lisearch.materials")
TABLE = "materials"


def _phase_task(item: tuple[str, str, str, str | None], relaxed: bool, settings: Any) -> dict[str, Any]:
    from pymatgen.core import Structure  # noqa: PLC0415 (executor side, slow import)

    pid, formula, source, text = item
    structure = Structure.from_str(text, fmt="json") if text is not None else None
    return phase_store.phase_row(pid, formula, source, structure, relaxed, settings.device, settings.fmax,
                                 settings.steps)  # fmt: skip


def run_materials(
    settings: Settings,
    top: int,
    formulas: list[str] | None = None,
    restart: bool = False,
    spark: SparkSession | None = None,
) -> dict[str, Any]:
    """Predicted materials for the ``top`` rows of run ``run.id``'s shortlist (the last succeeded run when not set),
    or for ``formulas`` (then ``run.id`` names the rows' partition); returns a summary."""
    if top < 1 and formulas is None:
        raise InputError(f"--top {top}: give the number of shortlist rows to turn into materials, e.g. 10.")
    warehouse = settings.paths.warehouse_dir
    check_tables_writable(warehouse, (TABLE, phase_store.TABLE))
    with downstream_run(settings, spark, TABLE, "materials") as (session, run_id):
        if formulas is None:
            check_run(session, settings, run_id)
            shortlist: pd.DataFrame = (read_table(session, warehouse, "shortlist").filter(F.col("run_id") == run_id)
                         .select("rank", "formula").orderBy("rank").limit(top).toPandas())  # fmt: skip
            if shortlist.empty:
                raise InputError(f"The shortlist of run {run_id!r} is empty. Run `lisearch shortlist` first.")
            ranks = dict(zip(shortlist["formula"], shortlist["rank"].astype(int), strict=True))
        else:
            ranks = dict.fromkeys(formulas)
        summary = _materials(settings, session, run_id, ranks, restart)
        paths = update_shortlist_reports(session, settings, run_id)
        if paths is not None:
            summary["shortlist_report"] = str(paths["markdown"])
        record_job(settings, "materials", run_id, summary)
        return summary


def _done_rows(spark: SparkSession, settings: Settings, run_id: str, ranks: dict[str, Any], restart: bool) -> set[Any]:
    """(formula, candidate) keys of the run's rows already in `materials` (none after ``restart``, or when rows of
    formulas not asked for are there: the run's materials are those asked for, so those rows go)."""
    path = table_path(settings.paths.warehouse_dir, TABLE)
    if not is_delta_table(path):
        return set()
    existing = run_rows(path, run_id, ["formula", "candidate"])
    done = {(f, int(c)) for f, c in zip(existing["formula"], existing["candidate"], strict=True)}
    if done and (restart or {f for f, _ in done} - set(ranks)):
        empty = spark.createDataFrame([], ddl(MATERIALS_TABLE_COLUMNS))
        replace_run_rows(empty, str(path), run_id, True, add_columns=True)  # a table of an older lisearch too
        return set()
    return done


def _phase_stage(spark: SparkSession, settings: Settings, systems: dict[str, pd.DataFrame]) -> tuple[dict, int]:
    """The energy of every competing phase of ``systems`` (one task per phase missing from `phases`, appended
    chunk by chunk): (energy per atom by id, phases computed now)."""
    m, warehouse = settings.materials, settings.paths.warehouse_dir
    if not systems:
        return {}, 0
    everything = pd.concat(list(systems.values()), ignore_index=True).drop_duplicates("id")
    missing, known = phase_store.missing_phases(everything, warehouse, m.relax_phases)
    items = phase_store.phase_work(missing)
    computed = 0
    for chunk in chunks(spark, items):
        rows = run_tasks(spark, chunk, lambda it: _phase_task(it, m.relax_phases, m))
        phase_store.append(warehouse, pd.DataFrame(rows))
        known.update({r["material_id"]: r["energy_per_atom"] for r in rows})
        computed += len(rows)
        log.info("phases: %d of %d computed", computed, len(items))
    return known, computed


def _materials(
    settings: Settings, spark: SparkSession, run_id: str, ranks: dict[str, int | None], restart: bool
) -> dict[str, Any]:
    started = time.perf_counter()
    m = settings.materials
    path = table_path(settings.paths.warehouse_dir, TABLE)
    done = _done_rows(spark, settings, run_id, ranks, restart)
    work, empty_rows = plan_candidates(list(ranks), m)
    work = [item for item in work if (item["formula"], item["candidate"]) not in done]
    empty_rows = [{**row, "shortlist_rank": ranks.get(row["formula"])} for row in empty_rows
                  if (row["formula"], 0) not in done]  # fmt: skip
    if empty_rows:
        append_run_rows(spark, path, empty_rows, MATERIALS_TABLE_COLUMNS, run_id)
    systems = system_phases(item["formula"] for item in work)
    known, computed = _phase_stage(spark, settings, systems)
    energies = {f: phase_store.with_energies(p, known) for f, p in systems.items()}
    work.sort(key=lambda it: -len(it["structure"]))
    relaxations = 0
    for chunk in chunks(spark, work):
        rows = run_tasks(spark, chunk, lambda it: relax_item(it, m, settings.mobility))
        finished = [{**add_hull(row, energies[row["formula"]]), "shortlist_rank": ranks.get(row["formula"])}
                    for row in rows]  # fmt: skip
        append_run_rows(spark, path, finished, MATERIALS_TABLE_COLUMNS, run_id)
        relaxations += len(finished)
        log.info("materials: %d of %d structures relaxed", relaxations, len(work))
    register_table(spark, settings.paths.warehouse_dir, TABLE)
    counts = _run_counts(path, run_id, settings.materials.hull_window)
    return {
        "run_id": run_id, "seconds": round(time.perf_counter() - started, 1), "relaxed_now": relaxations,
        "skipped_as_done": len(done), "phases_computed": computed, **counts,
    }  # fmt: skip


def _run_counts(path: Path, run_id: str, window: float) -> dict[str, Any]:
    """Formulas, structures, converged, failed and near-hull (``window`` eV/atom) rows of the run (None for the sums
    of a run without rows, as SQL gives them)."""
    rows = run_rows(path, run_id, ["formula", "candidate", "converged", "status", "e_above_hull"])
    if rows.empty:
        return {"formulas": 0, "structures": None, "converged": None, "failed": None, "near_hull": None}
    return {
        "formulas": int(rows["formula"].nunique()),
        "structures": int((rows["candidate"] > 0).sum()),
        "converged": int(rows["converged"].eq(True).sum()),
        "failed": int((rows["status"] == "failed").sum()),
        "near_hull": int((rows["e_above_hull"] <= window).sum()),
    }


def update_shortlist_reports(spark: SparkSession, settings: Settings, run_id: str) -> dict[str, Path] | None:
    """Rewrite the run's shortlist reports (CSV, Markdown, HTML) with each row's best structure and its energy above
    the hull; None when the run has no shortlist report (``lisearch shortlist`` writes it)."""
    from lisearch.downstream.shortlisting import with_materials, write_shortlist  # noqa: PLC0415 (pymatgen)

    folder = settings.paths.home / "reports"
    report, funnel = folder / f"shortlist_{run_id}.csv", folder / f"shortlist_{run_id}_funnel.csv"
    if not report.is_file() or not funnel.is_file():
        return None
    shortlist = with_materials(pd.read_csv(report), materials_frame(spark, settings, run_id))
    return write_shortlist(shortlist, folder, run_id, pd.read_csv(funnel))


def materials_frame(spark: SparkSession, settings: Settings, run_id: str) -> pd.DataFrame:
    """The run's `materials` rows (pandas), by shortlist rank, formula and candidate."""
    table = read_table(spark, settings.paths.warehouse_dir, TABLE).filter(F.col("run_id") == run_id)
    frame: pd.DataFrame = table.orderBy("shortlist_rank", "formula", "candidate").toPandas()
    kinds = {"int": "Int32", "boolean": "boolean"}  # integers stay integers beside nulls (pandas would make floats)
    return frame.astype({c: kinds[k] for c, k in MATERIALS_TABLE_COLUMNS.items() if k in kinds and c in frame})


__all__ = ["TABLE", "materials_frame", "run_materials", "update_shortlist_reports"]
