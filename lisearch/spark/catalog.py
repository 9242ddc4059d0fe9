"""The lisearch catalog: Delta tables under one warehouse folder, registered by name in every session.

Each table is a folder ``<warehouse>/<name>`` holding a Delta table. Any process that builds its session with
:func:`lisearch.spark.session.get_session` registers every such folder as an external Delta table of the
same name, so ``SELECT * FROM structures`` works in a new process without a shared metastore service (an
embedded Derby metastore would allow only one process at a time).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from lisearch.errors import InputError
from lisearch.run_ids import run_predicate
from lisearch.schema import all_partner_columns

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def check_table_name(name: str) -> str:
    """``name`` when it is a valid table name; InputError otherwise."""
    if not _NAME.match(name):
        raise InputError(f"Table name {name!r} is not valid: use lower-case letters, digits and underscores.")
    return name


def table_path(warehouse: Path, name: str) -> Path:
    """Folder of the Delta table ``name`` under the warehouse."""
    return warehouse / check_table_name(name)


def is_delta_table(path: Path) -> bool:
    """True when ``path`` holds a Delta table (a _delta_log folder)."""
    return (path / "_delta_log").is_dir() and any((path / "_delta_log").glob("*.json"))


def list_tables(warehouse: Path) -> list[str]:
    """Names of the Delta tables in ``warehouse`` (sorted)."""
    if not warehouse.is_dir():
        return []
    return sorted(p.name for p in warehouse.iterdir() if _NAME.match(p.name) and is_delta_table(p))


#: (application id, table name) -> folder registered by this process, so that a session used with several
#: warehouses (tests, notebooks) re-points a name instead of keeping the first folder it saw.
_REGISTERED: dict[tuple[str, str], str] = {}


def register_table(spark: SparkSession, warehouse: Path, name: str) -> None:
    """Register ``<warehouse>/<name>`` as the external Delta table ``name`` in this session's catalog (dropping
    only the catalog entry of a same-named table this process registered for another folder; data stays)."""
    path = table_path(warehouse, name)
    location = str(path.resolve())
    key = (str(spark.sparkContext.applicationId), name)
    known = _REGISTERED.get(key)
    if known == location:
        return
    if known is not None:
        spark.sql(f"DROP TABLE IF EXISTS `{name}`")  # external table: the catalog entry only
    quoted = location.replace("'", "\\'")
    spark.sql(f"CREATE TABLE IF NOT EXISTS `{name}` USING DELTA LOCATION '{quoted}'")
    _REGISTERED[key] = location


def register_tables(spark: SparkSession, warehouse: Path) -> list[str]:
    """Register every Delta table found in ``warehouse``; return their names."""
    names = list_tables(warehouse)
    for name in names:
        register_table(spark, warehouse, name)
    return names


def refresh_tables(spark: SparkSession, warehouse: Path) -> list[str]:
    """:func:`register_tables`, and drop the catalog entries this process made for tables whose folder went away
    (their data is gone already); return the names now registered. A long-lived session (``lisearch serve``) calls
    it now and then to see what jobs wrote since."""
    names = register_tables(spark, warehouse)
    app = str(spark.sparkContext.applicationId)
    for key in [k for k in _REGISTERED if k[0] == app and k[1] not in names]:
        spark.sql(f"DROP TABLE IF EXISTS `{key[1]}`")  # external table: the catalog entry only
        del _REGISTERED[key]
    return names


def read_table(spark: SparkSession, warehouse: Path, name: str) -> DataFrame:
    """The Delta table ``name``.

    Raises:
        InputError: the table does not exist; the message lists the tables that do and how to make this one.
    """
    path = table_path(warehouse, name)
    if not is_delta_table(path):
        known = ", ".join(list_tables(warehouse)) or "none yet"
        raise InputError(
            f"There is no table {name!r} in the warehouse {warehouse} (tables: {known}). Run the job that writes "
            "it first (`make run` runs them all), or point paths.warehouse at the right folder."
        )
    return spark.read.format("delta").load(str(path))


def _probe(folder: Path) -> None:
    """Create and remove a hidden file in ``folder`` (Delta ignores names starting with a dot); OSError if it cannot."""
    probe = folder / f".write-probe-{uuid.uuid4().hex}"
    probe.touch()
    probe.unlink()


def check_writable(folder: Path) -> None:
    """Raise InputError unless a file can be created in ``folder`` (created if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _probe(folder)
    except OSError as exc:
        raise InputError(
            f"Cannot write to {folder} ({exc.strerror}). Set paths.warehouse (or LISEARCH_HOME) to a writable folder."
        ) from exc


def check_tables_writable(warehouse: Path, names: tuple[str, ...]) -> None:
    """Raise InputError, before any Spark work, unless every existing table of ``names`` can take a new commit: its
    folder and its ``_delta_log`` accept a new file. (Tables that do not exist yet are created in the warehouse,
    which :func:`check_writable` checks.)"""
    for name in names:
        path = table_path(warehouse, name)
        for folder in (path, path / "_delta_log"):
            try:
                if folder.is_dir():
                    _probe(folder)
            except OSError as exc:
                raise InputError(
                    f"The table `{name}` cannot be written: {folder} refuses new files ({exc.strerror}). Make the "
                    f"table's folder and its _delta_log writable by this user (e.g. chmod -R u+w {path}), or point "
                    "paths.warehouse at another folder. Nothing was written."
                ) from exc


def replace_run_rows(
    frame: DataFrame,
    path: str,
    run_id: str,
    partitioned: bool,
    properties: dict[str, str] | None = None,
    add_columns: bool = False,
) -> None:
    """Replace this run's rows of a Delta table in one commit (creating the table, with the Delta table
    ``properties``, when needed). ``add_columns``: columns of ``frame`` that the table lacks are added to it (Delta
    schema evolution; e.g. the fourth partner's columns in a table written before quinaries); otherwise a schema
    difference is an error."""
    predicate = run_predicate(run_id)  # checks the id before anything is written
    writer = frame.write.format("delta").option("mergeSchema", str(add_columns).lower())
    if not is_delta_table(Path(path)):
        for key, value in (properties or {}).items():
            writer = writer.option(key, value)  # delta.* options become table properties on creation
        (writer.partitionBy("run_id") if partitioned else writer).mode("overwrite").save(path)
        return
    frame = _in_table_types(frame, frame.sparkSession.read.format("delta").load(path))
    writer = frame.write.format("delta").option("mergeSchema", str(add_columns).lower())
    writer.mode("overwrite").option("replaceWhere", predicate).save(path)


def _in_table_types(frame: DataFrame, table: DataFrame) -> DataFrame:
    """``frame`` with every column the table has in the table's type (a table written by an earlier lisearch keeps
    its types: e.g. the shortlist's measured columns were double, the schema's are float)."""
    have = {f.name: f.dataType for f in table.schema.fields}
    casts = {f.name: F.col(f.name).cast(have[f.name]) for f in frame.schema.fields
             if f.name in have and f.dataType != have[f.name]}  # fmt: skip
    return frame.withColumns(casts) if casts else frame


def with_partner_columns(candidates: DataFrame) -> DataFrame:
    """`candidates` rows with every partner column of this lisearch (element_j, z_j, pct_j, ox_j for j = 1..4):
    a table written before quinaries (up to three partners) gets its missing ones as nulls."""
    missing = {name: kind for name, kind in all_partner_columns().items() if name not in candidates.columns}
    return candidates.withColumns({c: F.lit(None).cast(t) for c, t in missing.items()}) if missing else candidates


def ensure_table(
    spark: SparkSession, path: str, ddl: str, partitioned: bool, properties: dict[str, str] | None = None
) -> None:
    """Make ``path`` a Delta table with at least the columns of ``ddl``: created empty (partitioned by run id, with
    the Delta table ``properties``) when missing; columns it lacks are added (Delta schema evolution, a commit
    without rows), e.g. the fourth partner's columns in a table written before quinaries."""
    empty = spark.createDataFrame([], ddl)
    if not is_delta_table(Path(path)):
        writer = empty.write.format("delta")
        for key, value in (properties or {}).items():
            writer = writer.option(key, value)  # delta.* options become table properties on creation
        (writer.partitionBy("run_id") if partitioned else writer).mode("append").save(path)
    elif set(empty.columns) - set(spark.read.format("delta").load(path).columns):
        empty.write.format("delta").mode("append").option("mergeSchema", "true").save(path)
