"""Molecular dynamics of a run's best materials on Spark, and the combined ranking of its materials.

Extract: the run's `materials` rows (delta-rs). Plan on the driver: the best structure of each formula, the first
``mobility.top`` by shortlist rank (:func:`lisearch.mobility.ranking.best_structures`), times every temperature of
``mobility.temperatures``, minus the (formula, candidate, temperature) already in `mobility` for the run. Transform
on the executors, one simulation per task (:func:`lisearch.mobility.ranking.simulate_item`; the potential loaded
once per Python worker). Load: each chunk's rows are appended to `mobility` (Delta, partitioned by run id) before
the next chunk starts, so a stopped job keeps every finished simulation and the next run of the same run id goes on
with what is missing (``--restart`` drops the run's rows first). Then the run's `ranking` rows are replaced by the
combined ranking of every formula of the run (:func:`lisearch.mobility.ranking.combined_ranking`).
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lisearch.config import Settings
from lisearch.errors import InputError
from lisearch.logs import get_logger
from lisearch.mobility.ranking import best_structures, combined_ranking, simulate_item
from lisearch.records import record_job
from lisearch.schema import MOBILITY_TABLE_COLUMNS, RANKING_COLUMNS, ddl
from lisearch.spark.catalog import (
    check_tables_writable,
    is_delta_table,
    read_table,
    register_table,
    replace_run_rows,
    table_path,
)
from lisearch.spark.runs import downstream_run
from lisearch.spark.tasks import append_run_rows, chunks, run_rows, run_tasks

log = get_logger("lisearch.mobility")
TABLE, RANKING = "mobility", "ranking"
#: What the plan reads of `materials`.
MATERIAL_FIELDS = ["shortlist_rank", "formula", "candidate", "status", "e_above_hull", "sml_p_superionic",
                   "bvse_e_1d", "bvse_e_3d", "cif"]  # fmt: skip


def _materials_rows(settings: Settings, run_id: str) -> pd.DataFrame:
    path = table_path(settings.paths.warehouse_dir, "materials")
    if not is_delta_table(path):
        raise InputError("There is no `materials` table yet. Run `lisearch materials` first.")
    rows = run_rows(path, run_id, MATERIAL_FIELDS)
    if rows.empty:
        raise InputError(f"Run {run_id!r} has no `materials` rows. Run `lisearch materials --run-id {run_id}` first.")
    return rows


def _done(spark: SparkSession, settings: Settings, run_id: str, restart: bool) -> set[tuple[str, int, float]]:
    path = table_path(settings.paths.warehouse_dir, TABLE)
    if restart and is_delta_table(path):
        replace_run_rows(
            spark.createDataFrame([], ddl(MOBILITY_TABLE_COLUMNS)), str(path), run_id, True, add_columns=True
        )
    rows = run_rows(path, run_id, ["formula", "candidate", "temperature_k"])
    return {
        (f, int(c), float(t)) for f, c, t in zip(rows["formula"], rows["candidate"], rows["temperature_k"], strict=True)
    }


def run_mobility(
    settings: Settings, top: int, restart: bool = False, spark: SparkSession | None = None
) -> dict[str, Any]:
    """MD of the best ``top`` materials of run ``run.id`` (the last succeeded run when not set) at every
    ``mobility.temperatures``, into `mobility`, and the run's combined ranking into `ranking`; returns a summary."""
    if top < 1:
        raise InputError(f"--top {top}: give the number of materials to simulate, e.g. 3.")
    warehouse, mob = settings.paths.warehouse_dir, settings.mobility
    check_tables_writable(warehouse, (TABLE, RANKING))
    with downstream_run(settings, spark, TABLE, "mobility") as (session, run_id):
        started = time.perf_counter()
        materials = _materials_rows(settings, run_id)
        done = _done(session, settings, run_id, restart)
        best = best_structures(materials, top)
        work = [{"formula": r.formula, "candidate": int(r.candidate), "cif": r.cif, "temperature_k": t,
                 "shortlist_rank": None if pd.isna(r.shortlist_rank) else int(r.shortlist_rank)}
                for r in best.itertuples() for t in mob.temperature_list
                if (r.formula, int(r.candidate), t) not in done]  # fmt: skip
        work.sort(key=lambda it: -len(it["cif"]))  # the largest cells first
        device, path = settings.materials.device, table_path(warehouse, TABLE)
        for chunk in chunks(session, work):
            rows = run_tasks(session, chunk, lambda it: simulate_item(it, mob, device))
            append_run_rows(session, path, rows, MOBILITY_TABLE_COLUMNS, run_id)
            log.info("mobility: %d simulations done", len(rows))
        counts = _write_ranking(session, settings, run_id, materials)
        summary = {"run_id": run_id, "simulated_now": len(work), "skipped_as_done": len(done), **counts,
                   "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
        record_job(settings, "mobility", run_id, summary)
        return summary


def _write_ranking(spark: SparkSession, settings: Settings, run_id: str, materials: pd.DataFrame) -> dict[str, Any]:
    """Replace the run's `ranking` rows; counts of the run's simulations by status."""
    warehouse = settings.paths.warehouse_dir
    register_table(spark, warehouse, TABLE)
    md = run_rows(table_path(warehouse, TABLE), run_id, [c for c in MOBILITY_TABLE_COLUMNS if c != "run_id"])
    shortlist = pd.DataFrame(columns=["formula", "measured_log10_sigma", "measured_p_fast"])
    if is_delta_table(table_path(warehouse, "shortlist")):
        shortlist = (read_table(spark, warehouse, "shortlist").filter(F.col("run_id") == run_id)
                     .select(*shortlist.columns).toPandas())  # fmt: skip
    ranking = combined_ranking(materials, shortlist, md, settings.mobility.temperature_list[0]).assign(run_id=run_id)
    frame = spark.createDataFrame(ranking.astype(object).where(ranking.notna(), None), ddl(RANKING_COLUMNS))
    replace_run_rows(frame, str(table_path(warehouse, RANKING)), run_id, True, add_columns=True)
    register_table(spark, warehouse, RANKING)
    counts = md["status"].value_counts()
    return {"simulations": len(md), **{s: int(counts.get(s, 0)) for s in ("ok", "melted", "failed")},
            "ranked": len(ranking)}  # fmt: skip


def mobility_frame(spark: SparkSession, settings: Settings, run_id: str, table: str = TABLE) -> pd.DataFrame:
    """The run's rows of `mobility` (or `ranking`) as pandas, in a stable order."""
    order = ["combined_rank"] if table == RANKING else ["shortlist_rank", "formula", "candidate", "temperature_k"]
    frame = read_table(spark, settings.paths.warehouse_dir, table).filter(F.col("run_id") == run_id)
    return frame.orderBy(*order).toPandas()


__all__ = ["RANKING", "TABLE", "mobility_frame", "run_mobility"]
