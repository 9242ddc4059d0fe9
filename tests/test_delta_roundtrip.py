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
