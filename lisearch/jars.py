"""Delta Lake jars: which Maven artifacts Spark needs, and fetching them once into a local folder.

``spark.jars.packages`` makes Ivy resolve at every session start, which fails offline, so ``make setup``
copies the jars from Maven Central once (``lisearch fetch-jars``) and sessions pass the files as
``spark.jars``. On a cluster that reaches a repository, ``--packages`` with :func:`maven_coordinates` works too.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from lisearch.errors import EnvironmentProblem

#: Delta Lake release of the jars. The pip package ``delta-spark`` is pinned to the same version in
#: pyproject.toml (4.4.1 exists on PyPI but its ``delta-spark_4.2_2.13`` jar is not on Maven Central).
DELTA_VERSION = "4.4.0"
SCALA_VERSION = "2.13"


def spark_minor_version() -> str:
    """``"4.2"`` for pyspark 4.2.x, read from package metadata without importing pyspark."""
    try:
        full = version("pyspark")
    except PackageNotFoundError as exc:  # pragma: no cover - pyspark is a hard dependency
        raise EnvironmentProblem("pyspark is not installed: run `make setup` in the lisearch checkout.") from exc
    return ".".join(full.split(".")[:2])


def maven_coordinates() -> list[str]:
    """Maven coordinates (group:artifact:version) of every jar Delta Lake needs beyond Spark itself."""
    return [
        f"io.delta:delta-spark_{spark_minor_version()}_{SCALA_VERSION}:{DELTA_VERSION}",
        f"io.delta:delta-storage:{DELTA_VERSION}",
    ]


def expected_jar_names() -> list[str]:
    """File names Maven gives the artifacts of :func:`maven_coordinates`."""
    names = []
    for coord in maven_coordinates():
        _, artifact, ver = coord.split(":")
        names.append(f"{artifact}-{ver}.jar")
    return names


def find_jars(jars_dir: Path) -> list[Path]:
    """The Delta jar files in ``jars_dir``.

    Raises:
        EnvironmentProblem: a jar is missing; the message says which command fetches it.
    """
    missing = [name for name in expected_jar_names() if not (jars_dir / name).is_file()]
    if missing:
        raise EnvironmentProblem(
            f"The Delta Lake jars {', '.join(missing)} are not in {jars_dir}. Run `make setup` in the lisearch "
            "checkout (or `lisearch fetch-jars`), once, on a machine that reaches Maven Central; after that "
            "Spark sessions work offline. On a cluster, use `spark-submit --packages "
            f"{','.join(maven_coordinates())}` instead (see conf/cluster.toml)."
        )
    return [jars_dir / name for name in expected_jar_names()]


def fetch_jars(jars_dir: Path) -> list[Path]:
    """Copy the Delta jars from Maven Central into ``jars_dir`` with Maven; a no-op when they are there.

    The copy goes to a temporary folder first, so an interrupted fetch never leaves a partial jar.
    """
    try:
        return find_jars(jars_dir)
    except EnvironmentProblem:
        pass
    mvn = shutil.which("mvn")
    if mvn is None:
        raise EnvironmentProblem(
            "Maven (`mvn`) is needed once to fetch the Delta Lake jars and was not found on PATH. Install it "
            "(Debian: `apt-get install maven`) and run `make setup` again."
        )
    jars_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jars_dir) as tmp:
        for coord in maven_coordinates():
            proc = subprocess.run(
                [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={coord}", f"-DoutputDirectory={tmp}"],
                capture_output=True,
                text=True,
                cwd=tmp,
            )
            if proc.returncode != 0:
                tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
                raise EnvironmentProblem(
                    f"Maven could not fetch {coord} (exit {proc.returncode}). Check that Maven Central is "
                    f"reachable and run `make setup` again. Maven said:\n{tail}"
                )
        for name in expected_jar_names():
            (Path(tmp) / name).replace(jars_dir / name)
    return find_jars(jars_dir)
