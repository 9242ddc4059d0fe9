"""``lisearch sql``: Spark SQL over the registered tables, with user-facing errors for bad SQL."""

from __future__ import annotations

import pandas as pd
from pyspark.errors import AnalysisException, ParseException

from lisearch.config import Settings
from lisearch.errors import InputError
from lisearch.spark.catalog import list_tables
from lisearch.spark.session import get_session


def run_sql(settings: Settings, query: str, limit: int = 0) -> pd.DataFrame:
    """Run ``query`` and return at most ``limit`` rows (0 = all) as pandas.

    Raises:
        InputError: the SQL does not parse, or names a table or column that does not exist.
    """
    spark = get_session(settings)
    try:
        frame = spark.sql(query)
        if limit:
            frame = frame.limit(limit)
        return frame.toPandas()
    except ParseException as exc:
        raise InputError(f"The SQL does not parse: {_first_line(exc)} Fix the query and run again.") from exc
    except AnalysisException as exc:
        tables = ", ".join(list_tables(settings.paths.warehouse_dir)) or "none yet (run `make run`)"
        raise InputError(
            f"Spark could not run the query: {_first_line(exc)} Tables in {settings.paths.warehouse_dir}: {tables}. "
            "`lisearch sql 'DESCRIBE <table>'` lists a table's columns."
        ) from exc


def _first_line(exc: Exception) -> str:
    text = getattr(exc, "getMessage", lambda: str(exc))() or str(exc)
    return " ".join(text.strip().splitlines()[0].split())
