"""Bad inputs and faults, as users give them: each ends in one clear message and leaves every stored row as it was.

One warehouse with two screen runs (``ok1``, ``ok2``), the narrowing of ``ok1`` and its shortlist is built once; every
refused input is then run against it through the command line (in this process, on the test's Spark session, unless
the case is about what the console shows), and the test compares the tables' contents and their Delta logs before
and after. One case per finding of the probe (run ids, SQL, archives, batches, numbers, concurrent writers, Java
failures) and per kind of input: formulas, CSVs, settings, profiles, run ids, SQL, CIFs and archives, model files,
homes, tables.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lisearch.errors import InputError
from tests.conftest import cli_env, lisearch_cmd, repo_jars_dir, save_small_esml

TABLES = ("candidates", "funnel", "funnel_by_set", "runs", "stable_oxides", "shortlist")
SMALL = ("screen.elements=B,N,O,Na,Mg,P,S,Cl,K", "screen.step=5", "screen.sets_per_block=20",
         "screen.max_cost_per_kg=40")  # fmt: skip


def _flags(home: Path, *extra: str) -> list[str]:
    out = []
    for item in (f"paths.home={home}", f"paths.jars={repo_jars_dir()}", *SMALL, *extra):
        out += ["--set", item]
    return out


@pytest.fixture(scope="module")
def warehouse(spark, tmp_path_factory: pytest.TempPathFactory) -> Path:  # type: ignore[no-untyped-def]
    """A home with screen runs ok1 and ok2, ok1 narrowed and shortlisted (screen score ranking: no measured models)."""
    from lisearch.cli import main

    home = tmp_path_factory.mktemp("bad-inputs") / "home"
    save_small_esml(home / "artifacts")
    for run in ("ok1", "ok2"):
        assert main(["screen", "--run-id", run, *_flags(home)]) == 0
    assert main(["narrow", "--run-id", "ok1", "--set", "narrow.stability=false", *_flags(home)]) == 0
    assert main(["shortlist", "--run-id", "ok1", *_flags(home)]) == 0
    return home


def _snapshot(spark, home: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Every table's rows (sorted, as text) and the names of its Delta log files: equal snapshots mean nothing was
    written, deleted or committed."""
    out: dict[str, Any] = {}
    for name in TABLES:
        folder = home / "warehouse" / name
        rows = spark.read.format("delta").load(str(folder)).toPandas().astype(str)
        out[name] = (
            sorted(map(tuple, rows.to_numpy().tolist())),
            sorted(p.name for p in (folder / "_delta_log").iterdir()),
        )
    return out


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from lisearch.cli import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _refused(spark, warehouse: Path, capsys, *args: str, message: str, code: int = 2) -> str:  # type: ignore[no-untyped-def]
    """Run ``lisearch *args`` and check: exit ``code``, ``message`` on stderr, no traceback, every table unchanged."""
    before = _snapshot(spark, warehouse)
    got, _, err = _cli(capsys, *args)
    assert got == code, err
    assert message in err, err
    assert "Traceback" not in err and len(err.splitlines()) <= 3, err
    assert _snapshot(spark, warehouse) == before
    return err


# ------------------------------------------------------------------------------------------------- run ids
@pytest.mark.spark
def test_a_run_id_with_a_trailing_newline_is_refused_and_candidates_stay_readable(spark, warehouse, capsys):  # type: ignore[no-untyped-def]
    _refused(spark, warehouse, capsys, "screen", "--run-id", "nl\n", *_flags(warehouse), message="'nl\\n'")
    code, out, _ = _cli(capsys, "sql", "SELECT run_id, count(*) AS n FROM candidates GROUP BY run_id ORDER BY run_id",
                        *_flags(warehouse))  # fmt: skip
    assert code == 0 and "ok1" in out and "ok2" in out


@pytest.mark.spark
@pytest.mark.parametrize("job", ["narrow", "shortlist", "score-measured"])
def test_an_injected_run_id_reaches_no_job(spark, warehouse, capsys, job: str):  # type: ignore[no-untyped-def]
    _refused(spark, warehouse, capsys, job, "--run-id", "zz' OR run_id <> '", *_flags(warehouse),
             message="run.id is \"zz' OR run_id <> '\"")  # fmt: skip


