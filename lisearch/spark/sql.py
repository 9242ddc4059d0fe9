"""``lisearch sql``: Spark SQL over the registered tables, read-only unless asked, exact in its numbers.

A query is checked by :func:`lisearch.sql_policy.check_read_only` before Spark starts; ``write=True`` (``--write``)
lets any statement through and labels the commits it makes (Delta's ``userMetadata``, shown by ``DESCRIBE
HISTORY``). Callers that put a value into a query quote it with :func:`lisearch.run_ids.sql_string` (Spark's named
parameter markers would be the better route, but Delta 4.4's SQL parser extension leaves them unbound). Results come
back through Arrow with pandas' nullable types, so a bigint column with a null
stays integer (``9007199254740993`` is not rounded to a float).
"""

from __future__ import annotations

import getpass
from typing import Any

import pandas as pd
import pyarrow as pa
from pyspark.errors import AnalysisException, ParseException, PySparkException
from pyspark.sql import DataFrame, SparkSession

from lisearch.config import Settings
from lisearch.errors import InputError
from lisearch.failures import is_storage_failure
from lisearch.serve import Endpoint, read_secret
from lisearch.spark.catalog import list_tables
from lisearch.spark.session import get_session, quiet_query_error_logs, session_conf
from lisearch.sql_policy import check_read_only

#: Delta's session setting whose value every commit records as ``userMetadata`` (``DESCRIBE HISTORY``).
USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"

_NULLABLE = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def to_pandas_exact(frame: DataFrame) -> pd.DataFrame:
    """``frame`` as pandas with integer and boolean columns in pandas' nullable dtypes (Int8..Int64, boolean), so
    nulls do not turn integers into floats; other types as ``toPandas`` gives them."""
    table = frame.toArrow()
    return table.to_pandas(types_mapper=_NULLABLE.get)


def connect_session(settings: Settings, endpoint: Endpoint) -> Any:
    """A Spark Connect session on the running ``endpoint`` (its token from :func:`lisearch.serve.read_secret`)."""
    url = endpoint.connect_url
    if endpoint.auth:
        secret = read_secret(settings)
        if secret is None:
            raise InputError(
                f"The running endpoint asks for a secret and none is set here: put it in {settings.serve.secret_env} "
                "or serve.secret_file."
            )
        url += f"/;token={secret}"
    quiet_query_error_logs(settings.spark.log_level)
    return SparkSession.builder.remote(url).getOrCreate()


def run_sql(
    settings: Settings,
    query: str,
    limit: int = 0,
    write: bool = False,
    spark: Any = None,
) -> pd.DataFrame:
    """Run ``query`` and return at most ``limit`` rows (0 = all) as pandas (:func:`to_pandas_exact`).

    ``write``: allow statements that change tables (otherwise refused before Spark starts); their commits carry
    ``lisearch sql --write`` in the history. ``spark``: the session to use (default: this process's, started if
    needed); a Spark Connect session of a running endpoint (:func:`connect_session`) answers the same way.

    Raises:
        InputError: the query writes without ``write``; the SQL does not parse; it names a table or column that does
            not exist; Spark cannot evaluate it.
    """
    if not write:
        check_read_only(query)
    spark = spark or get_session(settings)
    try:
        if write:
            with session_conf(spark, USER_METADATA, f"lisearch sql --write by {_user()}: {' '.join(query.split())}"):
                frame = spark.sql(query)
        else:
            frame = spark.sql(query)
        if limit:
            frame = frame.limit(limit)
        return to_pandas_exact(frame)
    except ParseException as exc:
        first = _first_line(exc).split(" == SQL")[0]  # without the echoed query and its caret line
        raise InputError(f"The SQL does not parse: {first} Fix the query and run again.") from exc
    except AnalysisException as exc:
        if is_storage_failure(exc):
            raise  # a damaged or unwritable table: the command line names it and says what to do
        tables = ", ".join(list_tables(settings.paths.warehouse_dir)) or "none yet (run `make run`)"
        raise InputError(
            f"Spark could not run the query: {_first_line(exc)} Tables in {settings.paths.warehouse_dir}: {tables}. "
            "`lisearch sql 'DESCRIBE <table>'` lists a table's columns."
        ) from exc
    except PySparkException as exc:
        if is_storage_failure(exc):
            raise
        _raise_if_endpoint_problem(exc, settings)
        raise InputError(
            f"Spark could not evaluate the query: {_first_line(exc)} Fix the query and run again."
        ) from exc


def _raise_if_endpoint_problem(exc: Exception, settings: Settings) -> None:
    """An InputError when ``exc`` is a Spark Connect endpoint refusing the secret or not answering."""
    text = str(exc)
    if "StatusCode.UNAUTHENTICATED" in text:
        raise InputError(
            f"The lisearch endpoint refused this client's secret ({text.split('details = ')[-1].split(chr(10))[0]}). "
            f"Set {settings.serve.secret_env} (or serve.secret_file) to the secret it was started with."
        ) from exc
    if "StatusCode.UNAVAILABLE" in text:
        raise InputError(
            "The lisearch endpoint does not answer: `lisearch serve --status` says why; `lisearch serve` starts it "
            "again (or stop it with `lisearch serve --stop` and the query runs in process)."
        ) from exc


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


def _first_line(exc: Exception, limit: int = 600) -> str:
    """Spark's message of ``exc`` on one line (every line of the message, not the JVM stack trace), cut at ``limit``
    characters. ``str`` rather than ``getMessage``: the latter fails for Delta's error classes."""
    text = str(exc).split("JVM stacktrace:")[0]
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
