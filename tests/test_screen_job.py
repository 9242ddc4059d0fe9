"""The screen on Spark against the same kernel run in one process; run-id replacement; errors before Spark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lisearch.errors import InputError, LisearchError
from lisearch.run_ids import is_run_id
from lisearch.screening.plan import plan_from_settings, screen_in_process
from tests.conftest import save_small_esml, settings_for, small_screen_settings


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small esML-like model trained on a handful of formulas (any valid artifact serves the screen)."""
    folder = tmp_path_factory.mktemp("artifacts")
    save_small_esml(folder)
    save_small_esml(folder, ("mean", "max"), "nonlinear.json")
    return folder


def _settings(home: Path, artifacts: Path, *extra: str):  # type: ignore[no-untyped-def]
    return small_screen_settings(home, artifacts, *extra)


@pytest.mark.spark
def test_spark_screen_equals_in_process_kernel(spark, home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    from lisearch.schema import CANDIDATE_STATS_COLUMNS
    from lisearch.spark.screen import run_screen

    settings = _settings(home, artifacts, "run.id=r1")
    summary = run_screen(settings, spark=spark)
    funnel, stats, survivors = screen_in_process(plan_from_settings(settings))
    assert summary["funnel"] == {
        s: None if pd.isna(c) else c for s, c in zip(funnel["stage"], funnel["count"], strict=True)
    }
    assert summary["funnel"]["plausible"] is None  # a run without quinaries writes every survivor
    assert summary["funnel"]["total"] == plan_from_settings(settings).space.count()

    wh = str(home / "warehouse")
    cand = spark.read.format("delta").load(f"{wh}/candidates").toPandas()
    assert len(cand) == len(survivors) == summary["funnel"]["survivors"]
    got = sorted(map(tuple, cand[["z1", "z2", "pct_li", "pct_1", "pct_2"]].to_numpy().tolist()))
    want = sorted(map(tuple, survivors[["z1", "z2", "pct_li", "pct_1", "pct_2"]].to_numpy().tolist()))
    assert got == want
    assert (
        set(cand["run_id"]) == {"r1"}
        and (cand["pct_li"] + cand["pct_1"] + cand["pct_2"] + cand["pct_3"].fillna(0) == 100).all()
    )

    detail = spark.sql(f"DESCRIBE DETAIL delta.`{wh}/candidates`").collect()[0]
    no_z4 = [c for c in CANDIDATE_STATS_COLUMNS if c != "z4"]  # a run without quinaries has no fourth partner
    assert detail["properties"]["delta.dataSkippingStatsColumns"].split(",") == no_z4 and "z4" not in cand
    logged = [json.loads(line) for f in sorted((home / "warehouse/candidates/_delta_log").glob("*.json"))
              for line in f.read_text().splitlines()]  # fmt: skip
    file_stats = [json.loads(e["add"]["stats"]) for e in logged if "add" in e]
    assert file_stats and all(set(st["nullCount"]) == set(no_z4) for st in file_stats)

    # The whole per-set table equals the in-process kernel's counts, set by set and column by column.
    from lisearch.chemistry.elements import symbols
    from lisearch.schema import STAT_COLUMNS

    by_set = spark.read.format("delta").load(f"{wh}/funnel_by_set").toPandas()
    want = stats.copy()
    for j in (1, 2, 3):
        want[f"element_{j}"] = [symbols()[z - 1] if z > 0 else None for z in want.pop(f"z{j}")]
    keys = ["element_1", "element_2", "element_3"]
    want = want.where(want != -1, None)  # -1 = not computed, stored as NULL
    pd.testing.assert_frame_equal(
        by_set[keys + list(STAT_COLUMNS)].sort_values(keys).reset_index(drop=True),
        want[keys + list(STAT_COLUMNS)].sort_values(keys).reset_index(drop=True),
        check_dtype=False,
    )
    runs = spark.sql("SELECT status, compositions FROM runs WHERE run_id = 'r1'").collect()
    assert [(r["status"], r["compositions"]) for r in runs] == [("succeeded", summary["compositions"])]

    # The same run id again: its rows are replaced, not duplicated; another run id adds rows.
    run_screen(settings, spark=spark)
    run_screen(_settings(home, artifacts, "run.id=r2", "screen.sizes=2"), spark=spark)
    counts = (
        spark.sql("SELECT run_id, count(*) AS n FROM candidates GROUP BY run_id").toPandas().set_index("run_id")["n"]
    )
    assert counts["r1"] == len(survivors)
    funnel_rows = spark.sql("SELECT run_id, count(*) AS n FROM funnel GROUP BY run_id").toPandas()
    assert sorted(funnel_rows["n"]) == [7, 7]  # six stages and `plausible` (not applied: null)
    assert spark.sql("SELECT count(*) FROM runs").collect()[0][0] == 2


@pytest.mark.spark
def test_quinary_screen_adds_the_fourth_partner_to_an_older_table(spark, home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    """A warehouse written before quinaries (candidates and funnel_by_set with three partners): a quinary run adds
    the fourth partner's columns (Delta schema evolution), its rows equal the in-process kernel's in every column,
    and the older run's rows stay, with nulls in the new columns."""
    from lisearch.schema import PARTNERS
    from lisearch.spark.screen import run_screen

    wh = home / "warehouse"
    old = spark.createDataFrame(
        [("old", 4, "O", "P", None, 8, 15, None, 15, 40, 40, 20, None, -2, 5, None, 0.5, 3.0, 20.0)],
        "run_id string, n_elements tinyint, element_1 string, element_2 string, element_3 string, z1 smallint, "
        "z2 smallint, z3 smallint, max_z smallint, pct_li smallint, pct_1 smallint, pct_2 smallint, pct_3 smallint, "
        "ox_1 tinyint, ox_2 tinyint, ox_3 tinyint, score float, cost_per_kg float, mean_atomic_mass float",
    )
    old.write.format("delta").partitionBy("run_id").save(str(wh / "candidates"))
    settings = _settings(home, artifacts, "run.id=q", "screen.elements=N,O,Na,P,S", "screen.sizes=4")
    summary = run_screen(settings, spark=spark)
    _, _, survivors = screen_in_process(plan_from_settings(settings))
    cand = spark.read.format("delta").load(str(wh / "candidates")).toPandas()
    new = cand[cand["run_id"] == "q"]
    assert len(new) == len(survivors) == summary["funnel"]["plausible"] > 0 and (new["n_elements"] == 5).all()
    assert summary["funnel"]["survivors"] > len(new)  # "auto": a quinary run writes only the plausible survivors
    columns = [f"z{j}" for j in PARTNERS] + ["pct_li"] + [f"{c}_{j}" for c in ("pct", "ox") for j in PARTNERS]
    got = new[[*columns, "score"]].astype(float).sort_values(columns).reset_index(drop=True)
    want = survivors[[*columns, "score"]].astype(float).sort_values(columns).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert set(new["element_4"]) <= {"P", "S"} and new["element_4"].notna().all()
    kept = cand[cand["run_id"] == "old"]
    assert len(kept) == 1 and kept[["element_4", "z4", "pct_4", "ox_4"]].isna().all(axis=None)
    # A later run without quinaries writes three partner columns; Delta leaves the fourth null for its rows.
    run_screen(_settings(home, artifacts, "run.id=t", "screen.elements=N,O,Na,P,S", "screen.sizes=2"), spark=spark)
    cand = spark.read.format("delta").load(str(wh / "candidates")).toPandas()
    ternary = cand[cand["run_id"] == "t"]
    assert len(ternary) > 0 and ternary[["element_4", "z4", "pct_4", "ox_4", "z3"]].isna().all(axis=None)
    assert len(cand[cand["run_id"] == "q"]) == len(new)


#: A quinary screen of many small partitions, long enough to be stopped in the middle.
_RESUMABLE = ("run.id=k", "screen.elements=N,O,F,Na,Mg,Al,Si,P,S,Cl", "screen.sizes=4", "screen.step=2",
              "screen.partitions=24", "screen.sets_per_block=5")  # fmt: skip


@pytest.mark.spark
def test_a_killed_quinary_run_resumes_with_the_same_funnel_and_no_duplicate_rows(spark, home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    """`lisearch screen` killed (SIGKILL, driver and workers) once some partitions have finished; `--resume` then
    screens only the others and ends with the in-process kernel's funnel and rows, each row once."""
    import os
    import signal
    import subprocess
    import time

    from lisearch.screening.files import Staging
    from lisearch.spark.screen import run_screen
    from tests.conftest import cli_env, lisearch_cmd, repo_jars_dir

    sets = [f"--set={o}" for o in (f"paths.artifacts={artifacts}", f"paths.jars={repo_jars_dir()}",
                                   "screen.max_cost_per_kg=40", *_RESUMABLE)]  # fmt: skip
    proc = subprocess.Popen(lisearch_cmd("screen", "--profile", "local", *sets), env=cli_env(home),
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    folder = Staging(str(home / "tmp" / "screen-k"))
    deadline = time.time() + 600
    while (staging := folder.current()) is None or len(staging.done()) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:] if proc.stderr else ""
        assert time.time() < deadline, "the run did not finish two partitions in 600 s"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the driver and its JVM
    proc.wait()
    # PySpark's worker daemon runs in its own process group: a worker busy with a partition may still finish it
    # (and record it) before it notices that its JVM is gone. Wait until the records stop changing.
    before, quiet_since = staging.done(), time.time()
    while time.time() - quiet_since < 5 and time.time() < deadline:
        time.sleep(0.2)
        if (now := staging.done()) != before:
            before, quiet_since = now, time.time()
    assert 2 <= len(before) < 24, "the run should have been stopped in the middle"
    table = home / "warehouse" / "candidates"
    stamps = {add["path"]: os.stat(table / add["path"]).st_mtime_ns for add in before.values() if add}

    with pytest.raises(InputError, match="cannot be resumed"):  # other settings: refused before Spark work
        run_screen(_settings(home, artifacts, *_RESUMABLE, "screen.max_cost_per_kg=30", "screen.resume=true"))
    settings = _settings(home, artifacts, *_RESUMABLE, "screen.resume=true")
    summary = run_screen(settings, spark=spark)
    assert summary["resumed_partitions"] == len(before) and summary["screened_partitions"] == 24 - len(before)
    assert {p: os.stat(table / p).st_mtime_ns for p in stamps} == stamps  # the finished partitions' files stay
    assert not Path(staging.root).exists()  # the staging folder goes once the run is committed

    funnel, _, survivors = screen_in_process(plan_from_settings(settings))
    assert summary["funnel"] == {
        s: None if pd.isna(c) else c for s, c in zip(funnel["stage"], funnel["count"], strict=True)
    }
    cand = spark.read.format("delta").load(str(home / "warehouse" / "candidates")).where("run_id = 'k'").toPandas()
    keys = ["z1", "z2", "z3", "z4", "pct_li", "pct_1", "pct_2", "pct_3", "pct_4", "ox_1", "ox_2", "ox_3", "ox_4"]
    assert len(cand) == len(survivors) == summary["funnel"]["plausible"] > 0
    assert not cand.duplicated(keys).any()
    got = cand[keys].astype(float).sort_values(keys).reset_index(drop=True)
    want = survivors[keys].astype(float).sort_values(keys).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    files = list((home / "warehouse" / "candidates" / "run_id=k").iterdir())
    assert len(files) == len(set(spark.read.format("delta").load(str(home / "warehouse" / "candidates"))
                                 .where("run_id = 'k'").inputFiles()))  # fmt: skip  # no stray file left
    runs = spark.sql("SELECT status FROM runs WHERE run_id = 'k'").collect()
    assert [r["status"] for r in runs] == ["succeeded"]


@pytest.mark.spark
def test_a_fresh_run_clears_an_abandoned_staged_run(spark, home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    """Without ``screen.resume`` a stopped run's staging is dropped: its uncommitted files are deleted, the files of
    committed runs stay, and the run is screened from the start."""
    from lisearch.screening.files import Staging, partition_file_name
    from lisearch.spark.screen import run_screen

    settings = _settings(home, artifacts, "run.id=a", "screen.sizes=2")
    run_screen(settings, spark=spark)
    table = home / "warehouse" / "candidates"
    committed = sorted(p.name for p in (table / "run_id=a").iterdir())
    stopped = Staging(str(home / "tmp" / "screen-a")).start("an older plan", [[0]])
    orphan = table / "run_id=a" / partition_file_name(0, stopped["token"])
    orphan.write_bytes(b"half a file")
    summary = run_screen(settings, spark=spark)
    assert not orphan.exists() and summary["resumed_partitions"] == 0
    rows = spark.read.format("delta").load(str(table)).where("run_id = 'a'").count()
    assert rows == summary["funnel"]["survivors"] > 0
    assert all((table / "run_id=a" / name).exists() for name in committed)  # the table's history keeps them


@pytest.mark.spark
def test_a_candidates_table_without_run_partitions_is_refused_before_the_kernel(spark, home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    """A `candidates` table from before run-id partitioning: the screen stops with what to do, the table intact."""
    from lisearch.spark.screen import run_screen

    path = str(home / "warehouse" / "candidates")
    spark.createDataFrame([("old", 8)], "run_id string, z1 smallint").write.format("delta").save(path)
    with pytest.raises(InputError, match="older than run-id partitioning"):
        run_screen(_settings(home, artifacts, "run.id=new", "screen.sizes=2"), spark=spark)
    assert [tuple(r) for r in spark.read.format("delta").load(path).collect()] == [("old", 8)]
    assert not (home / "warehouse" / "candidates" / "run_id=new").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("screen.elements=O,Qq",), "unknown element"),
        (("screen.step=7",), "divides 100"),
        (("screen.elements=O", "screen.exclude=O"), "at least 2"),
        (("screen.model=nonlinear",), "not linear in the fractions"),
        (("screen.model=missing",), "No model artifact"),
        (("screen.oxidation_list=oxides",), "oxidation_list"),
        (("run.id=bad id!",), "run id"),
    ],
)
def test_bad_screen_settings_stop_before_spark(home: Path, artifacts: Path, extra: tuple[str, ...], message: str):
    with pytest.raises(LisearchError, match=message):  # ConfigError when the settings load, else InputError
        plan_from_settings(_settings(home, artifacts, *extra))


@pytest.mark.parametrize(
    ("extra", "message"),
    [(("screen.plausible_only=maybe",), "plausible_only"), (("screen.max_candidate_rows=-1",), "max_candidate_rows")],
)
def test_bad_output_settings_stop_when_loading(home: Path, artifacts: Path, extra: tuple[str, ...], message: str):
    with pytest.raises(LisearchError, match=message):
        _settings(home, artifacts, *extra)


def test_row_estimate_is_exact_for_small_spaces_and_brackets_the_count_when_sampled(home: Path, artifacts: Path):
    from lisearch.screening.plan import estimate_rows

    small = plan_from_settings(_settings(home, artifacts, "screen.elements=N,O,Na,P,S", "screen.sizes=2,3,4"))
    assert small.inputs.plausible_only  # "auto": a run with quinaries applies the plausibility rules
    _, stats, survivors = screen_in_process(small)
    exact = estimate_rows(small)
    assert exact.expected == exact.low == exact.high == len(survivors) == stats["plausible"].sum() > 0
    wide = plan_from_settings(_settings(home, artifacts, "screen.elements=all", "screen.step=10", "screen.sizes=2"))
    _, _, survivors = screen_in_process(wide)  # 4,278 ternary element sets
    sampled = estimate_rows(wide, sets_per_size={2: 400})
    assert sampled.sampled_sets == 400 and sampled.low < len(survivors) < sampled.high
    assert not wide.inputs.plausible_only and "95 % interval" in str(sampled)


def test_a_run_predicted_to_write_too_many_rows_stops_before_spark(home: Path, artifacts: Path):
    from lisearch.spark.screen import run_screen

    settings = _settings(home, artifacts, "screen.max_candidate_rows=10")
    with pytest.raises(InputError, match=r"more than screen.max_candidate_rows = 10\. Narrow it"):
        run_screen(settings)  # no session passed: the refusal comes before one is started
    assert not (home / "warehouse" / "candidates").exists()


def test_edited_model_is_refused(home: Path, artifacts: Path, tmp_path: Path):
    text = (artifacts / "esml.json").read_text().replace('"intercept": ', '"intercept": 1')
    (tmp_path / "edited.json").write_text(text)
    with pytest.raises(InputError, match="integrity check"):
        plan_from_settings(_settings(home, artifacts, f"screen.model={tmp_path / 'edited.json'}"))


def test_unwritable_warehouse_is_refused_before_spark(home: Path, artifacts: Path, tmp_path: Path):
    from lisearch.spark.screen import run_screen

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(InputError, match="Cannot write"):
        run_screen(_settings(home, artifacts, f"paths.warehouse={blocked / 'wh'}"))


def test_funnel_frame_shares():
    from lisearch.screening.funnel import funnel_frame, rows_written

    totals = {"total": 100, "conductive": 60, "neutral": 10, "neutral_conductive": 7, "cost_ok": 5, "survivors": 2}
    frame = funnel_frame({**totals, "plausible": None})
    share = dict(zip(frame["stage"], frame["fraction_of_previous"], strict=True))
    assert share["neutral"] == pytest.approx(0.10) and share["neutral_conductive"] == pytest.approx(0.7)
    assert frame["description"].iloc[-1].endswith("- not applied")
    assert rows_written({**totals, "plausible": None}) == 2 and rows_written({**totals, "plausible": 1}) == 1
    assert funnel_frame({**totals, "plausible": 1})["fraction_of_previous"].iloc[-1] == pytest.approx(0.5)


@pytest.mark.spark
def test_narrow_to_stable_oxides(spark, home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    from lisearch.downstream.narrowing import TABLE_III, composition_flags
    from lisearch.spark.narrow import format_narrow, run_narrow
    from lisearch.spark.screen import run_screen

    settings = _settings(home, artifacts, "run.id=n1", "screen.elements=N,O,Na,Mg,P,K,Ga")
    run_screen(settings, spark=spark)
    summary = run_narrow(settings_for(home, f"paths.artifacts={artifacts}", "run.id=n1"), spark=spark)
    stable = spark.sql("SELECT * FROM stable_oxides WHERE run_id = 'n1'").toPandas()
    assert len(stable) > 0 and stable["anion_present"].all() and (stable["max_z"] <= 36).all()
    # Every stored row passes every proxy when recomputed one by one.
    for row in stable.head(50).itertuples(index=False):
        amounts = {"Li": row.pct_li, row.element_1: row.pct_1, row.element_2: row.pct_2}
        if isinstance(row.element_3, str):
            amounts[row.element_3] = row.pct_3
        flags = composition_flags({k: int(v) for k, v in amounts.items()})
        assert all(flags[s] for s in ("common_states", "single_anion", "electronegativity_order"))
    trace = summary["table_iii"]
    assert list(trace["table_iii"]) == list(TABLE_III)
    assert trace.loc[trace["found"], "removed_by"].isna().all()
    assert "Table III of the paper" in format_narrow(summary)
    # The flags of the whole kernel path equal the one-by-one flags (formula only where every stage passes).
    from lisearch.downstream.narrowing import stability_flags

    cand = spark.sql("SELECT * FROM candidates WHERE run_id = 'n1' AND max_z <= 36").toPandas().head(300)
    fast = stability_flags(cand)
    assert (
        fast["formula"].notna().tolist()
        == fast[["first_four_rows", "anion_present", "common_states", "single_anion", "electronegativity_order"]]
        .all(axis=1)
        .tolist()
    )

    # Bad narrowing input leaves every table as it was (same Delta versions).
    def versions() -> dict[str, int]:
        return {
            t: spark.sql(f"DESCRIBE HISTORY {t}").agg({"version": "max"}).collect()[0][0]
            for t in ("candidates", "funnel", "runs", "stable_oxides")
        }

    before = versions()
    with pytest.raises(InputError, match="not an element symbol"):
        run_narrow(settings_for(home, f"paths.artifacts={artifacts}", "run.id=n1", "narrow.anion=Xx"), spark=spark)
    with pytest.raises(InputError, match="'missing' does not exist"):
        run_narrow(settings_for(home, f"paths.artifacts={artifacts}", "run.id=missing"), spark=spark)
    assert versions() == before


@pytest.mark.spark
def test_downstream_jobs_take_the_last_succeeded_run_when_none_is_named(spark, home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    """`lisearch screen` then `lisearch narrow` chains: without a run id, narrow reads the screen run that succeeded
    last (a failed run after it does not count); with none at all it says what to run."""
    from lisearch.spark.narrow import run_narrow
    from lisearch.spark.screen import run_screen

    plain = settings_for(home, f"paths.artifacts={artifacts}", "narrow.stability=false")
    with pytest.raises(InputError, match="No screen run has succeeded"):
        run_narrow(plain, spark=spark)
    for run in ("first", "second"):
        run_screen(_settings(home, artifacts, f"run.id={run}", "screen.elements=N,O,Na,Mg"), spark=spark)
    minted = run_screen(_settings(home, artifacts, "screen.elements=N,O,Na,Mg"), spark=spark)["run_id"]
    assert minted not in ("first", "second") and is_run_id(minted)  # a new id when none is given
    assert run_narrow(plain, spark=spark)["run_id"] == minted
    assert (
        run_narrow(settings_for(home, f"paths.artifacts={artifacts}", "run.id=first"), spark=spark)["run_id"] == "first"
    )


@pytest.mark.spark
def test_narrow_errors(spark, home: Path, artifacts: Path):  # type: ignore[no-untyped-def]
    from lisearch.spark.narrow import run_narrow

    with pytest.raises(InputError, match="not an element symbol"):
        run_narrow(settings_for(home, "narrow.anion=Qq"), spark=spark)
    with pytest.raises(InputError, match="'nope' does not exist"):
        run_narrow(settings_for(home, f"paths.artifacts={artifacts}", "run.id=nope"), spark=spark)


def test_worker_objects_are_frozen_once_per_process():
    import gc

    from lisearch.spark.screen import _freeze_worker_objects

    _freeze_worker_objects.cache_clear()
    try:
        _freeze_worker_objects()
        assert gc.get_freeze_count() > 0
        gc.unfreeze()
        _freeze_worker_objects()  # a later task of the same worker: nothing to do
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
        _freeze_worker_objects.cache_clear()


def test_quinary_runs_get_more_partitions_by_default(home: Path, artifacts: Path):
    """Two partitions per core without quinaries, 16 with them (long tasks), each at most one per block."""
    from types import SimpleNamespace

    from lisearch.spark.screen import QUINARY_PARTITIONS_PER_CORE, default_partitions

    session: Any = SimpleNamespace(sparkContext=SimpleNamespace(defaultParallelism=2))
    extra = ("screen.elements=all", "screen.step=10", "screen.sets_per_block=5000")
    paper = plan_from_settings(_settings(home, artifacts, *extra))
    quinary = plan_from_settings(_settings(home, artifacts, *extra, "screen.sizes=4"))
    assert len(default_partitions(session, paper)) == 4
    assert len(default_partitions(session, quinary)) == 2 * QUINARY_PARTITIONS_PER_CORE < len(quinary.blocks)
    assert len(default_partitions(session, quinary, 7)) == 7