@pytest.mark.spark
def test_a_crafted_runs_row_opens_nothing(spark, warehouse, tmp_path):  # type: ignore[no-untyped-def]
    """The probe's attack: a `runs` row with an injected id marked succeeded (written here by hand into a copy of the
    warehouse). Neither `narrow` nor the notebook helpers take that id; the other runs' rows are untouched."""
    from lisearch import notebook
    from lisearch.config import load_settings
    from lisearch.spark.catalog import replace_run_rows

    home = tmp_path / "home"
    shutil.copytree(warehouse, home)
    evil = "zz' OR run_id <> '"
    runs = spark.read.format("delta").load(str(home / "warehouse/runs"))
    row = runs.filter("run_id = 'ok1'").toPandas().assign(run_id=evil)
    spark.createDataFrame(row, runs.schema).write.format("delta").mode("append").save(str(home / "warehouse/runs"))
    settings = load_settings("local", [f"paths.home={home}", f"paths.jars={repo_jars_dir()}"])
    before = _snapshot(spark, home)
    for call in (notebook.funnel, notebook.stable_oxides, notebook.shortlist, notebook.table_iii):
        with pytest.raises(InputError, match="run_id is"):
            call(evil, settings=settings)
    with pytest.raises(InputError, match="run id"):
        replace_run_rows(row.pipe(spark.createDataFrame), str(home / "warehouse/funnel"), evil, partitioned=True)
    assert _snapshot(spark, home) == before
    assert len(notebook.funnel("ok2", settings=settings)) == len(notebook.funnel("ok1", settings=settings))


# ----------------------------------------------------------------------------------------------------- SQL
@pytest.mark.spark
@pytest.mark.parametrize(
    "query",
    [
        "DELETE FROM candidates WHERE run_id = 'ok1'",
        "INSERT INTO runs SELECT * FROM runs",
        "RESTORE TABLE candidates TO VERSION AS OF 0",
        "VACUUM candidates RETAIN 0 HOURS",
        "UPDATE runs SET status = 'failed'",
        "DROP TABLE funnel",
        "WITH x AS (SELECT * FROM funnel) INSERT INTO funnel SELECT * FROM x",
        "SELECT 1; DELETE FROM funnel",
    ],
)
def test_sql_is_read_only_by_default(spark, warehouse, capsys, query: str):  # type: ignore[no-untyped-def]
    flags = _flags(warehouse, "spark.conf.spark.databricks.delta.retentionDurationCheck.enabled=false")
    _refused(spark, warehouse, capsys, "sql", query, *flags, message="--write")


@pytest.mark.spark
def test_sql_write_is_explicit_and_in_the_history(spark, tmp_path, capsys):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    spark.range(0, 5).write.format("delta").save(str(home / "warehouse" / "scratch"))
    code, _, err = _cli(capsys, "sql", "--write", "DELETE FROM scratch WHERE id < 2", *_flags(home))
    assert code == 0, err
    code, out, _ = _cli(capsys, "sql", "DESCRIBE HISTORY scratch", "--format", "json", *_flags(home))
    assert code == 0
    row = next(r for r in map(json.loads, out.splitlines()) if r["operation"] == "DELETE")
    assert row["userMetadata"].startswith("lisearch sql --write by ") and "DELETE FROM scratch" in row["userMetadata"]
    assert spark.read.format("delta").load(str(home / "warehouse" / "scratch")).count() == 3


@pytest.mark.spark
def test_a_refused_vacuum_under_write_is_one_paragraph(spark, warehouse, tmp_path, capsys):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    spark.range(0, 5).write.format("delta").save(str(home / "warehouse" / "scratch"))
    code, _, err = _cli(capsys, "sql", "--write", "VACUUM scratch RETAIN 0 HOURS", *_flags(home))
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "retentionDurationCheck" in err or "retention" in err.lower()


