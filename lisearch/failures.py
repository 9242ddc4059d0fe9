"""Unexpected failures as one paragraph on the console, with the full trace in a log file under the home.

Expected failures are :class:`lisearch.errors.LisearchError` and carry their own message. Everything else that
reaches the command line (a Java exception from Spark or Delta, a bug) is written in full to
``<home>/logs/<UTC time>-<command>.log`` and summed up by :func:`describe_failure` in one paragraph that names the
table or folder involved, when the trace names one, and says what to do. Spark and Delta failures are recognised by
the class of the exception (pyspark's and py4j's exception classes) and by the text of the Java error: an
unreadable Delta log, a folder that cannot be written, a Delta jar that does not match Spark. No pyspark import here.
"""

from __future__ import annotations

import os
import re
import tempfile
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: Set to 1 to let unexpected exceptions end in their Python traceback (for debugging lisearch itself).
DEBUG_ENV = "LISEARCH_DEBUG"

_DELTA_LOG = re.compile(
    r"_delta_log|DELTA_LOG_|DELTA_STATE_RECOVER|DELTA_VERSIONS_NOT_CONTIGUOUS|DELTA_CHECKPOINT|"
    r"DELTA_MISSING_DELTA_TABLE|JsonParseException|MismatchedInputException|end-of-input|DELTA_INVALID_LOG|"
    r"DELTA_EMPTY_DIRECTORY"
)
_PERMISSION = re.compile(r"AccessDeniedException|Permission denied|Mkdirs failed|Read-only file system|EACCES|EROFS")
_JARS = re.compile(
    r"NoSuchMethodError|NoClassDefFoundError|ClassNotFoundException|IncompatibleClassChangeError|AbstractMethodError|"
    r"UnsupportedClassVersionError|ClassCastException: class (?:org\.apache\.spark\.sql\.delta|io\.delta)"
)
_TABLE_IN_PATH = re.compile(r"/warehouse/([a-z][a-z0-9_]*)(?:/|\b)")


@dataclass(frozen=True)
class Failure:
    """What the console shows of an unexpected exception (``message``), its exit code (2: a problem of the data or
    the installation that the message says how to fix; 1: a bug), and the log file with the full trace."""

    message: str
    exit_code: int
    log_file: Path | None


def is_spark_error(exc: BaseException) -> bool:
    """True for exceptions raised by pyspark or py4j (a Java exception seen from Python)."""
    return any(cls.__module__.split(".")[0] in ("pyspark", "py4j") for cls in type(exc).__mro__)


def is_storage_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or its Java side) says a Delta log cannot be read, a folder cannot be written or the Delta
    jars do not fit Spark: failures of the installation or the warehouse, not of a query."""
    text = _full_text(exc)
    return any(p.search(text) for p in (_DELTA_LOG, _PERMISSION, _JARS))


def _full_text(exc: BaseException) -> str:
    """The Python traceback and, for a captured Java exception, its Java stack trace."""
    parts = ["".join(traceback.format_exception(exc))]
    for cause in _chain(exc):
        java = getattr(cause, "_stackTrace", None) or getattr(cause, "java_exception", None)
        if java is not None:
            parts.append(f"Java side of {type(cause).__name__}:\n{java}")
    return "\n".join(parts)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def write_log(text: str, home: Path | None, command: str) -> Path | None:
    """Write ``text`` to ``<home>/logs/<time>-<command>.log`` (the system's temporary folder when the home cannot be
    written); returns the file, or None when nothing could be written."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", command) or "lisearch"
    for folder in ([home / "logs"] if home is not None else []) + [Path(tempfile.gettempdir()) / "lisearch-logs"]:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{stamp}-{safe}.log"
            path.write_text(text)
            return path
        except OSError:
            continue
    return None


def _first_line(text: str, limit: int = 300) -> str:
    for line in text.strip().splitlines():
        line = " ".join(line.split())
        if line and not line.startswith(("Traceback", "JVM stacktrace", "File ")):
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


