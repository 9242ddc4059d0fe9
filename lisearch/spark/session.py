"""Building a Spark session configured for Delta Lake and the lisearch catalog.

:func:`configure_builder` only adds configuration to a ``SparkSession.Builder`` and never starts Spark
(like ``delta.configure_spark_with_delta_pip``), so it composes with a user's own builder and is tested
without a JVM. :func:`get_session` checks Java and the jars first, so the usual set-up problems end in a
one-paragraph message instead of a JVM stack trace.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from pyspark.logger import PySparkLogger
from pyspark.sql import SparkSession

from lisearch.config import Settings, default_conf_dir
from lisearch.jars import find_jars, maven_coordinates
from lisearch.runtime import check_java
from lisearch.spark.catalog import register_tables

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def launched_by_spark_submit() -> bool:
    """True when this Python driver was started by spark-submit (its JVM and class path already exist)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def configure_builder(builder: SparkSession.Builder, settings: Settings) -> SparkSession.Builder:
    """Add Delta Lake, the warehouse folder and the profile's Spark settings to ``builder``; return it.

    Under spark-submit the master and jars given on its command line are kept (``--master`` and
    ``--jars``/``--packages`` win over the profile).
    """
    submitted = launched_by_spark_submit()
    spark = settings.spark
    if spark.master and not submitted:
        builder = builder.master(spark.master)
    builder = builder.appName(spark.app_name)
    builder = builder.config("spark.sql.extensions", DELTA_EXTENSION)
    builder = builder.config("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
    builder = builder.config("spark.sql.warehouse.dir", str(settings.paths.warehouse_dir))
    builder = builder.config("spark.ui.enabled", "true" if spark.ui else "false")
    builder = builder.config("spark.ui.showConsoleProgress", "false")
    # Delta's own housekeeping defaults suit us; keep the session time zone fixed so timestamps in tables
    # written on different machines compare.
    builder = builder.config("spark.sql.session.timeZone", "UTC")
    log4j = default_conf_dir() / "log4j2.properties"
    if not submitted and log4j.is_file():
        log_dir = settings.paths.home / "logs"  # the file appender's folder (Java traces, Spark's warnings)
        options = f'"-Dlog4j.configurationFile={log4j}" "-Dlisearch.log.dir={log_dir}"'  # quoted: paths may hold spaces
        builder = builder.config("spark.driver.extraJavaOptions", options)
    if not submitted:
        if spark.delta_source == "jars":
            builder = builder.config("spark.jars", ",".join(str(p) for p in find_jars(settings.paths.jars_dir)))
        elif spark.delta_source == "packages":
            builder = builder.config("spark.jars.packages", ",".join(maven_coordinates()))
    for key, value in spark.conf:
        builder = builder.config(key, value)
    return builder


#: PySpark's Python loggers that print every failed query's error, with its Java stack trace, as a JSON line
#: (pyspark.errors.exceptions.base), before the caller can handle it.
QUERY_ERROR_LOGGERS = ("SQLQueryContextLogger", "DataFrameQueryContextLogger")


def quiet_query_error_logs(log_level: str) -> None:
    """Leave failed queries to lisearch's own one-paragraph errors: PySpark's query-error loggers print only when
    ``spark.log_level`` asks for INFO, DEBUG, TRACE or ALL."""

    verbose = log_level.upper() in ("INFO", "DEBUG", "TRACE", "ALL")
    for name in QUERY_ERROR_LOGGERS:
        # created as PySpark creates them (its logger class takes extra keywords): a plain logging.Logger made here
        # first would be the one PySpark gets back, and fail on them
        PySparkLogger.getLogger(name).setLevel(logging.NOTSET if verbose else logging.CRITICAL + 1)


def get_session(settings: Settings, register: bool = True, extra_conf: dict[str, str] | None = None) -> SparkSession:
    """The Spark session for ``settings`` (created once per process), with result tables registered by name.
    ``extra_conf``: Spark settings beside the profile's, applied last (``lisearch serve``'s endpoint).

    Raises:
        EnvironmentProblem: Java missing or too old, or the Delta jars not fetched.
    """
    check_java()
    if settings.spark.master and settings.spark.master.startswith(("local", "spark://127.0.0.1")):
        # Bind to loopback instead of the machine's first interface (quiet, and no exposure of the UI/ports).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Python workers on this machine use the driver's interpreter (the venv), not the first python3 on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # find_jars (inside configure_builder) raises before a JVM is started when jars are missing.
    builder = configure_builder(SparkSession.builder, settings)
    for key, value in (extra_conf or {}).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(settings.spark.log_level)
    quiet_query_error_logs(settings.spark.log_level)
    if register:
        register_tables(session, settings.paths.warehouse_dir)
    return session


@contextlib.contextmanager
def session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set one runtime SQL setting for the duration of a job and restore what was there before (jobs share the
    session: e.g. the labelling job's 64-row Arrow batches must not carry over to the shortlist in `make run`)."""
    previous = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)