@pytest.mark.spark
def test_integers_stay_integers_in_every_format(spark, tmp_path, capsys):  # type: ignore[no-untyped-def]
    home = tmp_path / "home"
    frame = spark.createDataFrame([(9007199254740993, 1), (None, 2)], "big bigint, n int")
    frame.write.format("delta").save(str(home / "warehouse" / "numbers"))
    query = "SELECT big, n FROM numbers ORDER BY n"
    _, csv, _ = _cli(capsys, "sql", query, "--format", "csv", *_flags(home))
    assert csv.splitlines() == ["big,n", "9007199254740993,1", ",2"]
    _, js, _ = _cli(capsys, "sql", query, "--format", "json", *_flags(home))
    assert [json.loads(line) for line in js.splitlines()] == [{"big": 9007199254740993, "n": 1}, {"big": None, "n": 2}]
    _, table, _ = _cli(capsys, "sql", query, *_flags(home))
    assert "9007199254740993" in table and "NULL" in table and "e+" not in table


# ------------------------------------------------------------------------------------------------ archives
def _archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _labelled(spark, home: Path) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return spark.read.format("delta").load(str(home / "warehouse" / "structures")).toPandas().set_index("material_id")


@pytest.mark.spark
def test_archive_members_cannot_point_workers_outside_the_cache(spark, tmp_path, capsys, cif_folder):  # type: ignore[no-untyped-def]
    """Names with newlines, absolute names, `..` and links: each refused member is an `error` row saying why, an
    absolute name is read from inside the cache (not from the file it names), and no half-unpacked folder stays."""
    home = tmp_path / "home"
    real = (cif_folder / "mp-22899.cif").read_bytes()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "abs.cif").write_bytes(real)  # a real CIF the absolute member name points at
    link = tarfile.TarInfo("link.cif")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/hostname"
    members = [
        (tarfile.TarInfo("good.cif"), real),
        (tarfile.TarInfo("a\n/etc/hostname\nb.cif"), b"x\n"),
        (tarfile.TarInfo(str(outside / "abs.cif")), b"not a cif\n"),
        (tarfile.TarInfo("../up.cif"), real),
        (link, b""),
    ]
    source = _archive(tmp_path / "evil.tar.gz", members)
    code, _, err = _cli(capsys, "label-structures", "--source", str(source), *_flags(home))
    assert code == 0, err
    rows = _labelled(spark, home)
    assert rows.loc["good", "status"] == "ok"
    assert rows.loc["abs", "status"] == "error" and "unparsable" in rows.loc["abs", "reason"]  # the archive's bytes
    refused = rows[rows["reason"].fillna("").str.contains("refused")]
    assert len(refused) == 2 and any("control characters" in r for r in refused["reason"])  # newline name, `..`
    assert not any(p.name.startswith(".") for p in (home / "tmp" / "cif-cache").iterdir())  # no staging left
    manifest = next((home / "tmp" / "cif-cache").glob("evil.tar.gz-*")) / ".lisearch-members.json"
    assert {m["path"] for m in json.loads(manifest.read_text())["members"]} == {
        "good.cif",
        str(outside / "abs.cif")[1:],
    }


def test_worker_paths_outside_the_source_are_refused_rows(tmp_path):
    from lisearch.structure.labelling import label_cif_files

    inside = tmp_path / "src"
    inside.mkdir()
    (inside / "x.cif").write_text("data_x\n")
    (inside / "leak.cif").symlink_to("/etc/hostname")
    batch = pd.DataFrame({"material_id": ["x", "etc", "leak"], "path": [str(inside / "x.cif"), "/etc/hostname",
                                                                          str(inside / "leak.cif")]})  # fmt: skip
    rows = label_cif_files(batch, root=str(inside)).set_index("material_id")
    assert "refused" not in str(rows.loc["x", "reason"])
    assert rows.loc["etc", "status"] == rows.loc["leak", "status"] == "error"
    assert "does not lie inside" in rows.loc["etc", "reason"] and "does not lie inside" in rows.loc["leak", "reason"]


# ------------------------------------------------------------------------------------------ formulas, CSVs
@pytest.fixture(scope="module")
def predict_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("predict") / "home"
    save_small_esml(home / "artifacts")
    return home


