"""Shared fixtures: one Spark session for the whole test run, a fresh warehouse folder per test."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lisearch.config import SOURCE_ROOT, Settings, load_settings

TESTS = Path(__file__).resolve().parent


def repo_jars_dir() -> Path:
    """Where `make setup` put the Delta jars (tests reuse them; set-up fetched them once)."""
    return load_settings("local").paths.jars_dir


def settings_for(home: Path, *extra: str) -> Settings:
    return load_settings("local", [f"paths.home={home}", f"paths.jars={repo_jars_dir()}", *extra])


def small_screen_settings(home: Path, artifacts: Path, *extra: str) -> Settings:
    """Settings of a small, fast screen (5 % steps, a few partner elements) with the models in ``artifacts``;
    ``extra`` overrides come last and win."""
    return settings_for(
        home,
        f"paths.artifacts={artifacts}",
        "screen.elements=B,N,O,Na,Mg,P,S,Cl,K",
        "screen.step=5",
        "screen.sets_per_block=20",
        "screen.max_cost_per_kg=40",
        *extra,
    )


#: JVM options for the tests' short-lived Spark processes (a `lisearch sql` subprocess, spark-submit, the notebook
#: kernel): the client compiler alone and the serial collector start a JVM that runs a few small queries about a
#: quarter faster here. Not for the tests' own long-lived session, whose jobs run longer with the full JIT.
SHORT_JVM_OPTS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"


def cli_env(home: Path) -> dict[str, str]:
    """Environment for running the `lisearch` command in a subprocess against ``home``."""
    env = dict(os.environ)
    env["LISEARCH_HOME"] = str(home)
    env["PYTHONPATH"] = str(SOURCE_ROOT)
    env["SPARK_SUBMIT_OPTS"] = SHORT_JVM_OPTS  # read by spark-submit, which starts every PySpark driver JVM
    return env


def lisearch_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lisearch.cli", *args]


def save_small_esml(folder: Path, reductions: tuple[str, ...] = ("mean",), name: str = "esml.json") -> None:
    """A small esML-like model trained on 16 formulas (any valid artifact serves a screen) saved in ``folder``."""
    import numpy as np

    from lisearch.chemistry.composition import parse_formulas
    from lisearch.models.artifact import save_artifact
    from lisearch.models.linear import KIND, ElementalLinearModel

    pos = ["Li3PS4", "Li2S", "Li7P3S11", "Li3P", "Li3N", "Li2O2", "LiBH4", "Li5NCl2"]
    neg = ["LiCl", "LiF", "Li3PO4", "Li4SiO4", "LiAlO2", "Li2TiO3", "LiNbO3", "MgLi2O2"]
    fractions, _, _ = parse_formulas(pos + neg)
    weight = "balanced" if reductions == ("mean",) else None
    model = ElementalLinearModel(reductions=reductions, class_weight=weight).fit(fractions, np.array([1] * 8 + [0] * 8))
    save_artifact(folder / name, KIND, model.to_payload({"data": "test"}))


@pytest.fixture(scope="session")
def spark_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spark-home")


@pytest.fixture(scope="session")
def spark(spark_home: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.session import get_session

    session = get_session(settings_for(spark_home, "spark.conf.spark.sql.shuffle.partitions=4"), register=False)
    yield session
    session.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A fresh LISEARCH_HOME for one test (warehouse, runs, artifacts under it)."""
    return tmp_path / "home"


@pytest.fixture
def cif_folder(tmp_path: Path) -> Iterator[Path]:
    """Five bundled MP CIFs plus one corrupt file, in a folder."""
    from lisearch.datasets import MP2025_ARCHIVE, iter_cifs

    wanted = {"mp-22899", "mp-736", "mp-2272", "mp-1125", "mp-1067"}
    folder = tmp_path / "cifs"
    folder.mkdir()
    for mid, text in iter_cifs(MP2025_ARCHIVE):
        if mid in wanted:
            (folder / f"{mid}.cif").write_text(text)
            wanted.discard(mid)
        if not wanted:
            break
    (folder / "broken.cif").write_text("data_broken\n_cell_length_a 3.0\nthis is not a CIF loop\n")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """``pytest -m "not spark"`` must start no JVM: a test that does so without the ``spark`` marker fails the run."""
    if "not spark" not in (session.config.option.markexpr or "") or "pyspark" not in sys.modules:
        return
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:  # the only way to ask without starting one
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nA test without the `spark` marker started Spark; mark it @pytest.mark.spark.", file=sys.stderr)
