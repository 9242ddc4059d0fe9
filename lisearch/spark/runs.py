"""The screen runs a downstream job works on: the one ``run.id`` names, or the last that succeeded, checked in the
`runs` table and held (shared) for the job's duration so that no screen replaces it meanwhile."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lisearch.config import Settings
from lisearch.errors import InputError
from lisearch.locks import downstream_lock
from lisearch.run_ids import check_run_id
from lisearch.spark.catalog import is_delta_table, read_table, table_path
from lisearch.spark.session import get_session


def _runs(spark: SparkSession, settings: Settings) -> Any:
    warehouse = settings.paths.warehouse_dir
    return read_table(spark, warehouse, "runs") if is_delta_table(table_path(warehouse, "runs")) else None


def check_run(spark: SparkSession, settings: Settings, run_id: str) -> dict[str, Any]:
    """The `runs` row of a succeeded run; :class:`InputError` listing the known runs otherwise."""
    check_run_id(run_id)
    runs = _runs(spark, settings)
    rows = runs.filter(F.col("run_id") == run_id).collect() if runs is not None else []
    if not rows or rows[0]["status"] != "succeeded":
        known = (
            [r["run_id"] for r in runs.filter(F.col("status") == "succeeded").select("run_id").collect()]
            if runs
            else []
        )
        state = f"is {rows[0]['status']}" if rows else "does not exist"
        raise InputError(
            f"The screen run {run_id!r} {state}. Succeeded runs: {', '.join(sorted(known)) or 'none'}. "
            "Run `lisearch screen --run-id ID` first or pass --run-id of a succeeded run."
        )
    return rows[0].asDict()


def last_succeeded_run(spark: SparkSession, settings: Settings) -> str:
    """The id of the screen run that succeeded last (latest ``ended_at``); InputError when there is none."""
    runs = _runs(spark, settings)
    row = (
        runs.filter(F.col("status") == "succeeded")
        .orderBy(F.desc("ended_at"), F.desc("run_id"))
        .select("run_id")
        .first()
        if runs is not None
        else None
    )
    if row is None:
        raise InputError(
            f"No screen run has succeeded in {settings.paths.warehouse_dir}. Run `lisearch screen` first, or pass "
            "--run-id of a run in another warehouse (paths.warehouse)."
        )
    return str(row["run_id"])


@contextlib.contextmanager
def downstream_run(
    settings: Settings, spark: SparkSession | None, table: str, job: str
) -> Iterator[tuple[SparkSession, str]]:
    """(session, run id) for a job that reads a screen run and writes its rows of ``table``, with the run's lock
    shared and the output rows' lock held (:func:`lisearch.locks.downstream_lock`). A named run (``run.id``) is
    locked before Spark starts; without one the session starts first to find the last succeeded run."""
    run_id = settings.run.id
    if run_id:
        with downstream_lock(settings.paths.home, run_id, table, job):
            yield spark or get_session(settings), run_id
        return
    spark = spark or get_session(settings)
    run_id = last_succeeded_run(spark, settings)
    with downstream_lock(settings.paths.home, run_id, table, job):
        yield spark, run_id


__all__ = ["check_run", "downstream_run", "last_succeeded_run"]
