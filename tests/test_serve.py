"""`lisearch serve`: a real endpoint started by the test, asked by real clients (beeline over Thrift, Spark Connect,
`lisearch sql`), against the same queries run in this process; and the refusals that need no endpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from lisearch.config import Settings
from lisearch.errors import ConfigError, InputError
from tests.conftest import cli_env, lisearch_cmd, repo_jars_dir, settings_for

FUNNEL = "SELECT stage, count FROM funnel WHERE run_id = 'default' ORDER BY stage_order"
FILTERED = "SELECT formula, pct, score FROM candidates WHERE score >= 0.5 AND element_1 = 'S' ORDER BY formula"
JOIN = (
    "SELECT c.formula, f.count AS total FROM candidates c JOIN funnel f ON c.run_id = f.run_id "
    "WHERE f.stage = 'total' ORDER BY c.formula"
)


def _write_tables(spark, warehouse: Path) -> None:  # type: ignore[no-untyped-def]
    """A funnel with the screen's real counts (a bigint beyond float32, a null) and a few candidates."""
    funnel = spark.createDataFrame(
        [(0, "total", 20374419912, "default"), (1, "neutral", 130644244, "default"), (2, "plausible", None, "default")],
        "stage_order bigint, stage string, count bigint, run_id string",
    )
    funnel.write.format("delta").save(str(warehouse / "funnel"))
    candidates = spark.createDataFrame(
        [
            ("Li3PS4", 37, 0.91, "S", "default"),
            ("Li2S", 66, 0.42, "S", "default"),
            ("LiCl", 50, 0.77, "Cl", "default"),
            ("Li6PS5Cl", 50, 0.88, "S", "default"),
        ],
        "formula string, pct int, score double, element_1 string, run_id string",
    )
    candidates.write.format("delta").save(str(warehouse / "candidates"))


def _overrides(home: Path, thrift: int, connect: int) -> list[str]:
    return [
        f"paths.home={home}",
        f"paths.jars={repo_jars_dir()}",
        f"serve.thrift_port={thrift}",
        f"serve.connect_port={connect}",
    ]


@pytest.fixture(scope="module")
def endpoint(spark, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, list[str]]]:  # type: ignore[no-untyped-def]
    """An endpoint over a tiny warehouse, started as `lisearch serve` starts it (a background process)."""
    from lisearch.serve import start, stop
    from lisearch.spark.standalone import free_port

    home = tmp_path_factory.mktemp("serve") / "home"
    overrides = _overrides(home, free_port(), free_port())
    settings = settings_for(home, *overrides[2:])
    _write_tables(spark, settings.paths.warehouse_dir)
    start(settings, "local", overrides, say=lambda _: None)
    yield settings, overrides
    stop(settings)


