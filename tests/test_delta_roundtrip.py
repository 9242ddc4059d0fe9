"""Delta Lake through the session helper: write, append, time travel, replaceWhere on one partition."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.spark


def test_write_append_time_travel_replace_where(spark, tmp_path: Path):  # type: ignore[no-untyped-def]
    from pyspark.sql import functions as F

    path = str(tmp_path / "t")
    base = spark.createDataFrame([(i, "a" if i < 3 else "b") for i in range(6)], "id long, part string")
    base.write.format("delta").partitionBy("part").save(path)
    time.sleep(1.1)  # commit timestamps have second resolution in the query below
    after_v0 = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    time.sleep(1.1)
    spark.createDataFrame([(10, "c")], "id long, part string").write.format("delta").mode("append").save(path)

    def read():  # type: ignore[no-untyped-def]
        return spark.read.format("delta")  # a fresh reader each time: options stick to a reader

    assert read().load(path).count() == 7
    assert read().option("versionAsOf", 0).load(path).count() == 6
    assert read().option("timestampAsOf", after_v0).load(path).count() == 6

    replacement = spark.createDataFrame([(100, "a"), (101, "a")], "id long, part string")
    replacement.write.format("delta").mode("overwrite").option("replaceWhere", "part = 'a'").save(path)
    now = {r["part"]: sorted(x for x in r["ids"]) for r in
           read().load(path).groupBy("part").agg(F.collect_list("id").alias("ids")).collect()}  # fmt: skip
    assert now == {"a": [100, 101], "b": [3, 4, 5], "c": [10]}
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").select("version").collect()
    assert sorted(r[0] for r in history) == [0, 1, 2]

    # replaceWhere refuses rows outside the predicate instead of silently writing them.
    with pytest.raises(Exception, match=r"(?i)replaceWhere|DELTA_REPLACE_WHERE"):
        spark.createDataFrame([(7, "b")], "id long, part string").write.format("delta").mode("overwrite").option(
            "replaceWhere", "part = 'a'"
        ).save(path)
    assert read().load(path).count() == 6


def test_a_name_follows_the_warehouse_it_was_last_registered_for(spark, tmp_path: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.catalog import register_table

    for which in ("a", "b"):
        spark.createDataFrame([(which,)], "w string").write.format("delta").save(str(tmp_path / which / "demo2"))
    register_table(spark, tmp_path / "a", "demo2")
    assert spark.sql("SELECT w FROM demo2").collect()[0][0] == "a"
    register_table(spark, tmp_path / "b", "demo2")
    assert spark.sql("SELECT w FROM demo2").collect()[0][0] == "b"
    # Only the catalog entry moved: the first warehouse's table is intact.
    assert spark.read.format("delta").load(str(tmp_path / "a" / "demo2")).collect()[0][0] == "a"
