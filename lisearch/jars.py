"""Delta Lake jars: which Maven artifacts Spark needs, and fetching them once into a local folder.

``spark.jars.packages`` makes Ivy resolve at every session start, which fails offline, so ``make setup``
copies the jars from Maven Central once (``lisearch fetch-jars``) and sessions pass the files as
``spark.jars``. On a cluster that reaches a repository, ``--packages`` with :func:`maven_coordinates` works too.
"""

from __future__ import annotations

import hashlib
import importlib.util
import shutil
import subprocess
import tempfile
import zipfile
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


def _run_tool(cmd: list[str], failed: str, advice: str, cwd: str) -> None:
    """Run a set-up tool (Maven, javac); EnvironmentProblem with its exit code, ``advice`` and the tool's last lines
    when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise EnvironmentProblem(f"{failed} (exit {proc.returncode}). {advice}\n{tail}")


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
            _run_tool(
                [mvn, "-q", "-B", "dependency:copy", f"-Dartifact={coord}", f"-DoutputDirectory={tmp}"],
                f"Maven could not fetch {coord}",
                "Check that Maven Central is reachable and run `make setup` again. Maven said:",
                tmp,
            )
        for name in expected_jar_names():
            (Path(tmp) / name).replace(jars_dir / name)
    return find_jars(jars_dir)


#: Java sources of ``lisearch serve``'s helper classes (read-only guard, password check), built into a jar once.
JAVA_SOURCES = Path(__file__).parent / "java"


def pyspark_jars_dir() -> Path:
    """The ``jars`` folder of the installed pyspark (Spark's own jars), found without importing pyspark."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - pyspark is a hard dependency
        raise EnvironmentProblem("pyspark is not installed: run `make setup` in the lisearch checkout.")
    return Path(next(iter(spec.submodule_search_locations))) / "jars"


def serve_jar(jars_dir: Path) -> Path:
    """The jar of ``lisearch serve``'s Java helpers (:data:`JAVA_SOURCES`) in ``jars_dir``, compiled against Spark's
    jars the first time (``lisearch fetch-jars`` and ``make setup`` do it; the file name holds a hash of the sources,
    so changed sources build a new jar). The jar is written to a temporary file first: never a partial jar.

    Raises:
        EnvironmentProblem: no ``javac`` (a JDK 17 is needed once, as for the Delta jars) or the build failed.
    """
    sources = sorted(JAVA_SOURCES.rglob("*.java"))
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.relative_to(JAVA_SOURCES).as_posix().encode() + b"\0" + path.read_bytes())
    target = jars_dir / f"lisearch-serve-{digest.hexdigest()[:12]}.jar"
    if target.is_file():
        return target
    javac = shutil.which("javac")
    if javac is None:
        raise EnvironmentProblem(
            "`lisearch serve` needs its helper jar, built once with a JDK's `javac`, which is not on PATH. Install a "
            "JDK 17 (Debian: `apt-get install openjdk-17-jdk-headless`) and run `make setup` (or `lisearch "
            f"fetch-jars`) again; or copy a lisearch-serve-*.jar built elsewhere into {jars_dir}."
        )
    jars_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=jars_dir) as tmp:
        classes = Path(tmp) / "classes"
        _run_tool(
            [javac, "-nowarn", "-d", str(classes), "-cp", f"{pyspark_jars_dir()}/*", *map(str, sources)],
            "javac could not build lisearch serve's helper jar",
            "Is the pyspark of this installation complete (`make setup`)? javac said:",
            tmp,
        )
        partial = Path(tmp) / target.name
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as jar:
            for path in sorted(classes.rglob("*.class")):
                jar.write(path, path.relative_to(classes).as_posix())
        partial.replace(target)
    for old in jars_dir.glob("lisearch-serve-*.jar"):
        if old != target:
            old.unlink(missing_ok=True)
    return target