def _in_process(spark, settings: Settings, query: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    from lisearch.spark.catalog import register_tables
    from lisearch.spark.sql import run_sql

    register_tables(spark, settings.paths.warehouse_dir)
    return run_sql(settings, query, spark=spark)


def _beeline(settings: Settings, query: str) -> subprocess.CompletedProcess[str]:
    from lisearch.serve import running_endpoint
    from lisearch.spark.shell import beeline_command

    endpoint = running_endpoint(settings)
    assert endpoint is not None
    cmd = beeline_command(settings, endpoint, ["--silent=true", "--outputformat=csv2", "-e", query])
    env = {**os.environ, "SPARK_SUBMIT_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


def _csv_rows(text: str) -> list[list[str]]:
    """beeline's csv2 output as rows (its prompt, printed even when silent, taken off the header line)."""
    lines = [re.sub(r"^\d+: jdbc:\S+> ", "", line) for line in text.splitlines()]
    return [line.split(",") for line in lines if line and not line.startswith(("WARNING", "Beeline", "Closing"))]


def _as_strings(frame: pd.DataFrame) -> list[list[str]]:
    shown = frame.astype(object).where(frame.notna(), "NULL")
    return [[str(c) for c in frame.columns]] + [[str(v) for v in row] for row in shown.itertuples(index=False)]


@pytest.mark.spark
@pytest.mark.slow
def test_beeline_over_thrift_returns_the_in_process_rows(spark, endpoint):  # type: ignore[no-untyped-def]
    """beeline (the JDBC client inside pyspark), one connection: the funnel, a filtered candidates query and a join
    give the rows the in-process session gives; then a DROP is refused by the endpoint itself."""
    settings, _ = endpoint
    expected = [_as_strings(_in_process(spark, settings, query)) for query in (FUNNEL, FILTERED, JOIN)]
    out = _beeline(settings, ";\n".join([FUNNEL, FILTERED, JOIN, "DROP TABLE funnel"]))
    assert out.returncode != 0 and "read-only" in out.stdout + out.stderr  # the DROP, last
    rows, got = _csv_rows(out.stdout), []
    for table in expected:  # result sets one after another, each from its header line
        start = rows.index(table[0])
        got.append(rows[start : start + len(table)])
        rows = rows[start + len(table) :]
    assert [_numbers(t) for t in got] == [_numbers(t) for t in expected]
    assert ["total", "20374419912"] in got[0]
    assert (settings.paths.warehouse_dir / "funnel" / "_delta_log").is_dir()


def _numbers(table: list[list[str]]) -> list[list[object]]:
    return [[float(v) if re.fullmatch(r"-?\d+\.\d*", v) else v for v in row] for row in table]


CONNECT_CLIENT = """
import json, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
out = {}
for name, query in json.loads(sys.argv[2]).items():
    out[name] = spark.sql(query).toPandas().astype(object).where(lambda f: f.notna(), None).values.tolist()
from pyspark.sql.functions import udf
def view():
    spark.range(3).createOrReplaceTempView("three")
    return spark.sql("SELECT count(*) FROM three").collect()
for name, action in [("drop", lambda: spark.sql("DROP TABLE candidates").collect()),
                     ("insert", lambda: spark.sql("INSERT INTO funnel VALUES (9, 'x', 1, 'default')").collect()),
                     ("delete", lambda: spark.sql("DELETE FROM candidates").collect()),
                     ("ctas", lambda: spark.sql("CREATE TABLE copied AS SELECT * FROM funnel").collect()),
                     ("save", lambda: spark.range(3).write.format("delta").save(sys.argv[3])),
                     ("udf", lambda: spark.range(3).select(udf(lambda x: x, "long")("id")).collect()),
                     ("reflect", lambda: spark.sql("SELECT reflect('java.lang.System', 'getenv')").collect()),
                     ("view", view)]:
    try:
        action()
        out[name] = "ran"
    except Exception as exc:
        out[name] = str(exc).splitlines()[0]
print(json.dumps(out))
"""


@pytest.mark.spark
@pytest.mark.slow
def test_spark_connect_client_returns_the_in_process_rows_and_cannot_write(spark, endpoint, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A plain Spark Connect client (`SparkSession.builder.remote`) in its own process: same rows; DROP, INSERT,
    DELETE, CREATE TABLE AS, a DataFrame write, a Python UDF and reflect() are refused by the endpoint, nothing is
    written, and a temporary view (session-only) works."""
    from lisearch.serve import running_endpoint

    settings, _ = endpoint
    queries = {"funnel": FUNNEL, "filtered": FILTERED, "join": JOIN}
    url = running_endpoint(settings).connect_url  # type: ignore[union-attr]
    proc = subprocess.run(
        [sys.executable, "-c", CONNECT_CLIENT, url, json.dumps(queries), str(tmp_path / "written")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    for name, query in queries.items():
        expected = _in_process(spark, settings, query)
        assert got[name] == expected.astype(object).where(expected.notna(), None).values.tolist()
    assert got["funnel"][0] == ["total", 20374419912]
    for name in ("drop", "insert", "delete", "ctas", "save", "udf", "reflect"):
        assert "read-only" in got[name], (name, got[name])
    assert got["view"] == "ran"
    assert not (tmp_path / "written").exists()
    assert _in_process(spark, settings, "SELECT count(*) AS n FROM candidates")["n"].tolist() == [4]
    assert not (settings.paths.warehouse_dir / "copied").exists()


@pytest.mark.spark
@pytest.mark.slow
def test_lisearch_sql_uses_the_endpoint_and_sees_new_tables(spark, endpoint):  # type: ignore[no-untyped-def]
    """`lisearch sql` answers through the running endpoint (no notice, no Spark start), prints the exact funnel
    counts, and a table written after the endpoint started is visible without a restart."""
    settings, overrides = endpoint
    flags = [arg for text in overrides for arg in ("--set", text)]
    out = subprocess.run(
        lisearch_cmd("sql", FUNNEL, *flags),
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(settings.paths.home),
    )
    assert out.returncode == 0, out.stderr
    assert "no `lisearch serve` running" not in out.stderr
    assert out.stdout.split() == ["stage", "count", "total", "20374419912", "neutral", "130644244", "plausible", "NULL"]
    spark.createDataFrame([("late", 1)], "name string, n int").write.format("delta").save(
        str(settings.paths.warehouse_dir / "late_table")
    )
    deadline = time.monotonic() + 60
    while True:
        late = subprocess.run(
            lisearch_cmd("sql", "SELECT name, n FROM late_table", "--format", "csv", *flags),
            capture_output=True,
            text=True,
            timeout=120,
            env=cli_env(settings.paths.home),
        )
        if late.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert late.returncode == 0, late.stderr
    assert late.stdout.splitlines() == ["name,n", "late,1"]


@pytest.mark.spark
@pytest.mark.slow
def test_status_then_a_killed_endpoint_is_reported_crashed(endpoint):  # type: ignore[no-untyped-def]
    """--status while it runs (exit 0); after a kill -9 of its process group, --status says crashed (exit 3) and
    clients fall back to their own Spark (runs last in this module: it ends the module's endpoint)."""
    from lisearch.serve import running_endpoint, status

    settings, overrides = endpoint
    flags = [arg for text in overrides for arg in ("--set", text)]
    env = cli_env(settings.paths.home)
    running = subprocess.run(lisearch_cmd("serve", "--status", *flags), capture_output=True, text=True, env=env)
    assert running.returncode == 0 and "running" in running.stdout and "read-only" in running.stdout
    pid = running_endpoint(settings).pid  # type: ignore[union-attr]
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while status(settings)[0] != "crashed" and time.monotonic() < deadline:
        time.sleep(0.2)
    crashed = subprocess.run(lisearch_cmd("serve", "--status", *flags), capture_output=True, text=True, env=env)
    assert crashed.returncode == 3 and "crashed or killed" in crashed.stdout
    assert running_endpoint(settings) is None


def test_a_non_loopback_bind_without_a_secret_is_refused_and_starts_nothing(home: Path):
    env = {**cli_env(home), "LISEARCH_SERVE_SECRET": ""}
    out = subprocess.run(
        lisearch_cmd("serve", "--set", "serve.host=0.0.0.0"), capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 2
    assert "Refused" in out.stderr and "LISEARCH_SERVE_SECRET" in out.stderr and "Traceback" not in out.stderr
    assert not (home / "serve" / "endpoint.json").exists() and not (home / "logs" / "serve.log").exists()


def test_secrets_come_from_the_environment_or_a_private_file(home: Path, tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
    from lisearch.serve import check_bind, read_secret

    monkeypatch.delenv("LISEARCH_SERVE_SECRET", raising=False)
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    remote = settings_for(home, "serve.host=10.0.0.5", f"serve.secret_file={secret}")
    with pytest.raises(InputError, match="chmod 600"):
        read_secret(remote)
    secret.chmod(0o600)
    assert read_secret(remote) == "s3cret"
    check_bind(remote, "s3cret")  # allowed with a secret
    with pytest.raises(InputError, match="Refused"):
        check_bind(remote, None)
    monkeypatch.setenv("LISEARCH_SERVE_SECRET", "from-env")
    assert read_secret(remote) == "from-env"
    with pytest.raises(ConfigError, match="two ports"):
        settings_for(home, "serve.thrift_port=10000", "serve.connect_port=10000")


def test_a_description_without_a_live_process_is_a_crashed_endpoint(home: Path):
    """The endpoint's process holds the home's `serve` lock while it lives: a description left behind by a killed
    one (no lock holder) is `crashed`, and --stop clears it."""
    from lisearch.locks import job_lock
    from lisearch.serve import Endpoint, status, stop, write_state

    settings = settings_for(home)
    assert status(settings) == ("stopped", None)
    described = Endpoint(
        pid=999999,
        host="127.0.0.1",
        thrift_port=10000,
        connect_port=15002,
        started="then",
        warehouse=str(settings.paths.warehouse_dir),
        allow_writes=False,
        auth=False,
        ready=True,
    )
    write_state(settings, described)
    assert status(settings) == ("crashed", described)
    with job_lock(home, "serve", "serve"):
        assert status(settings) == ("running", described)
    assert stop(settings) is None and status(settings) == ("stopped", None)


def test_the_helper_jar_is_built_once_and_a_missing_javac_says_what_to_install(tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
    from lisearch import jars
    from lisearch.errors import EnvironmentProblem

    built = jars.serve_jar(tmp_path / "jars")
    assert built.is_file() and built.name.startswith("lisearch-serve-")
    assert jars.serve_jar(tmp_path / "jars") == built  # reused: same sources, same name
    monkeypatch.setattr(jars.shutil, "which", lambda _: None)
    with pytest.raises(EnvironmentProblem, match="javac"):
        jars.serve_jar(tmp_path / "other")
    assert not list((tmp_path / "other").glob("*.jar"))  # nothing half-built is left
