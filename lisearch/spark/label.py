"""The structure-labelling job: CIFs -> Sendek features, P and label -> the Delta table ``structures``.

Extract: the driver lists the CIF files of the source (a folder, or a tar archive unpacked once under
``<home>/tmp/cif-cache``, the bundled archive included), skipping ids already in the table unless ``label.force``.
Transform: chunks of (id, file path) become Spark partitions; inside ``mapInPandas`` each worker reads its files and
:func:`lisearch.structure.labelling.label_cif_files` featurizes them, so tasks carry paths, not CIF texts (the home
must be on storage every worker can read, as on a cluster). Load: each chunk is merged
into ``structures`` on ``material_id`` in its own Delta commit, so a crash loses at most the chunk in flight,
a re-run continues where the last one stopped, and no id is ever stored twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import pandas as pd
from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lisearch.config import Settings
from lisearch.datasets import cif_files, cif_root, resolve_source
from lisearch.locks import job_lock
from lisearch.logs import get_logger
from lisearch.records import record_job
from lisearch.run_ids import new_run_id
from lisearch.spark.catalog import check_tables_writable, check_writable, is_delta_table, register_table, table_path
from lisearch.spark.session import get_session, session_conf
from lisearch.structure.labelling import OUTPUT_DDL, label_cif_files

TABLE = "structures"
ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"
log = get_logger("lisearch.label")


def _kernel(partial_occupancy: str, root: str | None) -> Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield label_cif_files(batch, partial_occupancy=partial_occupancy, root=root)

    return run


#: Schema of the job's input rows: a structure id, the CIF file the workers read, and why it is refused (or null).
FILES_DDL = "material_id string, path string, refused string"


def transform(files: DataFrame, partial_occupancy: str = "sample", root: str | None = None) -> DataFrame:
    """(material_id, path[, refused]) rows -> labelled rows with the columns of :data:`OUTPUT_DDL` plus
    ``labelled_at``; the workers read the files, only those that resolve inside ``root`` when it is given, and a
    refused row becomes an ``error`` row with its reason."""
    kernel = _kernel(partial_occupancy, root)
    return files.mapInPandas(kernel, OUTPUT_DDL).withColumn("labelled_at", F.current_timestamp())


def _merge(spark: SparkSession, path: Path, rows: DataFrame) -> None:
    if not is_delta_table(path):
        rows.write.format("delta").mode("errorifexists").save(str(path))
        return
    (
        DeltaTable.forPath(spark, str(path))
        .alias("t")
        .merge(rows.alias("s"), "t.material_id = s.material_id")
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
    )


def _pending(
    source: Path, cache: Path, done: set[str], limit: int
) -> tuple[list[tuple[str, str | None, str | None]], int, int]:
    """(id, CIF file path, why refused) still to label (first occurrence of each id), and counts of skipped-done and
    duplicate ids."""
    seen: set[str] = set()
    pending: list[tuple[str, str | None, str | None]] = []
    skipped = duplicates = 0
    stream: Iterator[tuple[str, Path | None, str | None]] = cif_files(source, cache)
    if limit:
        stream = islice(stream, limit)
    for material_id, path, refused in stream:
        if material_id in seen:
            duplicates += 1
            continue
        seen.add(material_id)
        if material_id in done:
            skipped += 1
            continue
        pending.append((material_id, None if path is None else str(path), refused))
    return pending, skipped, duplicates


def table_summary(spark: SparkSession, path: Path) -> dict[str, Any]:
    """Counts over the whole ``structures`` table: by status, superionic fraction, most common reasons."""
    frame = spark.read.format("delta").load(str(path))
    by_status = {r["status"]: r["n"] for r in frame.groupBy("status").agg(F.count("*").alias("n")).collect()}
    ok = frame.filter(F.col("status") == "ok")
    n_ok = by_status.get("ok", 0)
    n_pos = ok.filter(F.col("label") == 1).count()
    reasons = (
        frame.filter(F.col("status") != "ok")
        .withColumn("why", F.substring("reason", 1, 70))
        .groupBy("status", "why")
        .count()
        .orderBy(F.desc("count"))
        .limit(10)
        .collect()
    )
    return {
        "rows": int(sum(by_status.values())),
        "by_status": {k: int(v) for k, v in sorted(by_status.items())},
        "superionic": int(n_pos),
        "superionic_fraction": (n_pos / n_ok) if n_ok else None,
        "top_reasons": [{"status": r["status"], "reason": r["why"], "count": int(r["count"])} for r in reasons],
    }


def _label_chunks(
    spark: SparkSession, path: Path, pending: list[tuple[str, str | None, str | None]], cfg: Any, partitions: int,
    started: float, root: str,
) -> int:  # fmt: skip
    """Label ``pending`` in chunks of ``label.commit_every``, one Delta merge each; returns how many were labelled."""
    labelled = 0
    for start in range(0, len(pending), cfg.commit_every):
        chunk = pd.DataFrame(pending[start : start + cfg.commit_every], columns=["material_id", "path", "refused"])
        files = spark.createDataFrame(chunk, FILES_DDL).repartition(partitions)
        rows = transform(files, cfg.partial_occupancy, root).localCheckpoint(eager=True)
        _merge(spark, path, rows)
        labelled += len(chunk)
        elapsed = time.time() - started
        rate = labelled / elapsed
        log.info(
            "committed %d/%d structures (%.1f/s, about %.0f s left)",
            labelled, len(pending), rate, (len(pending) - labelled) / rate if rate else 0,
        )  # fmt: skip
    return labelled


def run_label_job(settings: Settings, spark: SparkSession | None = None) -> dict[str, Any]:
    """Label the configured source into ``structures``; return (and log) a summary of the run and the table."""
    cfg = settings.label
    source = resolve_source(cfg.source)  # bad paths stop here, before Spark starts
    warehouse = settings.paths.warehouse_dir
    check_writable(warehouse)
    check_tables_writable(warehouse, (TABLE,))
    with job_lock(settings.paths.home, f"table-{TABLE}", "label-structures", what=f"The table `{TABLE}`"):
        return _label(settings, source, spark or get_session(settings))


def _label(settings: Settings, source: Path, spark: SparkSession) -> dict[str, Any]:
    """:func:`run_label_job` once the source is checked and the table locked."""
    started = time.time()
    cfg = settings.label
    warehouse = settings.paths.warehouse_dir
    path = table_path(warehouse, TABLE)
    done: set[str] = set()
    if is_delta_table(path) and not cfg.force:
        done = {r[0] for r in spark.read.format("delta").load(str(path)).select("material_id").collect()}
    cache = settings.paths.home / "tmp" / "cif-cache"
    pending, skipped, duplicates = _pending(source, cache, done, cfg.limit)
    root = str(cif_root(source, cache).resolve())
    log.info(
        "%s: %d structures to label, %d already in `%s`, %d duplicate ids ignored",
        source,
        len(pending),
        skipped,
        TABLE,
        duplicates,
    )
    partitions = cfg.partitions or 2 * spark.sparkContext.defaultParallelism
    with session_conf(spark, ARROW_BATCH, str(cfg.batch_size)):
        labelled = _label_chunks(spark, path, pending, cfg, partitions, started, root)
    if is_delta_table(path):
        register_table(spark, warehouse, TABLE)
        summary_table = table_summary(spark, path)
    else:
        summary_table = {"rows": 0}
    wall = time.time() - started
    run_id = new_run_id()
    summary = {
        "job": "label_structures",
        "run_id": run_id,
        "source": str(source),
        "labelled_this_run": labelled,
        "skipped_already_done": skipped,
        "duplicate_ids_ignored": duplicates,
        "wall_seconds": round(wall, 2),
        "structures_per_second": round(labelled / wall, 2) if labelled else None,
        "table": summary_table,
    }
    record_job(settings, "label_structures", run_id, summary)
    log.info(format_summary(summary))
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """The label job's summary as printed lines."""
    table = summary["table"]
    frac = table.get("superionic_fraction")
    lines = [
        f"labelled {summary['labelled_this_run']} structures in {summary['wall_seconds']} s "
        f"({summary['skipped_already_done']} already done)",
        f"table `structures`: {table.get('rows', 0)} rows, by status {table.get('by_status', {})}",
    ]
    if frac is not None:
        lines.append(
            f"sML labels {table['superionic']} superionic = {100 * frac:.1f} % of featurized structures "
            "(Sendek 2017: about 11 % of the MP Li set)"
        )
    for reason in table.get("top_reasons", [])[:5]:
        lines.append(f"  {reason['status']:8s} {reason['count']:6d}  {reason['reason']}")
    return "\n".join(lines)
