"""`lisearch sql` in its own process reads tables written by another process (this one)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cli_env, lisearch_cmd, repo_jars_dir


def _write_table(spark, home: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    from lisearch.spark.catalog import table_path

    rows = [("Li3P", 1, 0.75), ("LiI", 0, 0.11), ("Li2S", 0, 0.30)]
    frame = spark.createDataFrame(rows, "formula string, label int, p_superionic double")
    frame.write.format("delta").save(str(table_path(home / "warehouse", name)))


def _sql(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        lisearch_cmd("sql", *args, "--set", f"paths.jars={repo_jars_dir()}"),
        env=cli_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.spark
@pytest.mark.slow
def test_sql_in_a_new_process_finds_the_tables_and_reports_a_missing_one(spark, home: Path):  # type: ignore[no-untyped-def]
    """One `lisearch sql` process (a JVM of its own): it registers the tables this process wrote, and a query on a
    missing table ends in lisearch's message alone (no Java stack trace logged as JSON before it)."""
    _write_table(spark, home, "demo")
    missing = _sql(home, "SELECT * FROM candidates")
    assert missing.returncode == 2
    assert "Spark could not run the query" in missing.stderr and "demo" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert "SQLQueryContextLogger" not in missing.stderr and len(missing.stderr) < 1500, missing.stderr[:3000]


@pytest.mark.spark
@pytest.mark.slow
def test_sql_formats_exports_completely_and_reports_bad_sql(spark, home: Path, capsys):  # type: ignore[no-untyped-def]
    """The command in this process (on the test's Spark session): JSON lines, a complete CSV export (more rows
    than a table display shows, and no cut message), a parse error as one message."""
    from lisearch.cli import main
    from lisearch.spark.catalog import table_path

    _write_table(spark, home, "demo")
    spark.range(0, 1205).selectExpr("id", "id * 2 AS twice").write.format("delta").save(
        str(table_path(home / "warehouse", "many"))
    )
    flags = ["--set", f"paths.home={home}", "--set", f"paths.jars={repo_jars_dir()}"]
    capsys.readouterr()
    assert main(["sql", "SELECT formula, p_superionic FROM demo WHERE label = 1", "--format", "json", *flags]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [
        {"formula": "Li3P", "p_superionic": 0.75}
    ]
    assert main(["sql", "SELECT * FROM many ORDER BY id", "--format", "csv", *flags]) == 0
    csv = capsys.readouterr()
    lines = csv.out.splitlines()
    assert len(lines) == 1206 and lines[:2] == ["id,twice", "0,0"] and lines[-1] == "1204,2408"
    assert "only the first" not in csv.err

    assert main(["sql", "SELEKT * FROM demo", *flags]) == 2
    bad = capsys.readouterr()
    assert "The SQL does not parse" in bad.err and "Traceback" not in bad.err


def test_query_error_logs_only_when_asked_for():
    """PySpark's query-error loggers: off at WARN, on at INFO, and still PySpark's own logger class (a plain
    logger made first made PySpark's logging fail with a TypeError at INFO)."""
    import logging

    from pyspark.logger import PySparkLogger

    from lisearch.spark.session import QUERY_ERROR_LOGGERS, quiet_query_error_logs

    try:
        for level, enabled in (("INFO", True), ("WARN", False), ("debug", True), ("ERROR", False)):
            quiet_query_error_logs(level)
            for name in QUERY_ERROR_LOGGERS:
                logger = logging.getLogger(name)
                assert isinstance(logger, PySparkLogger) and logger.isEnabledFor(logging.ERROR) is enabled, level
    finally:
        quiet_query_error_logs("WARN")


@pytest.mark.spark
@pytest.mark.slow
def test_spark_sql_shell_sees_the_tables(spark, home: Path):  # type: ignore[no-untyped-def]
    _write_table(spark, home, "demo")
    cmd = lisearch_cmd(
        "spark-sql", "--set", f"paths.jars={repo_jars_dir()}", "--", "-e", "SELECT formula FROM demo WHERE label = 1"
    )
    out = subprocess.run(cmd, env=cli_env(home), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "Li3P"
    assert not (home / "metastore_db").exists() and not Path("metastore_db").exists()  # in-memory metastore


def test_spark_sql_without_tables_says_what_to_run(home: Path):
    out = subprocess.run(lisearch_cmd("spark-sql", "--print"), env=cli_env(home), capture_output=True, text=True)
    assert out.returncode == 2 and "make run" in out.stderr


def test_a_limit_cuts_only_when_there_are_more_rows(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    """The cut message comes from one extra row fetched (run_sql stubbed: no Spark needed)."""
    import pandas as pd

    import lisearch.spark.sql
    from lisearch.cli import main

    def fake(settings, query, limit=0, **kwargs):  # type: ignore[no-untyped-def]
        rows = pd.DataFrame({"id": range(10 if "exact" in query else 1205)})
        return rows.head(limit) if limit else rows

    monkeypatch.setattr(lisearch.spark.sql, "run_sql", fake)
    assert main(["sql", "SELECT many", "--format", "json", "--limit", "10"]) == 0
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 10 and "only the first 10 rows" in out.err
    assert main(["sql", "SELECT exact", "--format", "json", "--limit", "10"]) == 0
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 10 and "only the first" not in out.err
    assert main(["sql", "SELECT many", "--format", "csv"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1206
    assert main(["sql", "SELECT many"]) == 0  # a table prints 1,000 rows by default, and says so
    out = capsys.readouterr()
    assert len(out.out.splitlines()) == 1001 and "only the first 1000 rows" in out.err


def test_a_wide_table_wraps_to_the_width_and_keeps_exact_integers_and_nulls():
    """Table output: columns wrapped into blocks that fit the terminal, a long text value (a CIF) on one line and
    cut, a bigint with a null printed whole, nulls as NULL; without a width (piped) one line per row."""
    import numpy as np
    import pandas as pd

    from lisearch.cli import _as_text

    frame = pd.DataFrame({
        "formula": ["Li3PS4", "LiCl"], "cif": ["data_x\n_cell_length_a 5.0\n" + "x" * 300, None],
        **{f"column_{i}": [1.5, np.nan] for i in range(12)},
        "count": pd.array([20374419912, None], dtype="Int64"),
    })  # fmt: skip
    wrapped = _as_text(frame, width=80)
    assert max(len(line) for line in wrapped.splitlines()) <= 80
    assert "20374419912" in wrapped and "e+" not in wrapped and "NULL" in wrapped and "<NA>" not in wrapped
    assert "data_x\\n_cell_length_a 5.0\\n" in wrapped and "x" * 300 not in wrapped
    assert len(_as_text(frame).splitlines()) == 3  # header and two rows
