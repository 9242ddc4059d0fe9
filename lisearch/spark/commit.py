"""The screen's Delta commit of the files its tasks wrote: through delta-rs's public transaction API, checked first.

The kernel tasks write their candidates as Parquet files into the run's partition folder of `candidates`
(:mod:`lisearch.screening.task`); the driver then makes them the run's rows in one Delta transaction that removes the
run's earlier files and adds the new ones (a WRITE with the partition predicate in the table's history, as a
``replaceWhere`` overwrite). That transaction goes through ``deltalake.DeltaTable.create_write_transaction`` (delta-rs,
a published API: the add actions the task files already describe), not through Delta-Spark's JVM classes.

:func:`preflight` runs before the kernel stage and says why that route cannot be taken for a table: a feature the
direct commit would not enforce (CHECK constraints, generated columns, column mapping, writer features delta-rs does
not write) or staged columns whose types differ from the table's. The screen then commits with Spark's public writer
instead (:func:`commit_with_spark`: the staged files read back, written with ``replaceWhere``), with one log line that
says why. Every argument of the commit is named in :class:`RunFiles`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.transaction import AddAction, CommitProperties, RemoveAction
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lisearch.run_ids import RUN_COLUMN, check_run_id, partition_folder, run_predicate
from lisearch.schema import arrow_type, candidate_columns
from lisearch.spark.catalog import is_delta_table, replace_run_rows
from lisearch.version import __version__

#: Writer features of a table that a direct commit of data files keeps intact (they constrain nothing it writes).
SAFE_WRITER_FEATURES = frozenset(
    {"appendOnly", "invariants", "changeDataFeed", "domainMetadata", "vacuumProtocolCheck"}
)
#: Attempts of a commit that meets a concurrent one (another run written into the same table meanwhile).
COMMIT_RETRIES = 10


@dataclass(frozen=True)
class RunFiles:
    """One run's rows of a partitioned Delta table as the files written for them: ``table`` (the table's folder),
    ``run_id`` (its partition), ``adds`` (the fields of each file's Delta ``add`` action: path relative to the
    table, URI-encoded, ``size`` in bytes, ``modificationTime`` in ms, ``dataChange``, ``stats`` as JSON text) and
    ``columns`` (partner columns of the staged files: 3, or 4 with quinaries)."""

    table: str
    run_id: str
    adds: tuple[dict[str, Any], ...]
    columns: int


def preflight(table: str, columns: int) -> str | None:
    """Why the run's files of a `candidates` table at ``table`` cannot be committed directly (None when they can, or
    when there is no table yet): a CHECK constraint, a generated column, column mapping, a writer feature outside
    :data:`SAFE_WRITER_FEATURES`, or a column of the staged files (:func:`lisearch.schema.candidate_columns`) whose
    type differs from the table's."""
    if not is_delta_table(Path(table)):
        return None
    dt = DeltaTable(table)
    configuration = dt.metadata().configuration
    constraints = sorted(k for k in configuration if k.startswith("delta.constraints."))
    if constraints:
        return f"the table has CHECK constraints ({', '.join(c.split('.', 2)[2] for c in constraints)})"
    if configuration.get("delta.columnMapping.mode", "none") != "none":
        return "the table uses column mapping"
    protocol = dt.protocol()
    features = set(protocol.writer_features or ())
    unsafe = sorted(features - SAFE_WRITER_FEATURES)
    if unsafe or (protocol.min_writer_version > 2 and not features and protocol.min_writer_version != 7):
        return f"the table's protocol needs writer features {unsafe or protocol.min_writer_version}"
    schema = pa.schema(dt.schema().to_arrow())
    rules = {b"delta.generationExpression": "generated columns", b"delta.invariants": "column invariants"}
    for key, what in rules.items():
        ruled = [f.name for f in schema if key in (f.metadata or {})]
        if ruled:
            return f"the table has {what} ({', '.join(ruled)})"
    have = {f.name: f.type for f in schema}
    wrong = [
        f"{name} is {have[name]} in the table, {arrow_type(kind)} in the files"
        for name, kind in candidate_columns(columns).items()
        if name in have and not _same_type(have[name], arrow_type(kind))
    ]
    return f"staged columns differ from the table's: {'; '.join(wrong)}" if wrong else None


