"""Expected failures of the command line end in one paragraph and exit code 2, without a stack trace."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import cli_env, lisearch_cmd, repo_jars_dir


def _run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(lisearch_cmd(*args), env=cli_env(home), capture_output=True, text=True, timeout=300)


def test_unknown_profile(home: Path):
    out = _run(home, "sql", "SELECT 1", "--profile", "moon")
    assert out.returncode == 2
    assert "Unknown profile 'moon'" in out.stderr and "Traceback" not in out.stderr


def test_doctor_without_jars_says_what_to_run(home: Path):
    out = _run(home, "doctor", "--no-probe", "--set", f"paths.jars={home / 'no-jars'}")
    assert out.returncode == 1
    assert "[FAIL] delta jars" in out.stdout and "Run `make setup`" in out.stdout


@pytest.mark.spark  # the Delta probe runs on the test's Spark session (in this process)
def test_doctor_passes_with_jars(spark, home: Path, capsys):  # type: ignore[no-untyped-def]
    from lisearch.cli import main

    code = main(["doctor", "--set", f"paths.home={home}", "--set", f"paths.jars={repo_jars_dir()}"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "[ ok ] delta probe" in out.out and "All checks passed." in out.out


def test_sql_without_jars_is_one_paragraph(home: Path, tmp_path: Path):
    jars = tmp_path / "jars"
    shutil.copytree(repo_jars_dir(), jars, ignore=shutil.ignore_patterns("delta-storage*"))
    out = _run(home, "sql", "SELECT 1", "--set", f"paths.jars={jars}")
    assert out.returncode == 2
    assert "delta-storage" in out.stderr and "make setup" in out.stderr and "Traceback" not in out.stderr


def test_missing_structure_source_stops_before_spark(home: Path):
    out = _run(home, "label-structures", "--source", str(home / "nothing-here"))
    assert out.returncode == 2
    assert "does not exist" in out.stderr
    assert not (home / "warehouse").exists()


def test_wrong_java_is_one_paragraph(home: Path, tmp_path: Path):
    env = cli_env(home)
    env["JAVA_HOME"] = str(tmp_path / "no-jdk")
    out = subprocess.run(lisearch_cmd("sql", "SELECT 1"), env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "Java 17 or newer" in out.stderr and "Traceback" not in out.stderr


def test_bench_without_models_says_what_to_run(monkeypatch, capsys):  # type: ignore[no-untyped-def]
    from lisearch.errors import InputError
    from tools import bench

    def no_model(full: bool = False) -> dict[str, object]:
        raise InputError("No model artifact at var/artifacts/esml.json. Train the models with `lisearch train`.")

    monkeypatch.setitem(bench.BENCHMARKS, "screen", no_model)
    assert bench.main(["screen"]) == 2
    err = capsys.readouterr().err
    assert "No model artifact" in err and "`make run` trains the models" in err


def test_a_new_home_finds_the_installation_s_jars(tmp_path: Path):
    """LISEARCH_HOME moves the data, not the jars: a brand-new home can start Spark without fetch-jars."""
    out = _run(tmp_path / "brand-new-home", "jars")
    assert out.returncode == 0, out.stderr
    printed = [Path(p) for p in out.stdout.strip().split(",")]
    assert len(printed) == 2 and all(p.parent == repo_jars_dir() and p.is_file() for p in printed)
