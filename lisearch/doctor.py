"""``lisearch doctor``: what is installed, what is missing, and what to run about it."""

from __future__ import annotations

import platform
import sys
import tempfile
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lisearch.config import Settings
from lisearch.datasets import check_bundled_data
from lisearch.errors import LisearchError
from lisearch.jars import find_jars
from lisearch.runtime import check_java
from lisearch.version import __version__


def _pkg(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        raise LisearchError(f"the Python package {name} is not installed: run `make setup`.") from None


def _writable(path: Path) -> str:
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path):
        pass
    return str(path)


def _bundled_data() -> str:
    return check_bundled_data()


def _delta_probe(settings: Settings) -> str:
    from lisearch.spark.session import get_session  # noqa: PLC0415 (slow import, needed here only)

    spark = get_session(settings, register=False)
    probe_root = settings.paths.home / "tmp"
    probe_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=probe_root) as tmp:
        path = str(Path(tmp) / "probe")
        spark.range(3).write.format("delta").save(path)
        spark.range(3, 5).write.format("delta").mode("append").save(path)
        total = spark.read.format("delta").load(path).count()
        first = spark.read.format("delta").option("versionAsOf", 0).load(path).count()
        if (total, first) != (5, 3):
            raise LisearchError(
                f"Delta probe read back {total} rows (expected 5) and {first} at version 0 (expected 3)."
            )
    return f"wrote, appended and read back a Delta table with Spark {spark.version} ({spark.sparkContext.master})"


def run_doctor(settings: Settings, probe: bool = True) -> int:
    """Print one line per check; return 0 when all pass, 1 otherwise (with advice under each failure)."""
    checks: list[tuple[str, Callable[[], str]]] = [
        ("python", lambda: f"{platform.python_version()} ({sys.executable})"),
        ("lisearch", lambda: f"{__version__} (profile {settings.profile})"),
        ("java", lambda: (lambda j: f"{j.version} ({j.executable})")(check_java())),
        ("pyspark", lambda: _pkg("pyspark")),
        ("delta-spark", lambda: _pkg("delta-spark")),
    ]
    if settings.spark.delta_source == "jars":
        checks.append(("delta jars", lambda: ", ".join(str(p) for p in find_jars(settings.paths.jars_dir))))
    checks += [
        ("bundled data", _bundled_data),
        ("home folder", lambda: _writable(settings.paths.home)),
        ("warehouse", lambda: _writable(settings.paths.warehouse_dir)),
    ]
    if probe:
        checks.append(("delta probe", lambda: _delta_probe(settings)))
    failed = 0
    for name, check in checks:
        try:
            print(f"[ ok ] {name:13s} {check()}")
        except (LisearchError, OSError) as exc:
            failed += 1
            print(f"[FAIL] {name:13s} {exc}")
    print("All checks passed." if not failed else f"{failed} check(s) failed: do what the messages above say.")
    return 0 if not failed else 1
