"""The screen's Delta commit: directly through delta-rs when the pre-flight check allows it, otherwise with Spark's
public writer, with the same rows either way."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from lisearch.screening.plan import plan_from_settings, screen_in_process
from tests.conftest import save_small_esml, small_screen_settings

pytestmark = pytest.mark.spark

KEY = ["z1", "z2", "z3", "pct_li", "pct_1", "pct_2", "pct_3"]


def _rows(spark, home: Path, run_id: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    frame = spark.read.format("delta").load(str(home / "warehouse" / "candidates")).where(f"run_id = '{run_id}'")
    return frame.toPandas()[KEY].fillna(0).astype(int).sort_values(KEY).reset_index(drop=True)


def _last_commit(home: Path) -> dict:
    logs = sorted((home / "warehouse" / "candidates" / "_delta_log").glob("*.json"))
    entries = [json.loads(line) for line in logs[-1].read_text().splitlines()]
    return next(e["commitInfo"] for e in entries if "commitInfo" in e)


def test_direct_commit_then_public_writer_when_the_table_has_a_constraint(spark, tmp_path: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.commit import preflight
    from lisearch.spark.screen import run_screen

    home = tmp_path / "home"
    save_small_esml(tmp_path / "artifacts")
    settings = small_screen_settings(home, tmp_path / "artifacts", "run.id=c1", "screen.elements=N,O,Na,P,S")
    _, _, survivors = screen_in_process(plan_from_settings(settings))
    want = survivors[KEY].astype(int).sort_values(KEY).reset_index(drop=True)

    run_screen(settings, spark=spark)
    direct = _last_commit(home)
    assert direct["userMetadata"].startswith("lisearch screen (lisearch ") and "run_id = 'c1'" in direct["userMetadata"]
    pd.testing.assert_frame_equal(_rows(spark, home, "c1"), want, check_dtype=False)

    table = home / "warehouse" / "candidates"
    spark.sql(f"ALTER TABLE delta.`{table}` ADD CONSTRAINT li_present CHECK (pct_li > 0)")
    assert preflight(str(table), 3) == "the table has CHECK constraints (li_present)"
    before = {p.name for p in (table / "run_id=c1").glob("*.parquet")}
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("lisearch").addHandler(handler)
    try:
        run_screen(settings, spark=spark)
    finally:
        logging.getLogger("lisearch").removeHandler(handler)
    assert any("committed with Spark's writer" in m and "li_present" in m for m in seen), seen
    fallback = _last_commit(home)
    assert fallback["operation"] == "WRITE" and "Apache-Spark" in fallback.get("engineInfo", "")
    pd.testing.assert_frame_equal(_rows(spark, home, "c1"), want, check_dtype=False)
    new = {p.name for p in (table / "run_id=c1").glob("*.parquet")} - before
    live = {Path(u).name for u in spark.read.format("delta").load(str(table)).where("run_id = 'c1'").inputFiles()}
    assert new == live  # Spark's files are the rows; the run's own task files were deleted after the commit


def test_preflight_says_why(spark, tmp_path: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.commit import preflight

    assert preflight(str(tmp_path / "nothing"), 3) is None
    wrong = tmp_path / "wrong"
    spark.createDataFrame([(1.5, "x")], "pct_li double, run_id string").write.format("delta").partitionBy(
        "run_id"
    ).save(str(wrong))
    assert "pct_li is double in the table, int16 in the files" in str(preflight(str(wrong), 3))
    mapped = tmp_path / "mapped"
    spark.createDataFrame([(1, "x")], "pct_li smallint, run_id string").write.format("delta").option(
        "delta.columnMapping.mode", "name"
    ).option("delta.minReaderVersion", "2").option("delta.minWriterVersion", "5").save(str(mapped))
    assert preflight(str(mapped), 3) == "the table uses column mapping"
