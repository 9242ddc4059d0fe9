"""Checks of the machine Spark will run on (Java), done without starting Spark."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from lisearch.errors import EnvironmentProblem

#: Spark 4.x runs on Java 17 and 21.
MIN_JAVA = 17


@dataclass(frozen=True)
class JavaInfo:
    """The Java found: executable, version string and major version."""

    executable: Path
    version: str
    major: int


def _java_executable() -> Path | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        return candidate if candidate.is_file() else None
    found = shutil.which("java")
    return Path(found) if found else None


def parse_java_version(text: str) -> tuple[str, int]:
    """``'openjdk version "17.0.15" 2025-04-15'`` -> ``("17.0.15", 17)``; ``"1.8.0_392"`` -> major 8."""
    match = re.search(r'version "([^"]+)"', text)
    if not match:
        raise ValueError(f"no version in {text!r}")
    version = match.group(1)
    parts = version.split(".")
    major = int(parts[1]) if parts[0] == "1" and len(parts) > 1 else int(re.match(r"\d+", parts[0]).group())  # type: ignore[union-attr]
    return version, major


def check_java() -> JavaInfo:
    """The Java Spark will use, checked to be version 17 or newer.

    Raises:
        EnvironmentProblem: no Java, an unrunnable one, or one older than 17, with what to do about it.
    """
    exe = _java_executable()
    if exe is None:
        where = (
            f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java"
            if os.environ.get("JAVA_HOME")
            else "no `java` on PATH"
        )
        raise EnvironmentProblem(
            f"Spark needs Java {MIN_JAVA} or newer, and none was found ({where}). Install a JDK 17 "
            "(Debian: `apt-get install openjdk-17-jdk-headless`) and put it on PATH or set JAVA_HOME to it."
        )
    try:
        proc = subprocess.run([str(exe), "-version"], capture_output=True, text=True, timeout=60)
        version, major = parse_java_version(proc.stderr + proc.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
        raise EnvironmentProblem(
            f"Could not run {exe} -version ({exc}). Point JAVA_HOME at a working JDK {MIN_JAVA} or newer."
        ) from exc
    if major < MIN_JAVA:
        raise EnvironmentProblem(
            f"Spark 4 needs Java {MIN_JAVA} or newer, but {exe} is Java {version}. Install JDK 17 and set "
            "JAVA_HOME to it (e.g. `export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64`)."
        )
    return JavaInfo(exe, version, major)
