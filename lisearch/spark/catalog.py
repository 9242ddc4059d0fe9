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

from lisearch.errors import InputError

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


def check_writable(folder: Path) -> None:
    """Raise InputError unless a file can be created in ``folder`` (created if missing)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{uuid.uuid4().hex}"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"Cannot write to {folder} ({exc.strerror}). Set paths.warehouse (or LISEARCH_HOME) to a writable folder."
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
    writer = frame.write.format("delta").option("mergeSchema", str(add_columns).lower())
    if not is_delta_table(Path(path)):
        for key, value in (properties or {}).items():
            writer = writer.option(key, value)  # delta.* options become table properties on creation
        (writer.partitionBy("run_id") if partitioned else writer).mode("overwrite").save(path)
        return
    writer.mode("overwrite").option("replaceWhere", f"run_id = '{run_id}'").save(path)


def with_partner_columns(candidates: DataFrame) -> DataFrame:
    """`candidates` rows with every partner column of this lisearch (element_j, z_j, pct_j, ox_j for j = 1..4):
    a table written before quinaries (up to three partners) gets its missing ones as nulls."""
    from pyspark.sql import functions as F

    from lisearch.kernels import PARTNERS

    types = {"element_{}": "string", "z{}": "smallint", "pct_{}": "smallint", "ox_{}": "tinyint"}
    missing = {
        name.format(j): t for j in PARTNERS for name, t in types.items() if name.format(j) not in candidates.columns
    }
    return candidates.withColumns({c: F.lit(None).cast(t) for c, t in missing.items()}) if missing else candidates
