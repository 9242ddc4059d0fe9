"""Run ids: one rule for every job and API function, one function that mints them, and the only ways a run id
reaches Delta and SQL (an escaped string literal, a column predicate, an encoded partition folder).

A run id names a partition folder (``run_id=<id>``), a staging folder, a record file and a lock, and it is compared
in SQL. It is therefore checked wherever it enters (settings, API arguments, the notebook helpers) against one rule,
matched in full (``re.fullmatch``: ``$`` would also match before a final newline): a letter or digit, then up to 63
letters, digits, ``.``, ``_`` or ``-``. Code that builds SQL text or Delta paths goes through :func:`sql_string`,
:func:`run_predicate`, :func:`partition_folder` and :func:`partition_uri`, which escape what they are given even
though the rule leaves nothing to escape (defence in depth: a string never becomes SQL or a path by formatting).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

from lisearch.errors import InputError

#: The run-id rule, matched with ``fullmatch``.
RUN_ID_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
RUN_ID_HELP = "a run id is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. default)"
#: The partition column of every table that holds runs.
RUN_COLUMN = "run_id"


def is_run_id(value: object) -> bool:
    """True when ``value`` is a string that follows the run-id rule in full."""
    return isinstance(value, str) and RUN_ID_RULE.fullmatch(value) is not None


def check_run_id(value: object, where: str = "run id", error: type[Exception] = InputError) -> str:
    """``value`` when it is a valid run id; otherwise ``error`` (InputError, or ConfigError for settings) naming
    ``where`` (e.g. ``screen.run_id``), the value as Python writes it (a newline shows as ``\\n``) and the rule."""
    if not is_run_id(value):
        raise error(f"{where} is {value!r}: {RUN_ID_HELP}. Choose another run id.")
    return str(value)


def new_run_id(now: datetime | None = None) -> str:
    """A fresh run id: UTC time to the second and six random hex digits, e.g. ``20261204T201913Z-3f9a1c``."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def sql_string(value: str) -> str:
    """``value`` as a Spark SQL string literal: single-quoted, with backslashes and quotes escaped (Spark reads
    backslash escapes in literals), so no value can end the literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def run_predicate(run_id: str) -> str:
    """The SQL predicate on one run's rows, ``run_id = '<id>'`` (e.g. a Delta ``replaceWhere``); the id is checked
    against the rule first and quoted by :func:`sql_string`."""
    return f"{RUN_COLUMN} = {sql_string(check_run_id(run_id))}"


#: Characters Hive (and so Spark and Delta) escape as %XX in partition folder names.
_HIVE_ESCAPED = frozenset("\"#%'*/:=?\\\x7f{[]^") | frozenset(chr(c) for c in range(0x01, 0x20))


def _hive_escape(value: str) -> str:
    return "".join(f"%{ord(c):02X}" if c in _HIVE_ESCAPED else c for c in value)


def partition_folder(run_id: str) -> str:
    """The folder of one run's partition inside a table, as Spark names it on disk: ``run_id=<id>`` with Hive's
    escaping of the value."""
    return f"{RUN_COLUMN}={_hive_escape(check_run_id(run_id))}"


def partition_uri(run_id: str) -> str:
    """:func:`partition_folder` as the relative URI a Delta ``add`` action's path starts with (the Delta protocol's
    paths are URI-encoded: the folder name's ``%`` becomes ``%25``)."""
    return quote(partition_folder(run_id), safe="=-_.~")


__all__ = [
    "RUN_COLUMN",
    "RUN_ID_HELP",
    "RUN_ID_RULE",
    "check_run_id",
    "is_run_id",
    "new_run_id",
    "partition_folder",
    "partition_uri",
    "run_predicate",
    "sql_string",
]
