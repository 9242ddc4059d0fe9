"""Re-scoring a screen run's `candidates` with the measured-conductivity models, on Spark.

Extract: the run's `candidates` rows. Transform: :func:`lisearch.measured.scoring.score_candidates` inside
``mapInPandas`` (the models travel as their plain-data payloads in a broadcast and are rebuilt once per Python
worker). Load: the Delta table `measured_candidates` (the `candidates` columns plus the measured columns),
partitioned by run id, this run's rows replaced in one commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lisearch.config import Settings
from lisearch.logs import get_logger
from lisearch.measured.models import KIND, MODEL_FILES, MeasuredModel, check_pair
from lisearch.measured.scoring import score_candidates
from lisearch.models.artifact import load_artifact
from lisearch.records import record_job
from lisearch.schema import MEASURED_DDL
from lisearch.spark.catalog import check_tables_writable, read_table, register_table, replace_run_rows, table_path
from lisearch.spark.runs import check_run, downstream_run

log = get_logger("lisearch.measured")
TABLE = "measured_candidates"


_WORKER_MODELS: dict[tuple[str, str], tuple[MeasuredModel, MeasuredModel]] = {}


def worker_models(digest: tuple[str, str], shared: Any) -> tuple[MeasuredModel, MeasuredModel]:
    """The models rebuilt once per Python worker process (keyed by the artifacts' hashes), not once per task."""
    if digest not in _WORKER_MODELS:
        payloads = shared.value
        models = {task: MeasuredModel.from_payload(payloads[task], f"broadcast {task}") for task in MODEL_FILES}
        _WORKER_MODELS.clear()
        _WORKER_MODELS[digest] = check_pair(models, "broadcast")
    return _WORKER_MODELS[digest]


def _kernel(shared: Any, digest: tuple[str, str]) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        classifier, regressor = worker_models(digest, shared)
        for batch in batches:
            yield score_candidates(batch, classifier, regressor)

    return run


def transform(candidates: DataFrame, shared: Any, digest: tuple[str, str]) -> DataFrame:
    """`candidates` rows -> the same rows with the measured columns (``MEASURED_DDL``)."""
    schema = ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in candidates.schema.fields)
    return candidates.mapInPandas(_kernel(shared, digest), f"{schema}, {MEASURED_DDL}")


def measured_payloads(artifacts: Path) -> tuple[dict[str, Any], tuple[str, str]]:
    """(payload by task, (classifier sha256, regressor sha256)) of the trained measured models, checked on the
    driver before any Spark work (a missing, corrupted or mismatched file stops here with its message)."""
    artifacts_by_task = {task: load_artifact(artifacts / name, kinds=(KIND,)) for task, name in MODEL_FILES.items()}
    payloads = {task: a["payload"] for task, a in artifacts_by_task.items()}
    check_pair({t: MeasuredModel.from_payload(p, str(artifacts / MODEL_FILES[t])) for t, p in payloads.items()},
               str(artifacts))  # fmt: skip
    return payloads, (artifacts_by_task["classifier"]["sha256"], artifacts_by_task["regressor"]["sha256"])


def run_score_measured(settings: Settings, spark: SparkSession | None = None) -> dict[str, Any]:
    """Score every `candidates` row of the screen run ``run.id`` (the last succeeded one when not set) into
    `measured_candidates`; returns a summary."""
    payloads, digest = measured_payloads(settings.paths.artifacts_dir)
    check_tables_writable(settings.paths.warehouse_dir, (TABLE,))
    with downstream_run(settings, spark, TABLE, "score-measured") as (session, run_id):
        return _score_measured(settings, session, run_id, payloads, digest)


def _score_measured(
    settings: Settings, spark: SparkSession, run_id: str, payloads: dict[str, Any], digest: tuple[str, str]
) -> dict[str, Any]:
    """:func:`run_score_measured` once the models are read and the run locked."""
    check_run(spark, settings, run_id)
    started = time.perf_counter()
    warehouse = settings.paths.warehouse_dir
    candidates = read_table(spark, warehouse, "candidates").filter(F.col("run_id") == run_id)
    scored = transform(candidates, spark.sparkContext.broadcast(payloads), digest)
    replace_run_rows(scored, str(table_path(warehouse, TABLE)), run_id, partitioned=True, add_columns=True)
    register_table(spark, warehouse, TABLE)
    seconds = time.perf_counter() - started
    table = read_table(spark, warehouse, TABLE).filter(F.col("run_id") == run_id)
    counts = table.agg(
        F.count("*").alias("rows"),
        F.sum(F.col("measured_label").cast("int")).alias("fast"),
        F.sum(F.col("measured_in_domain").cast("int")).alias("in_domain"),
        F.sum((F.col("measured_in_domain") & (F.col("measured_label") == 1)).cast("int")).alias("fast_in_domain"),
    ).first()
    summary = {"run_id": run_id, "seconds": round(seconds, 1), **(counts.asDict() if counts else {})}
    record_job(settings, "score_measured", run_id, summary)
    log.info("measured scores of run %s: %s", run_id, summary)
    return summary


def format_measured(summary: dict[str, Any]) -> str:
    """The summary of `lisearch score-measured` as printed lines."""
    rows = summary.get("rows") or 0
    share = (lambda k: f"{100 * (summary.get(k) or 0) / rows:.1f} %") if rows else (lambda k: "n/a")
    return (
        f"measured scores of run {summary['run_id']}: {rows} candidates in {summary['seconds']} s; predicted "
        f"sigma >= threshold {share('fast')}, inside the applicability domain {share('in_domain')}, both "
        f"{share('fast_in_domain')} (table `{TABLE}`)"
    )
