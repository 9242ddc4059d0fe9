"""``lisearch spark-sql``: Spark's own ``spark-sql`` shell with Delta Lake and every lisearch table registered.

The shell is started with the profile's master and Spark settings, the local Delta jars, an in-memory metastore
(no ``metastore_db`` folder, no lock between shells) and an init file of ``CREATE TABLE ... USING DELTA LOCATION``
statements, one per table in the warehouse, so ``SELECT * FROM candidates`` works as in ``lisearch sql``.
Anything after ``--`` goes to ``spark-sql`` itself (e.g. ``-e "SELECT ..."`` or ``-f script.sql``).

With a ``lisearch serve`` endpoint running, ``lisearch spark-sql`` opens beeline (the copy inside pyspark) on its
Thrift port instead (:func:`beeline_command`): no Spark start, the same tables, the same arguments (``-e``, ``-f``).
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from lisearch.config import Settings, default_conf_dir
from lisearch.errors import InputError
from lisearch.jars import find_jars
from lisearch.serve import Endpoint, read_secret
from lisearch.spark.catalog import list_tables, table_path
from lisearch.spark.session import DELTA_CATALOG, DELTA_EXTENSION
from lisearch.spark.standalone import spark_home


def init_sql(settings: Settings) -> str:
    """One ``CREATE TABLE IF NOT EXISTS <name> USING DELTA LOCATION '<folder>'`` per table of the warehouse."""
    warehouse = settings.paths.warehouse_dir
    lines = []
    for name in list_tables(warehouse):
        location = str(table_path(warehouse, name).resolve()).replace("'", "\\'")
        lines.append(f"CREATE TABLE IF NOT EXISTS `{name}` USING DELTA LOCATION '{location}';")
    return "\n".join(lines) + "\n"


def spark_sql_command(settings: Settings, extra: list[str]) -> list[str]:
    """The ``spark-sql`` command line (writes the init file under ``<home>/tmp``)."""
    if not list_tables(settings.paths.warehouse_dir):
        raise InputError(
            f"There are no tables in {settings.paths.warehouse_dir} yet: run `make run` (or the job that writes the "
            "table you want) first."
        )
    init = settings.paths.home / "tmp" / "spark-sql-init.sql"
    init.parent.mkdir(parents=True, exist_ok=True)
    init.write_text(init_sql(settings))
    spark = settings.spark
    conf = {
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
        "spark.sql.warehouse.dir": str(settings.paths.home / "tmp" / "spark-sql-warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": "jdbc:derby:memory:lisearch;create=true",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "true" if spark.ui else "false",
        **dict(spark.conf),
    }
    cmd = [str(spark_home() / "bin" / "spark-sql")]
    if spark.master:
        cmd += ["--master", spark.master]
    if spark.delta_source == "jars":
        cmd += ["--jars", ",".join(str(p) for p in find_jars(settings.paths.jars_dir))]
    log4j = Path(default_conf_dir()) / "log4j2.properties"
    if log4j.is_file():
        log_dir = settings.paths.home / "logs"
        cmd += ["--driver-java-options", f'"-Dlog4j.configurationFile={log4j}" "-Dlisearch.log.dir={log_dir}"']
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, "-i", str(init), *extra]


def beeline_command(settings: Settings, endpoint: Endpoint, extra: list[str]) -> list[str]:
    """The ``beeline`` command line for the running ``endpoint``. With a secret, beeline reads it from a file (``-w``):
    ``serve.secret_file`` itself, else ``<home>/serve/beeline-secret`` written (mode 600) from the environment; the
    secret never appears on the command line."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "lisearch"
    cmd = [str(spark_home() / "bin" / "beeline"), "-u", endpoint.jdbc_url, "-n", user]
    secret = read_secret(settings) if endpoint.auth else None
    if secret is not None:
        if settings.serve.secret_file:
            cmd += ["-w", str(Path(settings.serve.secret_file).expanduser())]
        else:
            path = settings.paths.home / "serve" / "beeline-secret"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secret)
            cmd += ["-w", str(path)]
    return [*cmd, *extra]