_JAVA_CAUSE = re.compile(r"^(?::\s*|Caused by:\s*)?(?:[\w$]+\.)+([\w$]+(?:Exception|Error)): (.+)$", re.MULTILINE)


def _summary(exc: BaseException, text: str) -> str:
    """What went wrong in one line: for a Java exception its deepest cause with a message (``ChecksumException:
    Checksum error: file:/...``), otherwise the first line of the exception's message."""
    if is_spark_error(exc):
        causes = [(name, message.strip()) for name, message in _JAVA_CAUSE.findall(text)]
        causes = [
            (n, m) for n, m in causes if m and not m.startswith(("Exception thrown in awaitResult", "Job aborted"))
        ]
        if causes:
            name, message = causes[-1]
            return _first_line(f"{name}: {message}")
    return _first_line(str(exc)) or type(exc).__name__


def _table_named(text: str) -> str | None:
    match = _TABLE_IN_PATH.search(text)
    return match.group(1) if match else None


def _where(text: str) -> str:
    """``table `x` (<path>)``, or ``a table`` when the trace names none."""
    table = _table_named(text)
    path = re.search(r"(?:file:)?/*(/[^\s'\"`,;]*?/warehouse/" + (table or "") + r")", text) if table else None
    if table and path:
        return f"table `{table}` ({path.group(1)})"
    return f"table `{table}`" if table else "a table"


def describe_failure(exc: BaseException, home: Path | None, command: str, jars_dir: Path | None = None) -> Failure:
    """The one-paragraph message of an unexpected exception of ``lisearch <command>`` (printed after the prefix
    ``lisearch <command>:``), after writing its full trace to the home's log folder."""
    text = _full_text(exc)
    log = write_log(text, home, command)
    trace = f" The full trace is in {log}." if log is not None else ""
    first = _summary(exc, text)
    if not is_spark_error(exc) and not isinstance(exc, OSError):
        return Failure(
            f"stopped on an unexpected error ({type(exc).__name__}: {first}).{trace} This is a "
            f"bug in lisearch; please report it with that file. {DEBUG_ENV}=1 shows the Python traceback.",
            1,
            log,
        )
    if _JARS.search(text):
        where = f" in {jars_dir}" if jars_dir is not None else ""
        return Failure(
            f"Spark and the Delta Lake jars{where} do not fit together ({first}).{trace} Run `make setup` (or "
            "`lisearch fetch-jars`) to get the jars this lisearch pins, and `lisearch doctor` to check; under "
            "spark-submit pass the jars of `lisearch jars`.",
            2,
            log,
        )
    if _PERMISSION.search(text):
        return Failure(
            f"cannot write to {_where(text)}: {first}.{trace} Make the table's folder (and its "
            "_delta_log) writable by this user, or point paths.warehouse (or LISEARCH_HOME) at a writable folder. "
            "Nothing was committed to the table.",
            2,
            log,
        )
    if _DELTA_LOG.search(text):
        return Failure(
            f"The Delta log of {_where(text)} cannot be read: {first}.{trace} Its _delta_log folder is missing, "
            "truncated or was edited by hand. Restore the folder from a backup, or move it aside and run the job "
            "that writes the table again (`lisearch run` lists them); other tables are not affected.",
            2,
            log,
        )
    if isinstance(exc, OSError):
        return Failure(
            f"could not use a file or folder: {first}.{trace} Check that the path exists and is "
            "readable (and writable where lisearch writes).",
            2,
            log,
        )
    return Failure(
        f"Spark failed: {first}.{trace} If it names a table, that table may be "
        "damaged; `lisearch doctor` checks the installation.",
        1,
        log,
    )


def debug_enabled() -> bool:
    """True when ``LISEARCH_DEBUG`` asks for Python tracebacks of unexpected exceptions."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0", "false")


__all__ = [
    "DEBUG_ENV",
    "Failure",
    "debug_enabled",
    "describe_failure",
    "is_spark_error",
    "is_storage_failure",
    "write_log",
]
