"""The endpoint process of ``lisearch serve`` (``python -m lisearch.spark.serve [--profile P] [--set K=V ...]``).

One Spark session, built as every lisearch session is (:func:`lisearch.spark.session.get_session`: Delta, the
profile's master and settings) plus: lisearch's helper jar on the driver's class path (the Thrift server's
handler threads load classes from it, as they do Delta's), the read-only guard as a session extension (unless
``serve.allow_writes``), Spark Connect as a plugin on ``serve.connect_port`` and the Thrift server on
``serve.thrift_port``, both bound to ``serve.host``. Client sessions (one per JDBC connection, one per Connect
session) are new sessions of this one: they share its catalog, where every warehouse table is registered, and a
thread registers tables that jobs create later (every ``serve.refresh`` seconds; tables whose folder went away are
dropped from the catalog). The process holds the home's ``serve`` lock while it lives; SIGTERM stops it cleanly.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession

from lisearch.config import Settings, load_settings
from lisearch.jars import find_jars, serve_jar
from lisearch.locks import job_lock
from lisearch.serve import LOCK_KEY, SECRET_ENV_THRIFT, Endpoint, state_path, write_state
from lisearch.spark.catalog import refresh_tables
from lisearch.spark.session import DELTA_EXTENSION, get_session

#: The read-only guard (a Spark session extension) and the Thrift password check, in lisearch's helper jar.
READ_ONLY_EXTENSION = "lisearch.serve.ReadOnly"
PASSWORD_CHECK = "lisearch.serve.TokenAuthenticator"


def serve_conf(settings: Settings, secret: bool) -> dict[str, str]:
    """The Spark settings the endpoint adds to the profile's (``secret``: clients must authenticate)."""
    serve = settings.serve
    jars = [*find_jars(settings.paths.jars_dir), serve_jar(settings.paths.jars_dir)]
    extensions = DELTA_EXTENSION if serve.allow_writes else f"{DELTA_EXTENSION},{READ_ONLY_EXTENSION}"
    return {
        "spark.jars": ",".join(str(p) for p in jars),
        "spark.driver.extraClassPath": os.pathsep.join(str(p) for p in jars),
        "spark.sql.extensions": extensions,
        "spark.plugins": "org.apache.spark.sql.connect.SparkConnectPlugin",
        "spark.connect.grpc.binding.address": serve.host,
        "spark.connect.grpc.binding.port": str(serve.connect_port),
        "spark.hadoop.hive.server2.thrift.bind.host": serve.host,
        "spark.hadoop.hive.server2.thrift.port": str(serve.thrift_port),
        "spark.hadoop.hive.server2.authentication": "CUSTOM" if secret else "NONE",
        "spark.sql.hive.thriftServer.singleSession": "false",
    }


def _start(settings: Settings, secret: bool) -> tuple[SparkSession, Any]:
    spark = get_session(settings, register=False, extra_conf=serve_conf(settings, secret))
    jvm: Any = spark._jvm
    if not settings.serve.allow_writes:
        jvm.lisearch.serve.ReadOnly.trust(spark._jsparkSession)
    if secret:
        # the Thrift server's password check reads its class from a fresh HiveConf, which sees system properties
        jvm.java.lang.System.setProperty("hive.server2.custom.authentication.class", PASSWORD_CHECK)
    refresh_tables(spark, settings.paths.warehouse_dir)
    server = jvm.org.apache.spark.sql.hive.thriftserver.HiveThriftServer2.startWithSparkSession(
        spark._jsparkSession,
        False,
    )
    return spark, server


def serve_forever(settings: Settings) -> None:
    """Run the endpoint until SIGTERM or SIGINT (holding the home's ``serve`` lock)."""
    secret = bool(os.environ.get(SECRET_ENV_THRIFT))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    with job_lock(settings.paths.home, LOCK_KEY, "serve", what="The SQL endpoint of this home"):
        serve = settings.serve
        endpoint = Endpoint(
            pid=os.getpid(), host=serve.host, thrift_port=serve.thrift_port, connect_port=serve.connect_port,
            started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            warehouse=str(settings.paths.warehouse_dir.resolve()), allow_writes=serve.allow_writes, auth=secret,
        )  # fmt: skip
        write_state(settings, endpoint)
        spark, server = _start(settings, secret)
        write_state(settings, dataclasses.replace(endpoint, ready=True))
        print(f"lisearch serve ready: {endpoint.jdbc_url} and {endpoint.connect_url}", flush=True)
        try:
            while not stopping.wait(serve.refresh):
                try:
                    refresh_tables(spark, settings.paths.warehouse_dir)
                except Exception as exc:
                    print(f"table refresh failed (tried again in {serve.refresh} s): {exc}", flush=True)
        finally:
            print("lisearch serve stopping", flush=True)
            server.stop()
            spark.stop()
            state_path(settings).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the endpoint process."""
    parser = argparse.ArgumentParser(prog="python -m lisearch.spark.serve")
    parser.add_argument("--profile")
    parser.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    serve_forever(load_settings(args.profile, args.set))
    return 0


if __name__ == "__main__":
    sys.exit(main())