def _same_type(table_type: Any, file_type: Any) -> bool:
    """Types equal up to dictionary encoding (the files keep element symbols dictionary-encoded, the table's schema
    says string)."""
    value_type = getattr(file_type, "value_type", None)
    return bool(table_type == file_type or (value_type is not None and table_type == value_type))


def commit_run_files(files: RunFiles, operation: str = "lisearch screen") -> int:
    """Replace run ``files.run_id``'s rows of the partitioned Delta table ``files.table`` by the files ``files.adds``
    in one transaction (the run's earlier files removed), through delta-rs; returns the table's new version. The
    transaction touches only the run's partition, so runs committed side by side into one table retry, not fail."""
    run_id = check_run_id(files.run_id)
    actions: list[AddAction | RemoveAction] = [
        AddAction(
            path=add["path"], size=int(add["size"]), partition_values={RUN_COLUMN: run_id},
            modification_time=int(add["modificationTime"]), data_change=bool(add.get("dataChange", True)),
            stats=str(add["stats"]),
        )
        for add in files.adds
    ]  # fmt: skip
    table = DeltaTable(files.table)
    metadata = {"userMetadata": f"{operation} (lisearch {__version__}): {run_predicate(run_id)}"}
    table.create_write_transaction(
        actions, mode="overwrite", schema=table.schema(), partition_by=[RUN_COLUMN],
        partition_filters=[(RUN_COLUMN, "=", run_id)],
        commit_properties=CommitProperties(custom_metadata=metadata, max_commit_retries=COMMIT_RETRIES),
    )  # fmt: skip
    table.update_incremental()
    return int(table.version())


def commit_with_spark(spark: SparkSession, files: RunFiles) -> None:
    """The fallback of :func:`commit_run_files`: the staged files read back and written as the run's rows with Spark's
    public Delta writer (``replaceWhere``: the table's constraints and generated columns are enforced), then the
    staged files deleted (no commit refers to them)."""
    folder = Path(files.table) / partition_folder(files.run_id)
    paths = [str(folder / unquote(str(add["path"]).rsplit("/", 1)[-1])) for add in files.adds]
    if paths:
        frame = spark.read.parquet(*paths).withColumn(RUN_COLUMN, F.lit(files.run_id))
        replace_run_rows(frame, files.table, files.run_id, partitioned=True, add_columns=True)
    else:
        empty = spark.createDataFrame([], spark.read.format("delta").load(files.table).schema)
        replace_run_rows(empty, files.table, files.run_id, partitioned=True, add_columns=True)
    for path in paths:
        Path(path).unlink(missing_ok=True)


def partition_columns(table: str) -> list[str] | None:
    """The partition columns of the Delta table at ``table`` (None when there is no table), from its metadata."""
    if not is_delta_table(Path(table)):
        return None
    return list(DeltaTable(table).metadata().partition_columns)


def run_file_names(table: str, run_id: str) -> set[str]:
    """Names of the files that hold run ``run_id``'s rows of the Delta table at ``table`` (empty when no table)."""
    if not is_delta_table(Path(table)):
        return set()
    check_run_id(run_id)
    uris = DeltaTable(table).file_uris(file_pruning_predicate=[(RUN_COLUMN, "=", run_id)])
    return {uri.rsplit("/", 1)[-1] for uri in uris}


__all__ = [
    "COMMIT_RETRIES", "SAFE_WRITER_FEATURES", "RunFiles", "commit_run_files", "commit_with_spark",
    "partition_columns", "preflight", "run_file_names",
]  # fmt: skip