def _predict(capsys, home: Path, *args: str) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    return _cli(capsys, "predict", *args, "--models", "esml", "--set", f"paths.home={home}")


def test_one_huge_amount_does_not_cost_the_batch(predict_home, tmp_path, capsys):  # type: ignore[no-untyped-def]
    csv = tmp_path / "f.csv"
    csv.write_text("formula\nLi3PO4\nLi1e19O\nLi1e308O\nLiO1e400\nLi2O\nXx2O\n")
    code, out, err = _predict(capsys, predict_home, "--csv", str(csv), "--format", "json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["formula"] for r in rows] == ["Li3PO4", "Li1e19O", "Li1e308O", "LiO1e400", "Li2O", "Xx2O"]
    assert rows[0]["error"] is None and rows[4]["error"] is None and rows[0]["esml_score"] is not None
    assert rows[1]["error"] is None and rows[1]["neutral_pymatgen_icsd"] is None  # scored; neutrality undefined
    assert rows[3]["error"] and "finite" in rows[3]["error"] and "unknown element" in rows[5]["error"]


@pytest.mark.parametrize(
    ("content", "message"),
    [("", "is empty"), ("formula\n", "no rows"), ("name\nLi2O\n", "no `formula` column"),
     (b"\xff\xfe\x00bad", "not a readable CSV")],
)  # fmt: skip
def test_unusable_csvs_are_one_line(predict_home, tmp_path, capsys, content, message):  # type: ignore[no-untyped-def]
    csv = tmp_path / "f.csv"
    csv.write_bytes(content if isinstance(content, bytes) else content.encode())
    code, _, err = _predict(capsys, predict_home, "--csv", str(csv))
    assert code == 2 and message in err and len(err.splitlines()) == 1, err


def test_predict_output_into_a_missing_folder_and_all_failed(predict_home, tmp_path, capsys):  # type: ignore[no-untyped-def]
    code, _, err = _predict(capsys, predict_home, "Li2O", "--output", str(tmp_path / "nope" / "out.csv"))
    assert code == 2 and "does not exist" in err
    code, out, err = _predict(capsys, predict_home, "Xx2", "Li(")
    assert code == 2 and "none of the 2 formula(s) could be scored" in err and "unknown element" in out


# -------------------------------------------------------------------------------------- settings and homes
@pytest.mark.spark
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN"])
def test_nan_and_infinite_limits_are_refused(spark, warehouse, capsys, value: str):  # type: ignore[no-untyped-def]
    _refused(spark, warehouse, capsys, "screen", "--run-id", "ok1", f"--max-cost={value}", *_flags(warehouse),
             message="finite")  # fmt: skip


def test_a_home_that_is_a_file(tmp_path):
    home = tmp_path / "home-file"
    home.write_text("not a folder")
    for args in (["predict", "Li2O"], ["screen"]):
        out = subprocess.run(lisearch_cmd(*args), env=cli_env(home), capture_output=True, text=True, timeout=120)
        assert out.returncode == 2 and "which is a file, not a folder" in out.stderr and "train" not in out.stderr


# ---------------------------------------------------------------------------------------- concurrent writers
@pytest.mark.spark
def test_a_screen_of_a_running_run_id_is_refused_before_spark(spark, warehouse, capsys):  # type: ignore[no-untyped-def]
    """Another process holds ok1 (simulated by holding its lock here): the second screen is refused, writes nothing
    and does not mark the run failed; jobs that only read ok1 may share it, a screen of another id goes on."""
    from lisearch.locks import run_lock

    with run_lock(warehouse, "ok1", "screen", exclusive=True):
        err = _refused(spark, warehouse, capsys, "screen", "--run-id", "ok1", *_flags(warehouse), message="in use by")
        assert "`lisearch screen`" in err and f"pid {os.getpid()}" in err
        _refused(spark, warehouse, capsys, "narrow", "--run-id", "ok1", *_flags(warehouse), message="in use by")
    runs = spark.read.format("delta").load(str(warehouse / "warehouse" / "runs")).toPandas()
    assert set(runs["status"]) == {"succeeded"}
    readers = run_lock(warehouse, "ok1", "narrow", exclusive=False), run_lock(warehouse, "ok1", "shortlist", False)
    writer = run_lock(warehouse, "ok1", "screen", exclusive=True)
    with readers[0], readers[1], pytest.raises(InputError, match="in use by another lisearch job"), writer:
        pass


def test_a_lock_dies_with_its_process(tmp_path):
    """A killed holder leaves no stale lock: the kernel releases flock locks when the process ends."""
    from lisearch.locks import run_lock

    script = (
        "import sys, time; from pathlib import Path; from lisearch.locks import run_lock\n"
        f"with run_lock(Path({str(tmp_path)!r}), 'r1', 'screen', True):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.Popen([os.sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)  # type: ignore[attr-defined]
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(InputError, match="in use by `lisearch screen`"), run_lock(tmp_path, "r1", "screen", True):
            pass
    finally:
        proc.kill()
        proc.wait()
    with run_lock(tmp_path, "r1", "screen", True):
        pass


# -------------------------------------------------------------------------------------------- Java failures
def _java_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line.lstrip().startswith("at ") or "Exception" in line)


@pytest.mark.spark
def test_a_truncated_delta_log_is_one_paragraph_naming_the_table(warehouse, tmp_path):
    """In its own process, as users meet it: the console gets one paragraph naming `funnel` and what to do (at most
    20 lines, no traceback), the full Java trace goes to a log file under the home."""
    home = tmp_path / "home"
    shutil.copytree(warehouse, home)
    log = sorted((home / "warehouse" / "funnel" / "_delta_log").glob("*.json"))[-1]
    log.write_text(log.read_text()[:40])
    out = subprocess.run(
        lisearch_cmd("sql", "SELECT * FROM funnel", "--set", f"paths.jars={repo_jars_dir()}"),
        env=cli_env(home), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 20, out.stderr[-3000:]
    assert _java_lines(out.stderr) <= 20
    assert "`funnel`" in out.stderr and "Delta log" in out.stderr and "full trace is in" in out.stderr
    logs = list((home / "logs").glob("*-sql.log"))
    assert logs and "at " in logs[0].read_text()


@pytest.mark.spark
def test_a_read_only_table_folder_stops_the_job_before_spark_work(spark, warehouse, tmp_path, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    """As root every folder is writable, so the refusal of the table folder is simulated at the probe; elsewhere
    the folder is made read-only for real."""
    home = tmp_path / "home"
    shutil.copytree(warehouse, home)
    folder = home / "warehouse" / "stable_oxides" / "_delta_log"
    if os.geteuid() == 0:
        real_touch = Path.touch

        def touch(self: Path, *args: Any, **kwargs: Any) -> None:
            if self.parent == folder:
                raise PermissionError(13, "Permission denied", str(self))
            real_touch(self, *args, **kwargs)

        monkeypatch.setattr(Path, "touch", touch)
    else:
        folder.chmod(0o555)
    try:
        _refused(spark, home, capsys, "narrow", "--run-id", "ok1", *_flags(home),
                 message="The table `stable_oxides` cannot be written")  # fmt: skip
    finally:
        folder.chmod(0o755)


def test_failures_are_classified_from_their_java_text(tmp_path):
    from lisearch.failures import describe_failure

    class FakeJavaError(Exception):
        pass

    FakeJavaError.__module__ = "py4j.protocol"
    jar = describe_failure(FakeJavaError("java.lang.NoSuchMethodError: 'void org.apache.spark.sql.delta.X'"),
                           tmp_path, "screen", tmp_path / "jars")  # fmt: skip
    assert jar.exit_code == 2 and "make setup" in jar.message and str(tmp_path / "jars") in jar.message
    denied = describe_failure(
        FakeJavaError("java.nio.file.AccessDeniedException: /h/warehouse/funnel/_delta_log/00003.json"), tmp_path, "x"
    )
    assert "cannot write to table `funnel`" in denied.message
    bug = describe_failure(ZeroDivisionError("division by zero"), tmp_path, "predict")
    assert bug.exit_code == 1 and "bug" in bug.message and bug.log_file is not None and bug.log_file.is_file()
    assert "ZeroDivisionError" in bug.log_file.read_text()
