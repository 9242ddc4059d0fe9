import os
import stat
from pathlib import Path

import pytest

from lisearch.errors import EnvironmentProblem
from lisearch.jars import expected_jar_names, find_jars, maven_coordinates
from lisearch.runtime import check_java, parse_java_version


@pytest.mark.parametrize(
    ("text", "major"),
    [('openjdk version "17.0.15" 2025-04-15', 17), ('java version "1.8.0_392"', 8), ('openjdk version "21" 2023', 21)],
)
def test_parse_java_version(text: str, major: int):
    assert parse_java_version(text)[1] == major


def _fake_java(tmp_path: Path, version: str) -> Path:
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2020-01-01' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return home


def test_old_java_is_refused_with_advice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, "11.0.2")))
    with pytest.raises(EnvironmentProblem, match=r"needs Java 17 or newer, but .* is Java 11.0.2.*JAVA_HOME"):
        check_java()


def test_missing_java_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(EnvironmentProblem, match=r"none was found .*has no bin/java.*openjdk-17"):
        check_java()


def test_java_on_this_machine_is_fine():
    if "JAVA_HOME" in os.environ and not Path(os.environ["JAVA_HOME"], "bin", "java").exists():
        pytest.skip("JAVA_HOME points elsewhere")
    assert check_java().major >= 17


def test_jar_coordinates_match_the_pinned_spark():
    coords = maven_coordinates()
    assert coords[0].startswith("io.delta:delta-spark_4.2_2.13:")
    assert expected_jar_names()[1].startswith("delta-storage-")


def test_missing_jars_say_what_to_run(tmp_path: Path):
    with pytest.raises(EnvironmentProblem, match=r"not in .*Run `make setup`"):
        find_jars(tmp_path)
