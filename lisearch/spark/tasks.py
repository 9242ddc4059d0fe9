"""One Spark task per item, committed chunk by chunk: the shape of the jobs whose items take seconds to minutes each
(relaxations in ``materials``, simulations in ``mobility``).

The driver plans the items, runs them in chunks of :data:`CHUNK_PER_CORE` x Spark's default parallelism (one task
each), appends each chunk's rows to the job's Delta table (partitioned by run id) before the next starts, and on the
next run of the same run id skips the keys already there (:func:`run_rows`, read with delta-rs: the run's partition
only, no Spark job). A stopped job loses at most the chunk in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from lisearch.run_ids import RUN_COLUMN
from lisearch.schema import ddl
from lisearch.spark.catalog import is_delta_table

#: Tasks per chunk, per unit of Spark's default parallelism (a chunk is committed before the next starts).
CHUNK_PER_CORE = 8


def chunks(spark: SparkSession, items: list[Any]) -> Iterable[list[Any]]:
    """``items`` in chunks of :data:`CHUNK_PER_CORE` x the default parallelism."""
    size = CHUNK_PER_CORE * spark.sparkContext.defaultParallelism
    for start in range(0, len(items), size):
        yield items[start : start + size]


def run_tasks(spark: SparkSession, items: list[Any], fn: Callable[[Any], Any]) -> list[Any]:
    """``fn`` on every item, one Spark task each (give the items longest first so that no long task starts last)."""
    if not items:
        return []
    return spark.sparkContext.parallelize(items, len(items)).map(fn).collect()


def append_run_rows(
    spark: SparkSession, path: Path, rows: list[dict[str, Any]], columns: dict[str, str], run_id: str
) -> None:
    """Append finished rows of the run (``columns``: the table's, run id last) to the Delta table at ``path``
    (created, partitioned by run id, when missing; columns a table of an older lisearch lacks are added)."""
    frame = pd.DataFrame(rows, columns=[c for c in columns if c != RUN_COLUMN]).assign(**{RUN_COLUMN: run_id})
    frame = frame.astype(object).where(frame.notna(), None)
    out = spark.createDataFrame(frame, ddl(columns))
    writer = out.write.format("delta").mode("append").option("mergeSchema", "true")
    (writer if is_delta_table(path) else writer.partitionBy(RUN_COLUMN)).save(str(path))


def run_rows(path: Path, run_id: str, columns: list[str]) -> pd.DataFrame:
    """``columns`` of the run's rows of the Delta table at ``path`` (none when there is no table; a column the
    table lacks, as one of an older lisearch, is all null), read with delta-rs (its partition only: a fraction of a
    second, no Spark job)."""
    if not is_delta_table(path):
        return pd.DataFrame(columns=columns)
    delta = DeltaTable(str(path))
    present = {field.name for field in delta.schema().fields}
    table = delta.to_pyarrow_table(columns=[c for c in columns if c in present], filters=[(RUN_COLUMN, "=", run_id)])
    return table.to_pandas().reindex(columns=columns)


__all__ = ["CHUNK_PER_CORE", "append_run_rows", "chunks", "run_rows", "run_tasks"]
